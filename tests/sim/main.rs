//! Simulated scenarios: virtual time, seeded loss and NAT types, the real machines.

mod federation;

use n2n_tests::Nat;
use n2n_tests::sim::SimNet;

const S: u64 = 1_000_000;

/// Sends a frame each way every 100 ms for `secs` seconds.
fn traffic(net: &mut SimNet, a: usize, b: usize, secs: u64) {
    for _ in 0..secs * 10 {
        net.send_frame(a, b);
        net.send_frame(b, a);
        net.run_for(S / 10);
    }
}

#[test]
fn home_router_nats_go_peer_to_peer() {
    let mut net = SimNet::seeded(1);
    let (a, b) = (
        net.add_edge(Nat::HomeRouter, 20),
        net.add_edge(Nat::HomeRouter, 20),
    );
    net.run_for(S);
    assert!(net.edge(a).is_registered() && net.edge(b).is_registered());
    traffic(&mut net, a, b, 2);
    let before = net.frames;
    traffic(&mut net, a, b, 5);
    let direct = net.frames.direct - before.direct;
    let relayed = net.frames.relayed - before.relayed;
    assert!(
        relayed == 0 && direct == 100,
        "direct {direct}, relayed {relayed}"
    );
    assert!(net.direct_route(a, b).is_some());
}

#[test]
fn symmetric_nats_stay_relayed() {
    let mut net = SimNet::seeded(2);
    let (a, b) = (
        net.add_edge(Nat::Symmetric, 20),
        net.add_edge(Nat::Symmetric, 20),
    );
    net.run_for(S);
    traffic(&mut net, a, b, 30);
    assert_eq!(net.frames.direct, 0);
    assert!(net.direct_route(a, b).is_none());
}

#[test]
fn one_open_side_is_enough_for_p2p() {
    let mut net = SimNet::seeded(3);
    let (a, b) = (
        net.add_edge(Nat::None, 20),
        net.add_edge(Nat::Symmetric, 20),
    );
    net.run_for(S);
    traffic(&mut net, a, b, 3);
    let before = net.frames;
    traffic(&mut net, a, b, 3);
    assert!(
        net.frames.relayed == before.relayed,
        "traffic still relayed"
    );
}

#[test]
fn loss_delays_but_does_not_prevent_p2p() {
    let mut net = SimNet::seeded(4);
    net.set_loss(0.3);
    let (a, b) = (
        net.add_edge(Nat::HomeRouter, 20),
        net.add_edge(Nat::HomeRouter, 20),
    );
    net.run_for(10 * S);
    assert!(
        net.edge(a).is_registered() && net.edge(b).is_registered(),
        "registration retries beat 30 % loss"
    );
    traffic(&mut net, a, b, 20);
    assert!(net.direct_route(a, b).is_some());
}

#[test]
fn supernode_outage_keeps_p2p_and_recovers() {
    let mut net = SimNet::seeded(5);
    let interval = 20;
    let (a, b) = (
        net.add_edge(Nat::HomeRouter, interval),
        net.add_edge(Nat::HomeRouter, interval),
    );
    net.run_for(S);
    traffic(&mut net, a, b, 3);
    net.set_supernode_up(0, false);
    let before = net.frames;
    traffic(&mut net, a, b, 30);
    assert_eq!(
        net.frames.relayed, before.relayed,
        "p2p traffic needs no supernode"
    );
    net.set_supernode_up(0, true);
    let restarted = net.now_us();
    while net.supernode_edges() < 2 && net.now_us() < restarted + 2 * interval * S {
        net.run_for(S / 10);
    }
    assert_eq!(
        net.supernode_edges(),
        2,
        "edges did not re-register within 2 × the interval"
    );
}
