//! End-to-end tests: real `supernode` and `edge` binaries, real TAP devices, network
//! namespaces with NAT routers (see `n2n_tests::Lab`). They need root; under CI they must run.

mod federation;
mod filter;
mod hostile;
mod routes;
mod scenarios;
mod tcp;
mod transforms;
mod userpw;

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use n2n_tests::{Lab, Proc, SUPERNODE_PORT, can_run};

/// The namespaces share two cores: one scenario at a time keeps timings meaningful.
static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// `None` (with a loud message) when this machine cannot run them; under CI that is a failure.
pub fn guard(name: &str) -> Option<MutexGuard<'static, ()>> {
    if !can_run() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{name}: end-to-end tests need root and iproute2, and CI must run them"
        );
        eprintln!("SKIPPED {name}: end-to-end tests need root (run the suite with sudo)");
        return None;
    }
    Some(serial())
}

/// The workspace's built binaries (scripts/test builds them before testing).
pub fn bin(name: &str) -> String {
    let exe = std::env::current_exe().expect("test executable");
    let dir: PathBuf = exe
        .parent()
        .and_then(|p| p.parent())
        .expect("target dir")
        .to_path_buf();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace` first",
        path.display()
    );
    path.to_string_lossy().into_owned()
}

pub fn supernode_addr() -> String {
    format!("{}:{SUPERNODE_PORT}", n2n_tests::SUPERNODE_IP)
}

/// Starts the supernode with a community list naming the test community (header encryption
/// needs a listed name, as in n2n).
pub fn start_supernode(lab: &Lab, extra: &[&str]) -> Proc {
    let list = lab.dir.join("community.list");
    std::fs::write(&list, "e2etest\n").expect("community list");
    let list = list.to_string_lossy().into_owned();
    let mut args = vec!["-f", "-p", "7654", "-t", "5645", "-c", &list];
    args.extend_from_slice(extra);
    let p = lab.spawn("sn", "supernode", &bin("supernode"), &args);
    assert!(
        n2n_tests::wait_until(Duration::from_secs(5), || lab
            .mgmt("sn", 5645, "r 1 timestamps")
            .contains("start_time")),
        "supernode did not start: {}",
        p.log_text()
    );
    p
}

/// Starts an edge in site `i` with `10.99.0.(i+1)` unless `args` says otherwise.
pub fn start_edge(lab: &Lab, i: usize, args: &[&str]) -> Proc {
    start_edge_env(lab, i, &[], args)
}

/// [`start_edge`] with environment variables (`NAME=value`) set for the edge.
pub fn start_edge_env(lab: &Lab, i: usize, env: &[&str], args: &[&str]) -> Proc {
    let (sn, edge) = (supernode_addr(), bin("edge"));
    let mut full: Vec<&str> = env.to_vec();
    full.extend_from_slice(&[&edge, "-f", "-c", "e2etest", "-l", &sn, "-d", "n2n0"]);
    let addr = format!("10.99.0.{}/24", i + 1);
    if !args.contains(&"-a") && !args.contains(&"--no-address") {
        full.extend_from_slice(&["-a", &addr]);
    }
    full.extend(args.iter().filter(|a| **a != "--no-address"));
    // `env` execs the edge, so the process is the edge's either way.
    let (program, args) = match env {
        [] => (edge.as_str(), &full[1..]),
        _ => ("env", &full[..]),
    };
    lab.spawn(&format!("site{i}"), &format!("edge{i}"), program, args)
}

pub fn peer_ip(i: usize) -> String {
    format!("10.99.0.{}", i + 1)
}
