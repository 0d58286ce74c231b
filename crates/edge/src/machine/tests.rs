//! Edge machine tests with simulated time.

use std::net::SocketAddr;

use n2n_crypto::Xorshift128Plus;

use n2n_proto::cookie;

use super::*;

pub(super) const T0: u64 = 1_800_000_000_000_000;
pub(super) const S: u64 = 1_000_000;

pub(super) fn sn(n: u8) -> SocketAddr {
    SocketAddr::from(([198, 18, 0, n], 7654))
}

pub(super) fn edge(dev_addr: Option<IpSubnet>, supernodes: Vec<SocketAddr>) -> Edge {
    Edge::new(
        config(dev_addr, supernodes),
        Box::new(Xorshift128Plus::seeded(7)),
        Arc::new(n2n_crypto::StampGenerator::default()),
        T0,
    )
}

pub(super) fn config(dev_addr: Option<IpSubnet>, supernodes: Vec<SocketAddr>) -> EdgeMachineConfig {
    EdgeMachineConfig {
        desc: Desc::from_text("me"),
        dev_addr,
        ..EdgeMachineConfig::new(
            Community::new("test").expect("valid"),
            Mac([2, 0, 0, 0, 0, 1]),
            supernodes,
        )
    }
}

pub(super) fn addr() -> Option<IpSubnet> {
    Some(IpSubnet::new([10, 0, 0, 1].into(), 24))
}

/// Drains the actions; returns the decoded transmits and the other actions.
pub(super) fn drain(e: &mut Edge) -> (Vec<(SocketAddr, Datagram)>, Vec<Action>) {
    let (mut tx, mut other) = (Vec::new(), Vec::new());
    while let Some(a) = e.poll_action() {
        match a {
            Action::Transmit { dst, data } => {
                tx.push((dst, Datagram::decode(&data).expect("decodes").0))
            }
            a => other.push(a),
        }
    }
    (tx, other)
}

pub(super) fn ack_for(cookie: u32, assigned: IpSubnet) -> Datagram {
    Datagram::new(
        Community::new("test").expect("valid"),
        Flags::FROM_SUPERNODE.with(Flags::SOCKET),
        Message::RegisterSuperAck(RegisterSuperAck {
            cookie,
            src_mac: Mac([2, 0, 0, 0, 0, 0xfe]),
            dev_addr: assigned,
            lifetime: 15,
            sock: Sock::from(SocketAddr::from(([198, 18, 1, 2], 40000))),
            auth: Auth::NONE,
            supernodes: vec![],
            key_time: 0,
        }),
    )
}

pub(super) fn sent_cookie(tx: &[(SocketAddr, Datagram)]) -> u32 {
    tx.iter()
        .find_map(|(_, d)| match &d.msg {
            Message::RegisterSuper(r) => Some(r.cookie),
            _ => None,
        })
        .expect("a REGISTER_SUPER was sent")
}

/// After the first ACK from a supernode the edge registers once more, so that the supernode
/// sees its socket receive (it fans broadcasts out only to such sockets): answers that
/// confirmation. Returns the rest of what was pending.
pub(super) fn confirm(e: &mut Edge, t: u64, sn: SocketAddr, dev: IpSubnet) -> Vec<Action> {
    let (tx, other) = drain(e);
    let regs: Vec<u32> = tx
        .iter()
        .filter_map(|(to, d)| match &d.msg {
            Message::RegisterSuper(r) if *to == sn => Some(r.cookie),
            _ => None,
        })
        .collect();
    assert_eq!(regs.len(), 1, "one confirming registration: {tx:?}");
    e.handle_control(t, sn, ack_for(regs[0], dev));
    assert!(
        drain(e).0.is_empty(),
        "the confirmation is not confirmed again"
    );
    other
}

