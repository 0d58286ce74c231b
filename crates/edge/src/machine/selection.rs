//! How the edge ranks its supernodes (spec §7.4).

/// The selection strategy: `--select-rtt`, `--select-mac`, else by load.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Selection {
    /// The load each supernode reports in its PONG (n2n's default).
    #[default]
    Load,
    /// The round-trip time of the PING.
    Rtt,
    /// The lowest MAC address.
    Mac,
}
