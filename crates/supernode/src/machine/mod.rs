//! The supernode's protocol state machine: no sockets, no clock, no OS randomness. The shell
//! passes every datagram in with the time and performs the transmits it asks for.

pub mod budget;
pub mod federation;
mod handlers;
mod offers;
mod outbox;
pub mod registry;
mod stats;
pub mod users;

use std::collections::HashMap;
use std::net::SocketAddr;

use n2n_crypto::header_enc::{StampGenerator, stamp_in_frame};
use n2n_crypto::{HeaderKey, RandomSource};
use n2n_proto::header::looks_plain;
use n2n_proto::{
    COMMUNITY_SIZE, Community, Datagram, Flags, IpSubnet, Mac, MsgType, VersionString,
};
use tracing::{debug, info};

pub use federation::{Federation, Member, federation_community, renamed_federation};
pub use outbox::{Outbox, Transmit};
pub use registry::{AutoIpRange, CommunityState, Edge, HeaderMode};
pub use stats::{DropReason, Stats};
pub use users::UserAuth;

use crate::community_list::CommunityList;

/// Edges are purged after this long without a registration (REGISTRATION_TIMEOUT).
pub const REGISTRATION_TIMEOUT_US: u64 = 60_000_000;
/// How often silent edges are purged (PURGE_REGISTRATION_FREQUENCY).
pub const PURGE_INTERVAL_US: u64 = 30_000_000;
/// Default bound on registered edges across all communities.
pub const DEFAULT_MAX_EDGES: usize = 100_000;
/// Edges of one community behind one public address (a NAT'd site) before more are refused.
pub const DEFAULT_MAX_EDGES_PER_IP: u32 = 64;
/// Communities one public address may create.
pub const DEFAULT_MAX_COMMUNITIES_PER_IP: u32 = 16;
/// Communities created on the fly are bounded too.
pub const MAX_COMMUNITIES: usize = 10_000;

/// What the machine needs to know of the configuration.
#[derive(Debug, Clone)]
pub struct MachineConfig {
    pub mac: Mac,
    pub auto_ip: AutoIpRange,
    /// MAC/IP spoofing protection via the auth token (off with `-M`).
    pub spoofing_protection: bool,
    pub version: VersionString,
    pub max_edges: usize,
    /// Most edges of one community at one public IP address: what one forged source can
    /// make a broadcast amplify to (`--max-edges-per-ip`).
    pub max_edges_per_ip: u32,
    /// Most communities one public IP address may create (`--max-communities-per-ip`): a
    /// flood of made-up names from one host cannot fill the registry.
    pub max_communities_per_ip: u32,
    /// Copies per second one source address may cause by broadcasting
    /// (`--max-broadcast-rate`; 0: no limit).
    pub max_broadcast_rate: u32,
    /// `None`: every community is allowed (created on first registration).
    pub communities: Option<CommunityList>,
    /// The federation community: `*` + the `-F` name.
    pub federation: Community,
    /// The federation name its header key is derived from (see [`Federation::new`]).
    pub federation_key_name: Community,
    /// The address we listen on, to recognise an `-l` that names ourselves.
    pub listen: Option<SocketAddr>,
}

impl Default for MachineConfig {
    fn default() -> Self {
        MachineConfig {
            mac: Mac([0x02, 0, 0, 0, 0, 0xfe]),
            auto_ip: AutoIpRange::default(),
            spoofing_protection: true,
            version: VersionString::from_text(concat!("n2n-rs-", env!("CARGO_PKG_VERSION"))),
            max_edges: DEFAULT_MAX_EDGES,
            max_edges_per_ip: DEFAULT_MAX_EDGES_PER_IP,
            max_communities_per_ip: DEFAULT_MAX_COMMUNITIES_PER_IP,
            max_broadcast_rate: budget::DEFAULT_BROADCAST_RATE,
            communities: None,
            federation: federation_community(federation::DEFAULT_FEDERATION),
            federation_key_name: federation_community(federation::DEFAULT_FEDERATION),
            listen: None,
        }
    }
}

