//! Supernode federation (spec §7.9): the supernodes of one federation register with each other
//! in the federation community (always header-encrypted with keys from its name), forward
//! their edges' registrations, and relay PACKETs and look-ups to the supernode an edge is
//! registered at.

use std::net::SocketAddr;

use n2n_crypto::{HeaderKey, SenderStamp};
use n2n_proto::msg::{MAX_SUPERNODE_ENTRIES, RegisterSuper, RegisterSuperAck};
use n2n_proto::{
    Auth, Community, Datagram, Desc, Flags, IpSubnet, Mac, Message, Sock, SupernodeEntry,
    auth_scheme,
};
use tracing::{debug, info, warn};

use super::{DropReason, Outbox, Supernode, send_datagram};

/// The federation name without `-F` (FEDERATION_NAME without its `*`).
pub const DEFAULT_FEDERATION: &str = "Federation";
/// How often members are re-registered and purged (RE_REG_AND_PURGE_FREQUENCY).
pub const RE_REG_US: u64 = 10_000_000;
/// A member heard from this recently needs no re-registration (LAST_SEEN_SN_ACTIVE).
pub const ACTIVE_US: u64 = 20_000_000;
/// Members silent this long get no broadcasts and, unless anchors, are purged
/// (LAST_SEEN_SN_INACTIVE).
pub const INACTIVE_US: u64 = 90_000_000;
/// Only members heard from this recently are advertised to edges (LAST_SEEN_SN_NEW).
pub const ADVERTISE_US: u64 = 60_000_000;
/// Edge-to-supernode associations are forgotten after this long (spec §7.12).
pub const ASSOC_TIMEOUT_US: u64 = 180_000_000;
/// Most federation members: an ACK names at most 44 and registrations are unauthenticated.
pub const MAX_MEMBERS: usize = 64;
/// Room kept for `-l` anchors beyond [`MAX_MEMBERS`].
const MAX_ANCHORS: usize = 16;
/// Addresses remembered as this supernode itself.
const MAX_OWN_SOCKS: usize = 8;
/// Registrations to a silent member back off up to this interval.
const MAX_BACKOFF_US: u64 = 80_000_000;

/// The federation community for a name: `*` + name, 18 bytes at most (n2n writes it with
/// `snprintf` into 19 bytes), NUL-padded.
pub fn federation_community(name: &str) -> Community {
    renamed_federation(&Community::default(), name)
}

/// n2n's `-F name`: `*` + name and a NUL written over the start of the federation field it
/// had, the rest of that field kept. Header checksums cover all 20 bytes, so `-F iox` after the
/// default `*Federation` is `*iox\0ration\0…` on the wire, as the C supernode sends it.
pub fn renamed_federation(base: &Community, name: &str) -> Community {
    let mut field = *base;
    let mut len = 1;
    field.0[0] = b'*';
    for c in name.chars() {
        if len + c.len_utf8() > 18 {
            break;
        }
        c.encode_utf8(&mut field.0[len..len + c.len_utf8()]);
        len += c.len_utf8();
    }
    field.0[len] = 0;
    field
}

/// Another supernode of the federation.
#[derive(Debug, Clone)]
pub struct Member {
    /// Null until it registered or answered.
    pub mac: Mac,
    pub sock: SocketAddr,
    /// Last registration or ACK from it (0: never).
    pub last_seen_us: u64,
    /// Named with `-l`: never purged.
    pub anchor: bool,
    /// The cookie of our last REGISTER_SUPER to it; its ACK must echo it.
    cookie: u32,
    /// Header time stamps of everything it sends (spec §4.6: one slot per supernode).
    stamp: Option<SenderStamp>,
    next_register_us: u64,
    /// Registrations sent since it was last heard from (drives the backoff).
    unanswered: u32,
}

