//! What the supernode does with each message (spec §7.2, §7.8).

use std::net::SocketAddr;

use n2n_crypto::SenderStamp;
use n2n_proto::msg::{
    PacketHeader, PeerInfo, QueryPeer, Register, RegisterSuper, RegisterSuperAck, RegisterSuperNak,
    UnregisterSuper,
};
use n2n_proto::{Auth, Datagram, Flags, IpSubnet, Mac, Message, Sock, auth_scheme};
use tracing::info;

use super::registry::{Association, Edge, HeaderMode, wants_address};
use super::{DropReason, Inbound, Opened, Outbox, Supernode, send_datagram};

/// REGISTER_SUPER_ACK lifetime field (always 15 in the reference).
pub(crate) const ACK_LIFETIME: u16 = 15;

/// How a reply's header is encrypted in a `-H` community.
#[derive(Clone, Copy)]
enum HeaderSpan {
    /// The whole datagram (every message but PACKET).
    Whole,
    /// The PACKET header only.
    Len(usize),
}

impl Supernode {
    pub(crate) fn dispatch(&mut self, m: Inbound<'_>, out: &mut Outbox) -> Result<(), DropReason> {
        match &m.datagram.msg {
            Message::RegisterSuper(r) => {
                let r = *r;
                if m.relayed_by_supernode() {
                    self.forwarded_register_super(&m, &r, out)
                } else {
                    self.register_super(&m, &r, out)
                }
            }
            Message::UnregisterSuper(u) if !m.relayed_by_supernode() => {
                let u = *u;
                self.unregister_super(&m, &u)
            }
            Message::QueryPeer(q) => {
                let q = *q;
                self.query_peer(&m, &q, out)
            }
            Message::Packet(p) => {
                let p = *p;
                self.relay_packet(&m, &p, out)
            }
            Message::Register(r) => {
                let r = *r;
                self.relay_register(&m, &r, out)
            }
            Message::PeerInfo(p) if m.relayed_by_supernode() => {
                let p = *p;
                self.relay_peer_info(&m, &p, out)
            }
            Message::RegisterSuperNak(n) if m.relayed_by_supernode() => {
                let n = *n;
                self.relay_nak(&m, &n, out)
            }
            _ => Err(DropReason::Unsupported),
        }
    }

    /// Per-sender time-stamp check for encrypted headers (spec §4.6): a supernode's slot for
    /// what came from one, else the edge's; unknown senders were only frame-checked.
    fn check_stamp(&mut self, m: &Inbound<'_>, mac: &Mac, jitter: bool) -> Result<(), DropReason> {
        let Some(stamp) = m.stamp else { return Ok(()) };
        if let Some(i) = m.member {
            return match self.federation.accept_stamp(i, m.wall_us, stamp, jitter) {
                true => Ok(()),
                false => Err(DropReason::StampRejected),
            };
        }
        let c = &mut self.communities[m.community];
        if let Some(edge) = c.edges.get_mut(mac) {
            let slot = edge
                .stamp
                .get_or_insert_with(|| SenderStamp::new(m.wall_us));
            if !slot.follow_clock(m.wall_us).accept(stamp, jitter) {
                return Err(DropReason::StampRejected);
            }
        }
        Ok(())
    }

