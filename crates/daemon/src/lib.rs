//! What `edge` and `supernode` share as Unix daemons: n2n's config-file syntax, logging with
//! n2n's verbosity levels, daemonising, dropping privileges, and the wall clock.

pub mod cli;
pub mod conf;
pub mod logging;
pub mod mgmt;
pub mod os;
pub mod udp;

/// Microseconds since the Unix epoch (the machines take time as an argument).
pub fn unix_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}
