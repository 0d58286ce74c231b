//! NAT traversal, relay fallback, supernode restart, address assignment, bulk transfer and
//! config files.

use std::time::{Duration, Instant};

use n2n_tests::{Lab, Nat, wait_until};

use crate::{guard, peer_ip, start_edge, start_supernode};

#[test]
fn home_router_nats_go_peer_to_peer() {
    let Some(_g) = guard("home_router_nats_go_peer_to_peer") else {
        return;
    };
    let lab = Lab::new([Nat::HomeRouter, Nat::HomeRouter]);
    let _sn = start_supernode(&lab, &[]);
    let e0 = start_edge(&lab, 0, &["-k", "secret", "-A6"]);
    // A management subscriber for peer events, as n2n-route uses them.
    assert!(wait_until(Duration::from_secs(5), || lab
        .mgmt("site0", 5644, "r 1 timestamps")
        .contains("start_time")));
    let sub = lab.spawn(
        "site0",
        "subscriber",
        "sh",
        &["-c", "printf 's 7:1:n2n peer' | nc -u -w 20 127.0.0.1 5644"],
    );
    assert!(wait_until(Duration::from_secs(5), || sub
        .log_text()
        .contains("\"_type\":\"subscribe\",\"topic\":\"peer\"")));
    let e1 = start_edge(&lab, 1, &["-k", "secret", "-A6"]);
    assert!(
        lab.wait_ping("site0", &peer_ip(1), Duration::from_secs(10)),
        "no overlay ping\n{}\n{}",
        e0.log_text(),
        e1.log_text()
    );
    // Wait for the direct path, then measure where the traffic goes.
    assert!(
        wait_until(Duration::from_secs(10), || lab
            .mgmt("site0", 5644, "r 1 edges")
            .contains("\"mode\":\"p2p\"")),
        "no peer-to-peer path:\n{}",
        e0.log_text()
    );
    let before = lab.counters();
    assert_eq!(lab.ping("site0", &peer_ip(1), 20, "0.05"), 20);
    let share = lab.counters().direct_share(&before);
    assert!(
        share >= 0.9,
        "direct share {share:.2}: the traffic did not go peer-to-peer"
    );
    assert!(
        wait_until(Duration::from_secs(5), || sub
            .log_text()
            .contains("\"_tag\":\"7\",\"_type\":\"event\",\"action\":4,")),
        "no peer event: {}",
        sub.log_text()
    );
}

#[test]
fn symmetric_nat_falls_back_to_the_relay() {
    let Some(_g) = guard("symmetric_nat_falls_back_to_the_relay") else {
        return;
    };
    let lab = Lab::new([Nat::Symmetric, Nat::Symmetric]);
    let _sn = start_supernode(&lab, &[]);
    let _e0 = start_edge(&lab, 0, &["-k", "secret"]);
    let _e1 = start_edge(&lab, 1, &["-k", "secret"]);
    assert!(
        lab.wait_ping("site0", &peer_ip(1), Duration::from_secs(10)),
        "no overlay ping through the relay"
    );
    let before = lab.counters();
    assert_eq!(lab.ping("site0", &peer_ip(1), 20, "0.05"), 20);
    let share = lab.counters().direct_share(&before);
    assert!(
        share <= 0.1,
        "direct share {share:.2} behind symmetric NATs?"
    );
}

#[test]
fn firewalled_direct_path_uses_the_relay() {
    let Some(_g) = guard("firewalled_direct_path_uses_the_relay") else {
        return;
    };
    let lab = Lab::new([Nat::HomeRouter, Nat::HomeRouter]);
    lab.block_direct();
    let _sn = start_supernode(&lab, &[]);
    let _e0 = start_edge(&lab, 0, &["-k", "secret", "-A3", "-H"]);
    let _e1 = start_edge(&lab, 1, &["-k", "secret", "-A3", "-H"]);
    assert!(lab.wait_ping("site0", &peer_ip(1), Duration::from_secs(10)));
    assert_eq!(lab.ping("site1", &peer_ip(0), 10, "0.05"), 10);
}