/// This supernode's view of its federation.
#[derive(Debug)]
pub struct Federation {
    pub name: Community,
    key: HeaderKey,
    pub members: Vec<Member>,
    /// Our simple-ID token in registrations to other supernodes.
    token: [u8; 16],
    /// The dynamic-key time; all members converge on the largest (spec §7.9).
    pub key_time: u32,
    pub(crate) next_tick_us: u64,
    /// Addresses found to be this supernode (an `-l` naming ourselves): never added again.
    own_socks: Vec<SocketAddr>,
    /// A newer key time is adopted at most once per [`RE_REG_US`].
    next_adopt_us: u64,
}

impl Federation {
    /// `key_name` is the name the header key comes from: n2n derives it once at start-up from
    /// N2N_FEDERATION or the default, and `-F` later changes only the name (which the header
    /// checksum covers, so federations of different names still cannot read each other).
    /// `key_time` is the dynamic-key time: n2n sets it when a community list is loaded and
    /// leaves it 0 otherwise.
    pub fn new(
        name: Community,
        key_name: Community,
        token: [u8; 16],
        key_time: u32,
        now_us: u64,
    ) -> Self {
        Federation {
            name,
            key: HeaderKey::for_community(&key_name),
            members: Vec::new(),
            token,
            key_time,
            next_tick_us: now_us,
            own_socks: Vec::new(),
            next_adopt_us: 0,
        }
    }

    /// Opens a datagram of the federation community in place; its time stamp.
    pub(crate) fn decrypt(&self, data: &mut [u8]) -> Option<u64> {
        self.key.decrypt(data, &self.name)
    }

    pub fn member_by_sock(&self, sock: SocketAddr) -> Option<usize> {
        self.members.iter().position(|m| m.sock == sock)
    }

    /// Finds a member by MAC (if not null), else by socket (learning its MAC); adds it if
    /// `add` and there is room. The bool says whether it was added.
    fn find_or_add(&mut self, mac: Mac, sock: SocketAddr, add: bool) -> Option<(usize, bool)> {
        self.find_or_add_within(mac, sock, add, MAX_MEMBERS)
    }

    /// [`Self::find_or_add`] with another bound (anchors may exceed [`MAX_MEMBERS`]).
    fn find_or_add_within(
        &mut self,
        mac: Mac,
        sock: SocketAddr,
        add: bool,
        max: usize,
    ) -> Option<(usize, bool)> {
        if !mac.is_null()
            && let Some(i) = self.members.iter().position(|m| m.mac == mac)
        {
            return Some((i, false));
        }
        if let Some(i) = self.member_by_sock(sock) {
            if !mac.is_null() {
                self.members[i].mac = mac;
            }
            return Some((i, false));
        }
        if !add || self.members.len() >= max || self.own_socks.contains(&sock) {
            return None;
        }
        self.members.push(Member {
            mac,
            sock,
            last_seen_us: 0,
            anchor: false,
            cookie: 0,
            stamp: None,
            next_register_us: 0,
            unanswered: 0,
        });
        Some((self.members.len() - 1, true))
    }

    /// Members that receive forwarded registrations, broadcasts and unknown destinations.
    pub fn active(&self, now_us: u64) -> impl Iterator<Item = SocketAddr> + '_ {
        self.members
            .iter()
            .filter(move |m| m.last_seen_us + INACTIVE_US > now_us)
            .map(|m| m.sock)
    }

    /// Per-member header time-stamp check (spec §4.6).
    /// `wall_us`: the wall clock (a new member's stamps start 16 s before it).
    pub(crate) fn accept_stamp(
        &mut self,
        i: usize,
        wall_us: u64,
        stamp: u64,
        jitter: bool,
    ) -> bool {
        let slot = self.members[i]
            .stamp
            .get_or_insert_with(|| SenderStamp::new(wall_us));
        slot.follow_clock(wall_us).accept(stamp, jitter)
    }

    fn heard_from(&mut self, i: usize, now_us: u64) {
        let m = &mut self.members[i];
        m.last_seen_us = now_us;
        m.unanswered = 0;
        m.next_register_us = now_us + RE_REG_US;
    }
}

