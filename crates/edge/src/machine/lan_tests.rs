//! Machine tests for LAN discovery (spec §7.6), path ranking and `-L` (spec §7.5).

use std::net::SocketAddr;

use n2n_crypto::Xorshift128Plus;

use n2n_proto::cookie;

use super::*;

const T0: u64 = 1_800_000_000_000_000;
const S: u64 = 1_000_000;
const PEER: Mac = Mac([2, 0, 0, 0, 0, 2]);

fn sn() -> SocketAddr {
    SocketAddr::from(([198, 18, 0, 2], 7654))
}

fn community() -> Community {
    Community::new("lan").expect("valid")
}

fn edge(lan_discovery: bool, register_ttl: u8) -> Edge {
    let cfg = EdgeMachineConfig {
        desc: Desc::from_text("me"),
        dev_addr: Some(IpSubnet::new([10, 0, 0, 1].into(), 24)),
        lan_discovery,
        register_ttl,
        ..EdgeMachineConfig::new(community(), Mac([2, 0, 0, 0, 0, 1]), vec![sn()])
    };
    Edge::new(
        cfg,
        Box::new(Xorshift128Plus::seeded(3)),
        Arc::new(n2n_crypto::StampGenerator::default()),
        T0,
    )
}

/// (destination, TTL if set, datagram) of everything the machine sent.
fn sent(e: &mut Edge) -> Vec<(SocketAddr, Option<u8>, Datagram)> {
    let mut out = Vec::new();
    while let Some(a) = e.poll_action() {
        let (dst, ttl, data) = match a {
            Action::Transmit { dst, data } => (dst, None, data),
            Action::TransmitTtl { dst, data, ttl } => (dst, Some(ttl), data),
            _ => continue,
        };
        out.push((dst, ttl, Datagram::decode(&data).expect("decodes").0));
    }
    out
}

fn register(src: Mac, dst: Mac, cookie_value: u32, via: Option<SocketAddr>) -> Datagram {
    let flags = if via.is_some() {
        Flags::FROM_SUPERNODE
    } else {
        Flags::EMPTY
    };
    Datagram::new(
        community(),
        flags,
        Message::Register(Register {
            cookie: cookie_value,
            src_mac: src,
            dst_mac: dst,
            sock: via.map(Sock::from),
            dev_addr: IpSubnet::UNSPECIFIED,
            desc: Desc::default(),
        }),
    )
}

fn ack(cookie_value: u32, to: Mac) -> Datagram {
    Datagram::new(
        community(),
        Flags::EMPTY,
        Message::RegisterAck(RegisterAck {
            cookie: cookie_value,
            dst_mac: to,
            src_mac: PEER,
            sock: None,
        }),
    )
}

fn is_register(d: &Datagram, cookie_value: u32, dst: Mac) -> bool {
    matches!(&d.msg, Message::Register(r) if r.cookie == cookie_value && r.dst_mac == dst)
}

#[test]
fn announces_itself_on_the_lan_group_at_each_registration() {
    let mut e = edge(true, 0);
    let out = sent(&mut e);
    assert!(
        out.iter()
            .any(|(dst, _, d)| *dst == LAN_GROUP && is_register(d, cookie::MCAST, Mac::NULL))
    );
    // Off (p2p off or -e given): nothing goes to the group.
    let mut quiet = edge(false, 0);
    assert!(sent(&mut quiet).iter().all(|(dst, _, _)| *dst != LAN_GROUP));
}

