//! Peer table entries (spec §7.5): pending (being registered) and known (p2p confirmed).

use std::net::SocketAddr;

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
    /// The sockets our direct REGISTERs went to, newest last: only an ACK from one of them
    /// may confirm a path (so a forged ACK cannot point the path elsewhere).
    probed: Vec<SocketAddr>,
}

impl Pending {
    pub fn new(sock: Option<SocketAddr>, now_us: u64) -> Self {
        Pending {
            sock,
            last_seen_us: now_us,
            last_query_us: 0,
            last_register_us: 0,
            details: Details::default(),
            probed: Vec::new(),
        }
    }

    /// Notes a socket a direct REGISTER went to (at most [`MAX_PROBED`], oldest forgotten).
    pub fn probe(&mut self, to: SocketAddr) {
        if self.probed.contains(&to) {
            return;
        }
        if self.probed.len() >= MAX_PROBED {
            self.probed.remove(0);
        }
        self.probed.push(to);
    }

    pub fn probed(&self, from: &SocketAddr) -> bool {
        self.probed.contains(from)
    }
}

/// Sockets remembered per pending peer: the PEER_INFO and preferred sockets, relayed hints,
/// and a 16-port prediction burst.
pub const MAX_PROBED: usize = 24;

/// A peer reachable directly.
#[derive(Debug, Clone)]
pub struct Known {
    pub sock: SocketAddr,
    /// Last direct traffic from it (the data plane's hints tell it, about once a second).
    pub last_rx_us: u64,
    pub last_register_us: u64,
    /// The REGISTER cookie that confirmed `sock` (its rank: LAN beats NAT) and when.
    pub cookie: u32,
    pub confirmed_us: u64,
    pub details: Details,
    /// An authenticated packet (`-A6`/`-A7`) came from `sock`: only then is the path used.
    /// Always true under the other transforms (nothing can authenticate a path there).
    pub verified: bool,
    /// `-A6`/`-A7`: a socket a REGISTER_ACK named while `sock` was verified; it replaces
    /// `sock` once an authenticated packet comes from it.
    pub candidate: Option<SocketAddr>,
}

impl Known {
    pub fn new(sock: SocketAddr, cookie: u32, now_us: u64) -> Self {
        Known {
            sock,
            last_rx_us: now_us,
            last_register_us: now_us,
            cookie,
            confirmed_us: now_us,
            details: Details::default(),
            verified: true,
            candidate: None,
        }
    }

    pub fn touch(&mut self, now_us: u64) {
        self.last_rx_us = self.last_rx_us.max(now_us);
    }

    /// Heard from directly within `window_us`.
    pub fn fresh(&self, now_us: u64, window_us: u64) -> bool {
        now_us.saturating_sub(self.last_rx_us) < window_us
    }
}