#[test]
fn registers_and_announces_itself() {
    let mut e = edge(addr(), vec![sn(1)]);
    let (tx, _) = drain(&mut e);
    let cookie = sent_cookie(&tx);
    assert_eq!(tx[0].0, sn(1));
    // An ACK with the wrong cookie is ignored.
    e.handle_control(T0 + 1000, sn(1), ack_for(cookie ^ 1, IpSubnet::UNSPECIFIED));
    assert!(!e.is_registered());
    e.handle_control(T0 + 2000, sn(1), ack_for(cookie, IpSubnet::UNSPECIFIED));
    assert!(e.is_registered());
    let other = confirm(&mut e, T0 + 2500, sn(1), IpSubnet::UNSPECIFIED);
    assert!(other.contains(&Action::GratuitousArp) && other.contains(&Action::RoutesChanged));
    // The first sweep PINGs the supernode at once, as n2n's.
    e.handle_timeout(T0 + 3000);
    let (tx, _) = drain(&mut e);
    assert!(
        tx.len() == 1 && matches!(&tx[0].1.msg, Message::QueryPeer(q) if q.is_ping()),
        "{tx:?}"
    );
    // Re-registration after the interval, not before.
    e.handle_timeout(T0 + 19 * S);
    assert!(drain(&mut e).0.is_empty());
    e.handle_timeout(T0 + 20 * S + 2000);
    assert!(matches!(
        drain(&mut e).0[0].1.msg,
        Message::RegisterSuper(_)
    ));
}

#[test]
fn retries_then_fails_over_to_the_next_supernode() {
    let mut e = edge(addr(), vec![sn(1), sn(2)]);
    drain(&mut e);
    // Nobody answers the start-up PINGs: after 3 s the configured order holds.
    let mut t = T0 + 3 * S;
    let mut targets = Vec::new();
    for _ in 0..4 {
        e.handle_timeout(t);
        targets.extend(
            drain(&mut e)
                .0
                .into_iter()
                .filter(|(_, d)| matches!(d.msg, Message::RegisterSuper(_)))
                .map(|(dst, _)| dst),
        );
        t += 2 * S + 1;
    }
    assert_eq!(
        targets,
        vec![sn(1), sn(1), sn(1), sn(2)],
        "the first try and two retries, then the next supernode"
    );
}

#[test]
fn asks_the_supernode_for_an_address_first() {
    let mut e = edge(None, vec![sn(1)]);
    let (tx, _) = drain(&mut e);
    let Message::RegisterSuper(r) = &tx[0].1.msg else {
        panic!("not a REGISTER_SUPER")
    };
    assert!(r.edge_mac.is_null() && r.dev_addr == IpSubnet::UNSPECIFIED);
    let assigned = IpSubnet::new([10, 77, 0, 5].into(), 24);
    e.handle_control(T0 + 1000, sn(1), ack_for(r.cookie, assigned));
    let (tx, other) = drain(&mut e);
    assert!(other.contains(&Action::AddressAssigned(assigned)));
    let Message::RegisterSuper(r) = &tx[0].1.msg else {
        panic!("no real registration")
    };
    assert_eq!(
        (r.edge_mac, r.dev_addr),
        (Mac([2, 0, 0, 0, 0, 1]), assigned)
    );
}

#[test]
fn an_unusable_assigned_address_is_asked_for_again_not_fatal() {
    let mut e = edge(None, vec![sn(1)]);
    let mut cookie = sent_cookie(&drain(&mut e).0);
    let mut t = T0;
    for bad in [
        IpSubnet::new([10, 77, 0, 5].into(), 33),
        IpSubnet::new([10, 77, 0, 5].into(), 0),
        IpSubnet::new([10, 77, 0, 0].into(), 24),
        IpSubnet::new([10, 77, 0, 255].into(), 24),
        IpSubnet::new([224, 0, 0, 5].into(), 24),
        IpSubnet::new([127, 0, 0, 5].into(), 8),
        IpSubnet::UNSPECIFIED,
    ] {
        e.handle_control(t + 1000, sn(1), ack_for(cookie, bad));
        let (tx, other) = drain(&mut e);
        assert!(tx.is_empty() && other.is_empty(), "{bad} taken");
        assert!(e.dev_addr().is_none() && e.waiting_for_supernode());
        // The request goes out again after the bootstrap timeout.
        t += 3 * S;
        e.handle_timeout(t);
        cookie = sent_cookie(&drain(&mut e).0);
    }
    let good = IpSubnet::new([10, 77, 0, 5].into(), 24);
    e.handle_control(t + 1000, sn(1), ack_for(cookie, good));
    assert!(drain(&mut e).1.contains(&Action::AddressAssigned(good)));
}

