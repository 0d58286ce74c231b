//! The edge's protocol state machine (spec §7.1–7.7): supernode registration and fail-over,
//! peer discovery and hole punching. No sockets, no clock, no OS randomness: the shell passes
//! in control messages (opened and stamp-checked by the Tunnel), hints from the data plane and
//! the monotonic time, and performs the [`Action`]s it queues. The wall clock enters only as
//! an offset for the `-H` stamps of what it sends ([`Edge::set_wall_clock`]).

mod peers;
mod refusal;
mod selection;
mod supernodes;
mod user_auth;

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use n2n_crypto::{HeaderKey, RandomSource, StampGenerator};
use n2n_proto::msg::*;
use n2n_proto::{
    Auth, Community, Datagram, Desc, Flags, IpSubnet, Mac, Message, Sock, auth_scheme,
};
use tracing::{debug, info, warn};

pub use peers::{Details, Known, Pending};
pub use refusal::Refusal;
pub use selection::Selection;
pub use supernodes::{KnownSupernode, SupernodeWatch};
pub use user_auth::UserCredentials;

use crate::events::peer_action;

/// Most pending and most known peers: hostile traffic must not grow the tables without bound.
pub const MAX_PEERS: usize = 4096;

/// RE_REGISTER_SUPER is obeyed at most this soon after our last registration.
const RE_REGISTER_MIN_US: u64 = 1_000_000;
/// Attempts before switching to the next supernode (N2N_EDGE_SUP_ATTEMPTS).
const SUP_ATTEMPTS: u32 = 3;
/// Peers and pending registrations expire after this long (REGISTRATION_TIMEOUT).
const PEER_TIMEOUT_US: u64 = 60_000_000;
/// How often expired peers are purged.
const PURGE_US: u64 = 30_000_000;
/// Known peers without direct traffic for this long get a keep-alive REGISTER.
const KEEPALIVE_US: u64 = 5_000_000;
/// Address request wait before trying the next supernode (BOOTSTRAP_TIMEOUT).
const BOOTSTRAP_TIMEOUT_US: u64 = 3_000_000;
/// A confirmed path is kept this long against lower-ranked ones (REGISTRATION_TIMEOUT / 4).
const PATH_HOLD_US: u64 = 15_000_000;
/// n2n's LAN discovery group (spec §7.6).
pub const LAN_GROUP: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    Ipv4Addr::new(224, 0, 0, 68),
    1968,
));

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send a datagram (already header-encrypted when `-H`).
    Transmit { dst: SocketAddr, data: Vec<u8> },
    /// Send a datagram with this IP TTL (`-L` port-prediction bursts).
    TransmitTtl {
        dst: SocketAddr,
        data: Vec<u8>,
        ttl: u8,
    },
    /// The set of peer-to-peer peers, the supernode or the registration state changed:
    /// send the data plane a new view (`tunnel::View::of`).
    RoutesChanged,
    /// The supernode assigned our address (auto mode): create the TAP with it.
    AddressAssigned(IpSubnet),
    /// First registration: send the two gratuitous ARPs.
    GratuitousArp,
    /// User/password: the dynamic header key for PACKETs and everything but registrations.
    HeaderKey(DynamicKey),
    /// `-A6`/`-A7`: send `to` an authenticated PACKET with an empty frame (a path probe), so
    /// that the peer there can verify the path by it.
    Probe { mac: Mac, to: SocketAddr },
    /// A management `peer` event (see [`crate::events::peer_action`]).
    PeerEvent {
        action: u8,
        mac: Mac,
        sock: SocketAddr,
    },
}

/// A user/password community's 16-byte dynamic key (spec §7.10); never printed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DynamicKey(pub [u8; 16]);

impl std::fmt::Debug for DynamicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DynamicKey(..)")
    }
}

impl DynamicKey {
    pub fn header_key(&self) -> HeaderKey {
        HeaderKey::for_dynamic_key(&self.0)
    }
}