impl Supernode {
    /// Adds an `-l` supernode (resolved by the shell) and registers with it now. Itself and
    /// duplicates are ignored with one log line; `false` then.
    pub fn add_anchor(&mut self, now_us: u64, addr: SocketAddr, out: &mut Outbox) -> bool {
        out.clear();
        let own_port = self.cfg.listen.map(|l| l.port());
        let is_self = self.cfg.listen == Some(addr)
            || (own_port == Some(addr.port())
                && (addr.ip().is_loopback() || addr.ip().is_unspecified()));
        if is_self {
            warn!(supernode = %addr, "ignoring -l: that is this supernode");
            self.federation.own_socks.push(addr);
            return false;
        }
        if let Some(i) = self.federation.member_by_sock(addr) {
            if self.federation.members[i].anchor {
                warn!(supernode = %addr, "ignoring -l: supernode listed twice");
                return false;
            }
            self.federation.members[i].anchor = true;
            return true;
        }
        // Configured anchors always get a place, however many strangers registered.
        let room = MAX_MEMBERS + MAX_ANCHORS;
        let Some((i, _)) = self
            .federation
            .find_or_add_within(Mac::NULL, addr, true, room)
        else {
            warn!(supernode = %addr, "ignoring -l: too many supernodes");
            return false;
        };
        self.federation.members[i].anchor = true;
        info!(supernode = %addr, "federation anchor added");
        self.register_with_member(now_us, i, out);
        true
    }

    /// Every 10 s: purges silent learned members and re-registers with members not heard
    /// from for 20 s, backing off while one stays silent.
    pub(crate) fn federation_tick(&mut self, now_us: u64, out: &mut Outbox) {
        if now_us < self.federation.next_tick_us {
            return;
        }
        self.federation.next_tick_us = now_us + RE_REG_US;
        let before = self.federation.members.len();
        self.federation
            .members
            .retain(|m| m.anchor || m.last_seen_us + INACTIVE_US > now_us);
        if before != self.federation.members.len() {
            info!(
                purged = before - self.federation.members.len(),
                "purged silent federation supernodes"
            );
        }
        for i in 0..self.federation.members.len() {
            let m = &self.federation.members[i];
            if m.last_seen_us + ACTIVE_US < now_us && m.next_register_us <= now_us {
                self.register_with_member(now_us, i, out);
            }
        }
    }

    /// REGISTER_SUPER to member `i` (spec §7.9): federation community, FROM_SUPERNODE, our MAC,
    /// simple-ID auth, our key time, static federation key.
    fn register_with_member(&mut self, now_us: u64, i: usize, out: &mut Outbox) {
        let cookie = self.random_u32();
        let fed = &mut self.federation;
        let m = &mut fed.members[i];
        m.cookie = cookie;
        m.unanswered = m.unanswered.saturating_add(1);
        let backoff = (RE_REG_US << m.unanswered.min(4).saturating_sub(1)).min(MAX_BACKOFF_US);
        m.next_register_us = now_us + backoff;
        let to = m.sock;
        let msg = Message::RegisterSuper(RegisterSuper {
            cookie,
            edge_mac: self.cfg.mac,
            sock: None,
            dev_addr: IpSubnet::UNSPECIFIED,
            desc: Desc::default(),
            auth: Auth::new(auth_scheme::SIMPLE_ID, &fed.token).unwrap_or(Auth::NONE),
            key_time: fed.key_time,
        });
        let d = Datagram::new(fed.name, Flags::FROM_SUPERNODE, msg);
        debug!(supernode = %to, "registering with a federation supernode");
        self.send_federation(now_us, &d, &[to], out);
    }