    fn register_super(
        &mut self,
        m: &Inbound<'_>,
        r: &RegisterSuper,
        out: &mut Outbox,
    ) -> Result<(), DropReason> {
        self.stats.reg_super_rx += 1;
        self.stats.last_reg_super_us = m.now_us;
        if r.edge_mac == self.cfg.mac {
            return Err(DropReason::Unsupported);
        }
        // The trailer first: only a registration that proves the user may touch its stamps.
        let user = self.user_with_trailer(m, &r.auth)?;
        self.check_stamp(m, &r.edge_mac, false)?;
        let c = &self.communities[m.community];
        let answer = if r.edge_mac.is_null() {
            // An address request is answered but not stored (spec §7.1 step 3).
            match &c.users {
                Some(users) => users.user_of(&r.auth).map(|u| users.answer(u, &r.auth)),
                None => Some(Auth::NONE),
            }
        } else {
            self.update_edge(m, r)?
        };
        let assigned = if wants_address(&r.dev_addr) {
            // Only an accepted address request holds what it is offered: a registered edge
            // re-registering without an address (n2n answers it one too) never uses it.
            let hold = r.edge_mac.is_null() && answer.is_some();
            self.communities[m.community].offer_address(&r.desc, m.from, m.now_us, hold)
        } else {
            IpSubnet::UNSPECIFIED
        };
        let community = self.communities[m.community].name;
        let (msg, trailer) = if let Some(auth) = answer {
            if !r.edge_mac.is_null() {
                self.forward_registration(m, r, user, out);
            }
            let supernodes = self.supernode_entries(m.now_us, m.from);
            let ack = Message::RegisterSuperAck(RegisterSuperAck {
                cookie: r.cookie,
                src_mac: self.cfg.mac,
                dev_addr: assigned,
                lifetime: ACK_LIFETIME,
                sock: Sock::from(m.from),
                auth,
                supernodes,
                key_time: 0,
            });
            (ack, user.map_or(Trailer::None, Trailer::User))
        } else {
            self.stats.reg_super_nak += 1;
            let why = if self.communities[m.community].users.is_some() {
                "username or password not recognized"
            } else {
                "MAC or IP address already in use"
            };
            info!(community = %community, mac = %r.edge_mac, "registration refused ({why})");
            let nak = Message::RegisterSuperNak(RegisterSuperNak {
                cookie: r.cookie,
                src_mac: r.edge_mac,
                auth: Auth::NONE,
            });
            (nak, Trailer::Junk)
        };
        let d = Datagram::new(community, Flags::FROM_SUPERNODE.with(Flags::SOCKET), msg);
        self.send_with(m, &d, &[], HeaderSpan::Whole, trailer, &[m.from], out);
        Ok(())
    }

    /// In a user/password community: the listed user a registration names, once its trailer
    /// proves the sender shares that user's secret (spec §4.7; a wrong trailer is dropped
    /// silently, as n2n). `None`: not such a community, or an unknown user (who gets a NAK).
    fn user_with_trailer(
        &self,
        m: &Inbound<'_>,
        auth: &Auth,
    ) -> Result<Option<[u8; 32]>, DropReason> {
        let Some(users) = &self.communities[m.community].users else {
            return Ok(None);
        };
        let Some(user) = users.user_of(auth) else {
            return Ok(None);
        };
        match m.opened {
            Opened::StaticWithTrailer { hash, trailer }
                if user.trailer_matches(&hash, &trailer) =>
            {
                let mut public = [0u8; 32];
                public.copy_from_slice(&auth.token()[..32]);
                Ok(Some(public))
            }
            _ => Err(DropReason::BadTrailer),
        }
    }

    /// An accepted edge registration goes to every active member of the federation, with the
    /// edge's public socket (spec §7.2 step 9), so they know where the edge is.
    fn forward_registration(
        &mut self,
        m: &Inbound<'_>,
        r: &RegisterSuper,
        user: Option<[u8; 32]>,
        out: &mut Outbox,
    ) {
        let fwd = RegisterSuper {
            sock: Some(Sock::from(m.from)),
            ..*r
        };
        let community = self.communities[m.community].name;
        let d = Datagram::new(
            community,
            Flags::FROM_SUPERNODE,
            Message::RegisterSuper(fwd),
        );
        let trailer = user.map_or(Trailer::None, Trailer::User);
        let members = self.send_to_federation(m, &d, trailer, out);
        self.stats.broadcast_tx += members as u64;
    }

    /// Sends `d` to every active member of the federation; how many there were.
    fn send_to_federation(
        &mut self,
        m: &Inbound<'_>,
        d: &Datagram,
        trailer: Trailer,
        out: &mut Outbox,
    ) -> usize {
        let mut dests = std::mem::take(&mut self.scratch_dests);
        dests.clear();
        dests.extend(self.federation.active(m.now_us));
        if !dests.is_empty() {
            self.send_with(m, d, &[], HeaderSpan::Whole, trailer, &dests, out);
        }
        let n = dests.len();
        self.scratch_dests = dests;
        n
    }

