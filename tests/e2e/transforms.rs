//! Every transform, with and without header encryption, and both compressions: ping works.

use std::time::Duration;

use n2n_tests::{Lab, Nat};

use crate::{guard, peer_ip, start_edge, start_supernode};

#[test]
fn every_transform_header_and_compression_pings() {
    let Some(_g) = guard("every_transform_header_and_compression_pings") else {
        return;
    };
    let lab = Lab::new([Nat::None, Nat::None]);
    let mut combos: Vec<Vec<&str>> = Vec::new();
    for a in ["-A1", "-A2", "-A3", "-A4", "-A5", "-A6", "-A7"] {
        combos.push(vec![a]);
        combos.push(vec![a, "-H"]);
    }
    combos.push(vec!["-A3", "-z1"]);
    combos.push(vec!["-A6", "-z2", "-H"]);
    for combo in combos {
        // A fresh supernode each time: a listed community stays locked to plain or encrypted
        // headers once it has seen a packet, as in n2n.
        let mut sn = start_supernode(&lab, &[]);
        let mut args = if combo[0] == "-A1" {
            vec![]
        } else {
            vec!["-k", "transform-key"]
        };
        args.extend(&combo);
        let mut e0 = start_edge(&lab, 0, &args);
        let mut e1 = start_edge(&lab, 1, &args);
        let ok = lab.wait_ping("site0", &peer_ip(1), Duration::from_secs(10))
            && lab.ping("site1", &peer_ip(0), 3, "0.1") == 3;
        assert!(
            ok,
            "{combo:?}: ping failed\n{}\n{}",
            e0.log_text(),
            e1.log_text()
        );
        let registered = |n: usize| {
            lab.mgmt("sn", 5645, "r 1 edges")
                .matches("\"_type\":\"row\"")
                .count()
                == n
        };
        assert!(registered(2), "{combo:?}: both edges registered");
        // SIGTERM: UNREGISTER_SUPER, the TAP removed, exit status 0.
        for e in [&mut e0, &mut e1] {
            let status = e.stop(Duration::from_secs(5));
            assert!(
                status.is_some_and(|s| s.success()),
                "{combo:?}: edge did not exit 0 on SIGTERM: {status:?}"
            );
        }
        assert!(
            n2n_tests::wait_until(Duration::from_secs(2), || registered(0)),
            "{combo:?}: the edges did not unregister"
        );
        for site in ["site0", "site1"] {
            let links =
                String::from_utf8_lossy(&lab.exec(site, &["ip", "link"]).stdout).into_owned();
            assert!(
                !links.contains("n2n0"),
                "{combo:?}: the TAP was left behind in {site}"
            );
        }
        sn.kill();
    }
}
