//! Machine tests with simulated time (the vector replay in tests/ covers the reference's
//! exact answers; these cover timers, bounds, `-M` and header-encryption locking).

use std::net::SocketAddr;

use n2n_crypto::header_enc::stamp_at;
use n2n_crypto::{HeaderKey, Xorshift128Plus};
use n2n_proto::msg::*;
use n2n_proto::*;

use super::*;
use crate::community_list::CommunityList;

const T0: u64 = 1_800_000_000_000_000;

fn sn(list: Option<&str>, protect: bool, max_edges: usize) -> Supernode {
    let cfg = MachineConfig {
        communities: list.map(CommunityList::parse),
        spoofing_protection: protect,
        max_edges,
        ..MachineConfig::default()
    };
    Supernode::new(cfg, T0, Box::new(Xorshift128Plus::seeded(3)))
}

fn mac(n: u8) -> Mac {
    Mac([2, 0, 0, 0, 0, n])
}

fn from(n: u8) -> SocketAddr {
    SocketAddr::from(([198, 18, 0, n], 40000 + u16::from(n)))
}

fn comm(name: &str) -> Community {
    Community::new(name).expect("valid")
}

fn reg_super(c: &str, m: Mac, ip: [u8; 4], token: u8) -> Vec<u8> {
    Datagram::new(
        comm(c),
        Flags::EMPTY,
        Message::RegisterSuper(RegisterSuper {
            cookie: u32::from(token) * 7,
            edge_mac: m,
            sock: None,
            dev_addr: IpSubnet::new(ip.into(), 24),
            desc: Desc::from_text("host"),
            auth: Auth::new(auth_scheme::SIMPLE_ID, &[token; 16]).expect("16"),
            key_time: 0,
        }),
    )
    .to_vec()
}

fn feed(
    s: &mut Supernode,
    now: u64,
    who: u8,
    mut bytes: Vec<u8>,
) -> Vec<(Vec<u8>, Vec<SocketAddr>)> {
    let mut out = Outbox::default();
    s.handle_datagram(now, from(who), &mut bytes, &mut out);
    out.transmits()
        .iter()
        .map(|t| (t.data.clone(), t.dests.clone()))
        .collect()
}

fn answer(s: &mut Supernode, now: u64, who: u8, bytes: Vec<u8>) -> Option<Message> {
    let out = feed(s, now, who, bytes);
    out.first()
        .map(|(d, _)| Datagram::decode(d).expect("our answer decodes").0.msg)
}

#[test]
fn registration_refresh_and_expiry() {
    let mut s = sn(None, true, 100);
    let a = answer(&mut s, T0, 1, reg_super("net", mac(1), [10, 0, 0, 1], 1));
    assert!(matches!(a, Some(Message::RegisterSuperAck(_))));
    assert_eq!(s.edge_count(), 1);
    // Re-registration every 20 s keeps the edge.
    for i in 1..=5u64 {
        let now = T0 + i * 20_000_000;
        assert!(matches!(
            answer(&mut s, now, 1, reg_super("net", mac(1), [10, 0, 0, 1], 1)),
            Some(Message::RegisterSuperAck(_))
        ));
        s.handle_timeout(now, &mut Outbox::default());
    }
    assert_eq!(s.edge_count(), 1);
    // Silent for more than 60 s: purged at the next 30 s purge, and the open community too.
    let last = T0 + 100_000_000;
    s.handle_timeout(last + 59_000_000, &mut Outbox::default());
    assert_eq!(s.edge_count(), 1);
    s.handle_timeout(last + 91_000_000, &mut Outbox::default());
    assert_eq!(s.edge_count(), 0);
    assert!(s.communities().is_empty());
}

