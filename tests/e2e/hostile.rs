//! Hostile input against running daemons (#12): a third host on the lab's Internet
//! (`n2n-hostile`, tests/src/bin) tries to amplify broadcasts, hijack a peer-to-peer path,
//! exhaust the supernode's registry, and feed an `-A6 -H` edge replayed, tampered, re-stamped,
//! downgraded and reflected datagrams; memory must stay flat under a million of them.

use std::time::{Duration, Instant};

use n2n_tests::{Lab, Nat, Proc, wait_until};

use crate::{bin, guard, peer_ip, start_edge, start_supernode, supernode_addr};

const EVIL: &str = "evil";
const EDGE0: &str = "198.18.1.2:50000";
const MAC0: &str = "02:00:00:00:00:a0";
const MAC1: &str = "02:00:00:00:00:a1";

fn lab_with_attacker() -> (Lab, String) {
    let mut lab = Lab::new([Nat::None, Nat::None]);
    let ip = lab.add_internet_host(EVIL, 3);
    (lab, ip)
}

/// Runs `n2n-hostile` on the attacker's host; its one line of `key=value` counts.
fn hostile(lab: &Lab, args: &[&str]) -> String {
    let tool = bin("n2n-hostile");
    let mut full = vec![tool.as_str()];
    full.extend_from_slice(args);
    let out = lab.exec(EVIL, &full);
    assert!(
        out.status.success(),
        "n2n-hostile {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Edge 0's `drops` rows (management API) with a count, as "stage/reason" -> count.
fn edge0_drops(lab: &Lab) -> std::collections::BTreeMap<String, u64> {
    lab.mgmt_rows("site0", 5644, "r 1 drops")
        .iter()
        .filter_map(|r| {
            let n = r["count"].as_u64().filter(|n| *n > 0)?;
            Some((
                format!("{}/{}", r["stage"].as_str()?, r["reason"].as_str()?),
                n,
            ))
        })
        .collect()
}

/// Edge 0's direct path to edge 1, from its "p2p" row: the path the data plane may use (the
/// verified peers, as the Tunnel's routes). A pending or verifying row ("pSp") shows whatever
/// socket others claimed for the peer and is still relayed: a poll may catch one at an
/// attacker's socket between a forged PEER_INFO and the ACK that ends it.
fn p2p_socket(lab: &Lab) -> Option<String> {
    lab.mgmt_rows("site0", 5644, "r 1 edges")
        .iter()
        .find(|r| {
            r["mode"] == "p2p"
                && r["macaddr"]
                    .as_str()
                    .is_some_and(|m| m.eq_ignore_ascii_case(MAC1))
        })
        .and_then(|r| r["sockaddr"].as_str().map(String::from))
}

fn count(line: &str, key: &str) -> u64 {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
}

fn rss_kib(p: &Proc) -> u64 {
    std::fs::read_to_string(format!("/proc/{}/status", p.pid()))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Frames the edge in `node` wrote to its TAP (the kernel's receive counter of n2n0).
fn tap_rx(lab: &Lab, node: &str) -> u64 {
    let out = lab.exec(node, &["ip", "-s", "-j", "link", "show", "n2n0"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v[0]["stats64"]["rx"]["packets"]
        .as_u64()
        .unwrap_or_else(|| panic!("no TAP counters: {}", String::from_utf8_lossy(&out.stdout)))
}

fn edge_count(lab: &Lab) -> usize {
    lab.mgmt_rows("sn", 5645, "r 1 edges").len()
}

/// One attack round: `macs` forged registrations (`repeat` times each) from 200 sockets of the
/// attacker's address, then one 1 000-byte broadcast from edge 0; the copies that reach the
/// attacker's address.
fn broadcast_copies(lab: &Lab, repeat: &str) -> u64 {
    let ready = lab.dir.join(format!("ready{repeat}"));
    let ready_arg = format!("ready={}", ready.display());
    let sn = format!("sn={}", supernode_addr());
    std::thread::scope(|s| {
        let attack = s.spawn(|| {
            hostile(
                lab,
                &[
                    "amplify",
                    &sn,
                    "community=e2etest",
                    "macs=1000",
                    "sockets=200",
                    &format!("repeat={repeat}"),
                    &ready_arg,
                    "listen_ms=3000",
                ],
            )
        });
        assert!(wait_until(Duration::from_secs(30), || ready.exists()));
        // One broadcast frame (an ICMP echo to the overlay's broadcast address).
        lab.exec(
            "site0",
            &[
                "ping",
                "-b",
                "-c",
                "1",
                "-s",
                "1000",
                "-W",
                "1",
                "10.99.0.255",
            ],
        );
        let line = attack.join().expect("attacker");
        count(&line, "copies")
    })
}

#[test]
fn one_address_cannot_amplify_a_broadcast() {
    let Some(_g) = guard("one_address_cannot_amplify_a_broadcast") else {
        return;
    };
    let (lab, _) = lab_with_attacker();
    let _sn = start_supernode(&lab, &[]);
    let e0 = start_edge(&lab, 0, &[]);
    assert!(
        wait_until(Duration::from_secs(10), || edge_count(&lab) == 1),
        "edge 0 did not register: {}",
        e0.log_text()
    );
    let cap = 64; // --max-edges-per-ip's default
    // 1 000 MACs registered once each: as many as the cap lets in, none has shown that its
    // socket receives, so the attacker's address gets one copy.
    let once = broadcast_copies(&lab, "1");
    // Every registration repeated from its socket (a persistent spoofer): at most the cap.
    let repeated = broadcast_copies(&lab, "2");
    eprintln!(
        "amplification: 1 broadcast -> {once} copy at the attacker's address after 1 000 forged \
         registrations, {repeated} after each was repeated (per-source cap {cap}; n2n: 1 000)"
    );
    assert_eq!(once, 1, "unproven registrations share one copy per address");
    assert!(
        (2..=cap).contains(&repeated),
        "{repeated} copies (the proven registrations must get theirs, and no more than the cap)"
    );
}

#[test]
fn forged_acks_and_peer_infos_do_not_move_a_direct_path() {
    let Some(_g) = guard("forged_acks_and_peer_infos_do_not_move_a_direct_path") else {
        return;
    };
    let (lab, _) = lab_with_attacker();
    let _sn = start_supernode(&lab, &[]);
    let args = |mac| ["-k", "secret", "-A6", "-p", "50000", "-m", mac];
    let e0 = start_edge(&lab, 0, &args(MAC0));
    let _e1 = start_edge(&lab, 1, &args(MAC1));
    assert!(lab.wait_ping("site0", &peer_ip(1), Duration::from_secs(10)));
    let p2p_at_real_socket = || p2p_socket(&lab).as_deref() == Some("198.18.2.2:50000");
    assert!(
        wait_until(Duration::from_secs(10), p2p_at_real_socket),
        "no direct path: {:?}\n{}",
        lab.mgmt_rows("site0", 5644, "r 1 edges"),
        e0.log_text()
    );
    let before = lab.counters();
    let (replies, sent) = std::thread::scope(|s| {
        let attack = s.spawn(|| {
            hostile(
                &lab,
                &[
                    "hijack",
                    &format!("edge={EDGE0}"),
                    "community=e2etest",
                    &format!("victim={MAC0}"),
                    &format!("peer={MAC1}"),
                    "count=600",
                ],
            )
        });
        let replies = lab.ping("site0", &peer_ip(1), 60, "0.05");
        (replies, attack.join().expect("attacker"))
    });
    let share = lab.counters().direct_share(&before);
    let drops = edge0_drops(&lab);
    eprintln!(
        "hijack: {} forged datagrams during 60 pings: {replies} replies, direct share {share:.2}; \
         edge 0 counted {drops:?}",
        count(&sent, "sent")
    );
    assert!(replies >= 57, "{replies}/60 replies");
    assert!(share >= 0.9, "direct share {share:.2}");
    // Each forged ACK and PEER_INFO (two of every three datagrams) is counted where it ended:
    // refused by the machine, or lost to a full control queue before it.
    let n = |k: &str| drops.get(k).copied().unwrap_or(0);
    let ended = n("machine/unasked") + n("machine/not_our_supernode") + n("tunnel/control_full");
    assert!(
        ended >= 2 * count(&sent, "sent") / 3,
        "the management API's drops: {drops:?}"
    );
    assert!(
        p2p_at_real_socket(),
        "the path moved: {:?}",
        lab.mgmt_rows("site0", 5644, "r 1 edges")
    );
}

/// A stalled direct path (the sites cannot reach each other) and an attacker who forges the
/// supernode's address: its PEER_INFOs make edge 0 register to the attacker's socket, which
/// answers with REGISTER_ACKs. Whether edge 0's path to edge 1 ever pointed there, the
/// attacker's counts, and the ping replies out of 80 (16 s) meanwhile.
fn steer_a_stalled_path(transform: &str) -> (bool, String, u32) {
    let (lab, evil) = lab_with_attacker();
    lab.exec_ok(EVIL, &["ip", "addr", "add", "198.18.0.2/32", "dev", "wan"]);
    let _sn = start_supernode(&lab, &[]);
    let args = |mac| ["-k", "secret", transform, "-p", "50000", "-m", mac];
    let e0 = start_edge(&lab, 0, &args(MAC0));
    let _e1 = start_edge(&lab, 1, &args(MAC1));
    assert!(lab.wait_ping("site0", &peer_ip(1), Duration::from_secs(10)));
    assert!(
        wait_until(Duration::from_secs(10), || p2p_socket(&lab).as_deref()
            == Some("198.18.2.2:50000")),
        "no direct path: {}",
        e0.log_text()
    );
    lab.block_direct();
    let moved = std::sync::atomic::AtomicBool::new(false);
    let done = std::sync::atomic::AtomicBool::new(false);
    let (line, replies) = std::thread::scope(|s| {
        let attack = s.spawn(|| {
            hostile(
                &lab,
                &[
                    "steer",
                    &format!("edge={EDGE0}"),
                    &format!("spoof={}", supernode_addr()),
                    &format!("me={evil}"),
                    "community=e2etest",
                    &format!("victim={MAC0}"),
                    &format!("peer={MAC1}"),
                    "secs=16",
                ],
            )
        });
        s.spawn(|| {
            use std::sync::atomic::Ordering::Relaxed;
            while !done.load(Relaxed) {
                if p2p_socket(&lab).is_some_and(|a| a.starts_with(&format!("{evil}:"))) {
                    moved.store(true, Relaxed);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        let replies = lab.ping("site0", &peer_ip(1), 80, "0.2");
        let line = attack.join().expect("attacker");
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        (line, replies)
    });
    (moved.into_inner(), line, replies)
}

#[test]
fn a_stalled_aead_path_cannot_be_steered_by_forged_supernode_messages() {
    let Some(_g) = guard("a_stalled_aead_path_cannot_be_steered_by_forged_supernode_messages")
    else {
        return;
    };
    // The control: under -A1 (n2n's rule, an ACK from where we registered confirms a path)
    // the same attack moves the path to the attacker and black-holes the traffic.
    let (moved_a1, line_a1, replies_a1) = steer_a_stalled_path("-A1");
    let (moved, line, replies) = steer_a_stalled_path("-A6");
    eprintln!(
        "steering: -A1 path moved {moved_a1}, {replies_a1}/80 replies ({line_a1}); \
         -A6 path moved {moved}, {replies}/80 replies ({line})"
    );
    assert!(
        moved_a1,
        "the attack did not work even without -A6: the test proves nothing"
    );
    assert!(
        count(&line, "acks") > 0,
        "the attacker was never asked: {line}"
    );
    assert!(!moved, "an ACK moved an -A6 path to the attacker");
    // The block itself costs the first ~10 s (a direct path is used until it has been silent
    // for half the registration interval, as in n2n); then the relay carries the pings.
    assert!(replies >= 20, "{replies}/80 replies through the relay");
}

#[test]
fn a_flood_of_fake_registrations_does_not_lock_out_a_new_edge() {
    let Some(_g) = guard("a_flood_of_fake_registrations_does_not_lock_out_a_new_edge") else {
        return;
    };
    let (lab, _) = lab_with_attacker();
    let _sn = start_supernode(&lab, &[]);
    let sent = hostile(
        &lab,
        &[
            "exhaust",
            &format!("sn={}", supernode_addr()),
            "communities=1000",
            "macs=100000",
        ],
    );
    let communities = lab.mgmt_rows("sn", 5645, "r 1 communities").len();
    let start = Instant::now();
    let e0 = start_edge(&lab, 0, &[]);
    let registered = wait_until(Duration::from_secs(20), || {
        e0.log_text().contains("registered with the supernode")
    });
    let took = start.elapsed();
    eprintln!(
        "exhaustion: {} fake registrations in 1 000 communities from one host left {communities} \
         communities; a new edge registered in {:.2} s",
        count(&sent, "sent"),
        took.as_secs_f64()
    );
    assert!(
        registered,
        "not registered within one interval: {}",
        e0.log_text()
    );
    assert!(communities <= 20, "{communities} communities held");
}

#[test]
fn hostile_datagrams_reach_no_tap_and_memory_stays_flat() {
    let Some(_g) = guard("hostile_datagrams_reach_no_tap_and_memory_stays_flat") else {
        return;
    };
    let (lab, _) = lab_with_attacker();
    let sn = start_supernode(&lab, &[]);
    let e0 = start_edge(
        &lab,
        0,
        &["-k", "secret", "-A6", "-H", "-p", "50000", "-m", MAC0],
    );
    assert!(wait_until(Duration::from_secs(10), || edge_count(&lab) == 1));
    let saved = lab.dir.join("genuine.bin");
    let edge_args = |extra: &str| {
        vec![
            format!("edge={EDGE0}"),
            "community=e2etest".into(),
            "key=secret".into(),
            format!("victim={MAC0}"),
            extra.into(),
        ]
    };
    // A genuine -A6 -H PACKET from a member is delivered: the counter can move.
    let genuine = |lab: &Lab| {
        let mut a = vec!["genuine".to_string()];
        a.extend(edge_args(&format!("out={}", saved.display())));
        hostile(lab, &a.iter().map(String::as_str).collect::<Vec<_>>());
    };
    let replay = |lab: &Lab, n: u32| {
        let mut a = vec!["replay".to_string(), format!("count={n}")];
        a.extend(edge_args(&format!("in={}", saved.display())));
        hostile(lab, &a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let rx0 = tap_rx(&lab, "site0");
    genuine(&lab);
    assert!(
        wait_until(Duration::from_secs(5), || tap_rx(&lab, "site0") == rx0 + 1),
        "the genuine PACKET was not delivered: {}",
        e0.log_text()
    );
    // Replays of it, tampered and re-stamped copies, -A1 downgrades and frames under our own
    // MAC: none reaches the TAP. A fresh genuine PACKET afterwards marks the end.
    let warm = replay(&lab, 100_000);
    let edge_rss = rss_kib(&e0);
    let line = replay(&lab, 1_000_000);
    let edge_rss_after = rss_kib(&e0);
    genuine(&lab);
    assert!(
        wait_until(Duration::from_secs(5), || tap_rx(&lab, "site0") >= rx0 + 2),
        "the closing genuine PACKET was not delivered"
    );
    let delivered = tap_rx(&lab, "site0") - rx0 - 2;
    eprintln!(
        "hostile edge input: {warm} then {line}: {delivered} delivered to the TAP; \
         edge RSS {edge_rss} KiB after 100 000, {edge_rss_after} KiB after 1 100 000"
    );
    assert_eq!(delivered, 0, "hostile frames reached the TAP");
    assert!(
        edge_rss_after <= edge_rss + 2048,
        "edge memory grew {edge_rss} -> {edge_rss_after} KiB"
    );
    // The supernode under a million hostile datagrams: flat, and still serving.
    let sn_arg = format!("sn={}", supernode_addr());
    hostile(
        &lab,
        &["flood", &sn_arg, "community=e2etest", "count=100000"],
    );
    let sn_rss = rss_kib(&sn);
    hostile(
        &lab,
        &["flood", &sn_arg, "community=e2etest", "count=1000000"],
    );
    let sn_rss_after = rss_kib(&sn);
    eprintln!(
        "hostile supernode input: RSS {sn_rss} KiB after 100 000, {sn_rss_after} KiB after 1 100 000"
    );
    assert!(
        sn_rss_after <= sn_rss + 2048,
        "supernode memory grew {sn_rss} -> {sn_rss_after} KiB"
    );
    let e1 = start_edge(&lab, 1, &["-k", "secret", "-A6", "-H"]);
    assert!(
        lab.wait_ping("site1", &peer_ip(0), Duration::from_secs(20)),
        "after the flood a new edge cannot reach edge 0: {}",
        e1.log_text()
    );
}
