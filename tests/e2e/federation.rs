//! Several supernodes: a federation that connects edges registered at different supernodes,
//! failover to the second supernode, and the edge's supernode selection (by RTT, through the
//! `n2n-udp-delay` forwarder, and by load).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use n2n_tests::{Lab, Nat, Proc, SUPERNODE_IP, wait_until};
use serde_json::Value;

use crate::{bin, guard, peer_ip};

/// Supernode `n` (1 or 2) listens on 7653 + n, its management on 5644 + n.
fn sn_port(n: u16) -> u16 {
    7653 + n
}

fn sn_mgmt(n: u16) -> u16 {
    5644 + n
}

fn sn_addr(n: u16) -> String {
    format!("{SUPERNODE_IP}:{}", sn_port(n))
}

/// Starts supernode `n` in the `sn` namespace, allowing the communities `e2etest` and
/// `loadtest`; waits for its management port.
fn start_sn(lab: &Lab, n: u16, extra: &[&str]) -> Proc {
    let list = lab.dir.join("federation-communities.list");
    std::fs::write(&list, "e2etest\nloadtest\n").expect("community list");
    let list = list.to_string_lossy().into_owned();
    let (port, mgmt) = (sn_port(n).to_string(), sn_mgmt(n).to_string());
    let mut args = vec!["-f", "-v", "-p", &port, "-t", &mgmt, "-c", &list];
    args.extend_from_slice(extra);
    let p = lab.spawn("sn", &format!("supernode{n}"), &bin("supernode"), &args);
    assert!(
        wait_until(Duration::from_secs(5), || lab
            .mgmt("sn", sn_mgmt(n), "r 1 timestamps")
            .contains("start_time")),
        "supernode {n} did not start: {}",
        p.log_text()
    );
    p
}

/// Two supernodes of the federation `e2efed`, each naming the other with `-l`.
fn start_federation(lab: &Lab) -> (Proc, Proc) {
    let (a1, a2) = (sn_addr(1), sn_addr(2));
    let sn1 = start_sn(
        lab,
        1,
        &["-F", "e2efed", "-l", &a2, "-m", "02:5e:00:00:00:01"],
    );
    let sn2 = start_sn(
        lab,
        2,
        &["-F", "e2efed", "-l", &a1, "-m", "02:5e:00:00:00:02"],
    );
    (sn1, sn2)
}

/// Starts edge `name` in `node` with overlay address `addr/24`, community `e2etest` and the
/// supernodes `sns` (each `-l`), management on `mgmt`.
fn start_edge_at(
    lab: &Lab,
    node: &str,
    name: &str,
    addr: &str,
    sns: &[String],
    extra: &[&str],
) -> Proc {
    let addr = format!("{addr}/24");
    let mut args = vec![
        "-f", "-v", "-c", "e2etest", "-k", "secret", "-d", "n2n0", "-a", &addr,
    ];
    for sn in sns {
        args.extend_from_slice(&["-l", sn]);
    }
    args.extend_from_slice(extra);
    lab.spawn(node, name, &bin("edge"), &args)
}