#[test]
fn spoofing_is_refused_unless_disabled() {
    let mut s = sn(None, true, 100);
    answer(&mut s, T0, 1, reg_super("net", mac(1), [10, 0, 0, 1], 1));
    // Same MAC, other token: NAK naming the refused MAC.
    match answer(
        &mut s,
        T0 + 1,
        3,
        reg_super("net", mac(1), [10, 0, 0, 3], 9),
    ) {
        Some(Message::RegisterSuperNak(n)) => assert_eq!(n.src_mac, mac(1)),
        other => panic!("expected NAK, got {other:?}"),
    }
    // Other MAC claiming the same IP with another token: NAK.
    assert!(matches!(
        answer(
            &mut s,
            T0 + 2,
            4,
            reg_super("net", mac(4), [10, 0, 0, 1], 9)
        ),
        Some(Message::RegisterSuperNak(_))
    ));
    // With -M the token is not checked.
    let mut s = sn(None, false, 100);
    answer(&mut s, T0, 1, reg_super("net", mac(1), [10, 0, 0, 1], 1));
    assert!(matches!(
        answer(
            &mut s,
            T0 + 1,
            3,
            reg_super("net", mac(1), [10, 0, 0, 3], 9)
        ),
        Some(Message::RegisterSuperAck(_))
    ));
    assert_eq!(s.stats().reg_super_nak, 0);
}

#[test]
fn community_list_restricts_silently() {
    let mut s = sn(Some("listed\nguest[0-9]+\n"), true, 100);
    assert!(
        answer(&mut s, T0, 1, reg_super("other", mac(1), [10, 0, 0, 1], 1)).is_none(),
        "no NAK for unlisted"
    );
    assert!(answer(&mut s, T0, 1, reg_super("listed", mac(1), [10, 0, 0, 1], 1)).is_some());
    assert!(answer(&mut s, T0, 2, reg_super("guest7", mac(2), [10, 0, 0, 2], 2)).is_some());
    assert!(answer(&mut s, T0, 2, reg_super("guest", mac(3), [10, 0, 0, 3], 3)).is_none());
}

#[test]
fn tcp_losses_count_by_reason_and_as_errors() {
    let mut s = sn(None, true, 10);
    s.count_tcp_drops(DropReason::TcpQueueFull, 3);
    s.count_tcp_drops(DropReason::TcpQueueFull, 0);
    s.count_tcp_drops(DropReason::TcpRefused, 1);
    let st = s.stats();
    assert_eq!(st.dropped_for(DropReason::TcpQueueFull), 3);
    assert_eq!(st.dropped_for(DropReason::TcpRefused), 1);
    assert_eq!(st.dropped_for(DropReason::TcpFraming), 0);
    assert_eq!((st.errors(), st.dropped()), (4, 4));
}

#[test]
fn registry_is_bounded() {
    let mut s = sn(None, true, 10);
    for i in 0..50u8 {
        feed(&mut s, T0, i, reg_super("net", mac(i), [10, 0, 1, i], i));
    }
    assert_eq!(s.edge_count(), 10);
    assert_eq!(s.stats().dropped_for(DropReason::RegistryFull), 40);
}

fn packet(c: &str, src: Mac, dst: Mac, payload: &[u8]) -> Vec<u8> {
    let mut b = Datagram::new(
        comm(c),
        Flags::EMPTY,
        Message::Packet(PacketHeader {
            src_mac: src,
            dst_mac: dst,
            sock: None,
            compression: 1,
            transform: 1,
        }),
    )
    .to_vec();
    b.extend_from_slice(payload);
    b
}

#[test]
fn relays_unicast_and_fans_out_broadcast() {
    let mut s = sn(None, true, 100);
    for i in 1..=3 {
        feed(&mut s, T0, i, reg_super("net", mac(i), [10, 0, 0, i], i));
    }
    let out = feed(&mut s, T0, 1, packet("net", mac(1), mac(2), b"frame"));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1, vec![from(2)]);
    let (d, rest) = Datagram::decode(&out[0].0).expect("decodes");
    assert_eq!(rest, b"frame");
    assert_eq!(d.ttl, 1);
    assert_eq!(d.wire_flags(), Flags::FROM_SUPERNODE.with(Flags::SOCKET));
    let Message::Packet(p) = d.msg else {
        panic!("not a PACKET")
    };
    assert_eq!(p.sock, Some(Sock::from(from(1))));
    // Broadcast: everyone but the sender.
    let out = feed(&mut s, T0, 2, packet("net", mac(2), Mac::BROADCAST, b"arp"));
    let mut dests = out[0].1.clone();
    dests.sort();
    assert_eq!(dests, vec![from(1), from(3)]);
    // Unknown destination: dropped.
    assert!(feed(&mut s, T0, 1, packet("net", mac(1), mac(9), b"x")).is_empty());
    // TTL 0: dropped.
    let mut b = packet("net", mac(1), mac(2), b"x");
    b[1] = 0;
    assert!(feed(&mut s, T0, 1, b).is_empty());
}