#[test]
fn a_lan_register_is_answered_directly_and_starts_registration() {
    let mut e = edge(true, 0);
    sent(&mut e);
    let lan_peer = SocketAddr::from(([10, 1, 0, 3], 41000));
    e.handle_lan(T0, lan_peer, register(PEER, Mac::NULL, cookie::MCAST, None));
    let out = sent(&mut e);
    assert!(out.iter().any(|(dst, _, d)| *dst == lan_peer
        && matches!(&d.msg, Message::RegisterAck(a) if a.cookie == cookie::MCAST && a.dst_mac == PEER)));
    // Our REGISTER back carries MCAST: its ACK ranks the path as found on the LAN.
    assert!(
        out.iter()
            .any(|(dst, _, d)| *dst == lan_peer && is_register(d, cookie::MCAST, PEER))
    );
    // Our own echo, other communities, relayed ones and REGISTERs for someone else: ignored.
    let me = e.mac();
    e.handle_lan(T0, lan_peer, register(me, Mac::NULL, cookie::MCAST, None));
    let mut other = register(Mac([2, 0, 0, 0, 0, 7]), Mac::NULL, cookie::MCAST, None);
    other.community = Community::new("elsewhere").expect("valid");
    e.handle_lan(T0, lan_peer, other);
    let relayed = register(
        Mac([2, 0, 0, 0, 0, 8]),
        Mac::NULL,
        cookie::MCAST,
        Some(sn()),
    );
    e.handle_lan(T0, lan_peer, relayed);
    let for_else = register(
        Mac([2, 0, 0, 0, 0, 9]),
        Mac([2, 0, 0, 0, 0, 5]),
        cookie::MCAST,
        None,
    );
    e.handle_lan(T0, lan_peer, for_else);
    assert!(sent(&mut e).is_empty());
    // With discovery off the machine ignores the group entirely.
    let mut off = edge(false, 0);
    sent(&mut off);
    off.handle_lan(T0, lan_peer, register(PEER, Mac::NULL, cookie::MCAST, None));
    assert!(sent(&mut off).is_empty());
}

#[test]
fn a_lan_path_is_not_replaced_by_a_nat_path_for_15_seconds() {
    let mut e = edge(true, 0);
    sent(&mut e);
    let (lan, public) = (
        SocketAddr::from(([10, 1, 0, 3], 41000)),
        SocketAddr::from(([198, 18, 1, 2], 52000)),
    );
    let me = e.mac();
    // The peer heard our group REGISTER and registered with us over the LAN: we answer and
    // register back there; its ACK confirms the LAN path.
    e.handle_control(T0, lan, register(PEER, me, cookie::REGULAR, None));
    e.handle_control(T0, lan, ack(cookie::MCAST, me));
    assert_eq!(e.route(&PEER, T0 + 1), Some(lan));
    // The supernode relays its REGISTER (public socket): we punch there too, and its ACK
    // ranks lower than the LAN's.
    e.handle_control(
        T0 + S,
        sn(),
        register(PEER, me, cookie::FORWARDED, Some(public)),
    );
    e.handle_control(T0 + S, public, ack(cookie::REGULAR, me));
    assert_eq!(
        e.route(&PEER, T0 + S + 1),
        Some(lan),
        "lower rank, too soon"
    );
    e.handle_control(T0 + 2 * S, lan, ack(cookie::LOCAL, me));
    // 16 s later the LAN path has gone quiet: the public one, punched again, may take over.
    e.handle_control(
        T0 + 18 * S,
        sn(),
        register(PEER, me, cookie::FORWARDED, Some(public)),
    );
    e.handle_control(T0 + 18 * S, public, ack(cookie::REGULAR, me));
    assert_eq!(
        e.route(&PEER, T0 + 18 * S + 1),
        Some(public),
        "after 15 s it may move"
    );
}