/// The logs of `procs`, for failure messages (the lab's directory goes with the lab).
fn logs(procs: &[&Proc]) -> String {
    procs
        .iter()
        .map(|p| format!("==== {}\n{}", p.log.display(), p.log_text()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// Supernode `n`'s `r 1 edges` rows of `community` (`-/-`: the federation members).
fn sn_edges(lab: &Lab, n: u16, community: &str) -> Vec<Value> {
    lab.mgmt_rows("sn", sn_mgmt(n), "r 1 edges")
        .into_iter()
        .filter(|r| text(&r["community"]) == community)
        .collect()
}

/// Whether supernode `n` lists the other one as a federation member with a MAC.
fn sees_member(lab: &Lab, n: u16, other: u16) -> bool {
    sn_edges(lab, n, "-/-")
        .iter()
        .any(|r| text(&r["sockaddr"]) == sn_addr(other) && !text(&r["macaddr"]).is_empty())
}

/// The edge's `r 1 supernodes` rows (management port 5644 in `node`).
fn supernodes(lab: &Lab, node: &str) -> Vec<Value> {
    lab.mgmt_rows(node, 5644, "r 1 supernodes")
}

/// The supernode the edge in `node` uses (`current` 1), if any.
fn current(lab: &Lab, node: &str) -> Option<Value> {
    supernodes(lab, node)
        .into_iter()
        .find(|r| r["current"] == 1)
}

fn current_addr(lab: &Lab, node: &str) -> String {
    current(lab, node)
        .map(|r| text(&r["sockaddr"]).to_string())
        .unwrap_or_default()
}

/// The edge's own MAC (`r 1 info`).
fn edge_mac(lab: &Lab, node: &str) -> String {
    lab.mgmt_rows(node, 5644, "r 1 info")
        .first()
        .map(|r| text(&r["macaddr"]).to_string())
        .unwrap_or_default()
}

#[test]
fn federated_supernodes_connect_their_edges() {
    let Some(_g) = guard("federated_supernodes_connect_their_edges") else {
        return;
    };
    let lab = Lab::new([Nat::HomeRouter, Nat::HomeRouter]);
    let (sn1, sn2) = start_federation(&lab);
    assert!(
        wait_until(Duration::from_secs(15), || sees_member(&lab, 1, 2)
            && sees_member(&lab, 2, 1)),
        "the federation did not form:\nsn1: {:?}\nsn2: {:?}\n{}",
        sn_edges(&lab, 1, "-/-"),
        sn_edges(&lab, 2, "-/-"),
        logs(&[&sn1, &sn2])
    );
    for n in [1, 2] {
        let rows = lab.mgmt_rows("sn", sn_mgmt(n), "r 1 communities");
        assert!(
            rows.iter()
                .any(|r| text(&r["community"]) == "-/-" && r["is_federation"] == 1),
            "supernode {n} has no federation community row: {rows:?}"
        );
    }
    // Each edge knows only its own supernode.
    let e0 = start_edge_at(&lab, "site0", "edge0", &peer_ip(0), &[sn_addr(1)], &["-A6"]);
    let e1 = start_edge_at(&lab, "site1", "edge1", &peer_ip(1), &[sn_addr(2)], &["-A6"]);
    let all = [&sn1, &sn2, &e0, &e1];
    assert!(
        lab.wait_ping("site0", &peer_ip(1), Duration::from_secs(10)),
        "no overlay ping across the federation\n{}",
        logs(&all)
    );
    // Each edge is registered at its own supernode only.
    let (mac0, mac1) = (edge_mac(&lab, "site0"), edge_mac(&lab, "site1"));
    assert!(!mac0.is_empty() && !mac1.is_empty(), "no edge MACs");
    let has = |n: u16, mac: &str| {
        sn_edges(&lab, n, "e2etest")
            .iter()
            .any(|r| text(&r["macaddr"]) == mac)
    };
    assert!(
        has(1, &mac0) && has(2, &mac1),
        "edges not registered at their supernodes:\nsn1: {:?}\nsn2: {:?}",
        sn_edges(&lab, 1, "e2etest"),
        sn_edges(&lab, 2, "e2etest")
    );
    assert!(
        !has(1, &mac1),
        "supernode 1 lists edge B ({mac1}), which registered at supernode 2, as its own: {:?}",
        sn_edges(&lab, 1, "e2etest")
    );
    // The supernodes forward the look-ups: the edges punch through and go peer-to-peer.
    assert!(
        wait_until(Duration::from_secs(10), || lab
            .mgmt("site0", 5644, "r 1 edges")
            .contains("\"mode\":\"p2p\"")),
        "no peer-to-peer path between edges of different supernodes:\n{}\n{}",
        lab.mgmt("site0", 5644, "r 1 edges"),
        logs(&all)
    );
    assert!(lab.ping("site0", &peer_ip(1), 5, "0.05") >= 4, "warm-up");
    let before = lab.counters();
    assert_eq!(lab.ping("site0", &peer_ip(1), 20, "0.05"), 20);
    let share = lab.counters().direct_share(&before);
    eprintln!("federation: direct share {share:.2}");
    assert!(
        share >= 0.9,
        "direct share {share:.2}: the traffic did not go peer-to-peer\n{}",
        logs(&all)
    );
}

/// Reply times (`ping -D` stamps, seconds since the epoch) in a ping log.
fn reply_times(log: &str) -> Vec<f64> {
    log.lines()
        .filter(|l| l.contains("bytes from"))
        .filter_map(|l| l.strip_prefix('[')?.split(']').next()?.parse().ok())
        .collect()
}

/// The longest time without a reply from `kill` (epoch seconds) to `end`: from the last
/// reply before the kill (or the kill) through every later reply to `end`.
fn longest_gap(replies: &[f64], kill: f64, end: f64) -> f64 {
    let before = replies.iter().copied().filter(|t| *t <= kill);
    let last = before.fold(f64::NAN, f64::max);
    let mut points = vec![if last.is_nan() { kill } else { last }];
    points.extend(replies.iter().copied().filter(|t| *t > kill));
    points.push(end);
    points.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max)
}

fn epoch_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

#[test]
fn failover_to_the_second_supernode_within_two_seconds() {
    let Some(_g) = guard("failover_to_the_second_supernode_within_two_seconds") else {
        return;
    };
    // Symmetric NATs: everything is relayed, so the supernode in use carries the traffic.
    let lab = Lab::new([Nat::Symmetric, Nat::Symmetric]);
    let (mut sn1, sn2) = start_federation(&lab);
    let both = [sn_addr(1), sn_addr(2)];
    // By load the two edges would spread over the supernodes (each counts only its own
    // edges); by MAC both take supernode 1 (02:5e:00:00:00:01), so its death hits both.
    let e0 = start_edge_at(
        &lab,
        "site0",
        "edge0",
        &peer_ip(0),
        &both,
        &["--select-mac"],
    );
    let e1 = start_edge_at(
        &lab,
        "site1",
        "edge1",
        &peer_ip(1),
        &both,
        &["--select-mac"],
    );
    assert!(
        wait_until(Duration::from_secs(10), || current(&lab, "site0").is_some()
            && current(&lab, "site1").is_some()),
        "the edges did not register:\n{}",
        logs(&[&sn1, &sn2, &e0, &e1])
    );
    assert!(
        lab.wait_ping("site0", &peer_ip(1), Duration::from_secs(10)),
        "no overlay ping\n{}",
        logs(&[&sn1, &sn2, &e0, &e1])
    );
    let (used0, used1) = (current_addr(&lab, "site0"), current_addr(&lab, "site1"));
    assert!(
        used0 == sn_addr(1) && used1 == sn_addr(1),
        "the edges use {used0} and {used1}, not both {}:\n{:?}\n{:?}",
        sn_addr(1),
        supernodes(&lab, "site0"),
        supernodes(&lab, "site1")
    );
    let mut ping = lab.spawn(
        "site0",
        "ping-failover",
        "ping",
        &["-n", "-D", "-i", "0.1", &peer_ip(1)],
    );
    assert!(
        wait_until(Duration::from_secs(5), || reply_times(&ping.log_text())
            .len()
            >= 10),
        "the continuous ping got no replies: {}",
        ping.log_text()
    );
    // The supernode in use goes for good.
    let kill = epoch_secs();
    let killed = Instant::now();
    sn1.kill();
    // Up to 6 s, less once 3 s of replies show the traffic is back.
    wait_until(Duration::from_secs(6), || {
        reply_times(&ping.log_text())
            .iter()
            .filter(|t| **t > kill)
            .count()
            >= 30
    });
    let end = epoch_secs();
    ping.kill();
    let log = ping.log_text();
    let replies = reply_times(&log);
    let gap = longest_gap(&replies, kill, end);
    eprintln!(
        "failover: replies resumed after {gap:.2} s ({} replies in the {:.1} s after the kill)",
        replies.iter().filter(|t| **t > kill).count(),
        killed.elapsed().as_secs_f64()
    );
    assert!(
        gap < 2.0,
        "{gap:.2} s without replies after the supernode in use was killed\n{log}\n{}",
        logs(&[&sn1, &sn2, &e0, &e1])
    );
    assert!(
        wait_until(Duration::from_secs(5), || current_addr(&lab, "site0")
            == sn_addr(2)
            && current_addr(&lab, "site1") == sn_addr(2)),
        "the edges do not report the other supernode as current:\n{:?}\n{:?}",
        supernodes(&lab, "site0"),
        supernodes(&lab, "site1")
    );
}

/// Starts `n2n-udp-delay` in the `sn` namespace; waits until it listens.
fn start_delay(lab: &Lab, listen: &str, upstream: &str, ms: u32) -> Proc {
    let ms = ms.to_string();
    let p = lab.spawn(
        "sn",
        "udp-delay",
        &bin("n2n-udp-delay"),
        &[listen, upstream, &ms],
    );
    assert!(
        wait_until(Duration::from_secs(5), || p.log_text().contains("each way")),
        "n2n-udp-delay did not start: {}",
        p.log_text()
    );
    p
}

/// The forwarder itself: a management request to the supernode through it (150 ms each way)
/// is answered after ~300 ms.
#[test]
fn udp_delay_adds_its_delay_each_way() {
    let Some(_g) = guard("udp_delay_adds_its_delay_each_way") else {
        return;
    };
    let lab = Lab::new([Nat::None, Nat::None]);
    let _sn = start_sn(&lab, 1, &[]);
    let listen = format!("{SUPERNODE_IP}:7656");
    let mgmt = format!("127.0.0.1:{}", sn_mgmt(1));
    let _delay = start_delay(&lab, &listen, &mgmt, 150);
    // One stamp before sending, one per reply line.
    let script = format!(
        "date +%s.%N; printf 'r 1 timestamps' | nc -u -w1 {SUPERNODE_IP} 7656 | \
         while read -r l; do date +%s.%N; done"
    );
    let out = lab.exec("site0", &["sh", "-c", &script]);
    let stamps: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    assert!(
        stamps.len() >= 2,
        "no reply through the forwarder: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rtt = stamps[1] - stamps[0];
    eprintln!("udp-delay: round trip {rtt:.3} s");
    assert!(
        (0.29..0.6).contains(&rtt),
        "round trip {rtt:.3} s through a 150 ms forwarder"
    );
}

#[test]
fn select_rtt_picks_the_nearer_supernode() {
    let Some(_g) = guard("select_rtt_picks_the_nearer_supernode") else {
        return;
    };
    let lab = Lab::new([Nat::HomeRouter, Nat::HomeRouter]);
    let sn1 = start_sn(&lab, 1, &[]);
    let sn2 = start_sn(&lab, 2, &[]);
    // Supernode 1 seen through 150 ms each way.
    let far = format!("{SUPERNODE_IP}:7656");
    let delay = start_delay(&lab, &far, &sn_addr(1), 150);
    let near = sn_addr(2);
    let started = Instant::now();
    let e0 = start_edge_at(
        &lab,
        "site0",
        "edge0",
        &peer_ip(0),
        &[far.clone(), near.clone()],
        &["--select-rtt"],
    );
    assert!(
        wait_until(Duration::from_secs(10), || current_addr(&lab, "site0")
            == near),
        "the edge does not use the nearer supernode {near}: {:?}\n{}",
        supernodes(&lab, "site0"),
        logs(&[&sn1, &sn2, &delay, &e0])
    );
    eprintln!(
        "select-rtt: {near} current after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let rows = supernodes(&lab, "site0");
    let cur = current(&lab, "site0").expect("a current supernode");
    assert!(
        text(&cur["selection"]).starts_with("rtt"),
        "selection field of the current supernode: {rows:?}"
    );
    // The far one, once measured, shows its ~300 ms.
    if let Some(ms) = rows
        .iter()
        .find(|r| text(&r["sockaddr"]) == far)
        .and_then(|r| {
            text(&r["selection"])
                .strip_prefix("rtt =")?
                .trim()
                .strip_suffix("ms")?
                .trim()
                .parse::<u64>()
                .ok()
        })
    {
        assert!(ms >= 250, "the far supernode's rtt is {ms} ms: {rows:?}");
    }
}

#[test]
fn default_selection_picks_the_less_loaded_supernode() {
    let Some(_g) = guard("default_selection_picks_the_less_loaded_supernode") else {
        return;
    };
    let lab = Lab::new([Nat::HomeRouter, Nat::HomeRouter]);
    let sn1 = start_sn(&lab, 1, &[]);
    let sn2 = start_sn(&lab, 2, &[]);
    // Two edges of another community load supernode 1.
    let local = format!("127.0.0.1:{}", sn_port(1));
    let load: Vec<Proc> = (1..=2)
        .map(|i| {
            let (tap, mgmt, addr) = (
                format!("n2nload{i}"),
                (5650 + i).to_string(),
                format!("10.98.0.{i}/24"),
            );
            lab.spawn(
                "sn",
                &format!("load{i}"),
                &bin("edge"),
                &[
                    "-f", "-c", "loadtest", "-k", "load", "-l", &local, "-d", &tap, "-t", &mgmt,
                    "-a", &addr,
                ],
            )
        })
        .collect();
    assert!(
        wait_until(Duration::from_secs(10), || sn_edges(&lab, 1, "loadtest")
            .len()
            == 2),
        "the load edges did not register: {:?}\n{}",
        sn_edges(&lab, 1, "loadtest"),
        logs(&[&sn1, &load[0], &load[1]])
    );
    let e0 = start_edge_at(
        &lab,
        "site0",
        "edge0",
        &peer_ip(0),
        &[sn_addr(1), sn_addr(2)],
        &[],
    );
    // The current supernode's row shows the load its PONG reported (empty for a moment
    // after each 30 s sweep, until the PONG is back).
    let ranked = || {
        current(&lab, "site0").is_some_and(|r| {
            text(&r["sockaddr"]) == sn_addr(2) && text(&r["selection"]).starts_with("load =")
        })
    };
    assert!(
        wait_until(Duration::from_secs(10), ranked),
        "the edge does not use the less loaded {} by load: {:?}\nsupernode 1: {:?}\n{}",
        sn_addr(2),
        supernodes(&lab, "site0"),
        lab.mgmt_rows("sn", sn_mgmt(1), "r 1 edges"),
        logs(&[&sn1, &sn2, &e0])
    );
}
