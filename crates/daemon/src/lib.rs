//! What `edge` and `supernode` share as Unix daemons: n2n's config-file syntax, logging with
//! n2n's verbosity levels, daemonising, dropping privileges, and the clocks.

pub mod cli;
pub mod conf;
pub mod logging;
pub mod mgmt;
pub mod os;
pub mod reasons;
pub mod udp;

/// A configured secret (`-k`): used as a `str`, never shown by `Debug`, so a logged or
/// printed configuration does not carry it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Self {
        Secret(s)
    }
}

impl std::ops::Deref for Secret {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// A data-path switch from the environment (`N2N_RS_OFFLOAD`, `N2N_RS_GSO`, ...): on unless
/// set to `0`, for comparisons and for kernels whose offloads misbehave.
pub fn switch_on(name: &str) -> bool {
    std::env::var_os(name).is_none_or(|v| v != "0")
}

/// Where [`mono_micros`] starts: far from zero, so "0 = never" and subtractions stay sane.
pub const MONO_START_US: u64 = 1_000_000_000_000;

/// Monotonic microseconds for every deadline and window: never steps with the wall clock,
/// and counts time suspended (CLOCK_BOOTTIME), so that after a laptop resumes, paths and
/// registrations are as old as they really are.
pub fn mono_micros() -> u64 {
    static ANCHOR: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let now = os::boottime_micros();
    let anchor = *ANCHOR.get_or_init(|| now);
    MONO_START_US + now.saturating_sub(anchor)
}

/// Microseconds since the Unix epoch: only for what the wire or the operator sees (`-H`
/// stamps, management times), never for a deadline.
pub fn unix_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}
