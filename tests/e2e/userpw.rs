//! User/password authentication (n2n 3.x): users listed in the supernode's community list
//! with the public keys `n2n-keygen` derives, edges with `-I <user> -J <password> -P <key>`.
//! Listed users reach each other peer-to-peer; a wrong password or an unknown user is refused
//! with REGISTER_SUPER_NAK and never reaches the overlay; a user removed from the list is cut
//! off by `reload_communities`, while the others re-register at once.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use n2n_tests::{Lab, Nat, Proc, wait_until};
use serde_json::Value;

use crate::{bin, guard, supernode_addr};

/// The federation the supernode runs under (`-F`), whose public key the edges get with `-P`.
const FEDERATION: &str = "e2efed";
const SN_MGMT: u16 = 5645;
/// What the supernode logs (with `-v`) when it refuses a user/password registration.
const SN_REFUSAL: &str = "registration refused (username or password not recognized)";
/// What the edge logs when the supernode refuses it.
const EDGE_REFUSAL: &str = "the supernode refused us: username or password not recognized";

/// Runs `n2n-keygen` with `args`; its output, trimmed.
fn keygen(args: &[&str]) -> String {
    let out = Command::new(bin("n2n-keygen"))
        .args(args)
        .output()
        .expect("n2n-keygen runs");
    assert!(
        out.status.success(),
        "n2n-keygen {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The community-list line of `user` with `password`: `* <user> <43-character key>`.
fn user_line(user: &str, password: &str) -> String {
    let line = keygen(&[user, password]);
    let key = line
        .strip_prefix(&format!("* {user} "))
        .unwrap_or_else(|| panic!("unexpected n2n-keygen output: {line:?}"));
    assert_eq!(key.len(), 43, "unexpected n2n-keygen key: {line:?}");
    line
}

/// The federation's public key, from `n2n-keygen -F` (which prints `-P <key>`).
fn federation_key() -> String {
    let line = keygen(&["-F", FEDERATION]);
    let key = line
        .strip_prefix("-P ")
        .unwrap_or_else(|| panic!("unexpected n2n-keygen -F output: {line:?}"))
        .to_string();
    assert_eq!(key.len(), 43, "unexpected federation key: {line:?}");
    key
}

/// Writes the supernode's community list: `e2etest` with `users` (name, password).
fn write_list(lab: &Lab, users: &[(&str, &str)]) -> PathBuf {
    let path = lab.dir.join("userpw-communities.list");
    let mut text = String::from("e2etest\n");
    for (user, password) in users {
        text.push_str(&user_line(user, password));
        text.push('\n');
    }
    std::fs::write(&path, text).expect("community list");
    path
}

/// The supernode of federation `e2efed` with the community list `list`, verbose.
fn start_sn(lab: &Lab, list: &Path) -> Proc {
    let list = list.to_string_lossy().into_owned();
    let mgmt = SN_MGMT.to_string();
    let args = [
        "-f", "-v", "-p", "7654", "-t", &mgmt, "-c", &list, "-F", FEDERATION,
    ];
    let p = lab.spawn("sn", "supernode", &bin("supernode"), &args);
    assert!(
        wait_until(Duration::from_secs(5), || lab
            .mgmt("sn", SN_MGMT, "r 1 timestamps")
            .contains("start_time")),
        "supernode did not start: {}",
        p.log_text()
    );
    p
}

/// A user/password edge: where it runs and as whom.
struct UserEdge<'a> {
    node: &'a str,
    /// Its log is `<name>.log` in the lab directory.
    name: &'a str,
    dev: &'a str,
    mgmt: u16,
    /// Overlay address, /24.
    addr: &'a str,
    /// A fixed MAC, so the supernode's log lines can be told apart.
    mac: &'a str,
    user: &'a str,
    password: &'a str,
}

impl UserEdge<'_> {
    fn start(&self, lab: &Lab, federation_key: &str) -> Proc {
        let (sn, mgmt) = (supernode_addr(), self.mgmt.to_string());
        let addr = format!("{}/24", self.addr);
        let args = [
            "-f",
            "-v",
            "-c",
            "e2etest",
            "-l",
            &sn,
            "-d",
            self.dev,
            "-t",
            &mgmt,
            "-a",
            &addr,
            "-m",
            self.mac,
            "-A4",
            "-k",
            "secret",
            "-I",
            self.user,
            "-J",
            self.password,
            "-P",
            federation_key,
        ];
        lab.spawn(self.node, self.name, &bin("edge"), &args)
    }

    /// The edge's `current` flag for its supernode (1 registered, 2 waiting), if it answers.
    fn current(&self, lab: &Lab) -> Option<i64> {
        lab.mgmt_rows(self.node, self.mgmt, "r 1 supernodes")
            .first()
            .and_then(|r| r["current"].as_i64())
    }

    fn registered(&self, lab: &Lab) -> bool {
        self.current(lab) == Some(1)
    }

    /// How many times the supernode's log refused this edge's MAC.
    fn refusals(&self, sn: &Proc) -> usize {
        let mac = self.mac.to_uppercase();
        sn.log_text()
            .lines()
            .filter(|l| l.contains(SN_REFUSAL) && l.to_uppercase().contains(&mac))
            .count()
    }

    /// How many times the supernode's log accepted this edge's MAC.
    fn acceptances(&self, sn: &Proc) -> usize {
        let mac = self.mac.to_uppercase();
        sn.log_text()
            .lines()
            .filter(|l| l.contains("edge registered") && l.to_uppercase().contains(&mac))
            .count()
    }

    /// Pings `dst` out of this edge's TAP (`-I`): how many of `count` replies came back.
    fn ping(&self, lab: &Lab, dst: &str, count: u32) -> u32 {
        let c = count.to_string();
        let out = lab.exec(
            self.node,
            &[
                "ping", "-n", "-q", "-c", &c, "-i", "0.2", "-W", "1", "-I", self.dev, dst,
            ],
        );
        String::from_utf8_lossy(&out.stdout)
            .split(',')
            .find_map(|p| {
                p.trim()
                    .strip_suffix(" received")
                    .and_then(|n| n.trim().parse().ok())
            })
            .unwrap_or(0)
    }
}

