//! Federation (spec §7.9) with simulated time: supernodes on a tiny virtual network.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

use n2n_crypto::{HeaderKey, Xorshift128Plus};
use n2n_proto::msg::*;
use n2n_proto::*;

use super::*;

const T0: u64 = 1_800_000_000_000_000;
const S: u64 = 1_000_000;

fn sn_addr(n: u8) -> SocketAddr {
    SocketAddr::from(([198, 18, 0, n], 7654))
}

fn edge_addr(n: u8) -> SocketAddr {
    SocketAddr::from(([198, 18, 9, n], 40000))
}

fn mac(n: u8) -> Mac {
    Mac([2, 0, 0, 0, 0, n])
}

fn supernode(n: u8, federation: &str) -> Supernode {
    let cfg = MachineConfig {
        mac: mac(0xf0 + n),
        federation: federation_community(federation),
        listen: Some(sn_addr(n)),
        ..MachineConfig::default()
    };
    Supernode::new(cfg, T0, Box::new(Xorshift128Plus::seeded(u64::from(n))))
}

/// Supernodes by address; what they send to anyone else is kept for the test.
struct Net {
    now: u64,
    sns: HashMap<SocketAddr, Supernode>,
    queue: VecDeque<(SocketAddr, SocketAddr, Vec<u8>)>,
    to_edges: Vec<(SocketAddr, SocketAddr, Vec<u8>)>,
}

impl Net {
    fn new(sns: Vec<(u8, &str)>) -> Net {
        Net {
            now: T0,
            sns: sns
                .into_iter()
                .map(|(n, f)| (sn_addr(n), supernode(n, f)))
                .collect(),
            queue: VecDeque::new(),
            to_edges: Vec::new(),
        }
    }

    fn sn(&self, n: u8) -> &Supernode {
        &self.sns[&sn_addr(n)]
    }

    fn queue_out(&mut self, from: SocketAddr, out: &Outbox) {
        for t in out.transmits() {
            for d in &t.dests {
                self.queue.push_back((from, *d, t.data.clone()));
            }
        }
    }

    fn anchor(&mut self, n: u8, to: SocketAddr) -> bool {
        let mut out = Outbox::default();
        let now = self.now;
        let added = self
            .sns
            .get_mut(&sn_addr(n))
            .expect("sn")
            .add_anchor(now, to, &mut out);
        self.queue_out(sn_addr(n), &out);
        self.run();
        added
    }

    fn send(&mut self, from: SocketAddr, to: SocketAddr, bytes: Vec<u8>) {
        self.queue.push_back((from, to, bytes));
        self.run();
    }

    fn run(&mut self) {
        let mut out = Outbox::default();
        while let Some((from, to, mut bytes)) = self.queue.pop_front() {
            match self.sns.get_mut(&to) {
                Some(s) => {
                    s.handle_datagram(self.now, from, &mut bytes, &mut out);
                    self.queue_out(to, &out);
                }
                None => self.to_edges.push((from, to, bytes)),
            }
        }
    }

    fn advance(&mut self, us: u64) {
        let end = self.now + us;
        while self.now < end {
            self.now = (self.now + S).min(end);
            let mut out = Outbox::default();
            let addrs: Vec<SocketAddr> = self.sns.keys().copied().collect();
            for a in addrs {
                let now = self.now;
                self.sns
                    .get_mut(&a)
                    .expect("sn")
                    .handle_timeout(now, &mut out);
                self.queue_out(a, &out);
            }
            self.run();
        }
    }

    fn edge_mail(&mut self, to: SocketAddr) -> Vec<(SocketAddr, Datagram)> {
        let (mine, rest) = std::mem::take(&mut self.to_edges)
            .into_iter()
            .partition(|(_, t, _)| *t == to);
        self.to_edges = rest;
        mine.into_iter()
            .map(|(f, _, b)| (f, Datagram::decode(&b).expect("plain edge traffic").0))
            .collect()
    }
}

fn register(n: u8) -> Vec<u8> {
    register_in("net", n)
}