    /// Encodes and encrypts a federation-community datagram for `dests`.
    fn send_federation(
        &mut self,
        now_us: u64,
        d: &Datagram,
        dests: &[SocketAddr],
        out: &mut Outbox,
    ) {
        let stamp = self.stamps.next(self.wall_time(now_us));
        let random = self.random_u32();
        send_datagram(
            out,
            d,
            &[],
            None,
            Some((&self.federation.key, stamp, random)),
            dests,
        );
    }

    /// A datagram of the federation community, header already decrypted.
    pub(crate) fn handle_federation(
        &mut self,
        now_us: u64,
        from: SocketAddr,
        d: &Datagram,
        stamp: u64,
        out: &mut Outbox,
    ) -> Result<(), DropReason> {
        match &d.msg {
            Message::RegisterSuper(r) if d.flags.contains(Flags::FROM_SUPERNODE) => {
                let r = *r;
                self.member_registers(now_us, from, &r, stamp, out)
            }
            Message::RegisterSuperAck(a) if d.flags.contains(Flags::FROM_SUPERNODE) => {
                let a = a.clone();
                self.member_acknowledges(now_us, from, &a, stamp, out)
            }
            _ => Err(DropReason::Unsupported),
        }
    }

    /// Another supernode registers with us: add or refresh it and answer with the others.
    fn member_registers(
        &mut self,
        now_us: u64,
        from: SocketAddr,
        r: &RegisterSuper,
        stamp: u64,
        out: &mut Outbox,
    ) -> Result<(), DropReason> {
        self.stats.reg_super_rx += 1;
        self.stats.last_reg_super_us = now_us;
        if r.edge_mac == self.cfg.mac {
            // Our own registration came back (the cookie we sent to `from`): an -l names this
            // supernode. Anything else with our MAC is a forgery and changes nothing.
            if let Some(i) = self.federation.member_by_sock(from)
                && self.federation.members[i].cookie == r.cookie
                && self.federation.members[i].last_seen_us == 0
                && self.federation.own_socks.len() < MAX_OWN_SOCKS
            {
                let m = self.federation.members.remove(i);
                warn!(supernode = %m.sock, "ignoring -l: that is this supernode");
                self.federation.own_socks.push(from);
            }
            return Err(DropReason::FromSelf);
        }
        if let Some(i) = self
            .federation
            .find_or_add(r.edge_mac, from, false)
            .map(|x| x.0)
            && !self
                .federation
                .accept_stamp(i, self.wall_time(now_us), stamp, false)
        {
            return Err(DropReason::StampRejected);
        }
        let (i, added) = self
            .federation
            .find_or_add(r.edge_mac, from, true)
            .ok_or(DropReason::FederationFull)?;
        if added {
            info!(supernode = %from, mac = %r.edge_mac, "federation supernode joined");
            self.federation
                .accept_stamp(i, self.wall_time(now_us), stamp, false);
        } else if self.federation.members[i].last_seen_us == 0 {
            info!(supernode = %from, mac = %r.edge_mac, "federation supernode answered");
        }
        self.federation.heard_from(i, now_us);
        // A newcomer's key time waits for its next registration, so a stranger cannot make us
        // re-key and re-register at once.
        if !added {
            self.adopt_key_time(now_us, r.key_time, out);
        }
        let supernodes = self.supernode_entries(now_us, from);
        let ack = Message::RegisterSuperAck(RegisterSuperAck {
            cookie: r.cookie,
            src_mac: self.cfg.mac,
            dev_addr: IpSubnet::UNSPECIFIED,
            lifetime: super::handlers::ACK_LIFETIME,
            sock: Sock::from(from),
            auth: Auth::NONE,
            supernodes,
            key_time: self.federation.key_time,
        });
        let d = Datagram::new(
            self.federation.name,
            Flags::FROM_SUPERNODE.with(Flags::SOCKET),
            ack,
        );
        self.send_federation(now_us, &d, &[from], out);
        Ok(())
    }