#[test]
fn ping_pong_and_peer_lookup() {
    let mut s = sn(None, true, 100);
    feed(&mut s, T0, 1, reg_super("net", mac(1), [10, 0, 0, 1], 1));
    let q = |target| {
        Datagram::new(
            comm("net"),
            Flags::EMPTY,
            Message::QueryPeer(QueryPeer {
                src_mac: mac(2),
                target_mac: target,
                aflags: 0,
            }),
        )
        .to_vec()
    };
    match answer(&mut s, T0 + 5_000_000, 2, q(Mac::NULL)) {
        Some(Message::PeerInfo(p)) => {
            assert!(p.is_pong());
            assert_eq!(p.uptime, 5);
            assert_eq!(p.sock, Sock::from(from(2)));
        }
        other => panic!("expected PONG, got {other:?}"),
    }
    match answer(&mut s, T0, 2, q(mac(1))) {
        Some(Message::PeerInfo(p)) => {
            assert_eq!(
                (p.src_mac, p.mac, p.sock),
                (mac(2), mac(1), Sock::from(from(1)))
            );
        }
        other => panic!("expected PEER_INFO, got {other:?}"),
    }
    assert!(answer(&mut s, T0, 2, q(mac(7))).is_none());
}

#[test]
fn unregister_needs_the_token() {
    let mut s = sn(None, true, 100);
    feed(&mut s, T0, 1, reg_super("net", mac(1), [10, 0, 0, 1], 1));
    let unreg = |token: u8| {
        Datagram::new(
            comm("net"),
            Flags::EMPTY,
            Message::UnregisterSuper(UnregisterSuper {
                auth: Auth::new(1, &[token; 16]).expect("16"),
                src_mac: mac(1),
            }),
        )
        .to_vec()
    };
    feed(&mut s, T0, 1, unreg(9));
    assert_eq!(s.edge_count(), 1);
    feed(&mut s, T0, 1, unreg(1));
    assert_eq!(s.edge_count(), 0);
}

fn encrypt(c: &str, mut bytes: Vec<u8>, now: u64) -> Vec<u8> {
    let n = bytes.len();
    HeaderKey::for_community(&comm(c)).encrypt(&mut bytes, n, stamp_at(now), 5);
    bytes
}

#[test]
fn header_encryption_locks_a_listed_community() {
    // First packet encrypted: the community is locked to encrypted; plain is then dropped.
    let mut s = sn(Some("secret\n"), true, 100);
    let out = feed(
        &mut s,
        T0,
        1,
        encrypt("secret", reg_super("secret", mac(1), [10, 0, 0, 1], 1), T0),
    );
    assert_eq!(out.len(), 1);
    let mut ack = out[0].0.clone();
    assert!(!header::looks_plain(&ack), "answer is encrypted");
    assert!(
        HeaderKey::for_community(&comm("secret"))
            .decrypt(&mut ack, &comm("secret"))
            .is_some()
    );
    assert_eq!(s.communities()[0].header, HeaderMode::Encrypted);
    assert!(feed(&mut s, T0, 2, reg_super("secret", mac(2), [10, 0, 0, 2], 2)).is_empty());
    // A replayed registration (same stamp) is refused; a stale one (17 s old) too.
    let replay = encrypt(
        "secret",
        reg_super("secret", mac(1), [10, 0, 0, 1], 1),
        T0 + 1_000_000,
    );
    assert_eq!(feed(&mut s, T0 + 1_000_000, 1, replay.clone()).len(), 1);
    assert!(feed(&mut s, T0 + 1_000_000, 1, replay).is_empty());
    assert!(
        feed(
            &mut s,
            T0 + 20_000_000,
            1,
            encrypt(
                "secret",
                reg_super("secret", mac(1), [10, 0, 0, 1], 1),
                T0 + 3_000_000
            )
        )
        .is_empty()
    );

    // First packet plain: locked to plain; encrypted ones no longer decrypt.
    let mut s = sn(Some("secret\n"), true, 100);
    assert_eq!(
        feed(&mut s, T0, 1, reg_super("secret", mac(1), [10, 0, 0, 1], 1)).len(),
        1
    );
    assert_eq!(s.communities()[0].header, HeaderMode::Plain);
    assert!(
        feed(
            &mut s,
            T0,
            2,
            encrypt("secret", reg_super("secret", mac(2), [10, 0, 0, 2], 2), T0)
        )
        .is_empty()
    );
    assert_eq!(s.stats().dropped_for(DropReason::Undecryptable), 1);
}