    /// A member forwards the registration of an edge it accepted: the edge is now there, not
    /// here. An edge registered here with another token gets a NAK through that supernode.
    fn forwarded_register_super(
        &mut self,
        m: &Inbound<'_>,
        r: &RegisterSuper,
        out: &mut Outbox,
    ) -> Result<(), DropReason> {
        self.stats.reg_super_rx += 1;
        if r.sock.is_none() || r.edge_mac.is_null() || r.edge_mac == self.cfg.mac {
            return Err(DropReason::Unsupported);
        }
        self.user_with_trailer(m, &r.auth)?;
        self.check_stamp(m, &r.edge_mac, false)?;
        let c = &self.communities[m.community];
        if let Some(e) = c.edges.get(&r.edge_mac)
            && !c.auth_ok(&e.auth, &r.auth)
        {
            self.stats.reg_super_nak += 1;
            let nak = Message::RegisterSuperNak(RegisterSuperNak {
                cookie: r.cookie,
                src_mac: r.edge_mac,
                auth: Auth::NONE,
            });
            let d = Datagram::new(c.name, Flags::FROM_SUPERNODE.with(Flags::SOCKET), nak);
            self.send_with(m, &d, &[], HeaderSpan::Whole, Trailer::Junk, &[m.from], out);
            return Ok(());
        }
        let c = &mut self.communities[m.community];
        if c.remove_edge(&r.edge_mac).is_some() {
            self.edge_count -= 1;
            info!(community = %c.name, mac = %r.edge_mac, supernode = %m.from, "edge moved to another supernode");
        }
        self.associate(m, r.edge_mac)
    }

    /// Remembers that `mac` is registered at the member that sent `m` (bounded like edges).
    /// Bounded across all communities like edges (`--max-edges`).
    fn associate(&mut self, m: &Inbound<'_>, mac: Mac) -> Result<(), DropReason> {
        let c = &mut self.communities[m.community];
        let new = !c.assoc.contains_key(&mac);
        if new && self.assoc_count >= self.cfg.max_edges {
            return Err(DropReason::RegistryFull);
        }
        c.assoc.insert(
            mac,
            Association {
                supernode: m.from,
                last_seen_us: m.now_us,
            },
        );
        self.assoc_count += usize::from(new);
        Ok(())
    }

    /// Adds or refreshes the edge (spec §7.2 step 7): `Ok(Some(answer))` is the ACK's auth
    /// field, `Ok(None)` means NAK.
    fn update_edge(
        &mut self,
        m: &Inbound<'_>,
        r: &RegisterSuper,
    ) -> Result<Option<Auth>, DropReason> {
        let protect = self.cfg.spoofing_protection;
        // A TCP connection has shown that its address receives (-S2).
        let over_tcp = self.tcp_peers.contains(&m.from);
        let max_edges = self.cfg.max_edges;
        let per_ip = self.cfg.max_edges_per_ip;
        let c = &mut self.communities[m.community];
        // User/password communities take listed users only; the answer hands over the key.
        let answer = match &c.users {
            Some(users) => match users.user_of(&r.auth) {
                Some(u) => users.answer(u, &r.auth),
                None => return Ok(None),
            },
            None => Auth::NONE,
        };
        let mac = r.edge_mac;
        if !c.edges.contains_key(&mac)
            && !r.dev_addr.addr.is_unspecified()
            && let Some(owner) = c.edge_with_ip(r.dev_addr.addr)
        {
            // The same address under a new MAC: the entry is re-keyed if the token matches.
            if !c
                .edges
                .get(&owner)
                .is_some_and(|e| c.auth_ok(&e.auth, &r.auth))
            {
                return Ok(None);
            }
            if let Some(mut e) = c.remove_edge(&owner) {
                e.mac = mac;
                c.insert_edge(e);
            }
        }
        let now = m.now_us;
        match c.edges.get(&mac) {
            Some(e) => {
                if !c.auth_ok(&e.auth, &r.auth) {
                    return Ok(None);
                }
                if e.sock.ip() != m.from.ip() && c.edges_from(m.from.ip()) >= per_ip {
                    return Err(DropReason::SourceFull);
                }
                let mut e = e.clone();
                e.proven = e.sock == m.from || over_tcp;
                e.sock = m.from;
                e.dev_addr = r.dev_addr;
                e.desc = r.desc;
                e.preferred = r.sock;
                e.last_seen_us = now;
                if let (Some(stamp), Some(slot)) = (m.stamp, e.stamp.as_mut()) {
                    slot.accept(stamp, false);
                }
                c.insert_edge(e);
            }
            None => {
                let scheme_fits = match &c.users {
                    Some(_) => r.auth.scheme == auth_scheme::USER_PASSWORD,
                    None => matches!(r.auth.scheme, auth_scheme::NONE | auth_scheme::SIMPLE_ID),
                };
                if !scheme_fits {
                    return Ok(None);
                }
                if self.edge_count >= max_edges {
                    return Err(DropReason::RegistryFull);
                }
                if c.edges_from(m.from.ip()) >= per_ip {
                    return Err(DropReason::SourceFull);
                }
                let auth = if protect || r.auth.scheme != auth_scheme::SIMPLE_ID {
                    r.auth
                } else {
                    Auth::NONE
                };
                let stamp = m.stamp.map(|s| {
                    let mut slot = SenderStamp::new(m.wall_us);
                    slot.accept(s, false);
                    slot
                });
                c.insert_edge(Edge {
                    mac,
                    dev_addr: r.dev_addr,
                    desc: r.desc,
                    sock: m.from,
                    preferred: r.sock,
                    auth,
                    last_seen_us: now,
                    stamp,
                    proven: over_tcp,
                });
                // Registered here now, whatever another supernode said before.
                if c.assoc.remove(&mac).is_some() {
                    self.assoc_count -= 1;
                }
                self.edge_count += 1;
                info!(community = %c.name, %mac, addr = %r.dev_addr, sock = %m.from, "edge registered");
            }
        }
        Ok(Some(answer))
    }

