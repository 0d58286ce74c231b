//! What the control machine publishes to the data plane, and peer liveness.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use n2n_proto::Mac;

/// The control machine's decisions the data plane follows; sent whole when they change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    /// Before the first registration every frame is dropped (spec §7.1 step 6).
    pub registered: bool,
    pub supernode: Option<SocketAddr>,
    pub own_ip: Option<Ipv4Addr>,
    /// Peers with a confirmed direct path: MAC, socket, last direct traffic (monotonic µs).
    pub peers: Vec<(Mac, SocketAddr, u64)>,
}

impl View {
    /// What `m` has decided.
    pub fn of(m: &crate::machine::Edge) -> Self {
        View {
            registered: m.is_registered(),
            supernode: Some(m.supernode()),
            own_ip: m.dev_addr().map(|a| a.addr),
            peers: m.routes().collect(),
        }
    }
}

/// A peer the data plane may send to directly.
#[derive(Debug)]
pub(super) struct Route {
    pub sock: SocketAddr,
    /// Last direct traffic from it (monotonic µs), written by the receiving direction.
    pub last_rx: Arc<AtomicU64>,
}

/// The installed [`View`]; replaced whole, never mutated but for liveness.
#[derive(Debug, Default)]
pub(super) struct Routes {
    pub registered: bool,
    pub supernode: Option<SocketAddr>,
    pub own_ip: Option<Ipv4Addr>,
    pub peers: HashMap<Mac, Route>,
    /// One more than the snapshot it replaced: tells snapshots apart (the receive side
    /// remembers which one it refreshed a route in).
    pub generation: u64,
}

impl Routes {
    /// `view`, keeping the liveness the receiving direction recorded in `old`.
    pub fn from_view(view: View, old: &Routes) -> Self {
        let peers = view
            .peers
            .into_iter()
            .map(|(mac, sock, last_rx)| {
                let live = match old.peers.get(&mac) {
                    Some(r) => {
                        r.last_rx.fetch_max(last_rx, Ordering::Relaxed);
                        Arc::clone(&r.last_rx)
                    }
                    None => Arc::new(AtomicU64::new(last_rx)),
                };
                (
                    mac,
                    Route {
                        sock,
                        last_rx: live,
                    },
                )
            })
            .collect();
        Routes {
            registered: view.registered,
            supernode: view.supernode,
            own_ip: view.own_ip,
            peers,
            generation: old.generation.wrapping_add(1),
        }
    }

    /// The socket to send to `dst` directly: a confirmed path heard from within `window_us`.
    pub fn direct(&self, dst: &Mac, mono_us: u64, window_us: u64) -> Option<SocketAddr> {
        let r = self.peers.get(dst)?;
        (mono_us.saturating_sub(r.last_rx.load(Ordering::Relaxed)) < window_us).then_some(r.sock)
    }

    /// A PACKET came directly from `mac` at `from`: refreshes the route if it is that path.
    pub fn heard_directly(&self, mac: &Mac, from: SocketAddr, mono_us: u64) {
        if let Some(r) = self.peers.get(mac).filter(|r| r.sock == from) {
            max_relaxed(&r.last_rx, mono_us);
        }
    }
}

/// `fetch_max` that writes only when `v` is newer: most calls (one per datagram of a batch
/// that shares its `now`) then only read, and the cache line stays shared with the threads
/// that read it.
pub fn max_relaxed(c: &AtomicU64, v: u64) {
    if c.load(Ordering::Relaxed) < v {
        c.fetch_max(v, Ordering::Relaxed);
    }
}

/// Hints are given at most this often per peer and direction.
pub const HINT_INTERVAL_US: u64 = 1_000_000;
/// Peers whose last hint is remembered; the table is cleared when full.
const MAX_HINT_SLOTS: usize = 4096;

/// Rate limit of hints to the control machine, bounded in size.
#[derive(Debug, Default)]
pub struct HintLimiter {
    last: HashMap<Mac, u64>,
    /// The peer and time of the last call: asked again at the same time (the datagrams of
    /// one receive batch share it) the answer is no, without hashing the MAC again.
    asked: Option<(Mac, u64)>,
}

impl HintLimiter {
    pub fn allow(&mut self, mac: Mac, mono_us: u64) -> bool {
        if self.asked.replace((mac, mono_us)) == Some((mac, mono_us)) {
            return false;
        }
        if self.last.len() >= MAX_HINT_SLOTS {
            self.last.clear();
        }
        match self.last.get(&mac) {
            Some(&t) if mono_us < t + HINT_INTERVAL_US => false,
            _ => {
                self.last.insert(mac, mono_us);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_are_allowed_once_an_interval_per_peer_also_when_asked_again_at_once() {
        let (a, b) = (Mac([2, 0, 0, 0, 0, 1]), Mac([2, 0, 0, 0, 0, 2]));
        let t = 5_000_000;
        let mut limiter = HintLimiter::default();
        assert!(limiter.allow(a, t));
        // The same peer and time again (the next datagram of a batch): no.
        assert!(!limiter.allow(a, t));
        assert!(limiter.allow(b, t));
        assert!(!limiter.allow(a, t));
        assert!(!limiter.allow(a, t + HINT_INTERVAL_US - 1));
        assert!(limiter.allow(a, t + HINT_INTERVAL_US));
        assert!(!limiter.allow(a, t + HINT_INTERVAL_US));
        assert!(!limiter.allow(b, t + HINT_INTERVAL_US - 1));
        assert!(limiter.allow(b, t + HINT_INTERVAL_US));
    }

    #[test]
    fn max_relaxed_only_moves_forward() {
        let c = AtomicU64::new(10);
        max_relaxed(&c, 5);
        assert_eq!(c.load(Ordering::Relaxed), 10);
        max_relaxed(&c, 12);
        assert_eq!(c.load(Ordering::Relaxed), 12);
    }
}
