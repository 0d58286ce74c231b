//! Why the control machine refused a control message. The Tunnel drops what does not open or
//! decode (its `DropReason`s); these are the refusals of what did, each counted
//! (`EdgeStats::refused`), as the supernode machine counts its drops.

n2n_daemon::reasons! {
    /// A control message the machine would not act on.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
    pub enum Refusal {
        #[error("another community")]
        ForeignCommunity,
        #[error("under the wrong key, or without our user's trailer")]
        WrongKey,
        #[error("an answer to no request of ours (cookie, or a peer we did not ask for)")]
        StaleAnswer,
        #[error("a supernode's answer that does not prove it knows our user")]
        BadAnswer,
        #[error("an assigned address no TAP can take")]
        UnusableAddress,
        #[error("supernode business from a host that is not our supernode")]
        NotOurSupernode,
        #[error("a REGISTER_ACK from a socket we did not register to")]
        Unasked,
        #[error("addressed to another edge, or peer-to-peer is off")]
        NotForUs,
        #[error("a registration request again too soon")]
        TooSoon,
        #[error("the peer table is full")]
        Full,
        #[error("not a message an edge acts on")]
        Unexpected,
    }
}