    fn unregister_super(&mut self, m: &Inbound<'_>, u: &UnregisterSuper) -> Result<(), DropReason> {
        self.check_stamp(m, &u.src_mac, false)?;
        let c = &mut self.communities[m.community];
        match c.edges.get(&u.src_mac) {
            Some(e) if c.auth_ok(&e.auth, &u.auth) => {
                c.remove_edge(&u.src_mac);
                self.edge_count -= 1;
                info!(community = %c.name, mac = %u.src_mac, "edge unregistered");
                Ok(())
            }
            Some(_) => Err(DropReason::BadAuth),
            None => Err(DropReason::UnknownSender),
        }
    }

    fn query_peer(
        &mut self,
        m: &Inbound<'_>,
        q: &QueryPeer,
        out: &mut Outbox,
    ) -> Result<(), DropReason> {
        self.check_stamp(m, &q.src_mac, true)?;
        let uptime = (m.now_us.saturating_sub(self.start_us) / 1_000_000) as u32;
        let c = &self.communities[m.community];
        let info = if q.is_ping() {
            PeerInfo {
                aflags: 0,
                src_mac: self.cfg.mac,
                mac: Mac::NULL,
                sock: Sock::from(m.from),
                preferred_sock: None,
                // C edges byte-swap what they read (spec §7.4): this way both see the load.
                load: self.load().swap_bytes(),
                uptime,
                version: self.cfg.version,
            }
        } else if let Some(target) = c.edges.get(&q.target_mac) {
            PeerInfo {
                aflags: 0,
                src_mac: q.src_mac,
                mac: q.target_mac,
                sock: Sock::from(target.sock),
                preferred_sock: target.preferred,
                load: 0,
                uptime,
                version: self.cfg.version,
            }
        } else if m.relayed_by_supernode() {
            return Err(DropReason::UnknownDestination);
        } else {
            // Not here: ask the federation; whoever has it answers through us (spec §7.8).
            return self.ask_federation(m, q, out);
        };
        let d = Datagram::new(c.name, Flags::FROM_SUPERNODE, Message::PeerInfo(info));
        self.send(m, &d, &[], HeaderSpan::Whole, &[m.from], out);
        Ok(())
    }

    fn ask_federation(
        &mut self,
        m: &Inbound<'_>,
        q: &QueryPeer,
        out: &mut Outbox,
    ) -> Result<(), DropReason> {
        // Only an edge's look-up comes here (a supernode's unknown target was dropped).
        let d = self.relayed(m, Message::QueryPeer(*q));
        if self.send_to_federation(m, &d, Trailer::None, out) > 0 {
            Ok(())
        } else {
            Err(DropReason::UnknownDestination)
        }
    }

    /// A member answers a look-up one of our edges made: pass it on, and remember where the
    /// looked-up edge is.
    fn relay_peer_info(
        &mut self,
        m: &Inbound<'_>,
        p: &PeerInfo,
        out: &mut Outbox,
    ) -> Result<(), DropReason> {
        self.check_stamp(m, &p.src_mac, false)?;
        if p.src_mac.is_null() {
            return Err(DropReason::Unsupported);
        }
        let asker = self.communities[m.community]
            .edges
            .get(&p.src_mac)
            .ok_or(DropReason::UnknownDestination)?
            .sock;
        // Best effort: a full table only costs the look-up shortcut.
        let _ = self.associate(m, p.mac);
        let d = passed_on(m);
        self.send(m, &d, &[], HeaderSpan::Whole, &[asker], out);
        Ok(())
    }

