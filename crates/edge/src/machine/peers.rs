//! Peer table entries (spec §7.5): pending (being registered) and known (p2p confirmed).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use n2n_proto::{Desc, IpSubnet};

/// What a peer's REGISTERs say of it (for the management API).
#[derive(Debug, Clone, Copy, Default)]
pub struct Details {
    pub dev_addr: Option<IpSubnet>,
    pub desc: Desc,
}

/// A peer being registered.
#[derive(Debug, Clone)]
pub struct Pending {
    /// Its public socket, once known (PEER_INFO or a relayed REGISTER/PACKET).
    pub sock: Option<SocketAddr>,
    pub last_seen_us: u64,
    /// Last QUERY_PEER + forwarded REGISTER (0 = never).
    pub last_query_us: u64,
    /// Last direct REGISTER towards it (0 = never).
    pub last_register_us: u64,
    pub details: Details,
}

impl Pending {
    pub fn new(sock: Option<SocketAddr>, now_us: u64) -> Self {
        Pending {
            sock,
            last_seen_us: now_us,
            last_query_us: 0,
            last_register_us: 0,
            details: Details::default(),
        }
    }
}

/// A peer reachable directly.
#[derive(Debug, Clone)]
pub struct Known {
    pub sock: SocketAddr,
    /// Last direct traffic from it; the receive thread updates it without locking.
    last_rx: Arc<AtomicU64>,
    pub last_register_us: u64,
    /// The REGISTER cookie that confirmed `sock` (its rank: LAN beats NAT) and when.
    pub cookie: u32,
    pub confirmed_us: u64,
    pub details: Details,
}

impl Known {
    pub fn new(sock: SocketAddr, cookie: u32, now_us: u64) -> Self {
        Known {
            sock,
            last_rx: Arc::new(AtomicU64::new(now_us)),
            last_register_us: now_us,
            cookie,
            confirmed_us: now_us,
            details: Details::default(),
        }
    }

    pub fn touch(&self, now_us: u64) {
        self.last_rx.fetch_max(now_us, Ordering::Relaxed);
    }

    pub fn last_rx(&self) -> u64 {
        self.last_rx.load(Ordering::Relaxed)
    }

    /// Heard from directly within `window_us`.
    pub fn fresh(&self, now_us: u64, window_us: u64) -> bool {
        now_us.saturating_sub(self.last_rx()) < window_us
    }

    pub fn last_rx_handle(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.last_rx)
    }
}