#[test]
fn address_requests_get_the_reference_address() {
    let mut s = sn(None, true, 100);
    match answer(&mut s, T0, 1, address_request("plaincomm", "myhost")) {
        Some(Message::RegisterSuperAck(a)) => {
            assert_eq!(a.dev_addr.to_string(), "10.200.206.16/24")
        }
        other => panic!("expected ACK, got {other:?}"),
    }
    assert_eq!(s.edge_count(), 0, "the bootstrap request is not stored");
}

#[test]
fn an_expired_edge_frees_its_address() {
    // A listed community survives the purge, so its address index must follow it.
    let mut s = sn(Some("net\n"), true, 100);
    answer(&mut s, T0, 1, reg_super("net", mac(1), [10, 0, 0, 1], 1));
    // Expire the first edge.
    s.handle_timeout(T0 + 61_000_000, &mut Outbox::default());
    s.handle_timeout(T0 + 95_000_000, &mut Outbox::default());
    assert_eq!(s.edge_count(), 0);
    // A new MAC with another token may now take the address.
    let a = answer(
        &mut s,
        T0 + 96_000_000,
        2,
        reg_super("net", mac(2), [10, 0, 0, 1], 2),
    );
    assert!(matches!(a, Some(Message::RegisterSuperAck(_))), "{a:?}");
    // And the index follows re-keying and unregistering too: a third MAC is refused while
    // mac(2) holds the address.
    let a = answer(
        &mut s,
        T0 + 96_000_001,
        3,
        reg_super("net", mac(3), [10, 0, 0, 1], 3),
    );
    assert!(matches!(a, Some(Message::RegisterSuperNak(_))), "{a:?}");
}

#[test]
fn a_stepped_wall_clock_moves_no_deadline_and_stamps_follow_it() {
    // Listed, so that the supernode knows the community's header key.
    let mut s = sn(Some("net\n"), true, 100);
    let hour = 3_600_000_000;
    // Header-encrypted registrations every 20 s of monotonic time while the wall clock
    // jumps an hour ahead, then an hour back; the edge stamps with the same wall clock.
    for (i, wall_step) in [
        (1u64, hour as i64),
        (2, hour as i64),
        (3, -(hour as i64)),
        (4, 0),
    ] {
        let mono = T0 + i * 20_000_000;
        let wall = mono.wrapping_add_signed(wall_step);
        s.set_wall_clock(mono, wall);
        s.handle_timeout(mono, &mut Outbox::default());
        let reg = encrypt("net", reg_super("net", mac(1), [10, 0, 0, 1], 1), wall);
        let out = feed(&mut s, mono, 1, reg);
        let (mut ack, _) = out.into_iter().next().expect("answered");
        let stamp = HeaderKey::for_community(&comm("net"))
            .decrypt(&mut ack, &comm("net"))
            .expect("opens");
        assert!(
            n2n_crypto::header_enc::stamp_in_frame(stamp, wall),
            "our stamps follow the wall clock"
        );
        assert_eq!(s.edge_count(), 1, "step {i}");
    }
    // Expiry follows the monotonic clock only: 59 s of silence keep the edge, 91 s do not,
    // whatever the wall clock says.
    let last = T0 + 80_000_000;
    s.set_wall_clock(last + 59_000_000, last + 59_000_000 + 10 * hour);
    s.handle_timeout(last + 59_000_000, &mut Outbox::default());
    assert_eq!(s.edge_count(), 1);
    s.handle_timeout(last + 91_000_000, &mut Outbox::default());
    assert_eq!(s.edge_count(), 0);
}