    /// A member refused one of our edges (its registration was forwarded there): tell the
    /// edge and drop it (spec §7.8).
    fn relay_nak(
        &mut self,
        m: &Inbound<'_>,
        n: &RegisterSuperNak,
        out: &mut Outbox,
    ) -> Result<(), DropReason> {
        self.check_stamp(m, &n.src_mac, false)?;
        let c = &mut self.communities[m.community];
        let edge = c
            .remove_edge(&n.src_mac)
            .ok_or(DropReason::UnknownDestination)?;
        self.edge_count -= 1;
        info!(community = %c.name, mac = %n.src_mac, "edge refused by another supernode");
        let d = passed_on(m);
        self.send_with(
            m,
            &d,
            &[],
            HeaderSpan::Whole,
            Trailer::Junk,
            &[edge.sock],
            out,
        );
        Ok(())
    }

    fn relay_packet(
        &mut self,
        m: &Inbound<'_>,
        p: &PacketHeader,
        out: &mut Outbox,
    ) -> Result<(), DropReason> {
        self.check_stamp(m, &p.src_mac, true)?;
        self.check_sender(m, &p.src_mac)?;
        let d = self.relayed(
            m,
            Message::Packet(PacketHeader {
                sock: Some(Sock::from(m.from)),
                ..*p
            }),
        );
        let span = match &d.msg {
            Message::Packet(h) => HeaderSpan::Len(h.datagram_header_len()),
            _ => HeaderSpan::Whole,
        };
        self.forward(m, &d, p.src_mac, p.dst_mac, span, out)
    }

    fn relay_register(
        &mut self,
        m: &Inbound<'_>,
        r: &Register,
        out: &mut Outbox,
    ) -> Result<(), DropReason> {
        if r.dst_mac.is_multi_or_broadcast() {
            return Err(DropReason::Unsupported);
        }
        self.check_stamp(m, &r.src_mac, false)?;
        self.check_sender(m, &r.src_mac)?;
        let d = self.relayed(
            m,
            Message::Register(Register {
                sock: Some(Sock::from(m.from)),
                ..*r
            }),
        );
        self.forward(m, &d, r.src_mac, r.dst_mac, HeaderSpan::Whole, out)
    }

    /// We relay only for our own registered edges, from the address each registered from
    /// (its port may change behind a NAT), or what a federation member passes on: a host
    /// that is not an edge here cannot use the supernode to send into a community, and the
    /// broadcast budget is charged to a registered edge's address.
    fn check_sender(&self, m: &Inbound<'_>, src: &Mac) -> Result<(), DropReason> {
        if m.relayed_by_supernode() {
            return Ok(());
        }
        match self.communities[m.community].edges.get(src) {
            Some(e) if e.sock.ip() == m.from.ip() => Ok(()),
            _ => Err(DropReason::UnknownSender),
        }
    }

    /// What a relay passes on: what a supernode relayed already goes on unchanged (spec
    /// §3.6); an edge's goes out with TTL − 1, FROM_SUPERNODE and `with_sock` (the same message
    /// carrying the sender's public socket).
    fn relayed(&self, m: &Inbound<'_>, with_sock: Message) -> Datagram {
        if m.relayed_by_supernode() {
            return m.datagram.clone();
        }
        Datagram {
            ttl: m.datagram.ttl - 1,
            flags: m.datagram.flags.with(Flags::FROM_SUPERNODE),
            community: self.communities[m.community].name,
            msg: with_sock,
        }
    }