#[test]
fn hole_punching_and_peer_confirmation() {
    let mut e = edge(addr(), vec![sn(1)]);
    drain(&mut e);
    let peer = Mac([2, 0, 0, 0, 0, 2]);
    // A frame for the peer went via the supernode: REGISTER (forwarded) and QUERY_PEER, once.
    e.handle_hint(T0, PeerHint::Need(peer));
    let (tx, _) = drain(&mut e);
    assert!(tx.iter().all(|(dst, _)| *dst == sn(1)));
    assert!(tx.iter().any(|(_, d)| matches!(&d.msg, Message::Register(r) if r.cookie == cookie::FORWARDED && r.dst_mac == peer)));
    assert!(
        tx.iter()
            .any(|(_, d)| matches!(&d.msg, Message::QueryPeer(q) if q.target_mac == peer))
    );
    e.handle_hint(T0 + S, PeerHint::Need(peer));
    assert!(drain(&mut e).0.is_empty(), "at most one query per interval");
    // A relayed REGISTER names the peer's public socket: we punch towards it.
    let public = SocketAddr::from(([198, 18, 2, 2], 50000));
    let relayed = Datagram::new(
        Community::new("test").expect("valid"),
        Flags::FROM_SUPERNODE,
        Message::Register(Register {
            cookie: cookie::FORWARDED,
            src_mac: peer,
            dst_mac: e.mac(),
            sock: Some(Sock::from(public)),
            dev_addr: IpSubnet::UNSPECIFIED,
            desc: Desc::default(),
        }),
    );
    e.handle_control(T0 + 2 * S, sn(1), relayed);
    let (tx, _) = drain(&mut e);
    assert!(tx.iter().any(|(dst, d)| *dst == public
        && matches!(&d.msg, Message::Register(r) if r.cookie == cookie::REGULAR)));
    assert!(e.route(&peer, T0 + 2 * S).is_none(), "not confirmed yet");
    // The peer's direct ACK confirms the path.
    let ack = Datagram::new(
        Community::new("test").expect("valid"),
        Flags::EMPTY,
        Message::RegisterAck(RegisterAck {
            cookie: cookie::REGULAR,
            dst_mac: e.mac(),
            src_mac: peer,
            sock: None,
        }),
    );
    e.handle_control(T0 + 2 * S + 100, public, ack);
    assert_eq!(e.route(&peer, T0 + 3 * S), Some(public));
    assert!(drain(&mut e).1.contains(&Action::RoutesChanged));
    // Silent for longer than half the interval: no longer used directly.
    assert_eq!(e.route(&peer, T0 + 13 * S), None);
}

#[test]
fn answers_direct_registers_addressed_to_it_only() {
    let mut e = edge(addr(), vec![sn(1)]);
    drain(&mut e);
    let from = SocketAddr::from(([198, 18, 2, 2], 50000));
    let reg = |dst| {
        Datagram::new(
            Community::new("test").expect("valid"),
            Flags::EMPTY,
            Message::Register(Register {
                cookie: cookie::REGULAR,
                src_mac: Mac([2, 0, 0, 0, 0, 2]),
                dst_mac: dst,
                sock: None,
                dev_addr: IpSubnet::UNSPECIFIED,
                desc: Desc::default(),
            }),
        )
    };
    e.handle_control(T0, from, reg(Mac([2, 0, 0, 0, 0, 9])));
    assert!(drain(&mut e).0.is_empty());
    e.handle_control(T0, from, reg(e.mac()));
    let (tx, _) = drain(&mut e);
    assert!(tx.iter().any(|(dst, d)| *dst == from
        && matches!(&d.msg, Message::RegisterAck(a) if a.dst_mac == Mac([2, 0, 0, 0, 0, 2]))));
}

