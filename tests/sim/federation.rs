//! Federated supernodes (spec §7.9): edges at different supernodes reach each other, relayed
//! traffic survives the loss of its supernode, and a federation holds 150 000 edges.

use std::collections::HashMap;
use std::time::Instant;

use n2n_crypto::{RandomSource, Xorshift128Plus};
use n2n_tests::Nat;
use n2n_tests::sim::{EdgeId, SimNet};

use super::{S, traffic};

fn forwarded(net: &SimNet, i: usize) -> u64 {
    net.supernode(i).map_or(0, |s| s.stats().forward_tx)
}

#[test]
fn edges_on_two_supernodes_relay_then_go_peer_to_peer() {
    let mut net = SimNet::federation(11, 2);
    let a = net.add_edge_with(Nat::HomeRouter, 20, &[0]);
    let b = net.add_edge_with(Nat::HomeRouter, 20, &[1]);
    net.run_for(2 * S);
    assert!(net.edge(a).is_registered() && net.edge(b).is_registered());
    assert_eq!(
        (net.supernode_of(a), net.supernode_of(b)),
        (Some(0), Some(1))
    );
    assert_eq!((net.edge_count(0), net.edge_count(1)), (1, 1));

    // The first frame has no route: A → sn0 → sn1 → B.
    let fwd = (forwarded(&net, 0), forwarded(&net, 1));
    net.send_frame(a, b);
    net.run_for(S / 2);
    assert_eq!(net.frames.relayed, 1);
    assert_eq!(
        net.delivered_to(b),
        1,
        "the relayed frame crossed the federation"
    );
    assert!(
        forwarded(&net, 0) > fwd.0 && forwarded(&net, 1) > fwd.1,
        "both supernodes relayed"
    );

    // The look-up crossed the federation too: the edges punch through and go direct.
    traffic(&mut net, a, b, 3);
    let before = net.frames;
    let rx = (net.delivered_to(a), net.delivered_to(b));
    traffic(&mut net, a, b, 5);
    let direct = net.frames.direct - before.direct;
    let relayed = net.frames.relayed - before.relayed;
    assert!(
        relayed == 0 && direct == 100,
        "direct {direct}, relayed {relayed}"
    );
    assert_eq!(
        (net.delivered_to(a) - rx.0, net.delivered_to(b) - rx.1),
        (50, 50),
        "every direct frame arrived"
    );
    assert!(net.direct_route(a, b).is_some());
    assert!(net.direct_route(b, a).is_some());
}

/// Needs the edge's fast failover: while relaying, a silent supernode is noticed within about
/// a second and the next one takes over.
#[test]
fn relayed_traffic_survives_the_loss_of_its_supernode() {
    let mut net = SimNet::federation(12, 2);
    let a = net.add_edge_with(Nat::Symmetric, 20, &[0, 1]);
    let b = net.add_edge_with(Nat::Symmetric, 20, &[0, 1]);
    net.run_for(5 * S);
    assert!(net.edge(a).is_registered() && net.edge(b).is_registered());
    traffic(&mut net, a, b, 3);
    assert_eq!(net.frames.direct, 0, "symmetric NATs relay");
    assert_eq!(
        (net.delivered_to(a), net.delivered_to(b)),
        (30, 30),
        "relayed traffic flows"
    );

    let dead = net.supernode_of(a).expect("a supernode of the net");
    let survivor = 1 - dead;
    net.set_supernode_up(dead, false);
    let killed = net.now_us();
    let rx = (net.delivered_to(a), net.delivered_to(b));
    let mut recovered = None;
    while net.now_us() < killed + 4 * S {
        net.send_frame(a, b);
        net.send_frame(b, a);
        net.run_for(S / 10);
        if recovered.is_none() && net.delivered_to(a) > rx.0 && net.delivered_to(b) > rx.1 {
            recovered = Some(net.now_us() - killed);
        }
    }
    let gap = recovered.expect("relayed traffic never came back");
    println!(
        "relayed traffic resumed both ways {} ms after supernode {dead} died",
        gap / 1000
    );
    assert!(gap <= 2 * S, "recovery took {} ms", gap / 1000);
    assert_eq!(
        (net.supernode_of(a), net.supernode_of(b)),
        (Some(survivor), Some(survivor))
    );
    let rx = (net.delivered_to(a), net.delivered_to(b));
    traffic(&mut net, a, b, 2);
    assert_eq!(
        (net.delivered_to(a) - rx.0, net.delivered_to(b) - rx.1),
        (20, 20),
        "every frame arrives after the failover"
    );
}