/// Copies of one 1 400-byte broadcast from a real edge that reach `victim`.
fn broadcast_copies_at(s: &mut Supernode, victim: std::net::Ipv4Addr) -> usize {
    let out = feed(
        s,
        T0,
        1,
        packet("net", mac(1), Mac::BROADCAST, &[0u8; 1400]),
    );
    let sockets: std::collections::HashSet<_> = out.iter().flat_map(|(_, d)| d).collect();
    assert_eq!(
        sockets.len(),
        out.iter().map(|(_, d)| d.len()).sum::<usize>(),
        "one copy per socket"
    );
    out.iter()
        .flat_map(|(_, dests)| dests)
        .filter(|d| d.ip() == std::net::IpAddr::V4(victim))
        .count()
}

#[test]
fn one_forged_source_cannot_amplify_a_broadcast_beyond_its_cap() {
    // -M (no spoofing protection): the worst case. 1 000 made-up MACs "register" at a
    // victim's address (forged sources), on one port and on many.
    let mut s = sn(None, false, 100_000);
    let victim = std::net::Ipv4Addr::new(203, 0, 113, 9);
    let forge_all = |s: &mut Supernode| {
        for i in 0..1000u16 {
            let [hi, lo] = i.to_be_bytes();
            let fake = Mac([2, 0xee, 0, 0, hi, lo]);
            let port = if i % 2 == 0 { 5000 } else { 5000 + i };
            let mut reg = reg_super("net", fake, [10, 0, hi, lo.max(1)], 1);
            let mut out = Outbox::default();
            s.handle_datagram(T0, SocketAddr::from((victim, port)), &mut reg, &mut out);
        }
    };
    forge_all(&mut s);
    let cap = MachineConfig::default().max_edges_per_ip as usize;
    assert_eq!(s.edge_count(), cap, "the per-source cap holds");
    // A real edge elsewhere broadcasts one frame.
    answer(&mut s, T0, 1, reg_super("net", mac(1), [10, 9, 9, 9], 9));
    let once = broadcast_copies_at(&mut s, victim);
    // A spoofer who repeats every registration from the same sockets gets up to the cap:
    // the 500 MACs on port 5000 share one socket, so one copy; the others one each.
    forge_all(&mut s);
    let repeated = broadcast_copies_at(&mut s, victim);
    eprintln!(
        "amplification: 1 broadcast -> {once} copy at the victim after 1 000 forged \
         registrations, {repeated} after each was repeated (cap {cap})"
    );
    assert_eq!(once, 1, "unproven sockets share one copy per address");
    assert!(repeated <= cap, "{repeated} copies");
}

#[test]
fn a_registration_repeated_from_its_socket_gets_broadcasts() {
    let mut s = sn(None, true, 100);
    for n in [1, 2] {
        answer(&mut s, T0, n, reg_super("net", mac(n), [10, 0, 0, n], n));
    }
    // Two edges behind one NAT (one public address, two ports), registered once each.
    let nat = |port| SocketAddr::from(([203, 0, 113, 7], port));
    let behind = |s: &mut Supernode, n: u8, port| {
        let mut reg = reg_super("net", mac(n), [10, 0, 0, n], n);
        s.handle_datagram(T0, nat(port), &mut reg, &mut Outbox::default());
    };
    behind(&mut s, 3, 6000);
    behind(&mut s, 4, 6001);
    let dests = |s: &mut Supernode| -> Vec<SocketAddr> {
        let out = feed(s, T0, 1, packet("net", mac(1), Mac::BROADCAST, b"arp"));
        let mut d: Vec<_> = out.into_iter().flat_map(|(_, d)| d).collect();
        d.sort();
        d
    };
    // Edge 2 registered once too, but alone at its address; the two behind the NAT share a copy.
    assert_eq!(dests(&mut s), vec![from(2), nat(6000)]);
    // Edge 4 registers again from the same socket: proven, it gets its own copy.
    behind(&mut s, 4, 6001);
    assert_eq!(dests(&mut s), vec![from(2), nat(6000), nat(6001)]);
    // It moves to another port: unproven again until it repeats from there.
    behind(&mut s, 4, 6002);
    behind(&mut s, 3, 6000);
    assert_eq!(dests(&mut s), vec![from(2), nat(6000), nat(6002)]);
    assert!(
        !s.communities[0].edges[&mac(4)].proven,
        "a new socket must prove itself"
    );
}

