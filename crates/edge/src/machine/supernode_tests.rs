//! Supernode selection (spec §7.4) and the fast failover, with simulated time.

use std::net::SocketAddr;

use super::tests::{S, T0, ack_for, addr, confirm, drain, edge, sent_cookie, sn};
use super::*;
use n2n_proto::{MsgType, SupernodeEntry};

fn pong(mac_last: u8, load: u32) -> Datagram {
    Datagram::new(
        Community::new("test").expect("valid"),
        Flags::FROM_SUPERNODE,
        Message::PeerInfo(PeerInfo {
            aflags: 0,
            src_mac: Mac([2, 0, 0, 0, 0, mac_last]),
            mac: Mac::NULL,
            sock: Sock::from(SocketAddr::from(([198, 18, 1, 2], 40000))),
            preferred_sock: None,
            // Supernodes send the load byte-swapped (spec §7.4).
            load: load.swap_bytes(),
            uptime: 5,
            version: Default::default(),
        }),
    )
}

fn pings_to(tx: &[(SocketAddr, Datagram)]) -> Vec<SocketAddr> {
    tx.iter()
        .filter(|(_, d)| matches!(&d.msg, Message::QueryPeer(q) if q.is_ping()))
        .map(|(a, _)| *a)
        .collect()
}

fn registrations_to(tx: &[(SocketAddr, Datagram)]) -> Vec<SocketAddr> {
    tx.iter()
        .filter(|(_, d)| matches!(d.msg, Message::RegisterSuper(_)))
        .map(|(a, _)| *a)
        .collect()
}

/// An edge with `sns` supernodes, registered with the `chosen` one after PONGs of `loads`.
fn registered(sns: &[u8], loads: &[u32]) -> (Edge, u64) {
    let mut e = edge(addr(), sns.iter().map(|n| sn(*n)).collect());
    let (tx, _) = drain(&mut e);
    assert_eq!(pings_to(&tx).len(), sns.len(), "a PING to each supernode");
    assert!(
        registrations_to(&tx).is_empty(),
        "no registration before a PONG"
    );
    let mut t = T0 + 10_000;
    for (n, load) in sns.iter().zip(loads) {
        e.handle_control(t, sn(*n), pong(*n, *load));
        t += 1000;
    }
    let (tx, _) = drain(&mut e);
    let cookie = sent_cookie(&tx);
    let to = registrations_to(&tx)[0];
    e.handle_control(t, to, ack_for(cookie, IpSubnet::UNSPECIFIED));
    assert!(e.is_registered());
    confirm(&mut e, t, to, IpSubnet::UNSPECIFIED);
    (e, t)
}

#[test]
fn startup_pings_pick_the_least_loaded_supernode() {
    let (e, _) = registered(&[1, 2, 3], &[40, 3, 9]);
    assert_eq!(e.supernode(), sn(2));
}

#[test]
fn select_rtt_takes_the_first_to_answer() {
    let mut cfg_edge = edge(addr(), vec![sn(1), sn(2)]);
    cfg_edge.cfg.selection = Selection::Rtt;
    drain(&mut cfg_edge);
    cfg_edge.handle_control(T0 + 4_000, sn(2), pong(2, 0));
    let (tx, _) = drain(&mut cfg_edge);
    assert_eq!(
        registrations_to(&tx),
        vec![sn(2)],
        "the nearer one, at once"
    );
    assert_eq!(cfg_edge.supernodes()[1].criterion, 4, "4 ms round trip");
}

#[test]
fn select_mac_takes_the_lowest_mac() {
    let mut e = edge(addr(), vec![sn(1), sn(2)]);
    e.cfg.selection = Selection::Mac;
    drain(&mut e);
    e.handle_control(T0 + 1_000, sn(1), pong(9, 0));
    e.handle_control(T0 + 2_000, sn(2), pong(3, 0));
    let (tx, _) = drain(&mut e);
    assert_eq!(registrations_to(&tx), vec![sn(2)]);
}

#[test]
fn acks_teach_the_federations_supernodes() {
    let mut e = edge(addr(), vec![sn(1)]);
    let (tx, _) = drain(&mut e);
    let mut ack = ack_for(sent_cookie(&tx), IpSubnet::UNSPECIFIED);
    if let Message::RegisterSuperAck(a) = &mut ack.msg {
        let entry = |ip: [u8; 4], port| {
            SupernodeEntry::ipv4(
                std::net::SocketAddrV4::new(ip.into(), port),
                Mac([2, 0, 0, 0, 0, 7]),
            )
        };
        a.supernodes = vec![
            entry([198, 18, 0, 9], 7654),
            entry([0, 0, 0, 0], 7654),    // unusable: skipped
            entry([198, 18, 0, 10], 0),   // unusable: skipped
            entry([198, 18, 0, 9], 7654), // a duplicate
        ];
    }
    e.handle_control(T0 + 1_000, sn(1), ack);
    let learnt: Vec<_> = e
        .supernodes()
        .iter()
        .map(|s| (s.addr, s.purgeable))
        .collect();
    assert_eq!(
        learnt,
        vec![
            (sn(1), false),
            (SocketAddr::from(([198, 18, 0, 9], 7654)), true)
        ]
    );
}

