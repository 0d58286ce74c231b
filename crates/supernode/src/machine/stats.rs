//! Counters the management API reports (spec §8.2/8.3) and drop reasons.

/// Why a datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DropReason {
    #[error("shorter than a header")]
    TooShort,
    #[error("does not decode")]
    Undecodable,
    #[error("header does not open under any community key")]
    Undecryptable,
    #[error("header time stamp replayed or out of its time frame")]
    StampRejected,
    #[error("time to live ran out")]
    TtlExpired,
    #[error("no such community here")]
    UnknownCommunity,
    #[error("community not in the community list")]
    CommunityNotAllowed,
    #[error("unencrypted header in a community with header encryption")]
    PlainForEncrypted,
    #[error("the registry holds its most edges or communities")]
    RegistryFull,
    /// A community holds its most edges at one public IP address (`--max-edges-per-ip`), or
    /// the address created its most communities (`--max-communities-per-ip`).
    #[error("the source address holds its most edges or communities")]
    SourceFull,
    #[error("destination not registered here")]
    UnknownDestination,
    /// A PACKET or REGISTER to relay from a MAC that is not registered here, or not from the
    /// address it registered from.
    #[error("sender not registered here, or not from where it registered")]
    UnknownSender,
    /// A broadcast beyond its source address's fan-out budget (`--max-broadcast-rate`).
    #[error("broadcast beyond its source's fan-out budget")]
    BroadcastBudget,
    #[error("not a message a supernode acts on")]
    Unsupported,
    #[error("not the auth token of the registration")]
    BadAuth,
    /// A FROM_SUPERNODE datagram from an address that is not a federation member.
    #[error("supernode message from a host outside the federation")]
    NotAMember,
    /// A federation registration carrying our own MAC (an `-l` naming ourselves).
    #[error("federation registration from ourselves")]
    FromSelf,
    /// The federation holds its maximum of members.
    #[error("the federation holds its most members")]
    FederationFull,
    /// A federation ACK without the cookie of our last registration.
    #[error("federation answer to no registration of ours (cookie)")]
    StaleCookie,
    /// User/password community: a registration under the dynamic key, or anything else under
    /// the static one.
    #[error("user/password community: under the wrong key")]
    WrongKey,
    /// User/password community: a registration whose trailer is not the user's.
    #[error("user/password community: not the user's trailer")]
    BadTrailer,
}

impl DropReason {
    /// Every reason, in the order the management API lists them.
    pub const ALL: [DropReason; 21] = [
        DropReason::TooShort,
        DropReason::Undecodable,
        DropReason::Undecryptable,
        DropReason::StampRejected,
        DropReason::TtlExpired,
        DropReason::UnknownCommunity,
        DropReason::CommunityNotAllowed,
        DropReason::PlainForEncrypted,
        DropReason::RegistryFull,
        DropReason::SourceFull,
        DropReason::UnknownDestination,
        DropReason::UnknownSender,
        DropReason::BroadcastBudget,
        DropReason::Unsupported,
        DropReason::BadAuth,
        DropReason::NotAMember,
        DropReason::FromSelf,
        DropReason::FederationFull,
        DropReason::StaleCookie,
        DropReason::WrongKey,
        DropReason::BadTrailer,
    ];

    pub fn index(self) -> usize {
        Self::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub forward_tx: u64,
    pub broadcast_tx: u64,
    pub reg_super_rx: u64,
    pub reg_super_nak: u64,
    pub errors: u64,
    pub dropped: u64,
    /// `dropped` by reason, indexed by [`DropReason::index`].
    pub dropped_by: [u64; DropReason::ALL.len()],
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
        self.dropped_by[reason.index()] += 1;
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