#[test]
fn a_register_ack_we_did_not_ask_for_moves_nothing() {
    let mut e = edge(true, 0);
    sent(&mut e);
    let me = e.mac();
    let (real, forger) = (
        SocketAddr::from(([198, 18, 1, 2], 52000)),
        SocketAddr::from(([203, 0, 113, 66], 4444)),
    );
    // Unsolicited: no path at all.
    e.handle_control(T0, forger, ack(cookie::REGULAR, me));
    assert_eq!(e.route(&PEER, T0 + 1), None);
    // A real path, then forged ACKs of every rank from a third host: the path stays.
    e.handle_control(T0, sn(), register(PEER, me, cookie::FORWARDED, Some(real)));
    e.handle_control(T0, real, ack(cookie::REGULAR, me));
    assert_eq!(e.route(&PEER, T0 + 1), Some(real));
    for c in [cookie::LOCAL, cookie::REGULAR, cookie::MCAST, cookie::PORT] {
        e.handle_control(T0 + 20 * S, forger, ack(c, me));
    }
    assert_eq!(e.route(&PEER, T0 + 20 * S), None, "stale, but not moved");
    assert_eq!(e.routes().map(|r| r.1).collect::<Vec<_>>(), vec![real]);
    // A forged PEER_INFO (not from our supernode) makes us register nowhere.
    let info = Datagram::new(
        community(),
        Flags::FROM_SUPERNODE,
        Message::PeerInfo(PeerInfo {
            aflags: 0,
            src_mac: Mac::NULL,
            mac: PEER,
            sock: Sock::from(forger),
            preferred_sock: None,
            load: 0,
            uptime: 0,
            version: Default::default(),
        }),
    );
    e.handle_control(T0 + 21 * S, forger, info);
    assert!(sent(&mut e).iter().all(|(dst, _, _)| *dst != forger));
}

#[test]
fn register_ttl_controls_punching_towards_a_relayed_peer() {
    let public = SocketAddr::from(([198, 18, 2, 2], 50000));
    let punch = |ttl: u8| {
        let mut e = edge(false, ttl);
        sent(&mut e);
        let me = e.mac();
        e.handle_control(
            T0,
            sn(),
            register(PEER, me, cookie::FORWARDED, Some(public)),
        );
        sent(&mut e)
    };
    // Default: one REGULAR to the public socket, and a FORWARDED one via the supernode.
    let out = punch(0);
    let direct: Vec<_> = out.iter().filter(|(dst, _, _)| *dst != sn()).collect();
    assert_eq!(direct.len(), 1);
    assert!(direct[0].0 == public && direct[0].1.is_none());
    assert!(is_register(&direct[0].2, cookie::REGULAR, PEER));
    assert!(
        out.iter()
            .any(|(dst, _, d)| *dst == sn() && is_register(d, cookie::FORWARDED, PEER))
    );
    // -L 1: nothing direct.
    assert!(punch(1).iter().all(|(dst, _, _)| *dst == sn()));
    // -L 5: sixteen PORT REGISTERs with TTL 5 to the public port and the fifteen after it.
    let out = punch(5);
    let burst: Vec<_> = out.iter().filter(|(dst, _, _)| *dst != sn()).collect();
    assert_eq!(burst.len(), 16);
    for (i, (dst, ttl, d)) in burst.iter().enumerate() {
        assert_eq!(*dst, SocketAddr::from(([198, 18, 2, 2], 50000 + i as u16)));
        assert_eq!(*ttl, Some(5));
        assert!(is_register(d, cookie::PORT, PEER));
    }
}

#[test]
fn a_neighbours_mcast_register_is_answered_with_an_mcast_registration() {
    // Whichever exchange confirms the LAN path first, it ranks as found on the LAN.
    let mut e = edge(true, 0);
    sent(&mut e);
    let (me, lan_peer) = (e.mac(), SocketAddr::from(([10, 1, 0, 3], 41000)));
    e.handle_control(T0, lan_peer, register(PEER, me, cookie::MCAST, None));
    let out = sent(&mut e);
    assert!(
        out.iter()
            .any(|(dst, _, d)| *dst == lan_peer && is_register(d, cookie::MCAST, PEER))
    );
    e.handle_control(T0, lan_peer, ack(cookie::MCAST, me));
    assert!(
        e.known()
            .any(|(m, k)| *m == PEER && k.cookie == cookie::MCAST)
    );
}