/// The supernode.
pub struct Supernode {
    pub(crate) cfg: MachineConfig,
    pub(crate) communities: Vec<CommunityState>,
    /// Community name (bytes up to the NUL, zero-padded) → index in `communities`: a look-up
    /// per datagram must not scan thousands of communities.
    community_index: HashMap<[u8; COMMUNITY_SIZE], usize>,
    /// Communities each public IP address created that still exist (`creator`).
    communities_by_source: HashMap<std::net::IpAddr, u32>,
    pub(crate) stats: Stats,
    pub(crate) federation: Federation,
    pub(crate) start_us: u64,
    pub(crate) stamps: StampGenerator,
    pub(crate) rng: Box<dyn RandomSource + Send>,
    next_purge_us: u64,
    pub(crate) edge_count: usize,
    /// Associations (edges at other supernodes) across all communities.
    pub(crate) assoc_count: usize,
    /// Open `-S2` connections (bounded by the shell's connection cap).
    tcp_peers: std::collections::HashSet<SocketAddr>,
    /// Reused list of broadcast destinations.
    pub(crate) scratch_dests: Vec<SocketAddr>,
    pub(crate) scratch_unproven: Vec<SocketAddr>,
    pub(crate) budget: budget::FanoutBudget,
    /// Wall clock minus monotonic clock (µs): the machine's times are monotonic; the wall
    /// clock is only for `-H` stamps and key times (see [`Supernode::set_wall_clock`]).
    wall_offset_us: i64,
    wall_known: bool,
}

impl std::fmt::Debug for Supernode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Supernode {{ communities: {}, edges: {} }}",
            self.communities.len(),
            self.edge_count
        )
    }
}

/// A datagram that passed the common checks, with what the handlers need to know of it.
pub(crate) struct Inbound<'a> {
    pub now_us: u64,
    /// The wall clock at `now_us` (stamps).
    pub wall_us: u64,
    pub from: SocketAddr,
    pub community: usize,
    pub datagram: Datagram,
    pub rest: &'a [u8],
    /// The header's time stamp when it came encrypted.
    pub stamp: Option<u64>,
    /// The federation member that sent it, when it came FROM_SUPERNODE.
    pub member: Option<usize>,
    /// User/password communities: how the header opened.
    pub opened: Opened,
}

/// Which key opened an encrypted header in a user/password community (spec §4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Opened {
    /// Plain, the community's only key, or the dynamic key.
    Normal,
    /// The static key, over all but a 16-byte trailer: `hash` is H128 of the encrypted bytes
    /// before it, `trailer` the trailer itself.
    StaticWithTrailer {
        hash: [u8; 16],
        trailer: [u8; users::TRAILER_LEN],
    },
}

impl Inbound<'_> {
    pub fn relayed_by_supernode(&self) -> bool {
        self.member.is_some()
    }
}

impl Supernode {
    pub fn new(cfg: MachineConfig, now_us: u64, mut rng: Box<dyn RandomSource + Send>) -> Self {
        let mut token = [0u8; 16];
        rng.fill(&mut token);
        let budget = budget::FanoutBudget::new(cfg.max_broadcast_rate);
        let key_time = if cfg.communities.is_some() {
            (now_us / 1_000_000) as u32
        } else {
            0
        };
        let federation = Federation::new(
            cfg.federation,
            cfg.federation_key_name,
            token,
            key_time,
            now_us,
        );
        let mut sn = Supernode {
            cfg,
            communities: Vec::new(),
            community_index: HashMap::new(),
            communities_by_source: HashMap::new(),
            stats: Stats::default(),
            federation,
            start_us: now_us,
            stamps: StampGenerator::default(),
            rng,
            next_purge_us: now_us + PURGE_INTERVAL_US,
            edge_count: 0,
            assoc_count: 0,
            tcp_peers: Default::default(),
            scratch_dests: Vec::new(),
            scratch_unproven: Vec::new(),
            budget,
            wall_offset_us: 0,
            wall_known: false,
        };
        sn.load_listed_communities();
        sn
    }

    /// The wall clock at monotonic time `mono_us`; the shell tells it before each call (tests
    /// leave both clocks equal). The first call also dates the key time of user/password
    /// communities, which n2n takes from the wall clock.
    pub fn set_wall_clock(&mut self, mono_us: u64, wall_us: u64) {
        self.wall_offset_us = wall_us.wrapping_sub(mono_us) as i64;
        if !self.wall_known {
            self.wall_known = true;
            if self.federation.key_time != 0 {
                self.federation.key_time = (wall_us / 1_000_000) as u32;
                self.rekey_user_communities();
            }
        }
    }