#[test]
fn a_stepped_wall_clock_stalls_and_purges_nothing() {
    let mut e = edge(addr(), vec![sn(1)]);
    let key = HeaderKey::for_community(e.community());
    e.cfg.header_key = Some(key.clone());
    let cookie = sent_cookie(&drain(&mut e).0);
    e.handle_control(T0, sn(1), ack_for(cookie, addr().expect("addr")));
    // The confirming registration (encrypted: answered by its cookie).
    let confirmation = e.sn_cookie;
    e.handle_control(T0, sn(1), ack_for(confirmation, addr().expect("addr")));
    let peer = Mac([2, 0, 0, 0, 0, 2]);
    let public = SocketAddr::from(([198, 18, 2, 2], 50000));
    let ack = Datagram::new(
        Community::new("test").expect("valid"),
        Flags::EMPTY,
        Message::RegisterAck(RegisterAck {
            cookie: cookie::REGULAR,
            dst_mac: e.mac(),
            src_mac: peer,
            sock: None,
        }),
    );
    // The peer's traffic came directly: we register towards it, and its ACK confirms.
    e.handle_hint(
        T0,
        PeerHint::Direct {
            mac: peer,
            from: public,
        },
    );
    while e.poll_action().is_some() {}
    e.handle_control(T0, public, ack);
    let acked = |e: &mut Edge, t: u64| {
        let c = e.sn_cookie;
        e.handle_control(t, sn(1), ack_for(c, addr().expect("addr")));
    };
    let hour = 3600 * S;
    let mut registrations = Vec::new();
    // 100 s of monotonic time while the wall clock jumps an hour ahead, an hour back, and
    // back again; the supernode answers and the peer keeps sending (the data plane's hints).
    for step in 1..=100u64 {
        let mono = T0 + step * S;
        let wall = match step {
            0..=30 => mono + hour,
            31..=60 => mono - hour,
            _ => mono,
        };
        e.set_wall_clock(mono, wall);
        e.handle_hint(
            mono,
            PeerHint::Direct {
                mac: peer,
                from: public,
            },
        );
        if e.poll_timeout() <= mono {
            e.handle_timeout(mono);
        }
        while let Some(a) = e.poll_action() {
            let Action::Transmit { dst, mut data } = a else {
                continue;
            };
            let stamp = key.decrypt(&mut data, e.community()).expect("opens");
            assert!(
                n2n_crypto::header_enc::stamp_in_frame(stamp, wall),
                "stamps follow the wall clock"
            );
            let (d, _) = Datagram::decode(&data).expect("decodes");
            if dst == sn(1) && matches!(d.msg, Message::RegisterSuper(_)) {
                registrations.push(step);
                acked(&mut e, mono);
            }
        }
    }
    // Every 20 s of monotonic time, whatever the wall clock did.
    assert_eq!(registrations, vec![20, 40, 60, 80, 100]);
    assert!(e.is_registered());
    assert_eq!(
        e.routes().map(|(m, s, _)| (m, s)).collect::<Vec<_>>(),
        vec![(peer, public)]
    );
}

#[test]
fn the_first_registration_is_stamped_with_the_wall_clock() {
    // Monotonic time starts near zero; the wall clock says 2027.
    let mut cfg = config(addr(), vec![sn(1)]);
    let key = HeaderKey::for_community(&cfg.community);
    cfg.header_key = Some(key.clone());
    let mono = 1_000_000_000_000;
    let mut e = Edge::with_wall_clock(
        cfg,
        Box::new(Xorshift128Plus::seeded(7)),
        Arc::new(n2n_crypto::StampGenerator::default()),
        mono,
        T0,
    );
    let Some(Action::Transmit { mut data, .. }) = e.poll_action() else {
        panic!("no registration")
    };
    let stamp = key.decrypt(&mut data, e.community()).expect("opens");
    assert!(n2n_crypto::header_enc::stamp_in_frame(stamp, T0));
}

const PEER: Mac = Mac([2, 0, 0, 0, 0, 2]);