#[test]
fn nobody_unregistered_can_use_the_relay() {
    let mut s = sn(None, true, 100);
    answer(&mut s, T0, 2, reg_super("net", mac(2), [10, 0, 0, 2], 2));
    // A stranger (any address) sends to edge 2 through us: nothing goes out.
    let out = feed(&mut s, T0, 9, packet("net", mac(9), mac(2), b"hello"));
    assert!(out.is_empty(), "{out:?}");
    let dropped = s.stats().dropped();
    assert!(dropped >= 1);
    // Once registered, the same sender is relayed.
    answer(&mut s, T0, 9, reg_super("net", mac(9), [10, 0, 0, 9], 9));
    let out = feed(&mut s, T0, 9, packet("net", mac(9), mac(2), b"hello"));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1, vec![from(2)]);
    // Its MAC used from another address: not relayed (edge 9's own port may change, its
    // address may not).
    let out = feed(&mut s, T0, 8, packet("net", mac(9), mac(2), b"hello"));
    assert!(out.is_empty(), "{out:?}");
    let mut moved = packet("net", mac(9), mac(2), b"hello");
    let mut o = Outbox::default();
    let new_port = SocketAddr::from(([198, 18, 0, 9], 41000));
    s.handle_datagram(T0, new_port, &mut moved, &mut o);
    assert_eq!(o.transmits().len(), 1, "a new port behind the same address");
    assert!(s.stats().dropped() > dropped);
}

#[test]
fn communities_are_found_by_name_after_purges_and_reloads() {
    let mut s = sn(None, true, 100);
    let ack = |m: Option<Message>| matches!(m, Some(Message::RegisterSuperAck(_)));
    assert!(ack(answer(
        &mut s,
        T0,
        1,
        reg_super("a", mac(1), [10, 0, 0, 1], 1)
    )));
    assert!(ack(answer(
        &mut s,
        T0 + 40_000_000,
        2,
        reg_super("b", mac(2), [10, 0, 0, 2], 2)
    )));
    // "a" goes silent and is purged with its community; "b" moves down in the list and
    // must still be found by name.
    s.handle_timeout(T0 + 91_000_000, &mut Outbox::default());
    let names: Vec<String> = s.communities().iter().map(|c| c.name.to_string()).collect();
    assert_eq!(names, vec!["b"]);
    assert!(ack(answer(
        &mut s,
        T0 + 92_000_000,
        2,
        reg_super("b", mac(2), [10, 0, 0, 2], 2)
    )));
    assert_eq!(s.edge_count(), 1);
    // A reload without a list clears everything; names are looked up afresh.
    s.reload(T0 + 93_000_000, None, &mut Outbox::default());
    assert!(ack(answer(
        &mut s,
        T0 + 94_000_000,
        3,
        reg_super("c", mac(3), [10, 0, 0, 3], 3)
    )));
    assert_eq!(s.communities().len(), 1);
}

#[test]
fn a_flood_of_names_and_macs_from_one_host_locks_nobody_out() {
    let mut s = sn(None, true, 2_000);
    // One host makes up 1 000 communities with 100 MACs each (from one address, any port).
    let flooder = std::net::Ipv4Addr::new(203, 0, 113, 7);
    for c in 0..1000u16 {
        for m in 0..100u16 {
            let [_, a, b, d] = (u32::from(c) * 100 + u32::from(m)).to_be_bytes();
            let name = format!("flood{c}");
            let mut reg = reg_super(&name, Mac([2, 0xf1, 0, a, b, d]), [10, a, b, d.max(1)], 1);
            let mut out = Outbox::default();
            s.handle_datagram(
                T0,
                SocketAddr::from((flooder, 4000 + m)),
                &mut reg,
                &mut out,
            );
        }
    }
    let caps = MachineConfig::default();
    assert!(s.communities().len() <= caps.max_communities_per_ip as usize);
    assert!(s.edge_count() <= (caps.max_communities_per_ip * caps.max_edges_per_ip) as usize);
    eprintln!(
        "flood of 100 000 registrations: {} communities, {} edges held",
        s.communities().len(),
        s.edge_count()
    );
    // A new, legitimate edge elsewhere registers at once, in a new community.
    let a = answer(
        &mut s,
        T0 + 1_000,
        1,
        reg_super("office", mac(1), [10, 0, 0, 1], 1),
    );
    assert!(matches!(a, Some(Message::RegisterSuperAck(_))));
    // Once the flood's communities are purged, the host may create again.
    s.handle_timeout(T0 + 91_000_000, &mut Outbox::default());
    let mut reg = reg_super("later", mac(9), [10, 0, 0, 9], 9);
    let mut out = Outbox::default();
    s.handle_datagram(
        T0 + 92_000_000,
        SocketAddr::from((flooder, 4000)),
        &mut reg,
        &mut out,
    );
    assert!(
        s.communities()
            .iter()
            .any(|c| c.name.to_string() == "later")
    );
}