#[test]
fn supernode_restart_keeps_p2p_and_recovers() {
    let Some(_g) = guard("supernode_restart_keeps_p2p_and_recovers") else {
        return;
    };
    let lab = Lab::new([Nat::HomeRouter, Nat::HomeRouter]);
    let mut sn = start_supernode(&lab, &[]);
    // A short registration interval keeps the test fast; the bound is 2 × the interval.
    let interval = 4;
    let i = interval.to_string();
    let _e0 = start_edge(&lab, 0, &["-k", "secret", "-i", &i]);
    let _e1 = start_edge(&lab, 1, &["-k", "secret", "-i", &i]);
    assert!(lab.wait_ping("site0", &peer_ip(1), Duration::from_secs(10)));
    assert!(wait_until(Duration::from_secs(10), || lab
        .mgmt("site0", 5644, "r 1 edges")
        .contains("\"mode\":\"p2p\"")));
    sn.kill();
    // While the supernode is down, peer-to-peer traffic keeps flowing.
    assert!(
        lab.ping("site0", &peer_ip(1), 30, "0.2") >= 28,
        "p2p traffic stopped with the supernode"
    );
    let restarted = Instant::now();
    let _sn = start_supernode(&lab, &[]);
    let both = wait_until(Duration::from_secs(2 * interval + 2), || {
        lab.mgmt("sn", 5645, "r 1 edges")
            .matches("\"_type\":\"row\"")
            .count()
            == 2
    });
    let took = restarted.elapsed();
    assert!(both, "edges did not re-register");
    assert!(
        took <= Duration::from_secs(2 * interval),
        "re-registration took {took:?}"
    );
    assert_eq!(lab.ping("site1", &peer_ip(0), 5, "0.1"), 5);
}

