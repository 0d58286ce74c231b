//! `-n cidr:gateway`: a host on the LAN behind edge B is reached from edge A through the
//! overlay route, which is gone again once edge A has stopped.

use std::time::Duration;

use n2n_tests::{Lab, Nat};

use crate::{guard, peer_ip, start_edge, start_supernode};

#[test]
fn a_host_behind_an_edge_is_reached_through_an_overlay_route() {
    let Some(_g) = guard("a_host_behind_an_edge_is_reached_through_an_overlay_route") else {
        return;
    };
    let mut lab = Lab::new([Nat::HomeRouter, Nat::HomeRouter]);
    // 10.1.1.5 shares site 1's LAN; it reaches the overlay through site 1 (edge B, -r).
    lab.add_lan_host(1, "host", 5);
    lab.exec_ok("site1", &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    lab.exec_ok(
        "host",
        &["ip", "route", "add", "10.99.0.0/24", "via", "10.1.1.2"],
    );
    let _sn = start_supernode(&lab, &[]);
    let route = format!("10.1.1.0/24:{}", peer_ip(1));
    let mut a = start_edge(&lab, 0, &["-k", "secret", "-n", &route]);
    let b = start_edge(&lab, 1, &["-k", "secret", "-r"]);
    assert!(
        lab.wait_ping("site0", &peer_ip(1), Duration::from_secs(10)),
        "no overlay ping\n{}\n{}",
        a.log_text(),
        b.log_text()
    );
    let routes = String::from_utf8_lossy(&lab.exec("site0", &["ip", "route"]).stdout).into_owned();
    assert!(
        routes.contains("10.1.1.0/24 via 10.99.0.2 dev n2n0"),
        "the -n route is not there:\n{routes}\n{}",
        a.log_text()
    );
    assert!(
        lab.wait_ping("site0", "10.1.1.5", Duration::from_secs(10)),
        "the host behind edge B is not reached through the overlay\n{}\n{}",
        a.log_text(),
        b.log_text()
    );
    assert!(a.stop(Duration::from_secs(5)).is_some_and(|s| s.success()));
    let routes = String::from_utf8_lossy(&lab.exec("site0", &["ip", "route"]).stdout).into_owned();
    assert!(
        !routes.contains("10.1.1.0/24 via 10.99.0.2"),
        "route left behind:\n{routes}"
    );
}