    /// A member answers our registration: it is alive, and names the others it knows.
    fn member_acknowledges(
        &mut self,
        now_us: u64,
        from: SocketAddr,
        a: &RegisterSuperAck,
        stamp: u64,
        out: &mut Outbox,
    ) -> Result<(), DropReason> {
        let (i, _) = self
            .federation
            .find_or_add(a.src_mac, from, false)
            .ok_or(DropReason::NotAMember)?;
        if !self
            .federation
            .accept_stamp(i, self.wall_time(now_us), stamp, false)
        {
            return Err(DropReason::StampRejected);
        }
        if a.cookie != self.federation.members[i].cookie {
            return Err(DropReason::StaleCookie);
        }
        let was_silent = self.federation.members[i].last_seen_us == 0;
        self.federation.heard_from(i, now_us);
        if was_silent {
            info!(supernode = %from, mac = %a.src_mac, "federation supernode answered");
        }
        let own_public = SocketAddr::from(a.sock);
        for e in &a.supernodes {
            let Some(sock) = e.socket_v4().map(SocketAddr::V4) else {
                continue;
            };
            if e.mac == self.cfg.mac || sock == own_public || sock.port() == 0 {
                continue;
            }
            if let Some((j, true)) = self.federation.find_or_add(e.mac, sock, true) {
                // Contacted at the next cycle (n2n: last_seen = now − LAST_SEEN_SN_NEW).
                self.federation.members[j].last_seen_us = now_us.saturating_sub(ADVERTISE_US);
                debug!(supernode = %sock, "learnt a federation supernode");
            }
        }
        self.adopt_key_time(now_us, a.key_time, out);
        Ok(())
    }

    /// All supernodes converge on the largest dynamic-key time (spec §7.9): user/password
    /// edges are told to re-register under the old keys, the dynamic keys follow the new time,
    /// and every member hears of it at once.
    fn adopt_key_time(&mut self, now_us: u64, key_time: u32, out: &mut Outbox) {
        if key_time <= self.federation.key_time || now_us < self.federation.next_adopt_us {
            return;
        }
        // At most once per re-registration period: each adoption sends to every member and
        // every user/password edge.
        self.federation.next_adopt_us = now_us + RE_REG_US;
        debug!(key_time, "adopting a newer federation key time");
        self.re_register_user_edges(now_us, out);
        self.federation.key_time = key_time;
        self.rekey_user_communities();
        self.register_with_all_members(now_us, out);
    }

    /// REGISTER_SUPER to every member now (a new key time).
    pub(crate) fn register_with_all_members(&mut self, now_us: u64, out: &mut Outbox) {
        for i in 0..self.federation.members.len() {
            self.register_with_member(now_us, i, out);
        }
    }

    /// The supernode list for a REGISTER_SUPER_ACK (spec §3.7): members heard from within
    /// 60 s, not the recipient, starting at a random member, at most 44.
    pub(crate) fn supernode_entries(&mut self, now_us: u64, to: SocketAddr) -> Vec<SupernodeEntry> {
        let n = self.federation.members.len();
        if n == 0 {
            return Vec::new();
        }
        let skip = if n > MAX_SUPERNODE_ENTRIES {
            self.random_u32() as usize % n
        } else {
            0
        };
        self.federation
            .members
            .iter()
            .cycle()
            .skip(skip)
            .take(n)
            .filter(|m| m.sock != to && m.last_seen_us + ADVERTISE_US > now_us)
            .filter_map(|m| match m.sock {
                SocketAddr::V4(v4) => Some(SupernodeEntry::ipv4(v4, m.mac)),
                SocketAddr::V6(_) => None,
            })
            .take(MAX_SUPERNODE_ENTRIES)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn federation_names_follow_n2n() {
        assert_eq!(federation_community("Federation").text(), "*Federation");
        assert_eq!(
            federation_community("a-very-long-federation-name").text(),
            "*a-very-long-feder"
        );
        let renamed = renamed_federation(&federation_community("Federation"), "iox");
        assert_eq!(&renamed.0, b"*iox\0ration\0\0\0\0\0\0\0\0\0");
    }
}