#[test]
fn relayed_traffic_moves_to_the_next_supernode_within_a_second() {
    let (mut e, mut t) = registered(&[1, 2], &[1, 5]);
    assert_eq!(e.supernode(), sn(1));
    let dead_since = t;
    let mut pings = 0;
    let switched = loop {
        t += 50_000;
        e.handle_hint(t, PeerHint::Need(Mac([2, 0, 0, 0, 0, 9])));
        e.handle_timeout(t);
        let (tx, other) = drain(&mut e);
        pings += pings_to(&tx).iter().filter(|a| **a == sn(1)).count();
        if registrations_to(&tx) == vec![sn(2)] {
            assert!(
                other.contains(&Action::RoutesChanged),
                "the data path follows"
            );
            break t;
        }
        assert!(t < dead_since + 2 * S, "no failover within 2 s");
    };
    assert_eq!(e.supernode(), sn(2));
    assert!(pings >= 3, "probed {pings} times first");
    assert!(
        switched - dead_since <= 1_100_000,
        "took {} ms",
        (switched - dead_since) / 1000
    );
}

#[test]
fn a_supernode_that_answers_its_probes_is_kept() {
    let (mut e, mut t) = registered(&[1, 2], &[1, 5]);
    for _ in 0..200 {
        t += 50_000;
        e.handle_hint(
            t,
            PeerHint::Relayed {
                mac: Mac([2, 0, 0, 0, 0, 9]),
                sock: SocketAddr::from(([198, 18, 2, 2], 4000)),
                unicast: true,
            },
        );
        e.handle_timeout(t);
        let (tx, _) = drain(&mut e);
        for to in pings_to(&tx) {
            e.handle_control(t + 1_000, to, pong(1, 1));
        }
    }
    assert_eq!(e.supernode(), sn(1));
}

#[test]
fn idle_edges_send_only_what_n2n_sends() {
    let (mut e, t0) = registered(&[1, 2], &[1, 5]);
    let mut t = t0;
    let mut sent = Vec::new();
    loop {
        t = e.poll_timeout().max(t + 1);
        if t >= t0 + 59 * S {
            break;
        }
        // Broadcasts relayed from a peer (ARP and the like) do not make it watch.
        e.handle_hint(
            t,
            PeerHint::Relayed {
                mac: Mac([2, 0, 0, 0, 0, 9]),
                sock: SocketAddr::from(([198, 18, 2, 2], 4000)),
                unicast: false,
            },
        );
        e.handle_timeout(t);
        let (tx, _) = drain(&mut e);
        for (to, d) in tx {
            // Every supernode answers at once.
            match &d.msg {
                Message::RegisterSuper(r) => {
                    e.handle_control(t, to, ack_for(r.cookie, IpSubnet::UNSPECIFIED))
                }
                Message::QueryPeer(_) => e.handle_control(t, to, pong(1, 1)),
                _ => {}
            }
            sent.push((to, d.msg.msg_type()));
        }
    }
    // A registration every 20 s and one sweep's PINGs; nothing else (the peer's broadcasts
    // also start the usual look-up through the supernode, as n2n).
    let regs = sent
        .iter()
        .filter(|(_, m)| *m == MsgType::RegisterSuper)
        .count();
    let pings = sent
        .iter()
        .filter(|(_, m)| *m == MsgType::QueryPeer)
        .count();
    let other = sent
        .iter()
        .filter(|(_, m)| {
            !matches!(
                m,
                MsgType::RegisterSuper | MsgType::QueryPeer | MsgType::Register
            )
        })
        .count();
    assert_eq!((regs, pings, other), (2, 2, 0), "{sent:?}");
}

#[test]
fn sweeps_move_to_a_nearer_supernode() {
    let mut e = edge(addr(), vec![sn(1), sn(2)]);
    e.cfg.selection = Selection::Rtt;
    drain(&mut e);
    e.handle_control(T0 + 1_000, sn(1), pong(1, 0));
    let (tx, _) = drain(&mut e);
    e.handle_control(
        T0 + 2_000,
        sn(1),
        ack_for(sent_cookie(&tx), IpSubnet::UNSPECIFIED),
    );
    assert_eq!(e.supernode(), sn(1));
    // At the sweep, supernode 2 answers in 5 ms and supernode 1 in 80 ms.
    let t = e.watch.next_sweep_us;
    e.handle_timeout(t);
    let (tx, _) = drain(&mut e);
    assert_eq!(pings_to(&tx).len(), 2);
    e.handle_control(t + 5_000, sn(2), pong(2, 0));
    e.handle_control(t + 80_000, sn(1), pong(1, 0));
    // The registration due meanwhile is answered.
    let t_reg = T0 + 40 * S + 10_000;
    e.handle_timeout(t_reg);
    let (tx, _) = drain(&mut e);
    e.handle_control(
        t_reg,
        sn(1),
        ack_for(sent_cookie(&tx), IpSubnet::UNSPECIFIED),
    );
    let t = e.watch.next_sweep_us;
    e.handle_timeout(t);
    let (tx, _) = drain(&mut e);
    assert!(
        tx.iter()
            .any(|(a, d)| *a == sn(1) && matches!(d.msg, Message::UnregisterSuper(_))),
        "the old one is told"
    );
    assert_eq!(registrations_to(&tx), vec![sn(2)]);
    assert_eq!(e.supernode(), sn(2));
}
