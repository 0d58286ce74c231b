//! Peer-to-peer (spec §7.5–7.6): LAN discovery, hole punching with REGISTER/REGISTER_ACK,
//! path ranking, keep-alives and the routes the data path may use.

use std::net::SocketAddr;

use n2n_proto::msg::*;
use n2n_proto::{Datagram, Flags, IpSubnet, Mac, Message, cookie};
use tracing::info;

use super::*;

impl Edge {
    /// Spec §7.6: REGISTER(MCAST) to the LAN group, so edges on our LAN answer directly.
    pub(super) fn announce_on_lan(&mut self, now_us: u64) {
        if self.cfg.lan_discovery && self.cfg.dev_addr.is_some() {
            self.send_register(Mac::NULL, LAN_GROUP, cookie::MCAST, now_us);
        }
    }

    /// A REGISTER heard on the LAN multicast group (spec §7.6): answered like a direct one.
    /// The Tunnel opened it and checked its stamp (with jitter).
    pub fn handle_lan(&mut self, now_us: u64, from: SocketAddr, d: Datagram) {
        let Message::Register(r) = &d.msg else { return };
        if !self.cfg.lan_discovery
            || d.community.as_bytes() != self.cfg.community.as_bytes()
            || d.flags.contains(Flags::FROM_SUPERNODE)
            || r.src_mac == self.cfg.mac
            || (r.dst_mac != Mac::NULL && r.dst_mac != self.cfg.mac)
        {
            return;
        }
        // Heard on the link-local group, so a neighbour: our REGISTER back says so, and its
        // ACK ranks the path as found on the LAN.
        self.answer_register(now_us, from, r, cookie::MCAST);
    }

    /// A REGISTER that reached us directly (unicast or on the LAN group): ACK it to its
    /// sender, echoing the cookie, and register towards that socket in turn.
    /// `cookie`: what our REGISTER back carries (its ACK's rank of the path).
    pub(super) fn answer_register(
        &mut self,
        now_us: u64,
        from: SocketAddr,
        r: &Register,
        cookie_value: u32,
    ) {
        let ack = Message::RegisterAck(RegisterAck {
            cookie: r.cookie,
            dst_mac: r.src_mac,
            src_mac: self.cfg.mac,
            sock: None,
        });
        self.emit(from, Flags::EMPTY, ack, now_us);
        self.pending.remove(&r.src_mac);
        self.registration_check_with(now_us, r.src_mac, from, false, cookie_value);
        self.note_details(r);
    }

    /// Keeps a peer's address and description from its REGISTER (management API only).
    pub(super) fn note_details(&mut self, r: &Register) {
        let d = Details {
            dev_addr: Some(r.dev_addr).filter(|a| !a.addr.is_unspecified()),
            desc: r.desc,
        };
        if let Some(p) = self.pending.get_mut(&r.src_mac) {
            p.details = d;
        }
        if let Some(k) = self.known.get_mut(&r.src_mac) {
            k.details = d;
        }
    }

    /// Direct REGISTERs to known peers that have been quiet, so the NAT mappings and the
    /// peer-to-peer state stay alive even when traffic flows one way only.
    pub(super) fn keepalive(&mut self, now_us: u64) {
        let mut due = Vec::new();
        for (mac, k) in &mut self.known {
            if now_us >= k.last_register_us + KEEPALIVE_US {
                // Checked again in KEEPALIVE_US; a REGISTER goes only to peers that were quiet.
                k.last_register_us = now_us;
                if now_us.saturating_sub(k.last_rx_us) >= KEEPALIVE_US {
                    due.push((*mac, k.sock));
                }
            }
        }
        for (mac, sock) in due {
            self.send_register(mac, sock, cookie::REGULAR, now_us);
        }
    }

    pub(super) fn register_msg(&self, dst_mac: Mac, cookie_value: u32) -> Message {
        Message::Register(Register {
            cookie: cookie_value,
            src_mac: self.cfg.mac,
            dst_mac,
            sock: None,
            dev_addr: self.cfg.dev_addr.unwrap_or(IpSubnet::UNSPECIFIED),
            desc: self.cfg.desc,
        })
    }

    pub(super) fn send_register(
        &mut self,
        dst_mac: Mac,
        to: SocketAddr,
        cookie_value: u32,
        now_us: u64,
    ) {
        if let Some(p) = self.pending.get_mut(&dst_mac) {
            p.probe(to);
        }
        let msg = self.register_msg(dst_mac, cookie_value);
        self.emit(to, Flags::EMPTY, msg, now_us);
    }

    /// `-L n > 1`: REGISTER(PORT) with IP TTL n to the peer's public port and the 15 after
    /// it, opening our NAT towards the ports its NAT is likely to pick next.
    pub(super) fn port_prediction_burst(&mut self, mac: Mac, sock: SocketAddr, now_us: u64) {
        for i in 0..16u16 {
            let mut to = sock;
            to.set_port(sock.port().wrapping_add(i));
            if let Some(p) = self.pending.get_mut(&mac) {
                p.probe(to);
            }
            let msg = self.register_msg(mac, cookie::PORT);
            let data = self.encode(Flags::EMPTY, msg, now_us);
            self.actions.push_back(Action::TransmitTtl {
                dst: to,
                data,
                ttl: self.cfg.register_ttl,
            });
        }
    }

