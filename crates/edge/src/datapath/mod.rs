//! The data path (docs/architecture.md): one thread reads the TAP and sends, one receives and
//! writes the TAP. Both read an immutable [`Snapshot`] of the routes the machine publishes,
//! work in preallocated buffers with headroom, and seal and open in place. On the wire it is
//! one Ethernet frame per datagram, as n2n.

mod checksum;
mod frame;
pub mod gro;
pub mod offload;
mod rx;
mod sealer;
mod tcp;
mod tx;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use arc_swap::ArcSwap;
use n2n_crypto::HeaderKey;
use n2n_proto::{Community, Mac};

pub use frame::gratuitous_arp;
pub use rx::{run_rx, run_rx_tcp};
pub use sealer::Sealer;
pub use tcp::TcpLink;
pub use tx::{run_tx, send_frame};

use crate::machine::PeerHint;

/// PACKET header without a socket.
pub const PACKET_HEADER: usize = 38;
/// Where a frame starts in a transmit buffer: room for the header and the transform prefix.
pub const FRAME_AT: usize = PACKET_HEADER + n2n_crypto::transform::PREFIX;
/// Largest frame handled (n2n's packet buffer).
pub const MAX_FRAME: usize = 2048;
/// A transmit or receive buffer: headroom, frame, transform suffix.
pub const BUF_LEN: usize = FRAME_AT + MAX_FRAME + n2n_crypto::transform::SUFFIX;

/// A frame device: the TAP, or an in-memory one in tests.
pub trait FrameIo: Send + Sync {
    fn recv(&self, buf: &mut [u8]) -> std::io::Result<usize>;
    fn send(&self, frame: &[u8]) -> std::io::Result<usize>;
    /// Whether reads and writes carry a virtio header (TAP offloads, see [`offload`]).
    fn vnet_hdr(&self) -> bool {
        false
    }
}

/// The process-wide header time-stamp generator (spec §4.2), shared by every sender.
pub use n2n_crypto::StampGenerator as SharedStamps;

/// A peer the data path may send to directly.
#[derive(Debug, Clone)]
pub struct Route {
    pub sock: SocketAddr,
    /// Last direct traffic from it (unix µs); shared with the machine.
    pub last_rx: Arc<AtomicU64>,
}

/// What the data path needs of the machine's state; replaced whole, never mutated.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Before the first registration every frame is dropped (spec §7.1 step 6).
    pub registered: bool,
    pub supernode: SocketAddr,
    pub peers: HashMap<Mac, Route>,
    pub own_ip: Option<Ipv4Addr>,
}

/// Fixed settings of the data path.
#[derive(Debug, Clone)]
pub struct DataConfig {
    pub community: Community,
    pub own_mac: Mac,
    pub transform: u8,
    pub compression: u8,
    pub header_key: Option<HeaderKey>,
    pub multicast: bool,
    pub routing: bool,
    /// Direct sending stops when a peer has been silent this long (register interval / 2).
    pub p2p_window_us: u64,
    /// User/password authentication: `header_key` is the static key (registrations and their
    /// answers, with a 16-byte trailer); everything else uses the dynamic key (spec §4.4).
    pub user_auth: bool,
    /// `-R` rules, checked both ways.
    pub filter: crate::filter::Rules,
}

/// How a received header opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    /// The header time stamp (`-H`).
    pub stamp: Option<u64>,
    /// Length of the datagram without a trailer.
    pub body: usize,
    /// User/password: opened by the static key over all but a 16-byte trailer; the H128 of
    /// the encrypted bytes before it, and the trailer.
    pub trailer: Option<([u8; 16], [u8; 16])>,
}

