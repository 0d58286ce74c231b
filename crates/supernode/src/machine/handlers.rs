//! What the supernode does with each message (spec §7.2, §7.8).

use std::net::SocketAddr;

use n2n_crypto::SenderStamp;
use n2n_proto::msg::{
    PacketHeader, PeerInfo, QueryPeer, Register, RegisterSuper, RegisterSuperAck, RegisterSuperNak,
    UnregisterSuper,
};
use n2n_proto::{Auth, Datagram, Flags, IpSubnet, Mac, Message, Sock, auth_scheme};
use tracing::{debug, info};

use super::registry::{Edge, HeaderMode, wants_address};
use super::{DropReason, Inbound, Outbox, Supernode};

/// REGISTER_SUPER_ACK lifetime field (always 15 in the reference).
const ACK_LIFETIME: u16 = 15;

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
        if m.datagram.flags.contains(Flags::FROM_SUPERNODE) {
            // Federation traffic comes in a later version.
            return Err(DropReason::Unsupported);
        }
        match &m.datagram.msg {
            Message::RegisterSuper(r) => {
                let r = *r;
                self.register_super(&m, &r, out)
            }
            Message::UnregisterSuper(u) => {
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
            _ => Err(DropReason::Unsupported),
        }
    }

    /// Per-sender time-stamp check for encrypted headers (spec §4.6); unknown senders were
    /// only frame-checked.
    fn check_stamp(&mut self, m: &Inbound<'_>, mac: &Mac, jitter: bool) -> Result<(), DropReason> {
        let Some(stamp) = m.stamp else { return Ok(()) };
        let c = &mut self.communities[m.community];
        if let Some(edge) = c.edges.get_mut(mac) {
            let slot = edge.stamp.get_or_insert_with(|| SenderStamp::new(m.now_us));
            if !slot.accept(stamp, jitter) {
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
        self.check_stamp(m, &r.edge_mac, false)?;
        let c = &self.communities[m.community];
        let assigned = if wants_address(&r.dev_addr) {
            c.assign_address(&r.desc)
        } else {
            IpSubnet::UNSPECIFIED
        };
        let accepted = if r.edge_mac.is_null() {
            true
        } else {
            self.update_edge(m, r)?
        };
        let community = self.communities[m.community].name;
        let msg = if accepted {
            Message::RegisterSuperAck(RegisterSuperAck {
                cookie: r.cookie,
                src_mac: self.cfg.mac,
                dev_addr: assigned,
                lifetime: ACK_LIFETIME,
                sock: Sock::from(m.from),
                auth: Auth::NONE,
                supernodes: Vec::new(),
                key_time: 0,
            })
        } else {
            self.stats.reg_super_nak += 1;
            info!(community = %community, mac = %r.edge_mac, "registration refused (MAC or IP address already in use)");
            Message::RegisterSuperNak(RegisterSuperNak {
                cookie: r.cookie,
                src_mac: r.edge_mac,
                auth: Auth::NONE,
            })
        };
        let d = Datagram::new(community, Flags::FROM_SUPERNODE.with(Flags::SOCKET), msg);
        self.send(m, &d, &[], HeaderSpan::Whole, &[m.from], out);
        Ok(())
    }

    /// Adds or refreshes the edge; `Ok(false)` means NAK (spec §7.2 step 7).
    fn update_edge(&mut self, m: &Inbound<'_>, r: &RegisterSuper) -> Result<bool, DropReason> {
        let protect = self.cfg.spoofing_protection;
        let max_edges = self.cfg.max_edges;
        let c = &mut self.communities[m.community];
        if c.has_users {
            // User/password communities need scheme 2, which is not implemented yet.
            return Ok(false);
        }
        let mac = r.edge_mac;
        if !c.edges.contains_key(&mac)
            && !r.dev_addr.addr.is_unspecified()
            && let Some(owner) = c.edge_with_ip(r.dev_addr.addr)
        {
            // The same address under a new MAC: the entry is re-keyed if the token matches.
            if !c
                .edges
                .get(&owner)
                .is_some_and(|e| auth_matches(&e.auth, &r.auth))
            {
                return Ok(false);
            }
            if let Some(mut e) = c.remove_edge(&owner) {
                e.mac = mac;
                c.insert_edge(e);
            }
        }
        let now = m.now_us;
        match c.edges.get(&mac) {
            Some(e) => {
                if !auth_matches(&e.auth, &r.auth) {
                    return Ok(false);
                }
                let mut e = e.clone();
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
                if !matches!(r.auth.scheme, auth_scheme::NONE | auth_scheme::SIMPLE_ID) {
                    return Ok(false);
                }
                if self.edge_count >= max_edges {
                    return Err(DropReason::RegistryFull);
                }
                let auth = if protect { r.auth } else { Auth::NONE };
                let stamp = m.stamp.map(|s| {
                    let mut slot = SenderStamp::new(now);
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
                });
                self.edge_count += 1;
                info!(community = %c.name, %mac, addr = %r.dev_addr, sock = %m.from, "edge registered");
            }
        }
        Ok(true)
    }

    fn unregister_super(&mut self, m: &Inbound<'_>, u: &UnregisterSuper) -> Result<(), DropReason> {
        self.check_stamp(m, &u.src_mac, false)?;
        let c = &mut self.communities[m.community];
        match c.edges.get(&u.src_mac) {
            Some(e) if auth_matches(&e.auth, &u.auth) => {
                c.remove_edge(&u.src_mac);
                self.edge_count -= 1;
                info!(community = %c.name, mac = %u.src_mac, "edge unregistered");
                Ok(())
            }
            Some(_) => Err(DropReason::BadAuth),
            None => Err(DropReason::UnknownDestination),
        }
    }

    fn query_peer(
        &mut self,
        m: &Inbound<'_>,
        q: &QueryPeer,
        out: &mut Outbox,
    ) -> Result<(), DropReason> {
        self.check_stamp(m, &q.src_mac, true)?;
        let c = &self.communities[m.community];
        let uptime = (m.now_us.saturating_sub(self.start_us) / 1_000_000) as u32;
        let info = if q.is_ping() {
            PeerInfo {
                aflags: 0,
                src_mac: self.cfg.mac,
                mac: Mac::NULL,
                sock: Sock::from(m.from),
                preferred_sock: None,
                load: 0,
                uptime,
                version: self.cfg.version,
            }
        } else {
            let target = c
                .edges
                .get(&q.target_mac)
                .ok_or(DropReason::UnknownDestination)?;
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
        };
        let d = Datagram::new(c.name, Flags::FROM_SUPERNODE, Message::PeerInfo(info));
        self.send(m, &d, &[], HeaderSpan::Whole, &[m.from], out);
        Ok(())
    }

    fn relay_packet(
        &mut self,
        m: &Inbound<'_>,
        p: &PacketHeader,
        out: &mut Outbox,
    ) -> Result<(), DropReason> {
        self.check_stamp(m, &p.src_mac, true)?;
        let relayed = PacketHeader {
            sock: Some(Sock::from(m.from)),
            ..*p
        };
        let d = Datagram {
            ttl: m.datagram.ttl - 1,
            flags: m.datagram.flags.with(Flags::FROM_SUPERNODE),
            community: self.communities[m.community].name,
            msg: Message::Packet(relayed),
        };
        let span = HeaderSpan::Len(relayed.datagram_header_len());
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
        let relayed = Register {
            sock: Some(Sock::from(m.from)),
            ..*r
        };
        let d = Datagram {
            ttl: m.datagram.ttl - 1,
            flags: m.datagram.flags.with(Flags::FROM_SUPERNODE),
            community: self.communities[m.community].name,
            msg: Message::Register(relayed),
        };
        self.forward(m, &d, r.src_mac, r.dst_mac, HeaderSpan::Whole, out)
    }

    /// Unicast to the destination edge, or fan out a broadcast to every other edge.
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
        if dst.is_multi_or_broadcast() {
            let mut dests = std::mem::take(&mut self.scratch_dests);
            dests.clear();
            dests.extend(c.edges.values().filter(|e| e.mac != src).map(|e| e.sock));
            if !dests.is_empty() {
                self.stats.broadcast_tx += dests.len() as u64;
                self.stats.last_fwd_us = m.now_us;
                self.send(m, d, m.rest, span, &dests, out);
            }
            self.scratch_dests = dests;
            return Ok(());
        }
        let to = c
            .edges
            .get(&dst)
            .ok_or(DropReason::UnknownDestination)?
            .sock;
        self.stats.forward_tx += 1;
        self.stats.last_fwd_us = m.now_us;
        self.send(m, d, m.rest, span, &[to], out);
        Ok(())
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
        let encrypted = self.communities[m.community].header == HeaderMode::Encrypted;
        let stamp = encrypted.then(|| self.stamps.next(m.now_us));
        let random = self.random_u32();
        let t = out.slot();
        t.data.resize(2048, 0);
        let Ok(n) = d.encode(&mut t.data) else {
            out.unslot();
            return;
        };
        t.data.truncate(n);
        t.data.extend_from_slice(tail);
        if let (Some(stamp), Some(key)) = (stamp, &self.communities[m.community].key) {
            let hl = match span {
                HeaderSpan::Whole => t.data.len(),
                HeaderSpan::Len(n) => n,
            };
            key.encrypt(&mut t.data, hl, stamp, random);
        }
        t.dests.extend_from_slice(dests);
        debug!(msg = ?d.msg.msg_type(), dests = dests.len(), "sending");
    }
}

/// Token check (spec §7.2 step 7): a stored scheme 0 accepts anything; otherwise scheme,
/// size and token must be identical.
fn auth_matches(stored: &Auth, presented: &Auth) -> bool {
    stored.scheme == auth_scheme::NONE || stored == presented
}