    /// Unicast to the destination edge, or fan out a broadcast to every other edge (spec
    /// §7.8). What did not come from a supernode also reaches the federation: broadcasts to
    /// every active member, unicasts to the member the destination is registered at (all of
    /// them when unknown).
    fn forward(
        &mut self,
        m: &Inbound<'_>,
        d: &Datagram,
        src: Mac,
        dst: Mac,
        span: HeaderSpan,
        out: &mut Outbox,
    ) -> Result<(), DropReason> {
        let c = &self.communities[m.community];
        let mut dests = std::mem::take(&mut self.scratch_dests);
        dests.clear();
        if dst.is_multi_or_broadcast() {
            // Edges whose address has not shown it receives share one copy per public IP
            // address: registering many MACs at someone else's address multiplies nothing.
            let mut unproven = std::mem::take(&mut self.scratch_unproven);
            unproven.clear();
            for e in c.edges.values().filter(|e| e.mac != src) {
                if e.proven {
                    dests.push(e.sock);
                } else {
                    unproven.push(e.sock);
                }
            }
            unproven.sort_unstable();
            unproven.dedup_by_key(|s| s.ip());
            dests.extend_from_slice(&unproven);
            self.scratch_unproven = unproven;
            if !m.relayed_by_supernode() {
                dests.extend(self.federation.active(m.now_us));
            }
            // One copy per socket, however many MACs claim it (one edge, one socket).
            dests.sort_unstable();
            dests.dedup();
            if !m.relayed_by_supernode() && !self.budget.take(m.from.ip(), dests.len(), m.now_us) {
                self.scratch_dests = dests;
                return Err(DropReason::BroadcastBudget);
            }
            self.stats.broadcast_tx += dests.len() as u64;
        } else if let Some(e) = c.edges.get(&dst) {
            dests.push(e.sock);
            self.stats.forward_tx += 1;
        } else if !m.relayed_by_supernode() {
            match c.assoc.get(&dst) {
                Some(a) => dests.push(a.supernode),
                None => dests.extend(self.federation.active(m.now_us)),
            }
            self.stats.forward_tx += dests.len().min(1) as u64;
        }
        let result = if dests.is_empty() {
            Err(DropReason::UnknownDestination)
        } else {
            self.stats.last_fwd_us = m.now_us;
            self.send(m, d, m.rest, span, &dests, out);
            Ok(())
        };
        self.scratch_dests = dests;
        if dst.is_multi_or_broadcast() {
            return Ok(());
        }
        result
    }

    /// Encodes `d` followed by `tail`, encrypts the header if the community is encrypted, and
    /// queues it for `dests`.
    fn send(
        &mut self,
        m: &Inbound<'_>,
        d: &Datagram,
        tail: &[u8],
        span: HeaderSpan,
        dests: &[SocketAddr],
        out: &mut Outbox,
    ) {
        self.send_with(m, d, tail, span, Trailer::None, dests, out);
    }

    /// [`Self::send`] with a user/password trailer. In such communities registrations and
    /// their answers use the static key, everything else the dynamic key, and a PACKET's
    /// encrypted header also covers up to 16 payload bytes (the cipher's IV; spec §4.5).
    #[allow(clippy::too_many_arguments)]
    fn send_with(
        &mut self,
        m: &Inbound<'_>,
        d: &Datagram,
        tail: &[u8],
        span: HeaderSpan,
        trailer: Trailer,
        dests: &[SocketAddr],
        out: &mut Outbox,
    ) {
        let encrypted = self.communities[m.community].header == HeaderMode::Encrypted;
        let stamp = encrypted.then(|| self.stamps.next(m.wall_us));
        let random = self.random_u32();
        let c = &self.communities[m.community];
        let registration = matches!(
            d.msg,
            Message::RegisterSuper(_) | Message::RegisterSuperAck(_) | Message::RegisterSuperNak(_)
        );
        let key = match (stamp, c.key_for(registration)) {
            (Some(stamp), Some(key)) => Some((key, stamp, random)),
            _ => None,
        };
        let hl = match span {
            HeaderSpan::Whole => None,
            HeaderSpan::Len(n) if c.users.is_some() => Some(n + tail.len().min(16)),
            HeaderSpan::Len(n) => Some(n),
        };
        send_datagram(out, d, tail, hl, key, dests);
        let Some(users) = &c.users else { return };
        let Some(data) = out.last_data_mut() else {
            return;
        };
        match trailer {
            Trailer::None => {}
            Trailer::User(public) => {
                if let Some(u) = users.user_of_key(&public) {
                    let t = u.trailer(data);
                    data.extend_from_slice(&t);
                }
            }
            // n2n appends 16 bytes of no meaning to a NAK in these communities.
            Trailer::Junk => {
                let t = n2n_crypto::pearson::pearson_hash_128(data);
                data.extend_from_slice(&t);
            }
        }
    }
}

/// A supernode's answer passed on to our edge as it came, but for TTL − 1 (spec §7.8).
fn passed_on(m: &Inbound<'_>) -> Datagram {
    Datagram {
        ttl: m.datagram.ttl - 1,
        ..m.datagram.clone()
    }
}

/// What follows a datagram in a user/password community (spec §4.7).
#[derive(Clone, Copy)]
enum Trailer {
    None,
    /// The user's trailer: registrations forwarded and ACKs.
    User([u8; 32]),
    /// NAKs.
    Junk,
}