/// The peer's REGISTER_ACK to our REGISTER.
fn peer_ack() -> Datagram {
    Datagram::new(
        Community::new("test").expect("valid"),
        Flags::EMPTY,
        Message::RegisterAck(RegisterAck {
            cookie: cookie::REGULAR,
            dst_mac: Mac([2, 0, 0, 0, 0, 1]),
            src_mac: PEER,
            sock: None,
        }),
    )
}

/// The peer's REGISTER relayed by the supernode, naming `sock` as the peer's.
fn relayed_register(sock: SocketAddr) -> Datagram {
    Datagram::new(
        Community::new("test").expect("valid"),
        Flags::FROM_SUPERNODE,
        Message::Register(Register {
            cookie: cookie::FORWARDED,
            src_mac: PEER,
            dst_mac: Mac([2, 0, 0, 0, 0, 1]),
            sock: Some(Sock::from(sock)),
            dev_addr: IpSubnet::UNSPECIFIED,
            desc: Desc::default(),
        }),
    )
}

/// An authenticated packet from the peer at `from` (the Tunnel's hint).
fn authentic(from: SocketAddr) -> PeerHint {
    PeerHint::Direct { mac: PEER, from }
}

/// The actions performed, and whether a path probe to the peer at `to` is among them.
fn probes_to(e: &mut Edge, to: SocketAddr) -> (Vec<Action>, bool) {
    let (_, actions) = drain(e);
    let probed = actions.contains(&Action::Probe { mac: PEER, to });
    (actions, probed)
}

fn authenticated_edge() -> Edge {
    let mut e = edge(addr(), vec![sn(1)]);
    e.cfg.authenticated_paths = true;
    drain(&mut e);
    e
}

#[test]
fn with_authenticated_paths_only_an_authenticated_packet_confirms_or_moves_a_path() {
    let mut e = authenticated_edge();
    let (public, other) = (
        SocketAddr::from(([198, 18, 2, 2], 50000)),
        SocketAddr::from(([198, 18, 9, 9], 40000)),
    );
    // Punching towards the socket the supernode named, and the peer's ACK from there: not
    // used yet, but probed with an authenticated packet.
    e.handle_control(T0, sn(1), relayed_register(public));
    drain(&mut e);
    e.handle_control(T0 + 100, public, peer_ack());
    assert_eq!(
        e.route(&PEER, T0 + 200),
        None,
        "an ACK alone proves nothing"
    );
    let (actions, probed) = probes_to(&mut e, public);
    assert!(
        probed && !actions.contains(&Action::RoutesChanged),
        "{actions:?}"
    );
    // The peer's authenticated packet from there (its answer to our probe): used, and probed
    // back, in case the peer waits for one from us (one-way traffic would not send it).
    e.handle_hint(T0 + 300, authentic(public));
    assert_eq!(e.route(&PEER, T0 + 400), Some(public));
    let (actions, probed) = probes_to(&mut e, public);
    assert!(
        probed && actions.contains(&Action::RoutesChanged),
        "{actions:?}"
    );
    // Already verified: its next packets ask for nothing more (the exchange ends).
    e.handle_hint(T0 + 1_500_000, authentic(public));
    assert!(!probes_to(&mut e, public).1);
    // The path goes quiet; the supernode names another socket and an ACK comes from there
    // (an attacker who can answer there): the verified path does not move...
    let later = T0 + 15 * S;
    e.handle_control(later, sn(1), relayed_register(other));
    drain(&mut e);
    e.handle_control(later + 100, other, peer_ack());
    let (actions, probed) = probes_to(&mut e, other);
    assert!(
        probed && !actions.contains(&Action::RoutesChanged),
        "{actions:?}"
    );
    e.handle_hint(later + 200, authentic(public));
    assert_eq!(e.route(&PEER, later + 300), Some(public), "moved by an ACK");
    // ...until an authenticated packet comes from the new socket.
    e.handle_hint(later + 400, authentic(other));
    assert_eq!(e.route(&PEER, later + 500), Some(other));
}