/// A hint from the data path about a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerHint {
    /// We sent a unicast frame to `mac` via the supernode: look it up (spec §7.5 step 2).
    Need(Mac),
    /// PACKETs come directly from `mac` at `from` (at most one hint a second per peer).
    Direct { mac: Mac, from: SocketAddr },
    /// A PACKET relayed by the supernode says `mac` is at `sock`; `unicast` when it was
    /// addressed to us (broadcasts say nothing of our relayed traffic).
    Relayed {
        mac: Mac,
        sock: SocketAddr,
        unicast: bool,
    },
}

/// What the machine needs of the configuration.
#[derive(Debug, Clone)]
pub struct EdgeMachineConfig {
    pub community: Community,
    pub mac: Mac,
    pub desc: Desc,
    /// `None` until the supernode assigned one (auto mode).
    pub dev_addr: Option<IpSubnet>,
    pub supernodes: Vec<SocketAddr>,
    pub register_interval_us: u64,
    pub p2p: bool,
    pub header_key: Option<HeaderKey>,
    pub preferred: Option<Sock>,
    /// REGISTERs to and from the LAN multicast group (p2p on and no `-e`).
    pub lan_discovery: bool,
    /// `-L`: 0 one direct REGISTER when a peer is learnt via the supernode; 1 none; n > 1
    /// sixteen REGISTERs with IP TTL n to the next ports (NAT port prediction).
    pub register_ttl: u8,
    /// How supernodes are ranked (spec §7.4).
    pub selection: Selection,
    /// `-J`: user/password authentication (then `header_key` is the static key).
    pub user: Option<UserCredentials>,
    /// `-S2`: the supernode is reached over TCP only (no PINGs to rank supernodes).
    pub tcp: bool,
    /// `-A6`/`-A7`: a direct path is used only once an authenticated packet came from it
    /// (REGISTER_ACKs are not authenticated).
    pub authenticated_paths: bool,
}

impl EdgeMachineConfig {
    /// n2n's defaults for the rest: no address yet, no description, registration every 20 s,
    /// peer-to-peer on, no `-H`, no LAN discovery, `-L 0`, selection by load, no user, UDP.
    pub fn new(community: Community, mac: Mac, supernodes: Vec<SocketAddr>) -> Self {
        EdgeMachineConfig {
            community,
            mac,
            desc: Desc::default(),
            dev_addr: None,
            supernodes,
            register_interval_us: 20_000_000,
            p2p: true,
            header_key: None,
            preferred: None,
            lan_discovery: false,
            register_ttl: 0,
            selection: Selection::default(),
            user: None,
            tcp: false,
            authenticated_paths: false,
        }
    }
}

/// Counters for the management API.
#[derive(Debug, Default, Clone)]
pub struct EdgeStats {
    pub super_tx: u64,
    pub super_rx: u64,
    pub last_super_us: u64,
    pub last_p2p_us: u64,
    pub naks: u64,
    /// Control messages refused, by [`Refusal::index`].
    pub refused: [u64; Refusal::ALL.len()],
}

/// The edge machine.
pub struct Edge {
    cfg: EdgeMachineConfig,
    token: [u8; 16],
    rng: Box<dyn RandomSource + Send>,
    stamp_gen: Arc<StampGenerator>,
    /// Wall clock minus monotonic clock (µs), for the `-H` stamps of what we send.
    wall_offset_us: i64,
    actions: VecDeque<Action>,
    /// Configured and learnt supernodes; `sn_index` is the one in use.
    sns: Vec<KnownSupernode>,
    sn_index: usize,
    watch: SupernodeWatch,
    sn_wait: bool,
    attempts: u32,
    sn_cookie: u32,
    /// Where our supernode's last accepted ACK came from (a multi-homed supernode may answer
    /// from another address than the one we send to).
    sn_answered_from: Option<SocketAddr>,
    last_sn_request_us: u64,
    /// The supernode may not know our socket yet (we start, switch, or went unanswered):
    /// register once more as soon as it answers, so that it sees our socket receives its
    /// answers and sends us broadcasts (it fans out only to proven sockets).
    confirm_socket: bool,
    /// The registration we wait for is that confirmation.
    confirming: bool,
    registered: bool,
    sn_mac: Option<Mac>,
    pending: std::collections::HashMap<Mac, Pending>,
    known: std::collections::HashMap<Mac, Known>,
    /// `-A6`/`-A7`: the socket each peer's last authenticated direct packet came from.
    vouched: std::collections::HashMap<Mac, SocketAddr>,
    next_purge_us: u64,
    start_us: u64,
    stats: EdgeStats,
    /// User/password: the dynamic header key (random until the supernode hands it over) and
    /// the challenge of the last REGISTER_SUPER.
    dynamic_key: Option<Box<HeaderKey>>,
    challenge: [u8; 16],
}

