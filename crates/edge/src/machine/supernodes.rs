//! The edge's supernodes (spec §7.3, §7.4): the configured ones and those the federation
//! names in REGISTER_SUPER_ACKs, ranked by PINGs every 30 s; and the fast failover that goes
//! beyond n2n (docs/architecture.md): while traffic is relayed, silence from the supernode in
//! use is noticed within a second and the best other one takes over at once.

use std::net::SocketAddr;

use n2n_proto::msg::{PeerInfo, QueryPeer, UnregisterSuper};
use n2n_proto::{Flags, Mac, Message, SupernodeEntry, VersionString};
use tracing::{debug, info, warn};

use super::{Action, Edge, Selection};

/// Criterion of a supernode nothing is known of (lower is better; spec §7.4).
pub const CRITERION_DEFAULT: u64 = (u64::MAX >> 1) - 1;
/// Criterion of the supernode in use until its PONG says better.
pub const CRITERION_GOOD: u64 = (u64::MAX >> 1) - 2;
/// Criterion of a supernode that stopped answering.
pub const CRITERION_BAD: u64 = u64::MAX >> 1;
/// Most supernodes an edge keeps (configured plus learnt).
pub const MAX_SUPERNODES: usize = 32;
/// Supernodes are re-ranked and pinged this often (SWEEP_TIME).
pub const SWEEP_US: u64 = 30_000_000;
/// Start-up PING phase: how long to wait for the first PONG (BOOTSTRAP_TIMEOUT) …
const BOOTSTRAP_PING_US: u64 = 3_000_000;
/// … and, once one answered, for the others, so that load and MAC compare them all.
const BOOTSTRAP_SETTLE_US: u64 = 300_000;
/// PINGs per sweep: 15 in the first, then 5 (NUMBER_SN_PINGS_INITIAL / REGULAR).
const PINGS_FIRST: usize = 15;
const PINGS_REGULAR: usize = 5;
/// Relayed traffic within this window makes the edge watch its supernode closely.
pub const RELAY_ACTIVE_US: u64 = 3_000_000;
/// While watching: a PING when the supernode has been quiet this long …
pub const PROBE_US: u64 = 250_000;
/// … and a failover after this much silence and at least [`PROBES_BEFORE_FAILOVER`] PINGs.
pub const DEAD_US: u64 = 900_000;
const PROBES_BEFORE_FAILOVER: u32 = 3;
/// Relayed peers tracked for the failover watch.
const MAX_RELAYED_PEERS: usize = 16;

/// One supernode the edge knows.
#[derive(Debug, Clone)]
pub struct KnownSupernode {
    pub addr: SocketAddr,
    /// Learnt from its ACK or PONG.
    pub mac: Option<Mac>,
    /// Learnt from a REGISTER_SUPER_ACK rather than configured with `-l`.
    pub purgeable: bool,
    /// Lower is better (spec §7.4).
    pub criterion: u64,
    /// Last PONG or ACK from it (0: never).
    pub last_seen_us: u64,
    pub uptime: u32,
    pub version: VersionString,
    /// When our last PING to it left (for `--select-rtt`).
    ping_sent_us: u64,
}

impl KnownSupernode {
    pub fn new(addr: SocketAddr, purgeable: bool) -> Self {
        KnownSupernode {
            addr,
            mac: None,
            purgeable,
            criterion: CRITERION_DEFAULT,
            last_seen_us: 0,
            uptime: 0,
            version: VersionString::default(),
            ping_sent_us: 0,
        }
    }
}

/// Supernode selection and liveness state of the edge.
#[derive(Debug, Default)]
pub struct SupernodeWatch {
    /// In the start-up PING phase (more than one supernode): registration waits for it.
    pub bootstrap_until_us: Option<u64>,
    pub next_sweep_us: u64,
    pub sweeps: u64,
    /// Pending peers per supernode, added to loads (computed at each sweep).
    load_bias: u64,
    /// Last sign of life from the supernode in use.
    pub heard_us: u64,
    /// Peers whose frames went through the supernode lately (from the data path's hints, at
    /// most one per peer per second), with when; a peer leaves when its direct path is
    /// confirmed. Bounded: the oldest entry makes room.
    relayed: Vec<(Mac, u64)>,
    next_probe_us: u64,
    probes: u32,
}

