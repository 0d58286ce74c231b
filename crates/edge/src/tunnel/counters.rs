//! The data plane's counters: n2n's packet statistics (management API) and a counter for
//! every reason a datagram or frame is dropped.

use std::sync::atomic::{AtomicU64, Ordering};

use n2n_proto::Mac;

n2n_daemon::reasons! {
    /// Why the data plane dropped a datagram or frame.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
    pub enum DropReason {
        #[error("header does not open (wrong key, out of the time frame, too short)")]
        Header,
        #[error("does not decode")]
        Decode,
        #[error("another community or transform")]
        Foreign,
        #[error("PACKET under the static key of a user/password community")]
        WrongKey,
        #[error("our own frame, reflected back")]
        Reflected,
        #[error("replayed or reordered time stamp")]
        Replay,
        #[error("not registered with a supernode yet")]
        NotRegistered,
        #[error("payload does not authenticate or decrypt")]
        Auth,
        #[error("payload does not decompress")]
        Decompress,
        #[error("frame shorter than an Ethernet header")]
        TooShort,
        #[error("a path probe (-A6/-A7): authentic, carries no frame")]
        PathProbe,
        #[error("multicast without -E")]
        Multicast,
        #[error("IPv4 address not ours without -r")]
        NotOurs,
        #[error("refused by a -R rule")]
        Rule,
        #[error("cannot be sealed")]
        Seal,
        #[error("TAP read not usable (offload segmentation)")]
        TapRead,
        #[error("no TAP device yet")]
        NoDevice,
        #[error("send failed")]
        Send,
        #[error("control queue full")]
        ControlFull,
    }
}

/// Packet counters, shared by both directions and read by the management API.
#[derive(Debug, Default)]
pub struct Counters {
    pub transop_tx: AtomicU64,
    pub transop_rx: AtomicU64,
    pub p2p_tx: AtomicU64,
    pub p2p_rx: AtomicU64,
    pub super_tx: AtomicU64,
    pub super_rx: AtomicU64,
    pub super_broadcast_tx: AtomicU64,
    pub super_broadcast_rx: AtomicU64,
    /// Last PACKET relayed by a supernode / received directly (Unix µs, shown by the
    /// management API), as n2n's `last_sup` and `last_p2p`.
    pub last_super_rx_us: AtomicU64,
    pub last_p2p_rx_us: AtomicU64,
    drops: [AtomicU64; DropReason::ALL.len()],
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    pub fn drop(&self, reason: DropReason, n: u64) {
        if n > 0 {
            add(&self.drops[reason.index()], n);
        }
    }

    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()].load(Ordering::Relaxed)
    }

    /// Every drop, whatever the reason.
    pub fn dropped_total(&self) -> u64 {
        self.drops.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// `n` frames to `dst` sealed, directly or through the supernode (counted when sealed,
    /// as n2n counts them before sending).
    pub(super) fn sealed(&self, n: u64, direct: bool, dst: Mac) {
        add(&self.transop_tx, n);
        let kind = if direct {
            &self.p2p_tx
        } else if dst.is_multi_or_broadcast() {
            &self.super_broadcast_tx
        } else {
            &self.super_tx
        };
        add(kind, n);
    }

    pub(super) fn received(&self, relayed: bool, broadcast: bool, wall_us: u64) {
        add(&self.transop_rx, 1);
        if relayed {
            add(&self.super_rx, 1);
            super::routes::max_relaxed(&self.last_super_rx_us, wall_us);
            if broadcast {
                add(&self.super_broadcast_rx, 1);
            }
        } else {
            add(&self.p2p_rx, 1);
            super::routes::max_relaxed(&self.last_p2p_rx_us, wall_us);
        }
    }
}