/// Edge `n`'s registration in `community`.
fn register_in(community: &str, n: u8) -> Vec<u8> {
    Datagram::new(
        Community::new(community).expect("valid"),
        Flags::EMPTY,
        Message::RegisterSuper(RegisterSuper {
            cookie: 0x100 + u32::from(n),
            edge_mac: mac(n),
            sock: None,
            dev_addr: IpSubnet::new([10, 0, 0, n].into(), 24),
            desc: Desc::from_text("host"),
            auth: Auth::new(auth_scheme::SIMPLE_ID, &[n; 16]).expect("16"),
            key_time: 0,
        }),
    )
    .to_vec()
}

fn packet(src: u8, dst: Mac) -> Vec<u8> {
    let mut v = Datagram::new(
        Community::new("net").expect("valid"),
        Flags::EMPTY,
        Message::Packet(PacketHeader {
            src_mac: mac(src),
            dst_mac: dst,
            sock: None,
            compression: 1,
            transform: 1,
        }),
    )
    .to_vec();
    v.extend_from_slice(b"frame bytes");
    v
}

fn query(src: u8, target: Mac) -> Vec<u8> {
    Datagram::new(
        Community::new("net").expect("valid"),
        Flags::EMPTY,
        Message::QueryPeer(QueryPeer {
            src_mac: mac(src),
            target_mac: target,
            aflags: 0,
        }),
    )
    .to_vec()
}

/// Two federated supernodes with edge 1 at supernode 1 and edge 2 at supernode 2.
fn pair() -> Net {
    let mut net = Net::new(vec![(1, "fed"), (2, "fed")]);
    assert!(net.anchor(1, sn_addr(2)));
    assert!(net.anchor(2, sn_addr(1)));
    net.send(edge_addr(1), sn_addr(1), register(1));
    net.send(edge_addr(2), sn_addr(2), register(2));
    net.to_edges.clear();
    net
}

#[test]
fn supernodes_join_with_encrypted_registrations() {
    let mut net = Net::new(vec![(1, "fed"), (2, "fed")]);
    let mut out = Outbox::default();
    let s1 = net.sns.get_mut(&sn_addr(1)).expect("sn");
    assert!(s1.add_anchor(T0, sn_addr(2), &mut out));
    // The registration is header-encrypted with the federation key, as n2n's.
    let mut bytes = out.transmits()[0].data.clone();
    // n2n keys it from the default name; the checksum covers the -F name.
    let key = HeaderKey::for_community(&federation_community("Federation"));
    assert!(
        key.decrypt(&mut bytes, &federation_community("fed"))
            .is_some()
    );
    let (d, _) = Datagram::decode(&bytes).expect("decodes");
    assert_eq!(d.flags, Flags::FROM_SUPERNODE);
    let Message::RegisterSuper(r) = d.msg else {
        panic!("not a registration")
    };
    assert_eq!(r.edge_mac, mac(0xf1));
    net.queue_out(sn_addr(1), &out);
    net.run();
    // Each knows the other, with its MAC, as heard from now.
    for (me, other) in [(1, 2), (2, 1)] {
        let m = &net.sn(me).federation().members;
        assert_eq!(m.len(), 1);
        assert_eq!((m[0].sock, m[0].mac), (sn_addr(other), mac(0xf0 + other)));
        assert_eq!(m[0].last_seen_us, T0, "{me} heard from {other}");
    }
}