/// The first answer to `bytes` sent header-encrypted with `c`'s key, its header opened.
fn encrypted_answer(
    s: &mut Supernode,
    now: u64,
    who: u8,
    c: &str,
    bytes: Vec<u8>,
) -> Option<Message> {
    let (mut d, _) = feed(s, now, who, encrypt(c, bytes, now))
        .into_iter()
        .next()?;
    HeaderKey::for_community(&comm(c))
        .decrypt(&mut d, &comm(c))
        .expect("our answer opens");
    Some(Datagram::decode(&d).expect("our answer decodes").0.msg)
}

fn header_of(s: &Supernode, c: &str) -> HeaderMode {
    s.communities()
        .iter()
        .find(|x| x.name.as_bytes() == c.as_bytes())
        .expect("listed")
        .header
}

#[test]
fn a_community_marked_dash_h_refuses_plain_headers_before_and_after_encrypted_edges() {
    let mut s = sn(Some("secret -H\nopen\n"), true, 100);
    assert_eq!(header_of(&s, "secret"), HeaderMode::Encrypted);
    assert_eq!(header_of(&s, "open"), HeaderMode::Unknown);
    // Before any edge: a plain registration is dropped, counted, and locks nothing.
    let plain = |m: u8| reg_super("secret", mac(m), [10, 0, 0, m], m);
    assert!(feed(&mut s, T0, 2, plain(2)).is_empty());
    assert_eq!(s.stats().dropped(), 1);
    assert_eq!(s.edge_count(), 0);
    assert_eq!(header_of(&s, "secret"), HeaderMode::Encrypted);
    // An encrypted registration is ACKed as in any -H community.
    let a = encrypted_answer(&mut s, T0 + 1, 1, "secret", plain(1));
    assert!(matches!(a, Some(Message::RegisterSuperAck(_))), "{a:?}");
    assert_eq!(s.edge_count(), 1);
    // After it: still refused, for a new MAC and for the registered edge's own.
    assert!(feed(&mut s, T0 + 2, 2, plain(2)).is_empty());
    assert!(feed(&mut s, T0 + 2, 1, plain(1)).is_empty());
    assert_eq!(s.stats().dropped(), 3);
    assert_eq!(s.edge_count(), 1);
    // An unmarked community is still locked by its first datagram: plain here.
    let a = answer(
        &mut s,
        T0 + 3,
        3,
        reg_super("open", mac(3), [10, 0, 1, 3], 3),
    );
    assert!(matches!(a, Some(Message::RegisterSuperAck(_))), "{a:?}");
    assert_eq!(header_of(&s, "open"), HeaderMode::Plain);
    let late = encrypt("open", reg_super("open", mac(4), [10, 0, 1, 4], 4), T0 + 4);
    assert!(feed(&mut s, T0 + 4, 4, late).is_empty());
    assert_eq!(s.stats().dropped_for(DropReason::Undecryptable), 1);
}

