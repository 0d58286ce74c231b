//! Counters the management API reports (spec §8.2/8.3) and drop reasons.

/// Why a datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    TooShort,
    Undecodable,
    Undecryptable,
    StampRejected,
    TtlExpired,
    UnknownCommunity,
    CommunityNotAllowed,
    PlainForEncrypted,
    RegistryFull,
    /// A community holds its most edges at one public IP address (`--max-edges-per-ip`), or
    /// the address created its most communities (`--max-communities-per-ip`).
    SourceFull,
    UnknownDestination,
    /// A PACKET or REGISTER to relay from a MAC that is not registered here, or not from the
    /// address it registered from.
    UnknownSender,
    /// A broadcast beyond its source address's fan-out budget (`--max-broadcast-rate`).
    BroadcastBudget,
    Unsupported,
    BadAuth,
    /// A FROM_SUPERNODE datagram from an address that is not a federation member.
    NotAMember,
    /// A federation registration carrying our own MAC (an `-l` naming ourselves).
    FromSelf,
    /// The federation holds its maximum of members.
    FederationFull,
    /// A federation ACK without the cookie of our last registration.
    StaleCookie,
    /// User/password community: a registration under the dynamic key, or anything else under
    /// the static one.
    WrongKey,
    /// User/password community: a registration whose trailer is not the user's.
    BadTrailer,
}

#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub forward_tx: u64,
    pub broadcast_tx: u64,
    pub reg_super_rx: u64,
    pub reg_super_nak: u64,
    pub errors: u64,
    pub dropped: u64,
    pub dropped_undecryptable: u64,
    pub dropped_stamp: u64,
    pub dropped_registry_full: u64,
    /// Federation traffic refused: not from a member, a full federation, a stale ACK.
    pub federation_refused: u64,
    /// User/password registrations refused: wrong key, trailer, unknown user or password.
    pub auth_refused: u64,
    /// TCP connections refused or dropped, and messages lost to a full TCP queue.
    pub tcp_refused: u64,
    pub last_fwd_us: u64,
    pub last_reg_super_us: u64,
}

impl Stats {
    pub fn record_drop(&mut self, reason: DropReason) {
        self.dropped += 1;
        match reason {
            DropReason::Undecryptable => self.dropped_undecryptable += 1,
            DropReason::StampRejected => self.dropped_stamp += 1,
            DropReason::RegistryFull | DropReason::SourceFull => self.dropped_registry_full += 1,
            DropReason::TooShort | DropReason::Undecodable => self.errors += 1,
            DropReason::NotAMember | DropReason::FederationFull | DropReason::StaleCookie => {
                self.federation_refused += 1
            }
            DropReason::WrongKey | DropReason::BadTrailer => self.auth_refused += 1,
            _ => {}
        }
    }
}
