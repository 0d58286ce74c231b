//! Load benchmark of the real `supernode` binary on loopback: registrations per second,
//! relayed packets per second per core (against a plain UDP forwarder measured in the same
//! run), and memory per registered edge. `cargo bench -p n2n-supernode --bench load`.

use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use n2n_proto::msg::*;
use n2n_proto::*;

const EDGES: u32 = 50_000;
const PACKETS: u32 = 200_000;
const PAYLOAD: usize = 1400;

fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .expect("fields")
        .split_whitespace()
        .collect();
    let ticks: f64 =
        fields[11].parse::<f64>().expect("utime") + fields[12].parse::<f64>().expect("stime");
    ticks / 100.0
}

fn rss_kib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("rss")
}

fn sock() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    s
}

fn reg(i: u32) -> Vec<u8> {
    let m = i.to_be_bytes();
    Datagram::new(
        Community::new("bench").expect("valid"),
        Flags::EMPTY,
        Message::RegisterSuper(RegisterSuper {
            cookie: i,
            edge_mac: Mac([2, 0, m[0], m[1], m[2], m[3]]),
            sock: None,
            dev_addr: IpSubnet::new([10, (i >> 16) as u8, (i >> 8) as u8, i as u8].into(), 8),
            desc: Desc::from_text("bench"),
            auth: Auth::new(1, &[i as u8; 16]).expect("16"),
            key_time: 0,
        }),
    )
    .to_vec()
}

fn packet(src: u32, dst: u32) -> Vec<u8> {
    let (s, d) = (src.to_be_bytes(), dst.to_be_bytes());
    let mut b = Datagram::new(
        Community::new("bench").expect("valid"),
        Flags::EMPTY,
        Message::Packet(PacketHeader {
            src_mac: Mac([2, 0, s[0], s[1], s[2], s[3]]),
            dst_mac: Mac([2, 0, d[0], d[1], d[2], d[3]]),
            sock: None,
            compression: 1,
            transform: 1,
        }),
    )
    .to_vec();
    b.resize(b.len() + PAYLOAD, 0xab);
    b
}

/// Sends `count` datagrams from `tx` to `via` in bursts, reading what reaches `rx`, and
/// returns how many arrived.
fn blast(tx: &UdpSocket, via: SocketAddr, rx: &UdpSocket, dgram: &[u8], count: u32) -> u32 {
    let mut buf = [0u8; 2048];
    let mut got = 0;
    rx.set_nonblocking(true).expect("nonblocking");
    for i in 0..count {
        let _ = tx.send_to(dgram, via);
        if i % 16 == 15 {
            // Keep the receive side drained so loss measures the forwarder, not our socket.
            while rx.recv(&mut buf).is_ok() {
                got += 1;
            }
            std::thread::sleep(Duration::from_micros(20));
        }
    }
    let end = Instant::now() + Duration::from_millis(300);
    while Instant::now() < end {
        if rx.recv(&mut buf).is_ok() {
            got += 1;
        }
    }
    got
}

fn main() {
    let port = UdpSocket::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let mport = UdpSocket::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_supernode"))
        .args([
            "-f",
            &format!("-p=127.0.0.1:{port}"),
            &format!("-t={mport}"),
            "--max-edges",
            "1000000",
            // Every simulated edge comes from 127.0.0.1: lift the per-source caps.
            "--max-edges-per-ip",
            "1000000",
            "--max-communities-per-ip",
            "1000",
            "-u",
            "0",
            "-g",
            "0",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("supernode starts");
    let pid = child.id();
    let sn: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let s = sock();
    let mut buf = [0u8; 2048];
    // Wait until it answers.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        s.send_to(&reg(0), sn).expect("send");
        if s.recv(&mut buf).is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "supernode did not start");
    }
    let rss0 = rss_kib(pid);

    // Registrations: windows of 64 in flight, every answer awaited.
    let cpu0 = cpu_secs(pid);
    let t0 = Instant::now();
    let mut i = 1;
    while i < EDGES {
        let batch = 64.min(EDGES - i);
        for k in 0..batch {
            s.send_to(&reg(i + k), sn).expect("send");
        }
        let mut answers = 0;
        while answers < batch {
            match s.recv(&mut buf) {
                Ok(_) => answers += 1,
                Err(_) => break,
            }
        }
        i += batch;
    }
    let reg_wall = t0.elapsed().as_secs_f64();
    let reg_cpu = cpu_secs(pid) - cpu0;
    let rss1 = rss_kib(pid);

    // Relay: edge A (this socket, registered as 0) to edge B.
    let b = sock();
    loop {
        b.send_to(&reg(EDGES + 1), sn).expect("send");
        if b.recv(&mut buf).is_ok() {
            break;
        }
    }
    let pkt = packet(0, EDGES + 1);
    let cpu1 = cpu_secs(pid);
    let t1 = Instant::now();
    let relayed = blast(&s, sn, &b, &pkt, PACKETS);
    let relay_wall = t1.elapsed().as_secs_f64();
    let relay_cpu = cpu_secs(pid) - cpu1;
    let _ = child.kill();
    let _ = child.wait();

    // Baseline in the same run: a plain UDP forwarder thread doing recv_from + send_to.
    let fwd = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let fwd_addr = fwd.local_addr().expect("addr");
    let b2 = sock();
    let dst = b2.local_addr().expect("addr");
    fwd.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let handle = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        let mut n = 0u64;
        let start = Instant::now();
        while let Ok((len, _)) = fwd.recv_from(&mut buf) {
            let _ = fwd.send_to(&buf[..len], dst);
            n += 1;
        }
        (n, start.elapsed().as_secs_f64() - 0.5)
    });
    let t2 = Instant::now();
    let base_got = blast(&s, fwd_addr, &b2, &pkt, PACKETS);
    let base_wall = t2.elapsed().as_secs_f64();
    let (_base_n, _) = handle.join().expect("forwarder");

    let per_edge = (rss1 - rss0) * 1024.0 / f64::from(EDGES - 1);
    println!("supernode load benchmark (loopback, {PAYLOAD}-byte PACKETs)");
    println!(
        "registrations: {} in {reg_wall:.2} s = {:.0}/s; supernode CPU {reg_cpu:.2} s = {:.0}/CPU-s",
        EDGES - 1,
        f64::from(EDGES - 1) / reg_wall,
        f64::from(EDGES - 1) / reg_cpu.max(0.01)
    );
    println!(
        "memory: {rss0:.0} KiB idle, {rss1:.0} KiB with {} edges = {per_edge:.0} bytes/edge",
        EDGES - 1
    );
    let relay_rate = f64::from(relayed) / relay_wall;
    let base_rate = f64::from(base_got) / base_wall;
    println!(
        "relay: {relayed}/{PACKETS} relayed in {relay_wall:.2} s = {relay_rate:.0} pkt/s; supernode CPU {relay_cpu:.2} s = {:.0} pkt/CPU-s",
        f64::from(relayed) / relay_cpu.max(0.01)
    );
    println!(
        "baseline UDP forwarder, same run: {base_got}/{PACKETS} in {base_wall:.2} s = {base_rate:.0} pkt/s; relay/baseline = {:.2}",
        relay_rate / base_rate
    );
}