impl DataConfig {
    /// Opens a received datagram's header in place: with `-H` decrypts it (user/password: the
    /// dynamic key, else the static key over all but a trailer), else checks the plain
    /// header's version. `None`: drop it.
    pub fn open_header(
        &self,
        dynamic: Option<&HeaderKey>,
        data: &mut [u8],
        now_us: u64,
    ) -> Option<Opened> {
        let len = data.len();
        let whole = |stamp| Opened {
            stamp,
            body: len,
            trailer: None,
        };
        let Some(key) = &self.header_key else {
            return (data.len() >= 24 && data[0] == n2n_proto::PKT_VERSION).then(|| whole(None));
        };
        if !self.user_auth {
            let stamp = key.open(data, &self.community, now_us).ok()?;
            return Some(whole(Some(stamp)));
        }
        if let Some(d) = dynamic
            && let Ok(stamp) = d.open(data, &self.community, now_us)
        {
            return Some(whole(Some(stamp)));
        }
        let body = data.len().checked_sub(16)?;
        key.probe(&data[..body])?;
        let hash = n2n_crypto::pearson::pearson_hash_128(&data[..body]);
        let stamp = key.open(&mut data[..body], &self.community, now_us).ok()?;
        let mut trailer = [0u8; 16];
        trailer.copy_from_slice(&data[body..]);
        Some(Opened {
            stamp: Some(stamp),
            body,
            trailer: Some((hash, trailer)),
        })
    }
}

/// Packet counters for the management API.
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
    /// Last PACKET relayed by a supernode / received directly (unix µs), as n2n's
    /// `last_sup` (also refreshed by ACKs) and `last_p2p`.
    pub last_super_rx_us: AtomicU64,
    pub last_p2p_rx_us: AtomicU64,
    pub dropped: AtomicU64,
}

impl Counters {
    pub fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// Control-path events from the receive thread.
#[derive(Debug)]
pub enum Event {
    /// A non-PACKET datagram, header decrypted; `stamp` is its header time stamp (`-H`);
    /// `trailer` as in [`Opened`].
    Control {
        from: SocketAddr,
        data: Vec<u8>,
        stamp: Option<u64>,
        trailer: Option<([u8; 16], [u8; 16])>,
    },
    Hint(PeerHint),
    /// `-S2`: the TCP connection to the supernode is (re)established.
    LinkUp,
}

/// Everything the threads share.
pub struct Shared {
    pub cfg: DataConfig,
    pub snapshot: ArcSwap<Snapshot>,
    pub counters: Counters,
    pub stamps: Arc<SharedStamps>,
    pub sealer: Mutex<Sealer>,
    /// `-S2`: the TCP connection to the supernode.
    pub tcp: Option<TcpLink>,
    /// User/password: the dynamic header key the machine installed (receive side).
    pub dynamic_key: arc_swap::ArcSwapOption<HeaderKey>,
    /// Set once the TAP exists (auto mode creates it after the address is assigned).
    pub tap: OnceLock<Arc<dyn FrameIo>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Shared")
    }
}

/// Whose time stamps a header carries (spec §4.6): anything a supernode sent or relayed is
/// stamped by that supernode; the rest by the edge that sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StampSender {
    Supernode(SocketAddr),
    Peer(Mac),
}

impl StampSender {
    pub fn of(from_supernode: bool, from: SocketAddr, src_mac: Mac) -> Self {
        if from_supernode {
            StampSender::Supernode(from)
        } else {
            StampSender::Peer(src_mac)
        }
    }
}

/// Hints are sent at most this often per peer.
pub const HINT_INTERVAL_US: u64 = 1_000_000;

/// Per-thread rate limit of hints, bounded in size.
#[derive(Debug, Default)]
pub struct HintLimiter {
    last: HashMap<Mac, u64>,
}

impl HintLimiter {
    pub fn allow(&mut self, mac: Mac, now_us: u64) -> bool {
        if self.last.len() > 4096 {
            self.last.clear();
        }
        match self.last.get(&mac) {
            Some(&t) if now_us < t + HINT_INTERVAL_US => false,
            _ => {
                self.last.insert(mac, now_us);
                true
            }
        }
    }
}