impl SupernodeWatch {
    /// A peer's direct path is confirmed: its frames no longer need the supernode.
    pub fn peer_went_direct(&mut self, peer: &Mac) {
        self.relayed.retain(|(m, _)| m != peer);
    }
}

impl Edge {
    /// Starts the PING phase (spec §7.1 step 2) when there is a choice; else registers.
    pub(super) fn start_supernodes(&mut self, now_us: u64) {
        self.watch.next_sweep_us = now_us + SWEEP_US;
        self.watch.heard_us = now_us;
        // n2n skips the PING phase over TCP and with user/password (its PINGs could not be
        // read before the dynamic key is known).
        if self.sns.len() > 1 && !self.cfg.tcp && self.cfg.user.is_none() {
            self.watch.bootstrap_until_us = Some(now_us + BOOTSTRAP_PING_US);
            self.ping_supernodes(now_us, PINGS_FIRST);
        } else {
            if !self.cfg.tcp && self.cfg.user.is_none() {
                // n2n's first sweep runs at once: the supernode is PINGed right away, so
                // management shows its version, uptime and ranking from the start.
                self.watch.next_sweep_us = now_us;
            }
            self.register_super(now_us);
        }
    }

    /// Ends the PING phase: the best supernode becomes current and we register with it.
    fn finish_bootstrap(&mut self, now_us: u64) {
        self.watch.bootstrap_until_us = None;
        self.sn_index = self.best_supernode(None);
        info!(supernode = %self.supernode(), "supernode selected");
        self.watch.heard_us = now_us;
        self.actions.push_back(Action::RoutesChanged);
        self.register_super(now_us);
    }

