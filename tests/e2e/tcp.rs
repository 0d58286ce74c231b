//! `-S2`: edges that reach the supernode only over TCP (the lab's firewall drops UDP to it)
//! talk through it, and reconnect when it restarts.

use std::time::Duration;

use n2n_tests::{Lab, Nat, SUPERNODE_IP, wait_until};

use crate::{guard, peer_ip, start_edge, start_supernode};

#[test]
fn tcp_only_edges_ping_and_reconnect_after_a_supernode_restart() {
    let Some(_g) = guard("tcp_only_edges_ping_and_reconnect_after_a_supernode_restart") else {
        return;
    };
    let lab = Lab::new([Nat::HomeRouter, Nat::HomeRouter]);
    // No UDP reaches the supernode: only TCP can.
    lab.exec_ok(
        "inet",
        &[
            "iptables",
            "-I",
            "FORWARD",
            "-p",
            "udp",
            "-d",
            SUPERNODE_IP,
            "-j",
            "DROP",
        ],
    );
    let mut sn = start_supernode(&lab, &[]);
    let e0 = start_edge(&lab, 0, &["-k", "secret", "-S2", "-v"]);
    let e1 = start_edge(&lab, 1, &["-k", "secret", "-S2", "-v"]);
    assert!(
        lab.wait_ping("site0", &peer_ip(1), Duration::from_secs(15)),
        "no ping over TCP:\n{}\n{}\n{}",
        sn.log_text(),
        e0.log_text(),
        e1.log_text()
    );
    let edges = lab.mgmt("sn", 5645, "r 1 edges");
    assert_eq!(
        edges.matches("\"community\":\"e2etest\"").count(),
        2,
        "{edges}"
    );
    // The supernode goes away and comes back: the edges reconnect and register again.
    sn.kill();
    let _sn = start_supernode(&lab, &[]);
    assert!(
        wait_until(Duration::from_secs(30), || lab
            .mgmt("sn", 5645, "r 1 edges")
            .matches("\"community\":\"e2etest\"")
            .count()
            == 2),
        "the edges did not reconnect:\n{}\n{}",
        e0.log_text(),
        e1.log_text()
    );
    assert!(
        lab.wait_ping("site0", &peer_ip(1), Duration::from_secs(15)),
        "no ping after the restart:\n{}\n{}",
        e0.log_text(),
        e1.log_text()
    );
    assert!(
        e0.log_text()
            .contains("connected to the supernode over TCP")
    );
}