#[test]
fn edges_on_different_supernodes_reach_each_other() {
    let mut net = pair();
    // Supernode 2 learnt from the forwarded registration that edge 1 is at supernode 1.
    let assoc = &net.sn(2).communities()[0].assoc;
    assert_eq!(assoc.get(&mac(1)).map(|a| a.supernode), Some(sn_addr(1)));
    // A look-up at supernode 2 for edge 1 is answered by supernode 1, through supernode 2.
    net.send(edge_addr(2), sn_addr(2), query(2, mac(1)));
    let mail = net.edge_mail(edge_addr(2));
    let Some((via, Message::PeerInfo(pi))) = mail.first().map(|(f, d)| (*f, d.msg.clone())) else {
        panic!("no PEER_INFO: {mail:?}")
    };
    assert_eq!(via, sn_addr(2));
    assert_eq!((pi.src_mac, pi.mac), (mac(2), mac(1)));
    assert_eq!(
        SocketAddr::from(pi.sock),
        edge_addr(1),
        "edge 1's public socket"
    );
    // A PACKET goes sn2 → sn1 → edge 1, carrying edge 2's socket, payload untouched.
    net.send(edge_addr(2), sn_addr(2), packet(2, mac(1)));
    let mail = net.edge_mail(edge_addr(1));
    assert_eq!(mail.len(), 1);
    let (via, d) = &mail[0];
    assert_eq!(*via, sn_addr(1));
    let Message::Packet(p) = d.msg else {
        panic!("not a packet")
    };
    assert_eq!(p.sock.map(SocketAddr::from), Some(edge_addr(2)));
    assert!(d.flags.contains(Flags::FROM_SUPERNODE));
    // A broadcast reaches the other supernode's edge once, and comes back to nobody.
    net.send(edge_addr(1), sn_addr(1), packet(1, Mac::BROADCAST));
    assert_eq!(net.edge_mail(edge_addr(2)).len(), 1);
    assert!(net.edge_mail(edge_addr(1)).is_empty());
}

#[test]
fn acks_to_edges_name_the_other_supernodes() {
    let mut net = Net::new(vec![(1, "fed"), (2, "fed"), (3, "fed")]);
    net.anchor(1, sn_addr(2));
    net.anchor(3, sn_addr(1));
    net.advance(25 * S);
    net.send(edge_addr(1), sn_addr(1), register(1));
    let mail = net.edge_mail(edge_addr(1));
    let Some(Message::RegisterSuperAck(ack)) = mail.first().map(|(_, d)| d.msg.clone()) else {
        panic!("no ACK")
    };
    let mut named: Vec<_> = ack
        .supernodes
        .iter()
        .map(|e| e.socket_v4().map(SocketAddr::V4))
        .collect();
    named.sort();
    assert_eq!(named, vec![Some(sn_addr(2)), Some(sn_addr(3))]);
    // Supernode 2 learnt of 3 through 1's ACK and registered with it.
    assert!(net.sn(2).federation().member_by_sock(sn_addr(3)).is_some());
}

#[test]
fn a_wrong_federation_name_is_refused() {
    let mut net = Net::new(vec![(1, "fed"), (2, "other")]);
    net.anchor(2, sn_addr(1));
    assert!(net.sn(1).federation().members.is_empty());
    assert_eq!(net.sn(1).stats().dropped_for(DropReason::Undecryptable), 1);
    assert_eq!(net.sn(2).federation().members[0].last_seen_us, 0);
}

#[test]
fn forged_supernode_traffic_cannot_move_or_reach_edges() {
    let mut net = pair();
    // An outsider claims edge 1 registered at its "supernode": plain, FROM_SUPERNODE|SOCKET.
    let forged = Datagram::new(
        Community::new("net").expect("valid"),
        Flags::FROM_SUPERNODE,
        Message::RegisterSuper(RegisterSuper {
            cookie: 1,
            edge_mac: mac(1),
            sock: Some(Sock::from(edge_addr(66))),
            dev_addr: IpSubnet::new([10, 0, 0, 1].into(), 24),
            desc: Desc::from_text("evil"),
            auth: Auth::new(auth_scheme::SIMPLE_ID, &[1; 16]).expect("16"),
            key_time: 0,
        }),
    )
    .to_vec();
    net.send(edge_addr(66), sn_addr(1), forged);
    assert_eq!(net.sn(1).edge_count(), 1, "edge 1 stays registered");
    assert_eq!(net.sn(1).stats().dropped_for(DropReason::NotAMember), 1);
    // Nor may it inject a "relayed" PACKET.
    let mut relayed = packet(3, mac(1));
    relayed[3] |= 0x20;
    net.send(edge_addr(66), sn_addr(1), relayed);
    assert!(net.edge_mail(edge_addr(1)).is_empty());
    assert_eq!(net.sn(1).stats().dropped_for(DropReason::NotAMember), 2);
}

