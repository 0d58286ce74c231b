//! `-R` traffic filter rules on real edges: a rule that drops ICMP drops it both ways and lets
//! TCP through.

use std::time::Duration;

use n2n_tests::{Lab, Nat, wait_until};

use crate::{guard, peer_ip, start_edge, start_supernode};

#[test]
fn a_filter_rule_drops_icmp_and_lets_tcp_through() {
    let Some(_g) = guard("a_filter_rule_drops_icmp_and_lets_tcp_through") else {
        return;
    };
    let lab = Lab::new([Nat::HomeRouter, Nat::HomeRouter]);
    let _sn = start_supernode(&lab, &[]);
    let e0 = start_edge(&lab, 0, &["-k", "secret"]);
    let e1 = start_edge(
        &lab,
        1,
        &["-k", "secret", "-R", "0.0.0.0/0,0.0.0.0/0,ICMP-"],
    );
    // TCP passes: a line sent from site 0 arrives at site 1 over the overlay.
    let got = lab.dir.join("filter-received.txt");
    let recv = format!("nc -4 -l 9001 > {}", got.display());
    let _server = lab.spawn("site1", "nc-filter", "sh", &["-c", &recv]);
    assert!(wait_until(Duration::from_secs(5), || {
        String::from_utf8_lossy(&lab.exec("site1", &["ss", "-ltn"]).stdout).contains(":9001")
    }));
    let send = format!("echo through-the-filter | nc -N -w 2 {} 9001", peer_ip(1));
    assert!(
        wait_until(Duration::from_secs(15), || {
            lab.exec("site0", &["sh", "-c", &send]);
            std::fs::read_to_string(&got).is_ok_and(|t| t.contains("through-the-filter"))
        }),
        "TCP did not get through:\n{}\n{}",
        e0.log_text(),
        e1.log_text()
    );
    // ICMP is dropped by edge 1 whichever way it goes.
    assert_eq!(
        lab.ping("site0", &peer_ip(1), 3, "0.2"),
        0,
        "ICMP into the filtering edge"
    );
    assert_eq!(
        lab.ping("site1", &peer_ip(0), 3, "0.2"),
        0,
        "ICMP out of the filtering edge"
    );
}