    pub(super) fn on_peer_info(&mut self, now_us: u64, p: PeerInfo) -> Result<(), Refusal> {
        if !self.cfg.p2p {
            return Err(Refusal::NotForUs);
        }
        if !self.pending.contains_key(&p.mac) && !self.known.contains_key(&p.mac) {
            return Err(Refusal::StaleAnswer);
        }
        let sock = SocketAddr::from(p.sock);
        if let Some(pe) = self.pending.get_mut(&p.mac) {
            pe.sock = Some(sock);
            pe.last_seen_us = now_us;
        }
        if let Some(pref) = p.preferred_sock.filter(|s| !s.is_loopback()) {
            self.send_register(p.mac, SocketAddr::from(pref), cookie::LOCAL, now_us);
        }
        self.send_register(p.mac, sock, cookie::REGULAR, now_us);
        Ok(())
    }

    pub(super) fn on_register_ack(
        &mut self,
        now_us: u64,
        from: SocketAddr,
        a: RegisterAck,
    ) -> Result<(), Refusal> {
        if a.dst_mac != self.cfg.mac || !self.cfg.p2p {
            return Err(Refusal::NotForUs);
        }
        // Only an answer from where we registered: the known path itself, or a socket a
        // pending registration went to.
        let expected = self.known.get(&a.src_mac).is_some_and(|k| k.sock == from)
            || self
                .pending
                .get(&a.src_mac)
                .is_some_and(|p| p.probed(&from));
        if !expected {
            return Err(Refusal::Unasked);
        }
        let details = self.pending.remove(&a.src_mac).map(|p| p.details);
        let fresh = !self.known.contains_key(&a.src_mac);
        if fresh && self.known.len() >= MAX_PEERS {
            return Err(Refusal::Full);
        }
        let auth = self.cfg.authenticated_paths;
        let vouched = self.vouched.get(&a.src_mac) == Some(&from);
        let k = self
            .known
            .entry(a.src_mac)
            .or_insert_with(|| Known::new(from, a.cookie, now_us));
        let moved = k.sock != from;
        // Spec §7.5: a path ranked lower (e.g. NAT after LAN) replaces a recent one only
        // after 15 s.
        if moved && a.cookie < k.cookie && now_us < k.confirmed_us + PATH_HOLD_US {
            return Ok(());
        }
        if auth && moved && k.verified && !vouched {
            // An unauthenticated ACK never moves a verified path: the new socket must first
            // prove itself with an authenticated packet (our probe makes the peer send one).
            k.candidate = Some(from);
            self.actions.push_back(Action::Probe {
                mac: a.src_mac,
                to: from,
            });
            return Ok(());
        }
        let was_verified = k.verified && !fresh;
        k.verified = !auth || vouched || (k.verified && !moved && !fresh);
        k.candidate = None;
        k.sock = from;
        k.cookie = a.cookie;
        k.confirmed_us = now_us;
        if let Some(d) = details {
            k.details = d;
        }
        k.touch(now_us);
        if !k.verified {
            // -A6/-A7: used once the peer answers our probe with an authenticated packet.
            self.actions.push_back(Action::Probe {
                mac: a.src_mac,
                to: from,
            });
            return Ok(());
        }
        if !was_verified || moved {
            self.path_confirmed(now_us, a.src_mac, from);
            if auth {
                // The peer may still wait for an authenticated packet from us (one-way
                // traffic would never send it one): a probe back ends the exchange.
                self.actions.push_back(Action::Probe {
                    mac: a.src_mac,
                    to: from,
                });
            }
        }
        Ok(())
    }

    /// A direct path to `mac` at `from` is in use from now on.
    fn path_confirmed(&mut self, now_us: u64, mac: Mac, from: SocketAddr) {
        self.stats.last_p2p_us = now_us;
        // Direct now: its traffic no longer depends on the supernode.
        self.watch.peer_went_direct(&mac);
        info!(peer = %mac, %from, "peer-to-peer path confirmed");
        self.actions.push_back(Action::RoutesChanged);
        self.actions.push_back(Action::PeerEvent {
            action: peer_action::ADD_P2P,
            mac,
            sock: from,
        });
    }

    /// `-A6`/`-A7`: an authenticated PACKET came directly from `mac` at `from`; a path there
    /// waiting for exactly that is used from now on.
    fn verified_by_packet(&mut self, now_us: u64, mac: Mac, from: SocketAddr) {
        if self.vouched.len() >= MAX_PEERS && !self.vouched.contains_key(&mac) {
            return;
        }
        self.vouched.insert(mac, from);
        let Some(k) = self.known.get_mut(&mac) else {
            return;
        };
        if k.candidate == Some(from) || (k.sock == from && !k.verified) {
            k.sock = from;
            k.verified = true;
            k.candidate = None;
            k.touch(now_us);
            self.path_confirmed(now_us, mac, from);
            // As in `on_register_ack`: the peer may wait for ours.
            self.actions.push_back(Action::Probe { mac, to: from });
        }
    }