#[test]
fn itself_and_duplicates_are_ignored() {
    let mut net = Net::new(vec![(1, "fed"), (2, "fed")]);
    assert!(!net.anchor(1, sn_addr(1)), "its own address");
    assert!(
        !net.anchor(1, SocketAddr::from(([127, 0, 0, 1], 7654))),
        "loopback, same port"
    );
    assert!(net.anchor(1, sn_addr(2)));
    assert!(!net.anchor(1, sn_addr(2)), "listed twice");
    assert_eq!(net.sn(1).federation().members.len(), 1);
    // An address that turns out to be itself (its own MAC comes back) is dropped.
    let other_self = SocketAddr::from(([198, 18, 7, 1], 7654));
    let mut out = Outbox::default();
    let s1 = net.sns.get_mut(&sn_addr(1)).expect("sn");
    assert!(s1.add_anchor(T0, other_self, &mut out));
    let mut bytes = out.transmits()[0].data.clone();
    s1.handle_datagram(T0, other_self, &mut bytes, &mut out);
    assert!(s1.federation().member_by_sock(other_self).is_none());
}

#[test]
fn silent_anchors_are_retried_with_backoff() {
    let mut net = Net::new(vec![(1, "fed")]);
    net.anchor(1, sn_addr(9)); // nobody there
    let mut sent_at = Vec::new();
    for _ in 0..300 {
        net.advance(S);
        for (_, to, _) in net.to_edges.drain(..) {
            assert_eq!(to, sn_addr(9));
            sent_at.push((net.now - T0) / S);
        }
    }
    let gaps: Vec<u64> = sent_at.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(
        &gaps[..5],
        &[10, 20, 40, 80, 80],
        "registrations at {sent_at:?}"
    );
    assert_eq!(net.sn(1).federation().members.len(), 1, "anchors stay");
}

#[test]
fn a_dead_supernodes_edges_are_reached_again_when_they_re_home() {
    let mut net = pair();
    net.sns.remove(&sn_addr(1));
    // Edge 1 fails over to supernode 2: its registration there replaces the association.
    net.send(edge_addr(1), sn_addr(2), register(1));
    assert!(!net.sn(2).communities()[0].assoc.contains_key(&mac(1)));
    net.to_edges.clear();
    net.send(edge_addr(2), sn_addr(2), packet(2, mac(1)));
    assert_eq!(net.edge_mail(edge_addr(1)).len(), 1);
}

#[test]
fn a_forged_registration_with_our_mac_cuts_nobody_off() {
    let mut net = pair();
    // Someone who knows the federation name sends "our own" registration from supernode 2's
    // address: not the cookie we sent there, so it is neither us nor a reason to drop it.
    let name = federation_community("fed");
    let key = HeaderKey::for_community(&federation_community("Federation"));
    let mut forged = Datagram::new(
        name,
        Flags::FROM_SUPERNODE,
        Message::RegisterSuper(RegisterSuper {
            cookie: 0xdead_beef,
            edge_mac: mac(0xf1),
            sock: None,
            dev_addr: IpSubnet::UNSPECIFIED,
            desc: Desc::default(),
            auth: Auth::NONE,
            key_time: 0,
        }),
    )
    .to_vec();
    let n = forged.len();
    key.encrypt(&mut forged, n, n2n_crypto::header_enc::stamp_at(net.now), 7);
    net.send(sn_addr(2), sn_addr(1), forged);
    assert!(net.sn(1).federation().member_by_sock(sn_addr(2)).is_some());
    net.send(edge_addr(2), sn_addr(2), packet(2, mac(1)));
    assert_eq!(
        net.edge_mail(edge_addr(1)).len(),
        1,
        "the federation still relays"
    );
}

#[test]
fn a_member_forwards_more_communities_than_one_address_may_create() {
    let mut net = pair();
    let cap = MachineConfig::default().max_communities_per_ip as u8;
    // cap + 4 edges, each in its own community and from its own address, at supernode 1.
    for n in 10..10 + cap + 4 {
        net.send(
            edge_addr(n),
            sn_addr(1),
            register_in(&format!("team{n}"), n),
        );
    }
    // Supernode 2 learnt every one of them from supernode 1's forwarded registrations.
    let teams = net
        .sn(2)
        .communities()
        .iter()
        .filter(|c| c.name.to_string().starts_with("team"))
        .count();
    assert_eq!(teams, usize::from(cap) + 4);
}