    /// The wall-clock time of monotonic time `mono_us`.
    pub fn wall_time(&self, mono_us: u64) -> u64 {
        mono_us.wrapping_add_signed(self.wall_offset_us)
    }

    pub fn config(&self) -> &MachineConfig {
        &self.cfg
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn communities(&self) -> &[CommunityState] {
        &self.communities
    }

    pub fn start_us(&self) -> u64 {
        self.start_us
    }

    pub fn edge_count(&self) -> usize {
        self.edge_count
    }

    /// A `-S2` edge connected over TCP from `peer` (management shows its edge as TCP).
    pub fn connection_opened(&mut self, peer: SocketAddr) {
        self.tcp_peers.insert(peer);
    }

    pub fn is_tcp_peer(&self, peer: &SocketAddr) -> bool {
        self.tcp_peers.contains(peer)
    }

    /// A `-S2` edge's TCP connection ended: n2n deletes the edge that used it.
    pub fn connection_closed(&mut self, peer: SocketAddr) {
        self.tcp_peers.remove(&peer);
        for c in &mut self.communities {
            let gone: Vec<Mac> = c
                .edges
                .values()
                .filter(|e| e.sock == peer)
                .map(|e| e.mac)
                .collect();
            for mac in gone {
                c.remove_edge(&mac);
                self.edge_count -= 1;
                info!(community = %c.name, %mac, "edge gone with its TCP connection");
            }
        }
    }

    /// `n` TCP connections refused or closed, or messages lost to a full TCP queue (`reason`:
    /// one of the `Tcp…` drops); they also count as n2n's `errors`, which management shows.
    pub fn count_tcp_drops(&mut self, reason: DropReason, n: usize) {
        self.stats.record_drops(reason, n as u64);
    }

    pub fn federation(&self) -> &Federation {
        &self.federation
    }

    /// The load a PONG reports (n2n's sn_selection_criterion_gather_data): per community its
    /// edges plus one, doubled for header-encrypted ones; the federation counts as encrypted.
    pub fn load(&self) -> u32 {
        let communities: usize = self
            .communities
            .iter()
            .map(|c| {
                (c.edges.len() + 1)
                    * if c.header == HeaderMode::Encrypted {
                        2
                    } else {
                        1
                    }
            })
            .sum();
        let federation = (self.federation.members.len() + 1) * 2;
        u32::try_from(communities + federation).unwrap_or(u32::MAX)
    }

    /// Replaces the community list (SIGHUP / `reload_communities`), as n2n: user/password
    /// edges are told to re-register (old keys), every community and its edges are dropped,
    /// the listed ones recreated with a new key time, and the federation hears of it.
    pub fn reload(&mut self, now_us: u64, list: Option<CommunityList>, out: &mut Outbox) {
        out.clear();
        self.re_register_user_edges(now_us, out);
        self.cfg.communities = list;
        self.communities.clear();
        self.communities_by_source.clear();
        self.edge_count = 0;
        self.assoc_count = 0;
        self.federation.key_time = (self.wall_time(now_us) / 1_000_000) as u32;
        self.load_listed_communities();
        self.register_with_all_members(now_us, out);
    }

    fn load_listed_communities(&mut self) {
        let Some(list) = self.cfg.communities.clone() else {
            self.reindex_communities();
            return;
        };
        // The federation's private key hashes its name without the '*' (up to the NUL).
        let fed_private =
            n2n_crypto::keys::private_key_from_text(&self.federation.name.text()[1..]);
        for f in &list.fixed {
            let subnet = match f.subnet {
                Some(s) => s,
                None => self.pick_subnet(&f.name),
            };
            let mut c = CommunityState::new(f.name, true, subnet);
            if f.require_header_encryption {
                // Encrypted from the start: no plain datagram can lock it to plain (nothing
                // sets a community back from Encrypted), and a reload re-applies it.
                c.header = HeaderMode::Encrypted;
            }
            if !f.users.is_empty() {
                // User/password communities always encrypt headers (spec §7.10).
                c.header = HeaderMode::Encrypted;
                c.users = Some(UserAuth::new(
                    &f.users,
                    &fed_private,
                    &f.name,
                    &self.federation.name,
                    self.federation.key_time,
                ));
            }
            self.communities.push(c);
        }
        self.reindex_communities();
    }

    /// Rebuilds [`Self::community_index`] after communities were added or removed in bulk.
    fn reindex_communities(&mut self) {
        self.community_index.clear();
        for (i, c) in self.communities.iter().enumerate() {
            self.community_index.insert(index_key(c.name.as_bytes()), i);
        }
    }

    /// RE_REGISTER_SUPER to every edge of a user/password community, under the dynamic key
    /// they still have (spec §3.5, §7.9).
    pub(crate) fn re_register_user_edges(&mut self, now_us: u64, out: &mut Outbox) {
        for i in 0..self.communities.len() {
            let c = &self.communities[i];
            let Some(users) = &c.users else { continue };
            if c.edges.is_empty() {
                continue;
            }
            let dests: Vec<SocketAddr> = c.edges.values().map(|e| e.sock).collect();
            let d = Datagram::new(
                c.name,
                Flags::FROM_SUPERNODE,
                n2n_proto::Message::ReRegisterSuper,
            );
            let stamp = self.stamps.next(self.wall_time(now_us));
            let random = self.rng.next_u64() as u32;
            send_datagram(
                out,
                &d,
                &[],
                None,
                Some((&users.dynamic, stamp, random)),
                &dests,
            );
        }
    }

    /// A new key time: every user/password community's dynamic key follows it.
    pub(crate) fn rekey_user_communities(&mut self) {
        let (fed, t) = (self.federation.name, self.federation.key_time);
        for c in &mut self.communities {
            let name = c.name;
            if let Some(u) = &mut c.users {
                u.rekey(&name, &fed, t);
            }
        }
    }

    fn pick_subnet(&self, name: &Community) -> IpSubnet {
        let taken = self.communities.iter().map(|c| &c.subnet);
        self.cfg.auto_ip.pick_subnet(name, taken)
    }

    pub(crate) fn find_community(&self, name: &[u8]) -> Option<usize> {
        if name.len() > COMMUNITY_SIZE {
            return None;
        }
        self.community_index.get(&index_key(name)).copied()
    }

    /// Creates a community on first contact if the configuration allows it (spec §7.2 step 1)
    /// and its creator `from` has not made its most communities already.
    fn admit_community(&mut self, name: &Community, from: SocketAddr) -> Result<usize, DropReason> {
        let allowed = match &self.cfg.communities {
            None => true,
            Some(list) => list.pattern_allows(name.as_bytes()),
        };
        if !allowed || self.communities.len() >= MAX_COMMUNITIES || name.as_bytes().is_empty() {
            return Err(DropReason::CommunityNotAllowed);
        }
        // Federation members forward every community of their edges: not capped.
        let creator = match self.federation.member_by_sock(from) {
            Some(_) => None,
            None => Some(from.ip()),
        };
        if let Some(ip) = creator {
            let made = self.communities_by_source.entry(ip).or_insert(0);
            if *made >= self.cfg.max_communities_per_ip {
                return Err(DropReason::SourceFull);
            }
            *made += 1;
        }
        let subnet = self.pick_subnet(name);
        let mut clean = Community::default();
        clean.0[..name.as_bytes().len()].copy_from_slice(name.as_bytes());
        let mut c = CommunityState::new(clean, false, subnet);
        c.creator = creator;
        self.communities.push(c);
        let i = self.communities.len() - 1;
        self.community_index.insert(index_key(clean.as_bytes()), i);
        Ok(i)
    }

    /// Handles one received datagram. `data` may be modified (header decryption in place).
    /// Whatever must be sent is put in `out` (cleared first).
    pub fn handle_datagram(
        &mut self,
        now_us: u64,
        from: SocketAddr,
        data: &mut [u8],
        out: &mut Outbox,
    ) {
        out.clear();
        if let Err(reason) = self.handle_inner(now_us, from, data, out) {
            self.stats.record_drop(reason);
            debug!(%from, ?reason, "dropped datagram");
        }
    }

    fn handle_inner(
        &mut self,
        now_us: u64,
        from: SocketAddr,
        data: &mut [u8],
        out: &mut Outbox,
    ) -> Result<(), DropReason> {
        if data.len() < n2n_proto::COMMON_HEADER_LEN {
            return Err(DropReason::TooShort);
        }
        let mut opened = Opened::Normal;
        let (community, stamp) = if looks_plain(data) {
            // n2n finds communities by their name up to the NUL.
            if data[4..24].split(|b| *b == 0).next() == Some(self.federation.name.as_bytes()) {
                return Err(DropReason::PlainForEncrypted);
            }
            (Some(self.plain_community(data, from)?), None)
        } else {
            let (idx, stamp) = match self.decrypt_header(data) {
                Ok((idx, stamp, how)) => {
                    opened = how;
                    (Some(idx), stamp)
                }
                Err(e) => (None, self.federation.decrypt(data).ok_or(e)?),
            };
            if !stamp_in_frame(stamp, self.wall_time(now_us)) {
                return Err(DropReason::StampRejected);
            }
            (idx, Some(stamp))
        };
        let body = match opened {
            Opened::StaticWithTrailer { .. } => data.len() - users::TRAILER_LEN,
            Opened::Normal => data.len(),
        };
        let (datagram, rest) =
            Datagram::decode(&data[..body]).map_err(|_| DropReason::Undecodable)?;
        if let Some(c) = community
            && self.communities[c].users.is_some()
        {
            // Only registrations and their answers travel under the static key (spec §4.4).
            let registration = matches!(
                datagram.msg.msg_type(),
                MsgType::RegisterSuper | MsgType::RegisterSuperAck | MsgType::RegisterSuperNak
            );
            let static_key = matches!(opened, Opened::StaticWithTrailer { .. });
            if registration != static_key {
                return Err(DropReason::WrongKey);
            }
        }
        if datagram.ttl == 0 {
            return Err(DropReason::TtlExpired);
        }
        let Some(community) = community else {
            // Only federation datagrams come this way (their header always encrypted).
            let stamp = stamp.unwrap_or_default();
            return self.handle_federation(now_us, from, &datagram, stamp, out);
        };
        let member = if datagram.flags.contains(Flags::FROM_SUPERNODE) {
            // Only a known member of the federation may speak as a supernode.
            Some(
                self.federation
                    .member_by_sock(from)
                    .ok_or(DropReason::NotAMember)?,
            )
        } else {
            None
        };
        let inbound = Inbound {
            now_us,
            wall_us: self.wall_time(now_us),
            from,
            community,
            datagram,
            rest,
            stamp,
            member,
            opened,
        };
        self.dispatch(inbound, out)
    }

    /// The community of a plain datagram, created if allowed; locks a listed name to plain.
    fn plain_community(&mut self, data: &[u8], from: SocketAddr) -> Result<usize, DropReason> {
        let mut name = Community::default();
        name.0.copy_from_slice(&data[4..24]);
        let idx = match self.find_community(name.as_bytes()) {
            Some(i) => i,
            None => {
                let code = MsgType::from(data[3] & 0x1f);
                if !matches!(code, MsgType::RegisterSuper | MsgType::QueryPeer) {
                    return Err(DropReason::UnknownCommunity);
                }
                self.admit_community(&name, from)?
            }
        };
        let c = &mut self.communities[idx];
        match c.header {
            HeaderMode::Encrypted => Err(DropReason::PlainForEncrypted),
            HeaderMode::Unknown => {
                c.header = HeaderMode::Plain;
                Ok(idx)
            }
            HeaderMode::Plain => Ok(idx),
        }
    }

    /// Tries every community that may be encrypted (spec §3.9); locks it to encrypted. In
    /// user/password communities the dynamic key first, then the static key over all but a
    /// 16-byte trailer (spec §4.4).
    fn decrypt_header(&mut self, data: &mut [u8]) -> Result<(usize, u64, Opened), DropReason> {
        for (i, c) in self.communities.iter_mut().enumerate() {
            if c.header == HeaderMode::Plain {
                continue;
            }
            let Some(key) = &c.key else { continue };
            let Some(users) = &c.users else {
                if let Some(stamp) = key.decrypt(data, &c.name) {
                    c.header = HeaderMode::Encrypted;
                    return Ok((i, stamp, Opened::Normal));
                }
                continue;
            };
            if let Some(stamp) = users.dynamic.decrypt(data, &c.name) {
                return Ok((i, stamp, Opened::Normal));
            }
            let Some(body) = data.len().checked_sub(users::TRAILER_LEN) else {
                continue;
            };
            // Hash only what the static key can open (junk is cheap to refuse).
            if key.probe(&data[..body]).is_none() {
                continue;
            }
            let hash = n2n_crypto::pearson::pearson_hash_128(&data[..body]);
            if let Some(stamp) = key.decrypt(&mut data[..body], &c.name) {
                let mut trailer = [0u8; users::TRAILER_LEN];
                trailer.copy_from_slice(&data[body..]);
                return Ok((i, stamp, Opened::StaticWithTrailer { hash, trailer }));
            }
        }
        Err(DropReason::Undecryptable)
    }

    /// When [`Supernode::handle_timeout`] wants to run next.
    pub fn poll_timeout(&self) -> u64 {
        self.next_purge_us.min(self.federation.next_tick_us)
    }

    /// Timers: federation re-registration (spec §7.9); purges edges silent for 60 s, stale
    /// associations and empty on-the-fly communities (spec §7.12).
    pub fn handle_timeout(&mut self, now_us: u64, out: &mut Outbox) {
        out.clear();
        self.federation_tick(now_us, out);
        if now_us < self.next_purge_us {
            return;
        }
        self.next_purge_us = now_us + PURGE_INTERVAL_US;
        self.budget.purge(now_us);
        let mut removed = 0;
        let cutoff = now_us.saturating_sub(REGISTRATION_TIMEOUT_US);
        let assoc_cutoff = now_us.saturating_sub(federation::ASSOC_TIMEOUT_US);
        for c in &mut self.communities {
            removed += c.purge(cutoff);
            let before = c.assoc.len();
            c.assoc.retain(|_, a| a.last_seen_us >= assoc_cutoff);
            self.assoc_count -= before - c.assoc.len();
        }
        self.edge_count -= removed;
        let assoc_count = &mut self.assoc_count;
        let by_source = &mut self.communities_by_source;
        self.communities.retain(|c| {
            let keep = !c.purgeable() || !c.edges.is_empty();
            if !keep {
                *assoc_count -= c.assoc.len();
                if let Some(n) = c.creator.and_then(|ip| by_source.get_mut(&ip)) {
                    *n = n.saturating_sub(1);
                }
            }
            keep
        });
        by_source.retain(|_, n| *n > 0);
        self.reindex_communities();
        if removed > 0 {
            debug!(removed, "purged silent edges");
        }
    }

    pub(crate) fn random_u32(&mut self) -> u32 {
        self.rng.next_u64() as u32
    }
}

/// A community name (its bytes up to the NUL, at most 20) as an index key.
fn index_key(name: &[u8]) -> [u8; COMMUNITY_SIZE] {
    let mut k = [0u8; COMMUNITY_SIZE];
    let n = name.len().min(COMMUNITY_SIZE);
    k[..n].copy_from_slice(&name[..n]);
    k
}

/// Encodes `d` followed by `tail` into a new transmit for `dests`; with a key, encrypts the
/// first `hl` bytes (the whole datagram when `hl` is `None`).
pub(crate) fn send_datagram(
    out: &mut Outbox,
    d: &Datagram,
    tail: &[u8],
    hl: Option<usize>,
    key: Option<(&HeaderKey, u64, u32)>,
    dests: &[SocketAddr],
) {
    let t = out.slot();
    t.data.resize(2048, 0);
    let Ok(n) = d.encode(&mut t.data) else {
        out.unslot();
        return;
    };
    t.data.truncate(n);
    t.data.extend_from_slice(tail);
    if let Some((key, stamp, random)) = key {
        let hl = hl.unwrap_or(t.data.len());
        key.encrypt(&mut t.data, hl, stamp, random);
    }
    t.dests.extend_from_slice(dests);
    debug!(msg = ?d.msg.msg_type(), dests = dests.len(), "sending");
}

#[cfg(test)]
mod federation_tests;
#[cfg(test)]
mod tests;