#[test]
fn with_authenticated_paths_an_ack_from_a_vouched_socket_is_used_at_once_and_probed_back() {
    let mut e = authenticated_edge();
    let public = SocketAddr::from(([198, 18, 2, 2], 50000));
    // The peer's probe arrives first (it got our REGISTER's ACK before we got its own).
    e.handle_hint(T0, authentic(public));
    assert_eq!(e.route(&PEER, T0 + 1), None, "no path before an ACK");
    let (tx, _) = drain(&mut e);
    assert!(
        tx.iter()
            .any(|(dst, d)| *dst == public && matches!(d.msg, Message::Register(_)))
    );
    e.handle_control(T0 + 100, public, peer_ack());
    assert_eq!(e.route(&PEER, T0 + 200), Some(public));
    // Our probe back is what the peer waits for if only we ever send to it.
    let (actions, probed) = probes_to(&mut e, public);
    assert!(
        probed && actions.contains(&Action::RoutesChanged),
        "{actions:?}"
    );
}

#[test]
fn every_refusal_says_why_and_is_counted() {
    let mut e = edge(addr(), vec![sn(1)]);
    let cookie = sent_cookie(&drain(&mut e).0);
    let stranger = SocketAddr::from(([203, 0, 113, 66], 4444));
    let peer = Mac([2, 0, 0, 0, 0, 2]);
    let msg = |c: &str, flags, m| Datagram::new(Community::new(c).expect("valid"), flags, m);
    let ack = |cookie| RegisterSuperAck {
        cookie,
        src_mac: Mac([2, 0, 0, 0, 0, 0xfe]),
        dev_addr: IpSubnet::UNSPECIFIED,
        lifetime: 15,
        sock: Sock::from(stranger),
        auth: Auth::NONE,
        supernodes: Vec::new(),
        key_time: 0,
    };
    let info = PeerInfo {
        aflags: 0,
        src_mac: Mac::NULL,
        mac: peer,
        sock: Sock::from(stranger),
        preferred_sock: None,
        load: 0,
        uptime: 0,
        version: Default::default(),
    };
    let register = |dst| Register {
        cookie: cookie::REGULAR,
        src_mac: peer,
        dst_mac: dst,
        sock: None,
        dev_addr: IpSubnet::UNSPECIFIED,
        desc: Desc::default(),
    };
    let cases = [
        (
            msg(
                "other",
                Flags::EMPTY,
                Message::RegisterSuperAck(ack(cookie)),
            ),
            sn(1),
            Refusal::ForeignCommunity,
        ),
        (
            msg(
                "test",
                Flags::EMPTY,
                Message::RegisterSuperAck(ack(cookie ^ 1)),
            ),
            sn(1),
            Refusal::StaleAnswer,
        ),
        (
            msg("test", Flags::FROM_SUPERNODE, Message::PeerInfo(info)),
            stranger,
            Refusal::NotOurSupernode,
        ),
        // From our supernode, but about a peer we never asked for.
        (
            msg("test", Flags::FROM_SUPERNODE, Message::PeerInfo(info)),
            sn(1),
            Refusal::StaleAnswer,
        ),
        (
            msg(
                "test",
                Flags::FROM_SUPERNODE,
                Message::Register(register(e.mac())),
            ),
            stranger,
            Refusal::NotOurSupernode,
        ),
        (
            msg("test", Flags::EMPTY, Message::Register(register(peer))),
            stranger,
            Refusal::NotForUs,
        ),
        (peer_ack(), stranger, Refusal::Unasked),
        (
            msg("test", Flags::EMPTY, Message::Ping),
            stranger,
            Refusal::Unexpected,
        ),
    ];
    for (d, from, why) in cases {
        let before = e.stats().refused[why.index()];
        assert_eq!(e.handle_datagram(T0, from, d, None), Err(why));
        assert_eq!(
            e.stats().refused[why.index()],
            before + 1,
            "{why:?} counted"
        );
    }
    assert!(!e.is_registered(), "nothing of it registered us");
    // The real answer is taken.
    let ok = msg("test", Flags::EMPTY, Message::RegisterSuperAck(ack(cookie)));
    assert_eq!(e.handle_datagram(T0, sn(1), ok, None), Ok(()));
    assert!(e.is_registered());
}
