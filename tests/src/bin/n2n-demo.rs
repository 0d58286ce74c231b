//! The demo: a supernode on a "public" address and two edges, each behind its own home-router
//! NAT, in network namespaces; pings across the overlay and tells whether the path went
//! peer-to-peer (from the Internet router's packet counters). Run it with `sudo scripts/demo`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use n2n_tests::{Lab, Nat, SUPERNODE_IP, can_run, wait_until};

fn bin(name: &str) -> String {
    let exe = std::env::current_exe().expect("own path");
    let dir: PathBuf = exe.parent().expect("target dir").to_path_buf();
    dir.join(name).to_string_lossy().into_owned()
}

fn main() -> ExitCode {
    if !can_run() {
        eprintln!("demo: needs root and iproute2/iptables (run: sudo scripts/demo)");
        return ExitCode::from(1);
    }
    let started = Instant::now();
    println!(
        "demo: building the lab: supernode at {SUPERNODE_IP}, two sites behind home-router NATs"
    );
    let lab = Lab::new([Nat::HomeRouter, Nat::HomeRouter]);
    let sn_addr = format!("{SUPERNODE_IP}:7654");
    let _sn = lab.spawn("sn", "supernode", &bin("supernode"), &["-f", "-p", "7654"]);
    println!("demo: supernode started (udp {sn_addr})");
    let mut edges = Vec::new();
    for i in 0..2 {
        let addr = format!("10.99.0.{}/24", i + 1);
        let args = [
            "-f",
            "-c",
            "demo",
            "-k",
            "demo-secret",
            "-A6",
            "-a",
            &addr,
            "-l",
            &sn_addr,
            "-d",
            "n2n0",
        ];
        edges.push(lab.spawn(
            &format!("site{i}"),
            &format!("edge{i}"),
            &bin("edge"),
            &args,
        ));
        println!(
            "demo: edge{i} started in site{i} (10.1.{i}.2 behind NAT), overlay address {addr}, cipher -A6"
        );
    }
    if !lab.wait_ping("site0", "10.99.0.2", Duration::from_secs(15)) {
        eprintln!(
            "demo: FAILED: no reply across the overlay\n{}\n{}",
            edges[0].log_text(),
            edges[1].log_text()
        );
        return ExitCode::from(1);
    }
    println!(
        "demo: first ping across the overlay after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let p2p = wait_until(Duration::from_secs(10), || {
        lab.mgmt("site0", 5644, "r 1 edges")
            .contains("\"mode\":\"p2p\"")
    });
    let before = lab.counters();
    let got = lab.ping("site0", "10.99.0.2", 10, "0.1");
    let share = lab.counters().direct_share(&before);
    println!("demo: ping 10.99.0.1 -> 10.99.0.2: {got}/10 replies");
    let path = if p2p && share >= 0.9 {
        "peer-to-peer"
    } else {
        "via the supernode relay"
    };
    println!(
        "demo: {:.0} % of the packets crossed the Internet router directly: the path went {path}",
        share * 100.0
    );
    if got == 10 {
        println!("demo: OK: two edges behind NATs talk over n2n-rs ({path})");
        ExitCode::SUCCESS
    } else {
        println!("demo: FAILED: {got}/10 replies");
        ExitCode::from(1)
    }
}