#[test]
fn edge_without_address_gets_one_from_the_supernode() {
    let Some(_g) = guard("edge_without_address_gets_one_from_the_supernode") else {
        return;
    };
    let lab = Lab::new([Nat::None, Nat::None]);
    let _sn = start_supernode(&lab, &["-a", "10.77.0.0-10.77.0.0/24"]);
    let e0 = start_edge(&lab, 0, &["--no-address", "-I", "alpha"]);
    let e1 = start_edge(&lab, 1, &["--no-address", "-I", "beta"]);
    let addr_of = |node: &str| {
        let info = lab.mgmt(node, 5644, "r 1 info");
        info.split("\"ip4addr\":\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("")
            .to_string()
    };
    assert!(
        wait_until(Duration::from_secs(10), || addr_of("site0")
            .starts_with("10.77.0.")),
        "{}",
        e0.log_text()
    );
    assert!(
        wait_until(Duration::from_secs(10), || addr_of("site1")
            .starts_with("10.77.0.")),
        "{}",
        e1.log_text()
    );
    let (a0, a1) = (addr_of("site0"), addr_of("site1"));
    assert_ne!(a0, a1);
    let shown = String::from_utf8_lossy(
        &lab.exec("site0", &["ip", "-4", "addr", "show", "n2n0"])
            .stdout,
    )
    .into_owned();
    assert!(
        shown.contains(&format!("{a0}/24")),
        "the TAP does not carry {a0}: {shown}"
    );
    assert!(lab.wait_ping("site0", &a1, Duration::from_secs(10)));
}

#[test]
fn fifty_megabytes_arrive_intact() {
    let Some(_g) = guard("fifty_megabytes_arrive_intact") else {
        return;
    };
    let lab = Lab::new([Nat::HomeRouter, Nat::HomeRouter]);
    let _sn = start_supernode(&lab, &[]);
    // -v: the sender logs (debug) when its receiving moves to a thread of its own.
    let e0 = start_edge(&lab, 0, &["-k", "secret", "-A6", "-z1", "-v"]);
    let e1 = start_edge(&lab, 1, &["-k", "secret", "-A6", "-z1"]);
    transfer_intact(&lab, &peer_ip(1), &random_bytes(50_000_000));
    for e in [&e0, &e1] {
        let log = e.log_text();
        assert!(log.contains("one thread for both directions"), "{log}");
    }
    // Sending kept the sender's TAP thread busy, so its receive thread took the socket and
    // received through it (a parked thread that never woke would not log the second line).
    let log = e0.log_text();
    assert!(log.contains("the receive thread takes the socket"), "{log}");
    assert!(
        log.contains("the receive thread has the socket again"),
        "{log}"
    );
}

/// The data path as two threads (`N2N_RS_DUPLEX=0`): the send thread reads the TAP, the
/// receive thread writes it, each on its own.
#[test]
fn with_two_data_path_threads_data_arrives_intact() {
    let Some(_g) = guard("with_two_data_path_threads_data_arrives_intact") else {
        return;
    };
    for log in random_transfer_logs(&["N2N_RS_DUPLEX=0"], &["-k", "secret", "-A7"]) {
        assert!(log.contains("a send thread and a receive thread"), "{log}");
    }
}

/// No offloads at all (`N2N_RS_OFFLOAD=0`): one frame per TAP read and write, on the one
/// thread that serves both directions.
#[test]
fn without_any_offloads_one_thread_carries_data_intact() {
    let Some(_g) = guard("without_any_offloads_one_thread_carries_data_intact") else {
        return;
    };
    for log in random_transfer_logs(&["N2N_RS_OFFLOAD=0"], &["-k", "secret", "-A6"]) {
        assert!(log.contains("one thread for both directions"), "{log}");
        assert!(
            log.contains("gso=false gro=false"),
            "offloads still on:\n{log}"
        );
    }
}

/// The data path without UDP offloads, as the start-up self-test leaves it when a kernel
/// refuses or corrupts GSO or GRO: datagrams leave by `sendmmsg` and arrive by `recvmmsg`.
#[test]
fn without_udp_offloads_data_arrives_intact() {
    let Some(_g) = guard("without_udp_offloads_data_arrives_intact") else {
        return;
    };
    let off = ["N2N_RS_GSO=0", "N2N_RS_GRO=0"];
    for log in random_transfer_logs(&off, &["-k", "secret", "-A6"]) {
        assert!(
            log.contains("gso=false gro=false"),
            "offloads still on:\n{log}"
        );
    }
}

/// Compressible data through the supernode relay: datagrams of varying sizes (LZO shrinks
/// each frame differently) in GSO batches, header encryption, AES-CBC, relayed in batches.
#[test]
fn compressible_data_through_the_relay_arrives_intact() {
    let Some(_g) = guard("compressible_data_through_the_relay_arrives_intact") else {
        return;
    };
    let lab = Lab::new([Nat::Symmetric, Nat::Symmetric]);
    let _sn = start_supernode(&lab, &[]);
    let _e0 = start_edge(&lab, 0, &["-k", "secret", "-A3", "-H", "-z1"]);
    let _e1 = start_edge(&lab, 1, &["-k", "secret", "-A3", "-H", "-z1"]);
    let text: Vec<u8> = (0..2_500_000u32)
        .flat_map(|i| format!("{i} {}\n", i.wrapping_mul(2_654_435_761) % 1000).into_bytes())
        .collect();
    transfer_intact(&lab, &peer_ip(1), &text);
}

/// IPv6 over the overlay (`-E` lets neighbour discovery's multicast through): TCP segments
/// are joined into TCPv6 super-frames on the receiving TAP, which its kernel must accept.
#[test]
fn ipv6_tcp_over_the_overlay_arrives_intact() {
    let Some(_g) = guard("ipv6_tcp_over_the_overlay_arrives_intact") else {
        return;
    };
    let lab = Lab::new([Nat::HomeRouter, Nat::HomeRouter]);
    let _sn = start_supernode(&lab, &[]);
    let _e0 = start_edge(&lab, 0, &["-k", "secret", "-A6", "-E"]);
    let _e1 = start_edge(&lab, 1, &["-k", "secret", "-A6", "-E"]);
    for (i, site) in ["site0", "site1"].iter().enumerate() {
        assert!(wait_until(Duration::from_secs(5), || lab
            .exec(site, &["ip", "link", "show", "n2n0"])
            .status
            .success()));
        let addr = format!("fd00:99::{}/64", i + 1);
        lab.exec_ok(
            site,
            &["ip", "-6", "addr", "add", &addr, "dev", "n2n0", "nodad"],
        );
    }
    let payload: Vec<u8> = (0..8_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let received = || {
        let out = lab.exec("site1", &["cat", "/proc/net/snmp6"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("Ip6InReceives"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let before = received();
    transfer_intact(&lab, "fd00:99::2", &payload);
    // The receiving kernel saw far fewer packets than the ~6 600 segments sent: joined.
    let packets = received() - before;
    eprintln!("IPv6 packets received for 8 MB: {packets}");
    assert!(
        packets < 3_000,
        "{packets} IPv6 packets: segments were not joined"
    );
}

/// `n` bytes from /dev/urandom (nothing for compression to shrink).
fn random_bytes(n: usize) -> Vec<u8> {
    std::process::Command::new("head")
        .args(["-c", &n.to_string(), "/dev/urandom"])
        .output()
        .expect("head")
        .stdout
}

/// Two edges behind home routers, both started with `env` and `args`, carry 20 MB of random
/// bytes from site 0 to site 1 intact; returns both edges' logs.
fn random_transfer_logs(env: &[&str], args: &[&str]) -> [String; 2] {
    let lab = Lab::new([Nat::HomeRouter, Nat::HomeRouter]);
    let _sn = start_supernode(&lab, &[]);
    let edges = [0, 1].map(|i| crate::start_edge_env(&lab, i, env, args));
    transfer_intact(&lab, &peer_ip(1), &random_bytes(20_000_000));
    edges.map(|e| e.log_text())
}

/// Sends `payload` from site 0 to `dst` in site 1 over the overlay with nc; checks size and
/// SHA-256.
fn transfer_intact(lab: &Lab, dst_ip: &str, payload: &[u8]) {
    assert!(lab.wait_ping("site0", dst_ip, Duration::from_secs(10)));
    let src = lab.dir.join("payload.bin");
    let dst = lab.dir.join("received.bin");
    std::fs::write(&src, payload).expect("payload");
    let family = if dst_ip.contains(':') { "-6" } else { "-4" };
    let recv = format!("nc {family} -l 9000 > {}", dst.display());
    let mut server = lab.spawn("site1", "nc-server", "sh", &["-c", &recv]);
    assert!(wait_until(Duration::from_secs(5), || {
        String::from_utf8_lossy(&lab.exec("site1", &["ss", "-ltn"]).stdout).contains(":9000")
    }));
    let send = format!("nc -N {dst_ip} 9000 < {}", src.display());
    lab.exec_ok("site0", &["sh", "-c", &send]);
    assert!(
        wait_until(Duration::from_secs(30), || server
            .child
            .try_wait()
            .ok()
            .flatten()
            .is_some()),
        "receiver did not finish"
    );
    let sha = |p: &std::path::Path| {
        let out = std::process::Command::new("sha256sum")
            .arg(p)
            .output()
            .expect("sha256sum");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(
        std::fs::metadata(&dst).map(|m| m.len()).unwrap_or(0),
        payload.len() as u64
    );
    assert_eq!(sha(&src), sha(&dst));
    server.kill();
}

#[test]
fn edge_runs_from_an_n2n_config_file() {
    let Some(_g) = guard("edge_runs_from_an_n2n_config_file") else {
        return;
    };
    let lab = Lab::new([Nat::None, Nat::None]);
    let _sn = start_supernode(&lab, &[]);
    let conf = lab.dir.join("edge.conf");
    std::fs::write(
        &conf,
        format!(
            "# n2n edge configuration\n-d=n2n0\n-c=e2etest\n-k=mypassword\n# -m=DE:AD:BE:EF:99:99\n-a=10.99.0.1\n-p=50001\n-l={}\n-t=5644\n",
            crate::supernode_addr()
        ),
    )
    .expect("conf");
    let _e0 = lab.spawn(
        "site0",
        "edge-conf",
        &crate::bin("edge"),
        &[conf.to_str().expect("utf8"), "-f"],
    );
    let _e1 = start_edge(&lab, 1, &["-k", "mypassword"]);
    assert!(lab.wait_ping("site1", "10.99.0.1", Duration::from_secs(10)));
    let ss = String::from_utf8_lossy(&lab.exec("site0", &["ss", "-uln"]).stdout).into_owned();
    assert!(
        ss.contains(":50001"),
        "-p=50001 from the file was not used: {ss}"
    );
}

#[test]
fn the_readme_demo_command_succeeds() {
    let Some(_g) = guard("the_readme_demo_command_succeeds") else {
        return;
    };
    let repo = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::process::Command::new("bash")
        .arg(repo.join("scripts/demo"))
        .env("N2N_PROFILE", "debug")
        .output()
        .expect("scripts/demo runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.lines()
            .any(|l| l
                .starts_with("demo: OK: two edges behind NATs talk over n2n-rs (peer-to-peer)")),
        "{text}"
    );
}

#[test]
fn edges_on_one_lan_find_each_other_by_multicast() {
    let Some(_g) = guard("edges_on_one_lan_find_each_other_by_multicast") else {
        return;
    };
    // Two hosts behind the same NAT, which does not hairpin: the public sockets the
    // supernode knows cannot reach each other, only the LAN can.
    let mut lab = Lab::new([Nat::HomeRouter, Nat::HomeRouter]);
    lab.add_lan_host(0, "lanb", 3);
    let _sn = start_supernode(&lab, &[]);
    let sn = crate::supernode_addr();
    let e0 = start_edge(&lab, 0, &["-k", "secret", "-H"]);
    let eb = lab.spawn(
        "lanb",
        "edgeb",
        &crate::bin("edge"),
        &[
            "-f",
            "-c",
            "e2etest",
            "-l",
            &sn,
            "-d",
            "n2n0",
            "-a",
            "10.99.0.3/24",
            "-k",
            "secret",
            "-H",
        ],
    );
    assert!(
        lab.wait_ping("site0", "10.99.0.3", Duration::from_secs(10)),
        "no overlay ping\n{}\n{}",
        e0.log_text(),
        eb.log_text()
    );
    assert!(
        wait_until(Duration::from_secs(10), || lab
            .mgmt("site0", 5644, "r 1 edges")
            .contains("\"sockaddr\":\"10.1.0.3:")),
        "no LAN peer-to-peer path:\n{}\n{}",
        lab.mgmt("site0", 5644, "r 1 edges"),
        e0.log_text()
    );
    let edges = lab.mgmt("lanb", 5644, "r 1 edges");
    assert!(
        edges.contains("\"mode\":\"p2p\"") && edges.contains("\"sockaddr\":\"10.1.0.2:"),
        "{edges}"
    );
    // The management API shows the peer as local, with its overlay address.
    let edges = lab.mgmt("site0", 5644, "r 1 edges");
    assert!(
        edges.contains("\"ip4addr\":\"10.99.0.3/24\"") && edges.contains("\"local\":1"),
        "{edges}"
    );
    // The frames stay on the LAN: nothing more than keep-alives reaches the supernode.
    let before = lab.counters();
    assert_eq!(lab.ping("site0", "10.99.0.3", 20, "0.05"), 20);
    let relayed = lab.counters().via_supernode - before.via_supernode;
    assert!(relayed < 6, "{relayed} packets went via the supernode");
}

#[test]
fn dhcp_edge_takes_its_address_from_a_server_on_the_overlay() {
    let Some(_g) = guard("dhcp_edge_takes_its_address_from_a_server_on_the_overlay") else {
        return;
    };
    let lab = Lab::new([Nat::HomeRouter, Nat::HomeRouter]);
    let _sn = start_supernode(&lab, &[]);
    let e0 = start_edge(&lab, 0, &["-k", "secret", "-r"]);
    let e1 = start_edge(&lab, 1, &["-k", "secret", "-r", "-a", "dhcp:0.0.0.0"]);
    // A DHCP server behind edge 0, on its TAP.
    let dir = lab.dir.to_string_lossy().into_owned();
    let conf = format!("{dir}/udhcpd.conf");
    std::fs::write(format!("{dir}/leases"), "").expect("lease file");
    std::fs::write(
        &conf,
        format!(
            "start 10.99.0.50\nend 10.99.0.60\ninterface n2n0\nlease_file {dir}/leases\n\
             option subnet 255.255.255.0\n"
        ),
    )
    .expect("udhcpd.conf");
    let script = format!("{dir}/udhcpc.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\n[ \"$1\" = bound ] && ip addr add \"$ip/$mask\" dev \"$interface\"\nexit 0\n",
    )
    .expect("udhcpc script");
    lab.exec_ok("site1", &["chmod", "+x", &script]);
    let _server = lab.spawn("site0", "udhcpd", "busybox", &["udhcpd", "-f", &conf]);
    assert!(
        wait_until(Duration::from_secs(10), || lab
            .mgmt("sn", 5645, "r 1 edges")
            .matches("\"macaddr\"")
            .count()
            == 2),
        "edges did not register:\n{}\n{}",
        e0.log_text(),
        e1.log_text()
    );
    let client = lab.exec(
        "site1",
        &[
            "busybox", "udhcpc", "-i", "n2n0", "-s", &script, "-f", "-q", "-n", "-t", "10", "-T",
            "1",
        ],
    );
    assert!(
        client.status.success(),
        "no lease over the overlay: {}\n{}",
        String::from_utf8_lossy(&client.stderr),
        e1.log_text()
    );
    let shown = lab.exec("site1", &["ip", "-4", "-o", "addr", "show", "n2n0"]);
    let shown = String::from_utf8_lossy(&shown.stdout).into_owned();
    let leased = shown
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .expect("a leased address")
        .to_string();
    assert!(leased.starts_with("10.99.0."), "{shown}");
    assert!(lab.wait_ping("site1", &peer_ip(0), Duration::from_secs(10)));
    // The edge follows the new address and tells the supernode.
    assert!(
        wait_until(Duration::from_secs(5), || lab
            .mgmt("sn", 5645, "r 1 edges")
            .contains(&format!("\"{leased}"))),
        "the supernode never saw {leased}:\n{}",
        lab.mgmt("sn", 5645, "r 1 edges")
    );
}

/// A data-path thread that dies takes the edge down with an error (so that systemd's
/// Restart= brings it back) instead of leaving an edge that registers but carries nothing.
#[test]
fn an_edge_whose_tap_vanishes_exits_with_an_error() {
    let Some(_g) = guard("an_edge_whose_tap_vanishes_exits_with_an_error") else {
        return;
    };
    let lab = Lab::new([Nat::HomeRouter, Nat::HomeRouter]);
    let _sn = start_supernode(&lab, &[]);
    let mut e0 = start_edge(&lab, 0, &["-k", "secret"]);
    let _e1 = start_edge(&lab, 1, &["-k", "secret"]);
    assert!(lab.wait_ping("site0", &peer_ip(1), Duration::from_secs(15)));
    lab.exec_ok("site0", &["ip", "link", "del", "n2n0"]);
    let mut status = None;
    wait_until(Duration::from_secs(10), || {
        status = e0.child.try_wait().ok().flatten();
        status.is_some()
    });
    let status = status.unwrap_or_else(|| panic!("still running:\n{}", e0.log_text()));
    assert_eq!(status.code(), Some(1), "{}", e0.log_text());
    assert!(
        e0.log_text().contains("data path stopped"),
        "{}",
        e0.log_text()
    );
}