/// Sends a frame between `n` random pairs of edges on different supernodes; each must arrive
/// exactly once, and each sender must then have found its peer through the federation.
fn cross_pairs(net: &mut SimNet, rng: &mut Xorshift128Plus, n: usize) {
    let mut pairs: Vec<(EdgeId, EdgeId)> = Vec::with_capacity(n);
    while pairs.len() < n {
        let a = rng.next_u64() as usize % net.num_edges();
        let b = rng.next_u64() as usize % net.num_edges();
        if net.supernode_of(a) != net.supernode_of(b) {
            pairs.push((a, b));
        }
    }
    // Destination → (received before, frames sent to it).
    let mut expect: HashMap<EdgeId, (u64, u64)> = HashMap::new();
    for &(_, b) in &pairs {
        expect.entry(b).or_insert((net.delivered_to(b), 0)).1 += 1;
    }
    let before = net.frames;
    for &(a, b) in &pairs {
        net.send_frame(a, b);
    }
    net.run_for(S);
    for (b, (rx, sent)) in expect {
        assert_eq!(net.delivered_to(b) - rx, sent, "frames to edge {b}");
    }
    println!(
        "{n} cross-supernode frames: {} relayed, {} direct, all delivered",
        net.frames.relayed - before.relayed,
        net.frames.direct - before.direct
    );
    net.run_for(S);
    let found = pairs
        .iter()
        .filter(|&&(a, b)| net.direct_route(a, b).is_some())
        .count();
    assert_eq!(found, n, "senders with a route to their peer");
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn counts(net: &SimNet) -> Vec<usize> {
    (0..net.num_supernodes())
        .map(|i| net.edge_count(i))
        .collect()
}

#[test]
fn three_supernodes_hold_150k_edges_and_rehome_them() {
    const N: usize = 150_000;
    let wall = Instant::now();
    let mut net = SimNet::federation(13, 3);
    let mut rng = Xorshift128Plus::seeded(13);
    // The supernodes meet first (a chain of -l becomes a full mesh), so that they report
    // equal loads and each edge starts at the first supernode it is configured with.
    let meshed = |net: &SimNet| {
        (0..3).all(|i| {
            net.supernode(i)
                .is_some_and(|s| s.federation().members.len() == 2)
        })
    };
    while !meshed(&net) && net.now_us() < 120 * S + net.start_us() {
        net.run_for(S);
    }
    assert!(meshed(&net), "every supernode knows the other two");
    println!(
        "federation meshed after {} s",
        (net.now_us() - net.start_us()) / S
    );
    for id in 0..N {
        let first = id % 3;
        net.add_edge_with(Nat::None, 20, &[first, (first + 1) % 3, (first + 2) % 3]);
    }
    let t0 = net.now_us();
    while net.supernode_edges() < N && net.now_us() < t0 + 60 * S {
        net.run_for(S);
    }
    println!(
        "{N} edges registered in {} s virtual, {:.1} s wall: {:?}",
        (net.now_us() - t0) / S,
        wall.elapsed().as_secs_f64(),
        counts(&net)
    );
    assert_eq!(net.supernode_edges(), N);
    for (i, c) in counts(&net).into_iter().enumerate() {
        assert!(c.abs_diff(N / 3) <= N / 60, "supernode {i} holds {c}");
    }
    cross_pairs(&mut net, &mut rng, 1000);

    net.set_supernode_up(0, false);
    let killed = net.now_us();
    let rehomed = |net: &SimNet| (0..N).all(|id| net.supernode_of(id) != Some(0));
    while !(rehomed(&net) && net.supernode_edges() == N) && net.now_us() < killed + 120 * S {
        net.run_for(S);
    }
    println!(
        "re-homed in {} s virtual, {:.1} s wall: {:?}",
        (net.now_us() - killed) / S,
        wall.elapsed().as_secs_f64(),
        counts(&net)
    );
    assert!(rehomed(&net), "edges still point at the dead supernode");
    assert_eq!(net.supernode_edges(), N, "the survivors hold every edge");
    cross_pairs(&mut net, &mut rng, 1000);

    let rss = rss_kib();
    println!(
        "wall {:.1} s, RSS {} MiB ({} bytes per edge)",
        wall.elapsed().as_secs_f64(),
        rss / 1024,
        rss * 1024 / N as u64
    );
}