impl std::fmt::Debug for Edge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Edge {{ mac: {}, known: {}, pending: {} }}",
            self.cfg.mac,
            self.known.len(),
            self.pending.len()
        )
    }
}

impl Edge {
    /// An edge whose clocks agree (tests and the simulator).
    pub fn new(
        cfg: EdgeMachineConfig,
        rng: Box<dyn RandomSource + Send>,
        stamps: Arc<StampGenerator>,
        now_us: u64,
    ) -> Self {
        Self::with_wall_clock(cfg, rng, stamps, now_us, now_us)
    }

    /// Starts at monotonic time `now_us`, when the wall clock says `wall_us`: the first
    /// registration and PINGs go out from here, already stamped (`-H`) with the wall clock.
    pub fn with_wall_clock(
        cfg: EdgeMachineConfig,
        mut rng: Box<dyn RandomSource + Send>,
        stamps: Arc<StampGenerator>,
        now_us: u64,
        wall_us: u64,
    ) -> Self {
        let mut token = [0u8; 16];
        rng.fill(&mut token);
        let mut sns: Vec<KnownSupernode> = Vec::new();
        for a in &cfg.supernodes {
            if sns.iter().any(|s| s.addr == *a) {
                warn!(supernode = %a, "ignoring -l: supernode listed twice");
            } else if sns.len() == supernodes::MAX_SUPERNODES {
                warn!(supernode = %a, "ignoring -l: at most 32 supernodes");
            } else {
                sns.push(KnownSupernode::new(*a, false));
            }
        }
        let mut e = Edge {
            cfg,
            token,
            rng,
            stamp_gen: stamps,
            wall_offset_us: wall_us.wrapping_sub(now_us) as i64,
            actions: VecDeque::new(),
            sns,
            sn_index: 0,
            watch: SupernodeWatch::default(),
            sn_wait: false,
            confirm_socket: true,
            confirming: false,
            attempts: SUP_ATTEMPTS,
            sn_cookie: 0,
            sn_answered_from: None,
            last_sn_request_us: 0,
            registered: false,
            sn_mac: None,
            pending: Default::default(),
            known: Default::default(),
            vouched: Default::default(),
            next_purge_us: now_us + PURGE_US,
            start_us: now_us,
            stats: EdgeStats::default(),
            dynamic_key: None,
            challenge: [0; 16],
        };
        if e.cfg.user.is_some() {
            // A random key until the supernode hands over the real one, so nothing is
            // understood before authentication (as n2n).
            let mut k = [0u8; 16];
            e.rng.fill(&mut k);
            let key = DynamicKey(k);
            e.actions.push_back(Action::HeaderKey(key));
            e.dynamic_key = Some(Box::new(key.header_key()));
        }
        e.start_supernodes(now_us);
        e
    }

    /// The wall clock at monotonic time `mono_us` (the shell tells it before each call; tests
    /// leave both clocks equal). Only the `-H` stamps of what the machine sends use it.
    pub fn set_wall_clock(&mut self, mono_us: u64, wall_us: u64) {
        self.wall_offset_us = wall_us.wrapping_sub(mono_us) as i64;
    }