fn alice(password: &str) -> UserEdge<'_> {
    UserEdge {
        node: "site0",
        name: "edge-alice",
        dev: "n2n0",
        mgmt: 5644,
        addr: "10.99.0.1",
        mac: "02:00:00:00:0a:01",
        user: "alice",
        password,
    }
}

fn bob(password: &str) -> UserEdge<'_> {
    UserEdge {
        node: "site1",
        name: "edge-bob",
        dev: "n2n0",
        mgmt: 5644,
        addr: "10.99.0.2",
        mac: "02:00:00:00:0b:01",
        user: "bob",
        password,
    }
}

/// The logs of `procs`, for failure messages (the lab's directory goes with the lab).
fn logs(procs: &[&Proc]) -> String {
    procs
        .iter()
        .map(|p| format!("==== {}\n{}", p.log.display(), p.log_text()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The descriptions (user names) of the edges the supernode has registered in `e2etest`.
fn sn_users(lab: &Lab) -> Vec<String> {
    let mut users: Vec<String> = lab
        .mgmt_rows("sn", SN_MGMT, "r 1 edges")
        .iter()
        .filter(|r| r["community"] == "e2etest")
        .map(|r| r["desc"].as_str().unwrap_or("").to_string())
        .collect();
    users.sort();
    users
}

/// The supernode's `reg_super` packet statistics: (received, NAKs sent).
fn reg_super_stats(lab: &Lab) -> (u64, u64) {
    let rows: Vec<Value> = lab.mgmt_rows("sn", SN_MGMT, "r 1 packetstats");
    let row = rows
        .iter()
        .find(|r| r["type"] == "reg_super")
        .unwrap_or_else(|| panic!("no reg_super row in the supernode's packetstats: {rows:?}"));
    (
        row["rx_pkt"].as_u64().expect("rx_pkt"),
        row["nak"].as_u64().expect("nak"),
    )
}

/// An edge's packets sent (`r 1 packetstats`): (peer-to-peer, via the supernode).
fn edge_data_stats(lab: &Lab, e: &UserEdge<'_>) -> (u64, u64) {
    let rows = lab.mgmt_rows(e.node, e.mgmt, "r 1 packetstats");
    let tx = |kind: &str| {
        rows.iter()
            .find(|r| r["type"] == kind)
            .and_then(|r| r["tx_pkt"].as_u64())
            .unwrap_or_else(|| panic!("no {kind} row in {}'s packetstats: {rows:?}", e.user))
    };
    (tx("p2p"), tx("super"))
}

#[test]
fn user_password_edges_reach_each_other() {
    let Some(_g) = guard("user_password_edges_reach_each_other") else {
        return;
    };
    let start = Instant::now();
    let lab = Lab::new([Nat::HomeRouter, Nat::HomeRouter]);
    let key = federation_key();
    let list = write_list(&lab, &[("alice", "alice-pw"), ("bob", "bob-pw")]);
    let sn = start_sn(&lab, &list);
    let (a, b) = (alice("alice-pw"), bob("bob-pw"));
    let ea = a.start(&lab, &key);
    let eb = b.start(&lab, &key);
    let all = [&sn, &ea, &eb];
    assert!(
        wait_until(Duration::from_secs(10), || a.registered(&lab)
            && b.registered(&lab)),
        "the edges did not register: alice current {:?}, bob current {:?}\n{}",
        a.current(&lab),
        b.current(&lab),
        logs(&all)
    );
    assert_eq!(
        sn_users(&lab),
        ["alice", "bob"],
        "the supernode's edges\n{}",
        logs(&all)
    );
    assert!(
        lab.wait_ping("site0", b.addr, Duration::from_secs(10)),
        "alice cannot ping bob\n{}",
        logs(&all)
    );
    assert!(
        lab.wait_ping("site1", a.addr, Duration::from_secs(10)),
        "bob cannot ping alice\n{}",
        logs(&all)
    );
    assert!(
        wait_until(Duration::from_secs(10), || lab
            .mgmt("site0", a.mgmt, "r 1 edges")
            .contains("\"mode\":\"p2p\"")
            && lab
                .mgmt("site1", b.mgmt, "r 1 edges")
                .contains("\"mode\":\"p2p\"")),
        "no peer-to-peer path:\nalice: {}\nbob: {}\n{}",
        lab.mgmt("site0", a.mgmt, "r 1 edges"),
        lab.mgmt("site1", b.mgmt, "r 1 edges"),
        logs(&all)
    );
    assert!(lab.ping("site0", b.addr, 5, "0.05") >= 4, "warm-up");
    let before = lab.counters();
    let stats_before = edge_data_stats(&lab, &a);
    assert_eq!(lab.ping("site0", b.addr, 20, "0.05"), 20);
    let share = lab.counters().direct_share(&before);
    let stats = edge_data_stats(&lab, &a);
    let (p2p, relayed) = (stats.0 - stats_before.0, stats.1 - stats_before.1);
    eprintln!(
        "user/password: direct share {share:.2}; alice sent {p2p} p2p, {relayed} via the supernode"
    );
    assert!(
        share >= 0.9,
        "direct share {share:.2}: the traffic did not go peer-to-peer"
    );
    assert!(
        p2p >= 20 && relayed <= 2,
        "alice's packetstats: {p2p} sent p2p, {relayed} via the supernode"
    );
    let (_, naks) = reg_super_stats(&lab);
    assert_eq!(naks, 0, "listed users were refused\n{}", logs(&all));
    eprintln!(
        "user_password_edges_reach_each_other: {:?}",
        start.elapsed()
    );
}

#[test]
fn wrong_password_and_unknown_user_never_reach_the_overlay() {
    let Some(_g) = guard("wrong_password_and_unknown_user_never_reach_the_overlay") else {
        return;
    };
    let start = Instant::now();
    let lab = Lab::new([Nat::HomeRouter, Nat::HomeRouter]);
    let key = federation_key();
    let list = write_list(&lab, &[("alice", "alice-pw"), ("bob", "bob-pw")]);
    let sn = start_sn(&lab, &list);
    let a = alice("alice-pw");
    let ea = a.start(&lab, &key);
    assert!(
        wait_until(Duration::from_secs(10), || a.registered(&lab)),
        "alice did not register\n{}",
        logs(&[&sn, &ea])
    );
    let (_, naks_before) = reg_super_stats(&lab);
    assert_eq!(naks_before, 0, "alice was refused\n{}", logs(&[&sn, &ea]));
    // Both intruders in site 1, each with its own TAP and management port.
    let wrong = UserEdge {
        password: "not-bobs-password",
        ..bob("")
    };
    let mallory = UserEdge {
        node: "site1",
        name: "edge-mallory",
        dev: "n2n1",
        mgmt: 5646,
        addr: "10.99.0.3",
        mac: "02:00:00:00:0c:01",
        user: "mallory",
        password: "mallory-pw",
    };
    let ew = wrong.start(&lab, &key);
    let em = mallory.start(&lab, &key);
    let all = [&sn, &ea, &ew, &em];
    // Each is refused, and says so.
    assert!(
        wait_until(Duration::from_secs(10), || {
            wrong.refusals(&sn) >= 1
                && mallory.refusals(&sn) >= 1
                && ew.log_text().contains(EDGE_REFUSAL)
                && em.log_text().contains(EDGE_REFUSAL)
        }),
        "the refusals were not logged\n{}",
        logs(&all)
    );
    let (_, naks) = reg_super_stats(&lab);
    assert!(
        naks >= naks_before + 2,
        "reg_super nak {naks_before} -> {naks}\n{}",
        logs(&all)
    );
    // The point is that nothing happens: for 6 s (the edges retry every 2 s while waiting)
    // neither intruder registers, the supernode lists only alice, and alice stays
    // registered. A management query takes about a second (nc waits for more), so the
    // samples are sparse; the logs checked afterwards cover the whole window.
    let watch = Instant::now();
    let mut seen = Vec::new();
    while watch.elapsed() < Duration::from_secs(6) {
        let state = (
            wrong.current(&lab),
            mallory.current(&lab),
            a.current(&lab),
            sn_users(&lab),
        );
        assert!(
            state.0 != Some(1) && state.1 != Some(1) && state.2 == Some(1) && state.3 == ["alice"],
            "after {:?}: wrong-password bob current {:?}, mallory current {:?}, alice current \
             {:?}, the supernode's users {:?}\n{}",
            watch.elapsed(),
            state.0,
            state.1,
            state.2,
            state.3,
            logs(&all)
        );
        for s in [state.0, state.1] {
            if !seen.contains(&s) {
                seen.push(s);
            }
        }
    }
    assert_eq!(
        seen,
        [Some(2)],
        "the refused edges should report waiting (current 2) throughout"
    );
    for (e, p) in [(&wrong, &ew), (&mallory, &em)] {
        assert_eq!(
            e.acceptances(&sn),
            0,
            "the supernode accepted {}\n{}",
            e.user,
            logs(&all)
        );
        assert!(
            !p.log_text().contains("registered with the supernode"),
            "{} believes it registered\n{}",
            e.user,
            logs(&all)
        );
    }
    assert_eq!(
        a.acceptances(&sn),
        1,
        "alice's registration was dropped and renewed\n{}",
        logs(&all)
    );
    // Their TAPs are up, yet no frame crosses the overlay in either direction.
    for e in [&wrong, &mallory] {
        assert!(
            lab.exec(e.node, &["ip", "link", "show", e.dev])
                .status
                .success(),
            "{} has no TAP {}\n{}",
            e.user,
            e.dev,
            logs(&all)
        );
        assert_eq!(
            e.ping(&lab, a.addr, 3),
            0,
            "{} reached alice\n{}",
            e.user,
            logs(&all)
        );
        assert_eq!(
            lab.ping("site0", e.addr, 3, "0.2"),
            0,
            "alice reached {}\n{}",
            e.user,
            logs(&all)
        );
    }
    // They keep trying and keep being refused.
    let (wr, mr) = (wrong.refusals(&sn), mallory.refusals(&sn));
    assert!(
        wr >= 2 && mr >= 2,
        "refusals logged: wrong-password bob {wr}, mallory {mr}\n{}",
        logs(&all)
    );
    let (_, naks_after) = reg_super_stats(&lab);
    assert!(
        naks_after >= naks_before + 4,
        "reg_super nak {naks_before} -> {naks_after}"
    );
    eprintln!(
        "wrong password: {wr} refusals, unknown user: {mr}, reg_super nak {naks_after}; {:?}",
        start.elapsed()
    );
    assert!(a.registered(&lab), "alice lost her registration");
}

#[test]
fn a_removed_user_is_cut_off_after_reload() {
    let Some(_g) = guard("a_removed_user_is_cut_off_after_reload") else {
        return;
    };
    let start = Instant::now();
    let mut lab = Lab::new([Nat::HomeRouter, Nat::HomeRouter]);
    // carol, a second host on alice's LAN, stays listed: after the reload alice has someone
    // to ping.
    lab.add_lan_host(0, "lanc", 3);
    let key = federation_key();
    let users = [
        ("alice", "alice-pw"),
        ("bob", "bob-pw"),
        ("carol", "carol-pw"),
    ];
    let list = write_list(&lab, &users);
    let sn = start_sn(&lab, &list);
    let sn_started = Instant::now();
    let (a, b) = (alice("alice-pw"), bob("bob-pw"));
    let c = UserEdge {
        node: "lanc",
        name: "edge-carol",
        dev: "n2n0",
        mgmt: 5644,
        addr: "10.99.0.3",
        mac: "02:00:00:00:0c:03",
        user: "carol",
        password: "carol-pw",
    };
    let ea = a.start(&lab, &key);
    let eb = b.start(&lab, &key);
    let ec = c.start(&lab, &key);
    let all = [&sn, &ea, &eb, &ec];
    assert!(
        wait_until(Duration::from_secs(10), || a.registered(&lab)
            && b.registered(&lab)
            && c.registered(&lab)),
        "the edges did not register\n{}",
        logs(&all)
    );
    for (from, to) in [
        ("site0", b.addr),
        ("site1", a.addr),
        ("site0", c.addr),
        ("site1", c.addr),
    ] {
        assert!(
            lab.wait_ping(from, to, Duration::from_secs(10)),
            "no ping {from} -> {to}\n{}",
            logs(&all)
        );
    }
    // The dynamic keys follow the key time, in whole seconds: the reload must come more than
    // a second after the supernode's start for them to change (the pings above take longer
    // than that; this only makes sure).
    assert!(wait_until(Duration::from_secs(2), || sn_started.elapsed()
        > Duration::from_millis(1100)));

    // bob leaves the list.
    write_list(&lab, &[users[0], users[2]]);
    let bob_refusals = b.refusals(&sn);
    let reply = lab.mgmt("sn", SN_MGMT, "w 1:1:n2n reload_communities");
    let reloaded = Instant::now();
    assert!(
        reply.contains("\"ok\":0"),
        "reload_communities: {reply}\n{}",
        logs(&all)
    );
    // RE_REGISTER_SUPER: alice and carol are back at once (their next periodic
    // registration is 20 s away), bob is not.
    assert!(
        wait_until(Duration::from_secs(3), || sn_users(&lab)
            == ["alice", "carol"]),
        "after the reload the supernode lists {:?}\n{}",
        sn_users(&lab),
        logs(&all)
    );
    let back = reloaded.elapsed();
    assert!(
        lab.wait_ping("site0", c.addr, Duration::from_secs(5)),
        "alice cannot ping carol after the reload\n{}",
        logs(&all)
    );
    let pinging = reloaded.elapsed();
    // bob, asked to register again, is refused: both logs say so.
    assert!(
        wait_until(Duration::from_secs(5), || b.refusals(&sn) > bob_refusals
            && eb.log_text().contains(EDGE_REFUSAL)),
        "bob's refusal was not logged\n{}",
        logs(&all)
    );
    let refused = reloaded.elapsed();
    assert_eq!(
        b.current(&lab),
        Some(2),
        "bob should be waiting for the supernode"
    );
    assert_eq!(
        b.acceptances(&sn),
        1,
        "bob was accepted after the reload\n{}",
        logs(&all)
    );
    assert_eq!(
        lab.ping("site0", b.addr, 5, "0.2"),
        0,
        "alice still reaches bob\n{}",
        logs(&all)
    );
    assert_eq!(
        lab.ping("site1", a.addr, 5, "0.2"),
        0,
        "bob still reaches alice\n{}",
        logs(&all)
    );
    assert_eq!(sn_users(&lab), ["alice", "carol"]);
    assert_eq!(lab.ping("site0", c.addr, 5, "0.2"), 5, "alice and carol");
    eprintln!(
        "reload: alice and carol re-registered after {back:?}, pinging after {pinging:?}, \
         bob refused after {refused:?}; {:?}",
        start.elapsed()
    );
}
