//! A lab of network namespaces that behaves like the Internet (docs/testing.md): a "public"
//! supernode, two sites each behind its own NAT router, and packet counters on the Internet
//! router that tell peer-to-peer traffic from relayed traffic without trusting the daemons.
//! Every namespace, interface and process is removed when the lab is dropped.

pub mod sim;

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How a site's router treats traffic (docs/testing.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nat {
    /// Endpoint-independent mapping, unsolicited WAN input dropped: hole punching works.
    HomeRouter,
    /// A new port per destination (`--random-fully`): hole punching cannot work.
    Symmetric,
    /// No NAT: the site is on the Internet directly.
    None,
}

/// The Internet router's packet counters, in packets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub direct: u64,
    pub via_supernode: u64,
}

impl Counters {
    pub fn direct_share(&self, since: &Counters) -> f64 {
        let d = self.direct - since.direct;
        let s = self.via_supernode - since.via_supernode;
        if d + s == 0 {
            0.0
        } else {
            d as f64 / (d + s) as f64
        }
    }
}

/// Addresses in the lab: the fake Internet is 198.18.0.0/15 (benchmark range).
pub const SUPERNODE_IP: &str = "198.18.0.2";
pub const SUPERNODE_PORT: u16 = 7654;
const WAN: [&str; 2] = ["198.18.1.2", "198.18.2.2"];

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A running process in a namespace, killed on drop.
#[derive(Debug)]
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM (a graceful stop: the edge unregisters), then waits up to `timeout`; the exit
    /// status, or `None` if it did not stop and had to be killed.
    pub fn stop(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        // The shell's built-in kill: no procps needed.
        let _ = Command::new("sh")
            .args(["-c", &format!("kill -TERM {}", self.child.id())])
            .status();
        let mut status = None;
        wait_until(timeout, || {
            status = self.child.try_wait().ok().flatten();
            status.is_some()
        });
        if status.is_none() {
            self.kill();
        }
        status
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The lab.
#[derive(Debug)]
pub struct Lab {
    pub prefix: String,
    pub dir: PathBuf,
    namespaces: Vec<String>,
}

fn run(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"))
}

fn must(args: &[&str]) {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether the tests can build namespaces here (root and `ip` available).
pub fn can_run() -> bool {
    Command::new("ip")
        .args(["netns", "list"])
        .output()
        .is_ok_and(|o| o.status.success())
        && std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
}

/// Polls `cond` every 50 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Lab {
    /// Builds the topology: `inet` routes between `sn` (198.18.0.2) and the WAN sides of
    /// `nat0`/`nat1` (198.18.1.2, 198.18.2.2); each NAT's LAN 10.1.N.0/24 holds `siteN`
    /// (10.1.N.2). With [`Nat::None`] the site sits on the WAN address itself.
    pub fn new(nat: [Nat; 2]) -> Lab {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let prefix = format!("n2nrs{}x{n}", std::process::id());
        let dir = std::env::temp_dir().join(&prefix);
        std::fs::create_dir_all(&dir).expect("lab dir");
        let mut lab = Lab {
            prefix,
            dir,
            namespaces: Vec::new(),
        };
        for ns in ["inet", "sn", "nat0", "nat1", "site0", "site1"] {
            let name = lab.ns(ns);
            must(&["ip", "netns", "add", &name]);
            lab.namespaces.push(name.clone());
            must(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        }
        lab.link("inet", "sn0", "198.18.0.1/24", "sn", "wan", "198.18.0.2/24");
        lab.exec_ok(
            "sn",
            &["ip", "route", "add", "default", "via", "198.18.0.1"],
        );
        lab.exec_ok("inet", &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        for (i, kind) in nat.iter().enumerate() {
            let (router, site) = (format!("nat{i}"), format!("site{i}"));
            let wan_net = format!("198.18.{}.", i + 1);
            if *kind == Nat::None {
                lab.link(
                    "inet",
                    &format!("w{i}"),
                    &format!("{wan_net}1/24"),
                    &site,
                    "wan",
                    &format!("{}/24", WAN[i]),
                );
                lab.exec_ok(
                    &site,
                    &[
                        "ip",
                        "route",
                        "add",
                        "default",
                        "via",
                        &format!("{wan_net}1"),
                    ],
                );
                continue;
            }
            lab.link(
                "inet",
                &format!("w{i}"),
                &format!("{wan_net}1/24"),
                &router,
                "wan",
                &format!("{}/24", WAN[i]),
            );
            lab.exec_ok(
                &router,
                &[
                    "ip",
                    "route",
                    "add",
                    "default",
                    "via",
                    &format!("{wan_net}1"),
                ],
            );
            let lan = format!("10.1.{i}.");
            lab.link(
                &router,
                "lan",
                &format!("{lan}1/24"),
                &site,
                "eth0",
                &format!("{lan}2/24"),
            );
            lab.exec_ok(
                &site,
                &["ip", "route", "add", "default", "via", &format!("{lan}1")],
            );
            lab.exec_ok(&router, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
            let mut masq = vec![
                "iptables",
                "-t",
                "nat",
                "-A",
                "POSTROUTING",
                "-o",
                "wan",
                "-j",
                "MASQUERADE",
            ];
            if *kind == Nat::Symmetric {
                // A new random source port per destination: hole punching cannot work.
                masq.push("--random-fully");
            }
            lab.exec_ok(&router, &masq);
            for chain in ["FORWARD", "INPUT"] {
                lab.exec_ok(
                    &router,
                    &[
                        "iptables",
                        "-A",
                        chain,
                        "-i",
                        "wan",
                        "-m",
                        "conntrack",
                        "--ctstate",
                        "ESTABLISHED,RELATED",
                        "-j",
                        "ACCEPT",
                    ],
                );
                lab.exec_ok(
                    &router,
                    &["iptables", "-A", chain, "-i", "wan", "-j", "DROP"],
                );
            }
        }
        // Counters: one rule per direction, each ending in RETURN.
        for (s, d) in [(WAN[0], WAN[1]), (WAN[1], WAN[0])] {
            lab.exec_ok(
                "inet",
                &[
                    "iptables", "-A", "FORWARD", "-s", s, "-d", d, "-j", "RETURN",
                ],
            );
        }
        lab.exec_ok(
            "inet",
            &[
                "iptables",
                "-A",
                "FORWARD",
                "-d",
                SUPERNODE_IP,
                "-j",
                "RETURN",
            ],
        );
        lab.exec_ok(
            "inet",
            &[
                "iptables",
                "-A",
                "FORWARD",
                "-s",
                SUPERNODE_IP,
                "-j",
                "RETURN",
            ],
        );
        lab
    }

    /// Adds host `node` to site `site`'s LAN as 10.1.`site`.`host`, next to `site{site}`:
    /// the NAT router's LAN port becomes a bridge, so both hosts share one segment (and
    /// its multicast).
    pub fn add_lan_host(&mut self, site: usize, node: &str, host: u8) {
        let router = format!("nat{site}");
        let name = self.ns(node);
        must(&["ip", "netns", "add", &name]);
        self.namespaces.push(name.clone());
        must(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        let gw = format!("10.1.{site}.1");
        let has_bridge = self
            .exec(&router, &["ip", "link", "show", "br0"])
            .status
            .success();
        if !has_bridge {
            self.exec_ok(&router, &["ip", "link", "add", "br0", "type", "bridge"]);
            self.exec_ok(&router, &["ip", "addr", "flush", "dev", "lan"]);
            self.exec_ok(&router, &["ip", "link", "set", "lan", "master", "br0"]);
            self.exec_ok(
                &router,
                &["ip", "addr", "add", &format!("{gw}/24"), "dev", "br0"],
            );
            self.exec_ok(&router, &["ip", "link", "set", "br0", "up"]);
        }
        let port = format!("lan{host}");
        let ip = format!("10.1.{site}.{host}/24");
        let rn = self.ns(&router);
        must(&[
            "ip", "link", "add", &port, "netns", &rn, "type", "veth", "peer", "name", "eth0",
            "netns", &name,
        ]);
        self.exec_ok(&router, &["ip", "link", "set", &port, "master", "br0"]);
        self.exec_ok(&router, &["ip", "link", "set", &port, "up"]);
        must(&["ip", "-n", &name, "addr", "add", &ip, "dev", "eth0"]);
        must(&["ip", "-n", &name, "link", "set", "eth0", "up"]);
        self.exec_ok(node, &["ip", "route", "add", "default", "via", &gw]);
    }

    /// Adds host `node` on the Internet at 198.18.`net`.2 (its router 198.18.`net`.1), like
    /// a third site without NAT; returns its address. Its traffic is not in [`Counters`].
    pub fn add_internet_host(&mut self, node: &str, net: u8) -> String {
        let name = self.ns(node);
        must(&["ip", "netns", "add", &name]);
        self.namespaces.push(name.clone());
        must(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        let (gw, ip) = (format!("198.18.{net}.1"), format!("198.18.{net}.2"));
        let port = format!("h{net}");
        self.link(
            "inet",
            &port,
            &format!("{gw}/24"),
            node,
            "wan",
            &format!("{ip}/24"),
        );
        self.exec_ok(node, &["ip", "route", "add", "default", "via", &gw]);
        ip
    }

    /// The full namespace name of a lab node.
    pub fn ns(&self, node: &str) -> String {
        format!("{}{node}", self.prefix)
    }

    fn link(&self, a: &str, a_if: &str, a_ip: &str, b: &str, b_if: &str, b_ip: &str) {
        let (na, nb) = (self.ns(a), self.ns(b));
        must(&[
            "ip", "link", "add", a_if, "netns", &na, "type", "veth", "peer", "name", b_if, "netns",
            &nb,
        ]);
        must(&["ip", "-n", &na, "addr", "add", a_ip, "dev", a_if]);
        must(&["ip", "-n", &nb, "addr", "add", b_ip, "dev", b_if]);
        must(&["ip", "-n", &na, "link", "set", a_if, "up"]);
        must(&["ip", "-n", &nb, "link", "set", b_if, "up"]);
    }

    /// Runs a command in a node's namespace.
    pub fn exec(&self, node: &str, args: &[&str]) -> Output {
        let ns = self.ns(node);
        let mut full = vec!["ip", "netns", "exec", &ns];
        full.extend_from_slice(args);
        run(&full)
    }

    pub fn exec_ok(&self, node: &str, args: &[&str]) {
        let out = self.exec(node, args);
        assert!(
            out.status.success(),
            "{node}: {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts a long-running process in a node's namespace, output to a log file.
    pub fn spawn(&self, node: &str, name: &str, program: &str, args: &[&str]) -> Proc {
        let log = self.dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let err = file.try_clone().expect("log file");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(node), program])
            .args(args)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .expect("spawn");
        Proc { child, log }
    }

    /// Pings `addr` from a node; returns how many of `count` replies came back.
    pub fn ping(&self, node: &str, addr: &str, count: u32, interval: &str) -> u32 {
        let c = count.to_string();
        let out = self.exec(
            node,
            &[
                "ping", "-n", "-q", "-c", &c, "-i", interval, "-W", "1", addr,
            ],
        );
        let text = String::from_utf8_lossy(&out.stdout);
        text.split(',')
            .find_map(|p| {
                p.trim()
                    .strip_suffix(" received")
                    .and_then(|n| n.trim().parse().ok())
            })
            .unwrap_or(0)
    }

    /// Waits until one ping succeeds, up to `timeout`.
    pub fn wait_ping(&self, node: &str, addr: &str, timeout: Duration) -> bool {
        wait_until(timeout, || self.ping(node, addr, 1, "0.2") == 1)
    }

    /// The Internet router's counters.
    pub fn counters(&self) -> Counters {
        let out = self.exec("inet", &["iptables", "-nvxL", "FORWARD"]);
        let text = String::from_utf8_lossy(&out.stdout);
        let mut c = Counters::default();
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 9 || f[2] != "RETURN" {
                continue;
            }
            let pkts: u64 = f[0].parse().unwrap_or(0);
            let (src, dst) = (f[7], f[8]);
            if WAN.contains(&src) && WAN.contains(&dst) {
                c.direct += pkts;
            } else if src == SUPERNODE_IP || dst == SUPERNODE_IP {
                c.via_supernode += pkts;
            }
        }
        c
    }

    /// Drops every packet between the two sites at the Internet router (a firewall).
    pub fn block_direct(&self) {
        for (s, d) in [(WAN[0], WAN[1]), (WAN[1], WAN[0])] {
            self.exec_ok(
                "inet",
                &["iptables", "-I", "FORWARD", "-s", s, "-d", d, "-j", "DROP"],
            );
        }
    }

    /// A management request to 127.0.0.1:`port` inside a node; the reply text.
    pub fn mgmt(&self, node: &str, port: u16, request: &str) -> String {
        let script = format!("printf '%s' '{request}' | nc -u -w1 127.0.0.1 {port}");
        let out = self.exec(node, &["sh", "-c", &script]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            // Anything still running in the namespace (ping, nc, iperf3) is ended first.
            if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("sh")
                        .args(["-c", &format!("kill -9 {pid}")])
                        .status();
                }
            }
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Lab {
    /// A JSON management request (`r 1 edges`) to 127.0.0.1:`port` inside a node: its `row`
    /// objects, parsed.
    pub fn mgmt_rows(&self, node: &str, port: u16, request: &str) -> Vec<serde_json::Value> {
        // A stream of objects: n2n's edge rows carry newlines between their fields.
        let text = self.mgmt(node, port, request);
        serde_json::Deserializer::from_str(&text)
            .into_iter::<serde_json::Value>()
            .map_while(Result::ok)
            .filter(|v| v["_type"] == "row")
            .collect()
    }
}