    /// Index of the best supernode by criterion (the first on ties, as a stable sort),
    /// never `except`; the current one if there is no other.
    fn best_supernode(&self, except: Option<usize>) -> usize {
        self.sns
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != except)
            .min_by_key(|(_, s)| s.criterion)
            .map_or(self.sn_index, |(i, _)| i)
    }

    /// PINGs (QUERY_PEER with a null target) to at most `max` supernodes: the better half by
    /// criterion, then the rest from a random offset (spec §7.4).
    fn ping_supernodes(&mut self, now_us: u64, max: usize) {
        let mut order: Vec<usize> = (0..self.sns.len()).collect();
        order.sort_by_key(|&i| self.sns[i].criterion);
        let n = max.min(order.len());
        let first = n / 2;
        let rest = order.len() - first;
        let offset = if rest > n - first {
            self.rng.next_u64() as usize % rest
        } else {
            0
        };
        let picked: Vec<usize> = order[..first]
            .iter()
            .chain(order[first..].iter().cycle().skip(offset).take(n - first))
            .copied()
            .collect();
        for i in picked {
            self.ping(now_us, i);
        }
    }

    fn ping(&mut self, now_us: u64, i: usize) {
        self.sns[i].ping_sent_us = now_us;
        let msg = Message::QueryPeer(QueryPeer {
            src_mac: self.cfg.mac,
            target_mac: Mac::NULL,
            aflags: 0,
        });
        let to = self.sns[i].addr;
        self.emit(to, Flags::EMPTY, msg, now_us);
    }

    /// A PONG: the supernode lives; rank it (spec §7.4).
    pub(super) fn on_pong(&mut self, now_us: u64, from: SocketAddr, p: &PeerInfo) {
        let Some(i) = self.sns.iter().position(|s| s.addr == from) else {
            return;
        };
        // During the start-up phase nothing is current yet.
        let current = i == self.sn_index && self.watch.bootstrap_until_us.is_none();
        let stickiness = (self.known.len() + self.pending.len()) as u64;
        let bias = self.watch.load_bias;
        let s = &mut self.sns[i];
        s.mac = Some(p.src_mac);
        s.last_seen_us = now_us;
        s.uptime = p.uptime;
        s.version = p.version;
        s.criterion = match self.cfg.selection {
            // C supernodes and edges byte-swap the load (spec §7.4 quirk); so do we.
            Selection::Load => {
                let load = u64::from(p.load.swap_bytes()) + bias;
                if current {
                    load * stickiness / (stickiness + 1)
                } else {
                    load
                }
            }
            Selection::Rtt => now_us.saturating_sub(s.ping_sent_us) / 1000,
            Selection::Mac => mac_criterion(&p.src_mac),
        };
        if current {
            self.heard_from_supernode(now_us);
        }
        if let Some(until) = self.watch.bootstrap_until_us {
            let all = self.sns.iter().all(|s| s.last_seen_us != 0);
            if all || self.cfg.selection == Selection::Rtt {
                self.finish_bootstrap(now_us);
            } else {
                self.watch.bootstrap_until_us = Some(until.min(now_us + BOOTSTRAP_SETTLE_US));
            }
        }
    }

    /// Any answer from the supernode in use.
    pub(super) fn heard_from_supernode(&mut self, now_us: u64) {
        self.watch.heard_us = now_us;
        self.watch.probes = 0;
    }

    /// Adds the supernodes a REGISTER_SUPER_ACK names (spec §7.3), up to [`MAX_SUPERNODES`].
    pub(super) fn learn_supernodes(&mut self, entries: &[SupernodeEntry]) {
        for e in entries {
            let Some(v4) = e.socket_v4() else { continue };
            let ip = v4.ip();
            if v4.port() == 0 || ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast() {
                continue;
            }
            let addr = SocketAddr::V4(v4);
            let known = self
                .sns
                .iter()
                .any(|s| s.addr == addr || (!e.mac.is_null() && s.mac == Some(e.mac)));
            if known || self.sns.len() >= MAX_SUPERNODES {
                continue;
            }
            let mut s = KnownSupernode::new(addr, true);
            s.mac = (!e.mac.is_null()).then_some(e.mac);
            info!(supernode = %addr, "learnt a supernode of the federation");
            self.sns.push(s);
        }
    }

    /// The data path relayed a frame to or from `peer`: watch the supernode closely.
    pub(super) fn note_relayed(&mut self, now_us: u64, peer: Mac) {
        if self.sns.len() < 2 {
            // Nowhere to move to: nothing to watch for.
            return;
        }
        if !self.relaying(now_us) {
            // Relaying (re)starts: the supernode's silence so far says nothing yet.
            self.watch.heard_us = self.watch.heard_us.max(now_us.saturating_sub(PROBE_US));
            self.watch.probes = 0;
        }
        let relayed = &mut self.watch.relayed;
        if let Some(entry) = relayed.iter_mut().find(|(m, _)| *m == peer) {
            entry.1 = now_us;
        } else if relayed.len() < MAX_RELAYED_PEERS {
            relayed.push((peer, now_us));
        } else if let Some(oldest) = relayed.iter_mut().min_by_key(|(_, t)| *t) {
            *oldest = (peer, now_us);
        }
    }

    /// Relayed traffic flows and there is another supernode to move to.
    fn relaying(&self, now_us: u64) -> bool {
        self.sns.len() > 1
            && self
                .watch
                .relayed
                .iter()
                .any(|(_, t)| now_us < t + RELAY_ACTIVE_US)
    }

    /// The next time the supernode timers need to run.
    pub(super) fn supernode_deadline(&self) -> u64 {
        let mut t = self.watch.next_sweep_us;
        if let Some(b) = self.watch.bootstrap_until_us {
            t = t.min(b);
        }
        if let Some(last) = self.watch.relayed.iter().map(|(_, t)| *t).max() {
            // The next probe, or the end of the window (when the timers clear it).
            let probe = self.watch.next_probe_us.max(self.watch.heard_us + PROBE_US);
            t = t.min(probe.min(last + RELAY_ACTIVE_US));
        }
        t
    }

    /// Supernode timers; `true` while the start-up PING phase holds registration back.
    pub(super) fn supernode_timers(&mut self, now_us: u64) -> bool {
        if let Some(until) = self.watch.bootstrap_until_us {
            if now_us < until {
                return true;
            }
            if self.sns.iter().all(|s| s.last_seen_us == 0) {
                warn!("no supernode answered the start-up PINGs; trying them in order");
            }
            self.finish_bootstrap(now_us);
        }
        self.watch
            .relayed
            .retain(|(_, t)| now_us < t + RELAY_ACTIVE_US);
        if self.relaying(now_us) {
            self.watch_closely(now_us);
        }
        if now_us >= self.watch.next_sweep_us {
            self.sweep(now_us);
        }
        false
    }

    /// Beyond n2n: while relaying, PING a quiet supernode every 250 ms; after ~1 s of silence
    /// move relaying and registration to the best other supernode.
    fn watch_closely(&mut self, now_us: u64) {
        let quiet = now_us.saturating_sub(self.watch.heard_us);
        if quiet >= DEAD_US && self.watch.probes >= PROBES_BEFORE_FAILOVER && self.sns.len() > 1 {
            let dead = self.sn_index;
            self.sns[dead].criterion = CRITERION_BAD;
            let next = self.best_supernode(Some(dead));
            warn!(from = %self.sns[dead].addr, to = %self.sns[next].addr, silent_ms = quiet / 1000,
                "the supernode stopped answering; moving to the next one");
            self.switch_to(now_us, next);
            return;
        }
        if quiet >= PROBE_US && now_us >= self.watch.next_probe_us {
            self.watch.probes += 1;
            self.watch.next_probe_us = now_us + PROBE_US;
            let i = self.sn_index;
            self.ping(now_us, i);
        }
    }

    /// Makes supernode `i` current: the data path relays through it at once, and we register.
    pub(super) fn switch_to(&mut self, now_us: u64, i: usize) {
        self.sn_index = i;
        self.attempts = super::SUP_ATTEMPTS;
        self.confirm_socket = true;
        self.watch.heard_us = now_us;
        self.watch.probes = 0;
        self.watch.next_probe_us = now_us + PROBE_US;
        self.actions.push_back(Action::RoutesChanged);
        self.register_super(now_us);
    }

    /// The registration to the current supernode went unanswered: the next best one.
    pub(super) fn next_supernode(&mut self, now_us: u64) {
        if self.sns.len() < 2 {
            return;
        }
        let cur = self.sn_index;
        self.sns[cur].criterion = CRITERION_BAD;
        let next = self.best_supernode(Some(cur));
        warn!(from = %self.sns[cur].addr, to = %self.sns[next].addr, "no answer from the supernode; trying the next one");
        self.sn_index = next;
        self.confirm_socket = true;
        self.watch.heard_us = now_us;
        self.actions.push_back(Action::RoutesChanged);
    }

    /// Every 30 s (spec §7.4): switch if another supernode ranks better, reset the ranking,
    /// and PING a few supernodes to rank them again.
    fn sweep(&mut self, now_us: u64) {
        self.watch.next_sweep_us = now_us + SWEEP_US;
        if !self.sn_wait {
            let best = self.best_supernode(None);
            if best != self.sn_index && self.sns[best].criterion < self.sns[self.sn_index].criterion
            {
                info!(from = %self.supernode(), to = %self.sns[best].addr, "a better supernode: switching");
                let msg = Message::UnregisterSuper(UnregisterSuper {
                    auth: self.auth(),
                    src_mac: self.cfg.mac,
                });
                self.emit(self.supernode(), Flags::EMPTY, msg, now_us);
                self.switch_to(now_us, best);
            }
        }
        let cur = self.sn_index;
        for (i, s) in self.sns.iter_mut().enumerate() {
            s.criterion = if i == cur {
                CRITERION_GOOD
            } else {
                CRITERION_DEFAULT
            };
        }
        let mult = if self.cfg.header_key.is_some() { 2 } else { 1 };
        self.watch.load_bias = (self.pending.len() as u64 * mult) / self.sns.len().max(1) as u64;
        let max = if self.watch.sweeps == 0 {
            PINGS_FIRST
        } else {
            PINGS_REGULAR
        };
        self.watch.sweeps += 1;
        if !self.cfg.tcp {
            // n2n does not PING over TCP.
            self.ping_supernodes(now_us, max);
        }
        debug!(supernodes = self.sns.len(), "supernode sweep");
    }
}

/// `--select-mac`: the MAC as a 48-bit big-endian number.
fn mac_criterion(mac: &Mac) -> u64 {
    mac.0.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
}