    /// A hint from the data path.
    pub fn handle_hint(&mut self, now_us: u64, hint: PeerHint) {
        match hint {
            // Our unicast traffic through the supernode; broadcasts do not count, or every
            // edge of a chatty community would watch its supernode all the time.
            PeerHint::Need(mac)
            | PeerHint::Relayed {
                mac, unicast: true, ..
            } => self.note_relayed(now_us, mac),
            PeerHint::Relayed { .. } => {}
            PeerHint::Direct { .. } => {}
        }
        if !self.cfg.p2p {
            return;
        }
        match hint {
            PeerHint::Need(mac) => self.query_peer(now_us, mac),
            PeerHint::Direct { mac, from } => {
                if self.cfg.authenticated_paths {
                    self.verified_by_packet(now_us, mac, from);
                }
                self.pending.remove(&mac);
                self.registration_check(now_us, mac, from, false);
            }
            PeerHint::Relayed { mac, sock, .. } => self.registration_check(now_us, mac, sock, true),
        }
    }

    /// Spec §7.5 step 2: REGISTER via the supernode and QUERY_PEER, at most once per interval.
    pub(super) fn query_peer(&mut self, now_us: u64, mac: Mac) {
        if self.known.contains_key(&mac)
            && self.known[&mac].fresh(now_us, self.cfg.register_interval_us / 2)
        {
            return;
        }
        let interval = self.cfg.register_interval_us;
        let p = self
            .pending
            .entry(mac)
            .or_insert_with(|| Pending::new(None, now_us));
        if p.last_query_us != 0 && now_us < p.last_query_us + interval {
            return;
        }
        p.last_query_us = now_us;
        let sn = self.supernode();
        self.send_register(mac, sn, cookie::FORWARDED, now_us);
        let q = Message::QueryPeer(QueryPeer {
            src_mac: self.cfg.mac,
            target_mac: mac,
            aflags: 0,
        });
        self.emit(sn, Flags::EMPTY, q, now_us);
    }

    /// Spec §7.5 "registration check": start or refresh the hole punching towards `mac`.
    pub(super) fn registration_check(
        &mut self,
        now_us: u64,
        mac: Mac,
        sock: SocketAddr,
        via_supernode: bool,
    ) {
        self.registration_check_with(now_us, mac, sock, via_supernode, cookie::REGULAR);
    }

    /// [`Self::registration_check`] whose direct REGISTER carries `direct_cookie`.
    fn registration_check_with(
        &mut self,
        now_us: u64,
        mac: Mac,
        sock: SocketAddr,
        via_supernode: bool,
        direct_cookie: u32,
    ) {
        if mac == self.cfg.mac || mac.is_multi_or_broadcast() {
            return;
        }
        if let Some(k) = self.known.get_mut(&mac) {
            if !via_supernode && k.sock == sock {
                k.touch(now_us);
                return;
            }
            if k.fresh(now_us, self.cfg.register_interval_us / 2) {
                return;
            }
        }
        if !self.pending.contains_key(&mac) && self.pending.len() >= MAX_PEERS {
            return;
        }
        let p = self
            .pending
            .entry(mac)
            .or_insert_with(|| Pending::new(Some(sock), now_us));
        p.sock = Some(sock);
        p.last_seen_us = now_us;
        if p.last_register_us != 0 && now_us < p.last_register_us + 1_000_000 {
            return;
        }
        p.last_register_us = now_us;
        if !via_supernode {
            self.send_register(mac, sock, direct_cookie, now_us);
        } else {
            match self.cfg.register_ttl {
                0 => self.send_register(mac, sock, cookie::REGULAR, now_us),
                1 => {}
                _ => self.port_prediction_burst(mac, sock, now_us),
            }
            let sn = self.supernode();
            self.send_register(mac, sn, cookie::FORWARDED, now_us);
        }
        self.announce_on_lan(now_us);
    }

    /// Whether a known peer is fresh enough for the data plane to send to it directly
    /// (tests; the Tunnel decides from the published routes).
    #[cfg(test)]
    pub fn route(&self, mac: &Mac, now_us: u64) -> Option<SocketAddr> {
        self.known
            .get(mac)
            .filter(|k| k.verified && k.fresh(now_us, self.cfg.register_interval_us / 2))
            .map(|k| k.sock)
    }

    /// The confirmed direct paths and when each was last heard from.
    pub fn routes(&self) -> impl Iterator<Item = (Mac, SocketAddr, u64)> + '_ {
        self.known
            .iter()
            .filter(|(_, k)| k.verified)
            .map(|(m, k)| (*m, k.sock, k.last_rx_us))
    }
}