    /// The wall-clock time of monotonic time `mono_us` (management API times).
    pub fn wall_time(&self, mono_us: u64) -> u64 {
        mono_us.wrapping_add_signed(self.wall_offset_us)
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    pub fn is_registered(&self) -> bool {
        self.registered
    }

    /// The supernode in use.
    pub fn supernode(&self) -> SocketAddr {
        self.sns[self.sn_index].addr
    }

    /// Every supernode known, configured ones first.
    pub fn supernodes(&self) -> &[KnownSupernode] {
        &self.sns
    }

    pub fn selection(&self) -> Selection {
        self.cfg.selection
    }

    pub fn sn_mac(&self) -> Option<Mac> {
        self.sn_mac
    }

    pub fn waiting_for_supernode(&self) -> bool {
        self.sn_wait
    }

    pub fn dev_addr(&self) -> Option<IpSubnet> {
        self.cfg.dev_addr
    }

    /// `-S2`: a new TCP connection to the supernode; the old one took our registration with
    /// it, so register at once.
    pub fn link_up(&mut self, now_us: u64) {
        self.register_super(now_us);
    }

    /// `-a dhcp:`: the TAP's address changed; tell the supernode now and re-publish.
    pub fn set_dev_addr(&mut self, now_us: u64, addr: IpSubnet) {
        if self.cfg.dev_addr == Some(addr) {
            return;
        }
        info!(address = %addr, "the interface address changed");
        self.cfg.dev_addr = Some(addr);
        self.actions.push_back(Action::RoutesChanged);
        self.register_super(now_us);
    }

    pub fn mac(&self) -> Mac {
        self.cfg.mac
    }

    pub fn community(&self) -> &Community {
        &self.cfg.community
    }

    /// The peers reached directly (under `-A6`/`-A7`, once their path is verified).
    pub fn known(&self) -> impl Iterator<Item = (&Mac, &Known)> {
        self.known.iter().filter(|(_, k)| k.verified)
    }

    /// `-A6`/`-A7`: peers whose path answered but is not verified yet (still relayed).
    pub fn verifying(&self) -> impl Iterator<Item = (&Mac, &Known)> {
        self.known.iter().filter(|(_, k)| !k.verified)
    }

    pub fn pending(&self) -> impl Iterator<Item = (&Mac, &Pending)> {
        self.pending.iter()
    }

    pub fn stats(&self) -> &EdgeStats {
        &self.stats
    }

    pub fn start_us(&self) -> u64 {
        self.start_us
    }

    /// When [`Edge::handle_timeout`] wants to run next.
    pub fn poll_timeout(&self) -> u64 {
        let interval = self.cfg.register_interval_us;
        let sn = if self.sn_wait {
            let retry = if self.cfg.dev_addr.is_none() {
                BOOTSTRAP_TIMEOUT_US
            } else {
                interval / 10
            };
            self.last_sn_request_us + retry.max(100_000)
        } else {
            self.last_sn_request_us + interval
        };
        let sn = if self.watch.bootstrap_until_us.is_some() {
            u64::MAX
        } else {
            sn
        };
        sn.min(self.next_purge_us)
            .min(self.next_keepalive_us())
            .min(self.supernode_deadline())
    }

    fn next_keepalive_us(&self) -> u64 {
        self.known
            .values()
            .map(|k| k.last_register_us + KEEPALIVE_US)
            .min()
            .unwrap_or(u64::MAX)
    }

    /// Builds, header-encrypts and queues a datagram.
    fn emit(&mut self, dst: SocketAddr, flags: Flags, msg: Message, now_us: u64) {
        let data = self.encode(flags, msg, now_us);
        self.actions.push_back(Action::Transmit { dst, data });
    }

    /// With user/password, REGISTER_SUPER goes under the static key with the user's trailer,
    /// everything else under the dynamic key (spec §4.5, §4.7).
    fn encode(&mut self, flags: Flags, msg: Message, now_us: u64) -> Vec<u8> {
        let registration = matches!(msg, Message::RegisterSuper(_));
        let d = Datagram::new(self.cfg.community, flags, msg);
        let mut data = d.to_vec();
        let key = match (&self.dynamic_key, registration) {
            (Some(dynamic), false) => Some(&**dynamic),
            _ => self.cfg.header_key.as_ref(),
        };
        if let Some(key) = key {
            let n = data.len();
            let r = self.rng.next_u64() as u32;
            let wall_us = self.wall_time(now_us);
            key.encrypt(&mut data, n, self.stamp_gen.next(wall_us), r);
        }
        if registration && let Some(user) = &self.cfg.user {
            let t = user.trailer(&data);
            data.extend_from_slice(&t);
        }
        data
    }

    fn auth(&self) -> Auth {
        match &self.cfg.user {
            Some(user) => user.token(&self.challenge),
            None => Auth::new(auth_scheme::SIMPLE_ID, &self.token).unwrap_or(Auth::NONE),
        }
    }

    /// Sends REGISTER_SUPER (the address request while no address is known; spec §7.1).
    fn register_super(&mut self, now_us: u64) {
        self.sn_cookie = self.rng.next_u64() as u32;
        if self.cfg.user.is_some() {
            // A fresh challenge each time (spec §7.10 step 2).
            self.rng.fill(&mut self.challenge);
        }
        self.last_sn_request_us = now_us;
        self.sn_wait = true;
        let (mac, dev_addr) = match self.cfg.dev_addr {
            Some(a) => (self.cfg.mac, a),
            None => (Mac::NULL, IpSubnet::UNSPECIFIED),
        };
        let msg = Message::RegisterSuper(RegisterSuper {
            cookie: self.sn_cookie,
            edge_mac: mac,
            sock: self.cfg.preferred,
            dev_addr,
            desc: self.cfg.desc,
            auth: self.auth(),
            key_time: 0,
        });
        self.stats.super_tx += 1;
        self.emit(self.supernode(), Flags::EMPTY, msg, now_us);
        self.announce_on_lan(now_us);
    }

    /// Timers: registration and retries, supernode fail-over, keep-alives, expiry.
    pub fn handle_timeout(&mut self, now_us: u64) {
        let interval = self.cfg.register_interval_us;
        if self.supernode_timers(now_us) {
            return;
        }
        if self.sn_wait {
            let retry = if self.cfg.dev_addr.is_none() {
                BOOTSTRAP_TIMEOUT_US
            } else {
                interval / 10
            };
            if now_us >= self.last_sn_request_us + retry.max(100_000) {
                self.attempts = self.attempts.saturating_sub(1);
                // Unanswered: it may have lost us (restarted); not when only the
                // confirmation went unanswered.
                self.confirm_socket |= !self.confirming;
                if self.attempts == 0 || self.cfg.dev_addr.is_none() {
                    self.attempts = SUP_ATTEMPTS;
                    self.next_supernode(now_us);
                }
                self.register_super(now_us);
            }
        } else if now_us >= self.last_sn_request_us + interval {
            self.register_super(now_us);
        }
        self.keepalive(now_us);
        if now_us >= self.next_purge_us {
            self.next_purge_us = now_us + PURGE_US;
            self.purge(now_us);
        }
    }

    fn purge(&mut self, now_us: u64) {
        let before = (self.pending.len(), self.known.len());
        self.pending
            .retain(|_, p| now_us.saturating_sub(p.last_seen_us) < PEER_TIMEOUT_US);
        self.vouched.clear();
        if !self.sn_wait {
            let actions = &mut self.actions;
            self.known.retain(|mac, k| {
                let keep = now_us.saturating_sub(k.last_rx_us) < PEER_TIMEOUT_US;
                if !keep {
                    actions.push_back(Action::PeerEvent {
                        action: peer_action::PURGE,
                        mac: *mac,
                        sock: k.sock,
                    });
                }
                keep
            });
        }
        if before.1 != self.known.len() {
            self.actions.push_back(Action::RoutesChanged);
        }
        if before != (self.pending.len(), self.known.len()) {
            debug!(
                pending = self.pending.len(),
                known = self.known.len(),
                "purged peers"
            );
        }
    }

    /// Sends UNREGISTER_SUPER to the current supernode (on exit).
    pub fn shutdown(&mut self, now_us: u64) {
        let msg = Message::UnregisterSuper(UnregisterSuper {
            auth: self.auth(),
            src_mac: self.cfg.mac,
        });
        self.emit(self.supernode(), Flags::EMPTY, msg, now_us);
    }

    /// A control datagram, header already opened, time stamp checked (the Tunnel's one
    /// replay table) and decoded.
    pub fn handle_control(&mut self, now_us: u64, from: SocketAddr, d: Datagram) {
        let _counted = self.handle_datagram(now_us, from, d, None);
    }

    /// Acts on a control datagram the Tunnel opened and decoded (`trailer`: for a header the
    /// static key opened over all but a 16-byte trailer (user/password), the hash of the
    /// encrypted bytes and the trailer). A refusal is counted and says why.
    pub fn handle_datagram(
        &mut self,
        now_us: u64,
        from: SocketAddr,
        d: Datagram,
        trailer: Option<([u8; 16], [u8; 16])>,
    ) -> Result<(), Refusal> {
        let r = self.control(now_us, from, d, trailer);
        if let Err(reason) = r {
            self.stats.refused[reason.index()] += 1;
            debug!(%from, %reason, "refused a control message");
        }
        r
    }

    fn control(
        &mut self,
        now_us: u64,
        from: SocketAddr,
        d: Datagram,
        trailer: Option<([u8; 16], [u8; 16])>,
    ) -> Result<(), Refusal> {
        if d.community.as_bytes() != self.cfg.community.as_bytes() {
            return Err(Refusal::ForeignCommunity);
        }
        if let Some(user) = &self.cfg.user {
            // Only the supernode's answers come under the static key, the ACK with our
            // user's trailer (spec §4.4, §4.7).
            let ok = match (&d.msg, trailer) {
                (Message::RegisterSuperAck(_), Some((hash, t))) => user.trailer_matches(&hash, &t),
                (Message::RegisterSuperNak(_), Some(_)) => true,
                (Message::RegisterSuperAck(_) | Message::RegisterSuperNak(_), None) => false,
                (_, t) => t.is_none(),
            };
            if !ok {
                return Err(Refusal::WrongKey);
            }
        }
        let from_sn = d.flags.contains(Flags::FROM_SUPERNODE);
        match d.msg {
            Message::RegisterSuperAck(ack) => return self.on_ack(now_us, from, ack),
            Message::RegisterSuperNak(nak) if self.sn_wait && nak.cookie == self.sn_cookie => {
                self.stats.naks += 1;
                if nak.src_mac == self.cfg.mac {
                    if self.cfg.user.is_some() {
                        warn!("the supernode refused us: username or password not recognized");
                    } else {
                        warn!("the supernode refused us: MAC or IP address already in use");
                    }
                }
            }
            Message::ReRegisterSuper
                if from_sn
                    && self.cfg.user.is_some()
                    && from == self.supernode()
                    && now_us >= self.last_sn_request_us + RE_REGISTER_MIN_US =>
            {
                // The supernode's keys change: register again now (spec §7.3); at most once a
                // second, so a stream of them cannot keep every ACK stale.
                debug!("the supernode asks us to register again");
                self.register_super(now_us);
            }
            // What the supernode says of peers counts only from the supernode we use: a third
            // host must not point us at sockets of its choosing.
            Message::PeerInfo(p) if !p.is_pong() && self.is_our_supernode(from) => {
                return self.on_peer_info(now_us, p);
            }
            Message::PeerInfo(p) if p.is_pong() => self.on_pong(now_us, from, &p),
            Message::Register(r) if from_sn && self.is_our_supernode(from) => {
                if let Some(sock) = r.sock.filter(|s| !s.is_loopback()) {
                    self.registration_check(now_us, r.src_mac, SocketAddr::from(sock), true);
                }
                self.note_details(&r);
            }
            Message::RegisterSuperNak(_) => return Err(Refusal::StaleAnswer),
            Message::ReRegisterSuper if self.cfg.user.is_none() => return Err(Refusal::Unexpected),
            Message::ReRegisterSuper if from_sn && from == self.supernode() => {
                return Err(Refusal::TooSoon);
            }
            Message::PeerInfo(_) | Message::ReRegisterSuper => {
                return Err(Refusal::NotOurSupernode);
            }
            Message::Register(_) if from_sn => return Err(Refusal::NotOurSupernode),
            Message::Register(r) => {
                if r.dst_mac != self.cfg.mac || !self.cfg.p2p {
                    return Err(Refusal::NotForUs);
                }
                // A neighbour that heard us on the LAN group registers with MCAST: our
                // registration back keeps that rank, whichever of the two exchanges confirms
                // the path first.
                let back = match r.cookie {
                    n2n_proto::cookie::MCAST => n2n_proto::cookie::MCAST,
                    _ => n2n_proto::cookie::REGULAR,
                };
                self.answer_register(now_us, from, &r, back);
            }
            Message::RegisterAck(a) if !from_sn => return self.on_register_ack(now_us, from, a),
            _ => return Err(Refusal::Unexpected),
        }
        Ok(())
    }

    /// The supernode in use, by the address we send to or the one its ACK came from.
    fn is_our_supernode(&self, from: SocketAddr) -> bool {
        from == self.supernode() || self.sn_answered_from == Some(from)
    }

    fn on_ack(
        &mut self,
        now_us: u64,
        from: SocketAddr,
        ack: RegisterSuperAck,
    ) -> Result<(), Refusal> {
        if !self.sn_wait || ack.cookie != self.sn_cookie {
            return Err(Refusal::StaleAnswer);
        }
        self.sn_answered_from = Some(from);
        if let Some(user) = &self.cfg.user {
            let Some(key) = user.open_answer(&self.challenge, &ack.auth) else {
                warn!(
                    "the supernode's answer does not prove it knows our user; wrong federation public key (-P)?"
                );
                return Err(Refusal::BadAnswer);
            };
            if !self.registered {
                info!("authenticated with username and password");
            }
            self.actions.push_back(Action::HeaderKey(key));
            self.dynamic_key = Some(Box::new(key.header_key()));
        }
        if from == self.supernode() {
            // Alive; its `last_seen` (management) comes from PONGs only, as n2n.
            self.heard_from_supernode(now_us);
            self.sns[self.sn_index].mac = Some(ack.src_mac);
        }
        self.learn_supernodes(&ack.supernodes);
        self.sn_wait = false;
        self.attempts = SUP_ATTEMPTS;
        self.stats.super_rx += 1;
        self.stats.last_super_us = now_us;
        self.sn_mac = Some(ack.src_mac);
        if self.cfg.dev_addr.is_none() {
            if !assignable(ack.dev_addr) {
                // Not an address a TAP can take: keep asking (the retry timer runs), never
                // exit on what the network says.
                warn!(address = %ack.dev_addr, "the supernode assigned no usable address");
                self.sn_wait = true;
                return Err(Refusal::UnusableAddress);
            }
            info!(address = %ack.dev_addr, "address assigned by the supernode");
            self.cfg.dev_addr = Some(ack.dev_addr);
            self.actions
                .push_back(Action::AddressAssigned(ack.dev_addr));
            // Now register for real, with our MAC and address.
            self.register_super(now_us);
            return Ok(());
        }
        if !self.registered {
            self.registered = true;
            info!(supernode = %self.supernode(), "registered with the supernode");
            self.actions.push_back(Action::RoutesChanged);
            self.actions.push_back(Action::GratuitousArp);
        }
        self.confirming = std::mem::take(&mut self.confirm_socket);
        if self.confirming {
            self.register_super(now_us);
        }
        Ok(())
    }
}

/// Whether an address a supernode assigns (auto-IP) can be a TAP's: a unicast host address of
/// a /1../30 subnet, neither its network nor its broadcast address.
fn assignable(a: IpSubnet) -> bool {
    let ip = u32::from(a.addr);
    let host = !a.netmask();
    (1..=30).contains(&a.prefix)
        && !a.addr.is_unspecified()
        && !a.addr.is_loopback()
        && !a.addr.is_multicast()
        && !a.addr.is_broadcast()
        && ip & host != 0
        && ip & host != host
}

mod p2p;

#[cfg(test)]
mod lan_tests;
#[cfg(test)]
mod supernode_tests;
#[cfg(test)]
mod tests;