#[test]
fn reloading_the_list_applies_and_lifts_dash_h() {
    let path = std::env::temp_dir().join(format!("n2n-rs-dash-h-{}.list", std::process::id()));
    let write = |text: &str| std::fs::write(&path, text).expect("temp file");
    let mut ctl = crate::mgmt::Control {
        password_hash: 0,
        verbosity: 2,
        keep_running: true,
        list_path: Some(path.to_string_lossy().into_owned()),
        out: Outbox::default(),
    };
    let mut s = sn(Some("secret\n"), true, 100);
    let reg = |m: u8| reg_super("secret", mac(m), [10, 0, 0, m], m);
    // Unmarked: a plain edge locks it to plain.
    let a = answer(&mut s, T0, 1, reg(1));
    assert!(matches!(a, Some(Message::RegisterSuperAck(_))), "{a:?}");
    assert_eq!(header_of(&s, "secret"), HeaderMode::Plain);
    // Marked in the re-read file: encrypted at once, the plain edge cannot come back.
    write("secret -H\n");
    crate::mgmt::reload(&mut s, &mut ctl, T0 + 1_000_000).expect("reloads");
    assert_eq!(header_of(&s, "secret"), HeaderMode::Encrypted);
    let dropped = s.stats().dropped();
    assert!(feed(&mut s, T0 + 2_000_000, 1, reg(1)).is_empty());
    assert_eq!(s.stats().dropped(), dropped + 1);
    assert_eq!(s.edge_count(), 0);
    let a = encrypted_answer(&mut s, T0 + 3_000_000, 2, "secret", reg(2));
    assert!(matches!(a, Some(Message::RegisterSuperAck(_))), "{a:?}");
    // Unmarked again: learnt from the first datagram, as before.
    write("secret\n");
    crate::mgmt::reload(&mut s, &mut ctl, T0 + 4_000_000).expect("reloads");
    assert_eq!(header_of(&s, "secret"), HeaderMode::Unknown);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_source_broadcasts_within_its_fan_out_budget() {
    let cfg = MachineConfig {
        max_broadcast_rate: 100,
        ..MachineConfig::default()
    };
    let mut s = Supernode::new(cfg, T0, Box::new(Xorshift128Plus::seeded(3)));
    // Eleven edges, each registered twice (proven): a broadcast costs ten copies.
    for n in 1..=11 {
        for _ in 0..2 {
            answer(&mut s, T0, n, reg_super("net", mac(n), [10, 0, 0, n], n));
        }
    }
    let broadcasts = |s: &mut Supernode, now: u64| {
        (0..40)
            .map(|_| feed(s, now, 1, packet("net", mac(1), Mac::BROADCAST, b"arp")))
            .filter(|out| out.iter().map(|(_, d)| d.len()).sum::<usize>() == 10)
            .count()
    };
    // Two seconds' worth at once (200 copies), then the rate: 100 copies a second.
    assert_eq!(broadcasts(&mut s, T0), 20);
    assert_eq!(broadcasts(&mut s, T0 + 1_000_000), 10);
    // Another member has its own budget.
    let out = feed(
        &mut s,
        T0 + 1_000_000,
        2,
        packet("net", mac(2), Mac::BROADCAST, b"arp"),
    );
    assert_eq!(out.iter().map(|(_, d)| d.len()).sum::<usize>(), 10);
    // Unicast is not limited by it.
    let out = feed(
        &mut s,
        T0 + 1_000_000,
        1,
        packet("net", mac(1), mac(3), b"hi"),
    );
    assert_eq!(out.len(), 1);
}

/// An address request (null MAC) with the description `desc`.
fn address_request(c: &str, desc: &str) -> Vec<u8> {
    Datagram::new(
        comm(c),
        Flags::EMPTY,
        Message::RegisterSuper(RegisterSuper {
            cookie: 1,
            edge_mac: Mac::NULL,
            sock: None,
            dev_addr: IpSubnet::UNSPECIFIED,
            desc: Desc::from_text(desc),
            auth: Auth::new(1, &[1; 16]).expect("16"),
            key_time: 0,
        }),
    )
    .to_vec()
}

fn offered(s: &mut Supernode, now: u64, who: u8) -> String {
    match answer(s, now, who, address_request("plaincomm", "samehost")) {
        Some(Message::RegisterSuperAck(a)) => a.dev_addr.to_string(),
        other => panic!("expected ACK, got {other:?}"),
    }
}

#[test]
fn two_edges_of_one_host_name_asking_at_once_get_two_addresses() {
    // n2n answered both with the same address: the second edge was then refused for as long
    // as the first stayed.
    let mut s = sn(None, true, 100);
    let first = offered(&mut s, T0, 1);
    let second = offered(&mut s, T0 + 1_000, 2);
    assert_ne!(first, second);
    // The first asking again (a retry) gets its own address back.
    assert_eq!(offered(&mut s, T0 + 2_000, 1), first);
    // A hold ends: a requester asking later than that, with nobody registered, gets the
    // first candidate again.
    assert_eq!(offered(&mut s, T0 + 20_000_000, 3), first);
}
