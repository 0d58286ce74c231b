//! Counters the management API reports (spec §8.2/8.3) and drop reasons.

n2n_daemon::reasons! {
    /// Why a datagram was dropped.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
    pub enum DropReason {
        #[error("shorter than a header")]
        TooShort,
        #[error("does not decode")]
        Undecodable,
        #[error("header does not open under any community or federation key")]
        Undecryptable,
        #[error("header time stamp replayed or out of its time frame")]
        StampRejected,
        #[error("time to live ran out")]
        TtlExpired,
        #[error("no such community here")]
        UnknownCommunity,
        #[error("community not allowed here (not listed, empty name, or too many communities)")]
        CommunityNotAllowed,
        #[error("unencrypted header in a community with header encryption")]
        PlainForEncrypted,
        #[error("the registry holds its most edges (--max-edges) or federation associations")]
        RegistryFull,
        /// A community holds its most edges at one public IP address (`--max-edges-per-ip`), or
        /// the address created its most communities (`--max-communities-per-ip`).
        #[error("the source address holds its most edges or communities")]
        SourceFull,
        #[error("destination not registered here, or a broadcast with no one to receive it")]
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
        #[error("federation registration carrying our own MAC")]
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
        /// `-S2`/TCP: a connection beyond the caps (in total and per source address).
        #[error("TCP connection refused: too many")]
        TcpRefused,
        #[error("TCP connection closed: bad framing")]
        TcpFraming,
        /// A message for a TCP edge whose queue was full (a slow reader loses its own).
        #[error("message lost to a full TCP queue")]
        TcpQueueFull,
    }
}

#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub forward_tx: u64,
    pub broadcast_tx: u64,
    pub reg_super_rx: u64,
    pub reg_super_nak: u64,
    /// Drops by [`DropReason::index`]; the totals below are sums of them.
    dropped_by: [u64; DropReason::ALL.len()],
    pub last_fwd_us: u64,
    pub last_reg_super_us: u64,
}

/// What n2n would count as its `errors`: what does not parse, and the TCP link's failures.
const ERRORS: [DropReason; 5] = [
    DropReason::TooShort,
    DropReason::Undecodable,
    DropReason::TcpRefused,
    DropReason::TcpFraming,
    DropReason::TcpQueueFull,
];

impl Stats {
    pub fn record_drop(&mut self, reason: DropReason) {
        self.record_drops(reason, 1);
    }

    /// `n` drops for `reason`.
    pub fn record_drops(&mut self, reason: DropReason, n: u64) {
        self.dropped_by[reason.index()] += n;
    }

    /// The datagrams dropped for `reason`.
    pub fn dropped_for(&self, reason: DropReason) -> u64 {
        self.dropped_by[reason.index()]
    }

    /// Every datagram dropped, whatever the reason.
    pub fn dropped(&self) -> u64 {
        self.dropped_by.iter().sum()
    }

    /// The management API's `errors` (n2n's name).
    pub fn errors(&self) -> u64 {
        ERRORS.iter().map(|r| self.dropped_for(*r)).sum()
    }
}
