//! The edge's management replies, pinned byte for byte to what n2n's edge_management.c sends
//! for the same state (field names and order, number formats, the line breaks inside `edges`
//! rows, datagram boundaries, error placement, subscription order). The state is built through
//! the machine's public API with simulated time; the formats were checked against the
//! reference edge side by side.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use n2n_crypto::compress::Codec;
use n2n_crypto::pearson::pearson_hash_64;
use n2n_crypto::{HeaderKey, StampGenerator, Transform, Xorshift128Plus};
use n2n_edge::events::Subscriptions;
use n2n_edge::machine::{Action, Edge, EdgeMachineConfig, PeerHint, Refusal};
use n2n_edge::mgmt::{self, Control};
use n2n_edge::tunnel::{DropReason, Halves, Tunnel, TunnelConfig, View};
use n2n_proto::msg::*;
use n2n_proto::*;

const T0: u64 = 1_800_000_000_000_000;
const S: u64 = 1_000_000;
/// When the requests are asked.
const NOW: u64 = T0 + 30 * S;

fn comm() -> Community {
    Community::new("test").expect("valid")
}

fn mac(n: u8) -> Mac {
    Mac([2, 0, 0, 0, 0, n])
}

fn sn(n: u8) -> SocketAddr {
    SocketAddr::from(([198, 18, 0, n], 7654))
}

fn peer_sock(n: u8) -> SocketAddr {
    SocketAddr::from(([198, 18, 1, n], 50000 + u16::from(n)))
}

fn requester() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 40000))
}

fn datagram(flags: Flags, msg: Message) -> Datagram {
    Datagram::new(comm(), flags, msg)
}

/// The cookie of the last REGISTER_SUPER the edge sent.
fn sent_cookie(e: &mut Edge) -> u32 {
    let mut cookie = None;
    while let Some(a) = e.poll_action() {
        if let Action::Transmit { data, .. } = a
            && let Ok((d, _)) = Datagram::decode(&data)
            && let Message::RegisterSuper(r) = d.msg
        {
            cookie = Some(r.cookie);
        }
    }
    cookie.expect("a REGISTER_SUPER")
}

/// An edge machine with `cfg`, seeded randomness and its clock at `T0`.
fn edge_at_t0(cfg: EdgeMachineConfig) -> Edge {
    Edge::new(
        cfg,
        Box::new(Xorshift128Plus::seeded(7)),
        Arc::new(StampGenerator::default()),
        T0,
    )
}

/// An edge of `test` (10.0.0.1/24, 02:..:01) registered with 198.18.0.1 at T0+1 s, which
/// named a second supernode (198.18.0.2, that answered a PONG at T0+5 s); one known peer
/// (02:..:03, confirmed at T0+10 s and heard from at T0+20 s), one pending peer with a
/// socket (02:..:04) and one without (02:..:05). (`-H` matters to the replies only through
/// the data path's configuration.)
fn machine() -> Edge {
    let cfg = EdgeMachineConfig {
        desc: Desc::from_text("me"),
        dev_addr: Some(IpSubnet::new([10, 0, 0, 1].into(), 24)),
        ..EdgeMachineConfig::new(comm(), mac(1), vec![sn(1)])
    };
    let mut e = edge_at_t0(cfg);
    let cookie = sent_cookie(&mut e);
    let second = sn(2);
    let entry = SupernodeEntry {
        family: 2,
        pad: 0,
        port: second.port(),
        addr: {
            let mut a = [0u8; 16];
            a[..4].copy_from_slice(&[198, 18, 0, 2]);
            a
        },
        mac: Mac([2, 0, 0, 0, 0, 0xf2]),
    };
    let ack = |cookie| {
        datagram(
            Flags::FROM_SUPERNODE.with(Flags::SOCKET),
            Message::RegisterSuperAck(RegisterSuperAck {
                cookie,
                src_mac: Mac([2, 0, 0, 0, 0, 0xf1]),
                dev_addr: IpSubnet::new([10, 0, 0, 1].into(), 24),
                lifetime: 15,
                sock: Sock::from(SocketAddr::from(([203, 0, 113, 1], 40000))),
                auth: Auth::NONE,
                supernodes: vec![entry],
                key_time: 0,
            }),
        )
    };
    e.handle_control(T0 + S, sn(1), ack(cookie));
    // The registration our edge repeats at once (its socket proves it receives) is answered.
    let confirmation = sent_cookie(&mut e);
    e.handle_control(T0 + S, sn(1), ack(confirmation));
    let pong = datagram(
        Flags::FROM_SUPERNODE,
        Message::PeerInfo(PeerInfo {
            aflags: 0,
            src_mac: Mac([2, 0, 0, 0, 0, 0xf2]),
            mac: Mac::NULL,
            sock: Sock::from(SocketAddr::from(([203, 0, 113, 1], 40000))),
            preferred_sock: None,
            load: 5u32.swap_bytes(),
            uptime: 77,
            version: VersionString::from_text("3.1.1-sn2"),
        }),
    );
    e.handle_control(T0 + 5 * S, sn(2), pong);
    // A known peer: its REGISTER_ACK, then its own REGISTER with address and description.
    let ack = datagram(
        Flags::EMPTY,
        Message::RegisterAck(RegisterAck {
            cookie: cookie::REGULAR,
            dst_mac: mac(1),
            src_mac: mac(3),
            sock: None,
        }),
    );
    // Its traffic came directly; we registered towards it and it answered.
    e.handle_hint(
        T0 + 10 * S,
        PeerHint::Direct {
            mac: mac(3),
            from: peer_sock(3),
        },
    );
    e.handle_control(T0 + 10 * S, peer_sock(3), ack);
    let reg = datagram(
        Flags::EMPTY,
        Message::Register(Register {
            cookie: cookie::REGULAR,
            src_mac: mac(3),
            dst_mac: mac(1),
            sock: None,
            dev_addr: IpSubnet::new([10, 0, 0, 3].into(), 24),
            desc: Desc::from_text("three"),
        }),
    );
    e.handle_control(T0 + 20 * S, peer_sock(3), reg);
    // Pending peers: frames went to them through the supernode; one's socket is known.
    e.handle_hint(T0 + 12 * S, PeerHint::Need(mac(5)));
    e.handle_hint(T0 + 14 * S, PeerHint::Need(mac(4)));
    let info = datagram(
        Flags::FROM_SUPERNODE,
        Message::PeerInfo(PeerInfo {
            aflags: 0,
            src_mac: mac(1),
            mac: mac(4),
            sock: Sock::from(peer_sock(4)),
            preferred_sock: None,
            load: 0,
            uptime: 0,
            version: VersionString::default(),
        }),
    );
    e.handle_control(T0 + 15 * S, sn(1), info);
    while e.poll_action().is_some() {}
    e
}

fn tunnel(header_encryption: bool) -> Tunnel {
    let cfg = TunnelConfig {
        community: comm(),
        own_mac: mac(1),
        transform: 1,
        compression: 1,
        header_key: header_encryption.then(|| Box::new(HeaderKey::for_community(&comm()))),
        multicast: false,
        routing: false,
        p2p_window_us: 10 * S,
        user_auth: false,
        filter: Default::default(),
    };
    let codec = || Codec::new(1).expect("no compression");
    let halves = Halves {
        seal: Transform::Null,
        open: Transform::Null,
        seal_codec: codec(),
        open_codec: codec(),
        seed: 1,
    };
    let tunnel = Tunnel::new(cfg, halves, Arc::new(StampGenerator::default()));
    tunnel.set_view(View {
        registered: true,
        supernode: Some(sn(1)),
        ..View::default()
    });
    let c = tunnel.counters();
    // Distinct values: 2 gratuitous ARPs and 1 more broadcast, 3 unicasts via the supernode.
    c.transop_tx.store(17, Ordering::Relaxed);
    c.transop_rx.store(13, Ordering::Relaxed);
    c.p2p_tx.store(11, Ordering::Relaxed);
    c.p2p_rx.store(7, Ordering::Relaxed);
    c.super_tx.store(3, Ordering::Relaxed);
    c.super_rx.store(5, Ordering::Relaxed);
    c.super_broadcast_tx.store(3, Ordering::Relaxed);
    // A PACKET came directly from a peer 10 s after the start.
    c.last_p2p_rx_us.store(T0 + 10_000_000, Ordering::Relaxed);
    tunnel
}

fn control() -> Control {
    Control {
        password_hash: pearson_hash_64(b"n2n"),
        verbosity: 2,
        keep_running: true,
        subs: Subscriptions::default(),
        local: "0.0.0.0:50001".parse().expect("addr"),
    }
}

struct Bench {
    edge: Edge,
    tunnel: Tunnel,
    ctl: Control,
}

impl Bench {
    fn new(header_encryption: bool) -> Self {
        Bench {
            edge: machine(),
            tunnel: tunnel(header_encryption),
            ctl: control(),
        }
    }

    fn ask_from(&mut self, request: &str, from: SocketAddr) -> Vec<String> {
        mgmt::handle(
            &self.edge,
            &self.tunnel,
            &mut self.ctl,
            NOW,
            request.as_bytes(),
            from,
        )
    }

    fn ask(&mut self, request: &str) -> Vec<String> {
        self.ask_from(request, requester())
    }
}

/// The lines of `want` each with its line end.
fn lines(want: &[&str]) -> Vec<String> {
    want.iter().map(|l| format!("{l}\n")).collect()
}

/// Compares datagram by datagram, so that a failure names the datagram.
#[track_caller]
fn check(got: Vec<String>, want: &[String]) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g, w, "datagram {i}");
    }
    assert_eq!(got.len(), want.len(), "datagrams: {got:#?}");
}

fn error(tag: &str, e: &str) -> String {
    format!("{{\"_tag\":\"{tag}\",\"_type\":\"error\",\"error\":\"{e}\"}}\n")
}

#[test]
fn help_lists_the_methods_in_the_reference_order() {
    let mut b = Bench::new(false);
    let want = lines(&[
        r#"{"_tag":"1","_type":"begin","cmd":"help"}"#,
        r#"{"_tag":"1","_type":"row","cmd":"reload_communities","help":"Reserved for supernode"}"#,
        r#"{"_tag":"1","_type":"row","cmd":"stop","help":"Gracefully exit edge"}"#,
        r#"{"_tag":"1","_type":"row","cmd":"verbose","help":"Manage verbosity level"}"#,
        r#"{"_tag":"1","_type":"row","cmd":"communities","help":"Show current community"}"#,
        r#"{"_tag":"1","_type":"row","cmd":"edges","help":"List current edges/peers"}"#,
        r#"{"_tag":"1","_type":"row","cmd":"supernodes","help":"List current supernodes"}"#,
        r#"{"_tag":"1","_type":"row","cmd":"info","help":"Provide basic edge information"}"#,
        r#"{"_tag":"1","_type":"row","cmd":"timestamps","help":"Event timestamps"}"#,
        r#"{"_tag":"1","_type":"row","cmd":"packetstats","help":"traffic counters"}"#,
        r#"{"_tag":"1","_type":"row","cmd":"post.test","help":"send a test event"}"#,
        r#"{"_tag":"1","_type":"row","cmd":"help","help":"Show JSON commands"}"#,
        r#"{"_tag":"1","_type":"row","cmd":"help.events","help":"Show available Subscribe topics"}"#,
        // n2n-rs's one addition, after n2n's own.
        r#"{"_tag":"1","_type":"row","cmd":"drops","help":"Dropped datagrams and refused messages by reason"}"#,
        r#"{"_tag":"1","_type":"end","cmd":"help"}"#,
    ]);
    check(b.ask("r 1 help"), &want);
    check(b.ask("w 1:1:n2n help"), &want);
    check(
        b.ask("r 2 help.events"),
        &lines(&[
            r#"{"_tag":"2","_type":"begin","cmd":"help.events"}"#,
            r#"{"_tag":"2","_type":"row","topic":"debug","tag":"","sockaddr":"?:?","help":"All events - for event debugging"}"#,
            r#"{"_tag":"2","_type":"row","topic":"test","tag":"","sockaddr":"?:?","help":"Used only by post.test"}"#,
            r#"{"_tag":"2","_type":"row","topic":"peer","tag":"","sockaddr":"?:?","help":"Changes to peer list"}"#,
            r#"{"_tag":"2","_type":"end","cmd":"help.events"}"#,
        ]),
    );
}

#[test]
fn read_methods_pin_the_reference_rows() {
    let mut b = Bench::new(false);
    check(
        b.ask("r 3 communities"),
        &lines(&[
            r#"{"_tag":"3","_type":"begin","cmd":"communities"}"#,
            r#"{"_tag":"3","_type":"row","community":"test"}"#,
            r#"{"_tag":"3","_type":"end","cmd":"communities"}"#,
        ]),
    );
    // Pending peers first, then known ones; n2n breaks the line twice inside each row.
    check(
        b.ask("r 4 edges"),
        &lines(&[
            r#"{"_tag":"4","_type":"begin","cmd":"edges"}"#,
            "{\"_tag\":\"4\",\"_type\":\"row\",\"mode\":\"pSp\",\"ip4addr\":\"\",\"purgeable\":1,\"local\":0,\"macaddr\":\"02:00:00:00:00:04\",\"sockaddr\":\"198.18.1.4:50004\",\"desc\":\"\",\"last_p2p\":0,\n\"last_sent_query\":1800000014,\n\"last_seen\":1800000015}",
            "{\"_tag\":\"4\",\"_type\":\"row\",\"mode\":\"pSp\",\"ip4addr\":\"\",\"purgeable\":1,\"local\":0,\"macaddr\":\"02:00:00:00:00:05\",\"sockaddr\":\"0.0.0.0:0\",\"desc\":\"\",\"last_p2p\":0,\n\"last_sent_query\":1800000012,\n\"last_seen\":1800000012}",
            "{\"_tag\":\"4\",\"_type\":\"row\",\"mode\":\"p2p\",\"ip4addr\":\"10.0.0.3/24\",\"purgeable\":1,\"local\":0,\"macaddr\":\"02:00:00:00:00:03\",\"sockaddr\":\"198.18.1.3:50003\",\"desc\":\"three\",\"last_p2p\":1800000020,\n\"last_sent_query\":0,\n\"last_seen\":1800000020}",
            r#"{"_tag":"4","_type":"end","cmd":"edges"}"#,
        ]),
    );
    check(
        b.ask("r 5 supernodes"),
        &lines(&[
            r#"{"_tag":"5","_type":"begin","cmd":"supernodes"}"#,
            r#"{"_tag":"5","_type":"row","version":"","purgeable":0,"current":1,"macaddr":"02:00:00:00:00:F1","sockaddr":"198.18.0.1:7654","selection":"","last_seen":0,"uptime":0}"#,
            r#"{"_tag":"5","_type":"row","version":"3.1.1-sn2","purgeable":1,"current":0,"macaddr":"02:00:00:00:00:F2","sockaddr":"198.18.0.2:7654","selection":"load =        5","last_seen":1800000005,"uptime":77}"#,
            r#"{"_tag":"5","_type":"end","cmd":"supernodes"}"#,
        ]),
    );
    // (n2n's version and its local socket, 0.0.0.0:<port> without -e, differ legitimately.)
    check(
        b.ask("r 6 info"),
        &lines(&[
            r#"{"_tag":"6","_type":"begin","cmd":"info"}"#,
            &format!(
                r#"{{"_tag":"6","_type":"row","version":"n2n-rs-{}","macaddr":"02:00:00:00:00:01","ip4addr":"10.0.0.1","ip4netmask":"255.255.255.0","sockaddr":"0.0.0.0:50001"}}"#,
                env!("CARGO_PKG_VERSION")
            ),
            r#"{"_tag":"6","_type":"end","cmd":"info"}"#,
        ]),
    );
    check(
        b.ask("r 7 timestamps"),
        &lines(&[
            r#"{"_tag":"7","_type":"begin","cmd":"timestamps"}"#,
            r#"{"_tag":"7","_type":"row","start_time":1800000000,"last_super":1800000001,"last_p2p":1800000010}"#,
            r#"{"_tag":"7","_type":"end","cmd":"timestamps"}"#,
        ]),
    );
    // A broadcast sent through the supernode counts in `super` and in `super_broadcast`.
    check(
        b.ask("r 8 packetstats"),
        &lines(&[
            r#"{"_tag":"8","_type":"begin","cmd":"packetstats"}"#,
            r#"{"_tag":"8","_type":"row","type":"transop","tx_pkt":17,"rx_pkt":13}"#,
            r#"{"_tag":"8","_type":"row","type":"p2p","tx_pkt":11,"rx_pkt":7}"#,
            r#"{"_tag":"8","_type":"row","type":"super","tx_pkt":6,"rx_pkt":5}"#,
            r#"{"_tag":"8","_type":"row","type":"super_broadcast","tx_pkt":3,"rx_pkt":0}"#,
            r#"{"_tag":"8","_type":"end","cmd":"packetstats"}"#,
        ]),
    );
    check(
        b.ask("r 9 stop"),
        &lines(&[
            r#"{"_tag":"9","_type":"begin","cmd":"stop"}"#,
            r#"{"_tag":"9","_type":"row","keep_running":1}"#,
            r#"{"_tag":"9","_type":"end","cmd":"stop"}"#,
        ]),
    );
    check(
        b.ask("r 10 verbose"),
        &lines(&[
            r#"{"_tag":"10","_type":"begin","cmd":"verbose"}"#,
            r#"{"_tag":"10","_type":"row","traceLevel":2}"#,
            r#"{"_tag":"10","_type":"end","cmd":"verbose"}"#,
        ]),
    );
    // Reserved for the supernode: the error comes between begin and end.
    let reserved = |tag: &str| {
        lines(&[
            &format!(r#"{{"_tag":"{tag}","_type":"begin","cmd":"reload_communities"}}"#),
            &format!(r#"{{"_tag":"{tag}","_type":"error","error":"unimplemented"}}"#),
            &format!(r#"{{"_tag":"{tag}","_type":"end","cmd":"reload_communities"}}"#),
        ])
    };
    check(b.ask("r 11 reload_communities"), &reserved("11"));
    check(b.ask("w 12:1:n2n reload_communities"), &reserved("12"));
    assert!(b.ctl.keep_running);
}

#[test]
fn header_encryption_hides_the_community() {
    let mut b = Bench::new(true);
    check(
        b.ask("r 3 communities"),
        &lines(&[
            r#"{"_tag":"3","_type":"begin","cmd":"communities"}"#,
            r#"{"_tag":"3","_type":"error","error":"noaccess"}"#,
            r#"{"_tag":"3","_type":"end","cmd":"communities"}"#,
        ]),
    );
    assert!(b.ask("\n")[0].starts_with("COMMUNITY '-- header encrypted --'\n\n ### |"));
}

fn verbose(b: &mut Bench, request: &str, level: u8) {
    check(
        b.ask(request),
        &lines(&[
            r#"{"_tag":"2","_type":"begin","cmd":"verbose"}"#,
            &format!(r#"{{"_tag":"2","_type":"row","traceLevel":{level}}}"#),
            r#"{"_tag":"2","_type":"end","cmd":"verbose"}"#,
        ]),
    );
    assert_eq!(b.ctl.verbosity, level, "{request}");
}

#[test]
fn write_methods_and_verbosity_as_the_reference() {
    let mut b = Bench::new(false);
    verbose(&mut b, "w 2:1:n2n verbose 3", 3);
    verbose(&mut b, "w 2:1:n2n verbose 010", 8);
    verbose(&mut b, "w 2:1:n2n verbose 0x2", 2);
    verbose(&mut b, "w 2:1:n2n verbose  1", 1);
    verbose(&mut b, "w 2:1:n2n verbose", 1);
    verbose(&mut b, "w 2:1:n2n verbose 7x", 7);
    verbose(&mut b, "w 2:1:n2n verbose abc", 0);
    // The text commands: no upper bound, "-NOK" at 0.
    check(b.ask("-verb"), &["> -NOK traceLevel=0\n".to_string()]);
    check(b.ask("+verb"), &["> +OK traceLevel=1\n".to_string()]);
    for n in 2..=5 {
        check(b.ask("+verbose"), &[format!("> +OK traceLevel={n}\n")]);
    }
    check(b.ask("-verb"), &["> -OK traceLevel=4\n".to_string()]);
    check(
        b.ask("w 6:1:n2n stop"),
        &lines(&[
            r#"{"_tag":"6","_type":"begin","cmd":"stop"}"#,
            r#"{"_tag":"6","_type":"row","keep_running":0}"#,
            r#"{"_tag":"6","_type":"end","cmd":"stop"}"#,
        ]),
    );
    assert!(!b.ctl.keep_running);
    // The text "stop" needs no password and has no reply.
    let mut b = Bench::new(false);
    assert!(b.ask("stop now").is_empty());
    assert!(!b.ctl.keep_running);
}

#[test]
fn subscriptions_and_events_in_the_reference_order() {
    let mut b = Bench::new(false);
    let other = SocketAddr::from(([127, 0, 0, 1], 40001));
    check(b.ask("s 1 peer"), &[error("1", "badauth")]);
    check(b.ask("s 2:1:n2n nosuch"), &[error("2", "unknowntopic")]);
    check(
        b.ask_from("s 3:1:n2n peer", other),
        &lines(&[r#"{"_tag":"3","_type":"subscribe","topic":"peer"}"#]),
    );
    // Replacing a subscriber on the same socket: it hears of its eviction first.
    check(
        b.ask_from("s 4:1:n2n peer", other),
        &lines(&[
            r#"{"_tag":"3","_type":"unsubscribed","topic":"peer"}"#,
            r#"{"_tag":"4","_type":"replacing","topic":"peer"}"#,
            r#"{"_tag":"4","_type":"subscribe","topic":"peer"}"#,
        ]),
    );
    assert!(b.ctl.subs.outbox.is_empty());
    // From another socket: the evicted one is told through the outbox.
    check(
        b.ask("s 5:1:n2n peer"),
        &lines(&[
            r#"{"_tag":"5","_type":"replacing","topic":"peer"}"#,
            r#"{"_tag":"5","_type":"subscribe","topic":"peer"}"#,
        ]),
    );
    assert_eq!(
        std::mem::take(&mut b.ctl.subs.outbox),
        vec![(
            other,
            "{\"_tag\":\"4\",\"_type\":\"unsubscribed\",\"topic\":\"peer\"}\n".to_string()
        )]
    );
    check(
        b.ask("s 6:1:n2n test"),
        &lines(&[r#"{"_tag":"6","_type":"subscribe","topic":"test"}"#]),
    );
    // The event reaches its subscriber between the row and the end; the argument is the rest
    // of the line, "(null)" when there is none.
    check(
        b.ask("r 7 post.test  hello world"),
        &lines(&[
            r#"{"_tag":"7","_type":"begin","cmd":"post.test"}"#,
            r#"{"_tag":"7","_type":"row","sending":"test"}"#,
            r#"{"_tag":"6","_type":"event","test":" hello world"}"#,
            r#"{"_tag":"7","_type":"end","cmd":"post.test"}"#,
        ]),
    );
    check(
        b.ask_from("r 8 post.test", other),
        &lines(&[
            r#"{"_tag":"8","_type":"begin","cmd":"post.test"}"#,
            r#"{"_tag":"8","_type":"row","sending":"test"}"#,
            r#"{"_tag":"8","_type":"end","cmd":"post.test"}"#,
        ]),
    );
    assert_eq!(
        std::mem::take(&mut b.ctl.subs.outbox),
        vec![(
            requester(),
            "{\"_tag\":\"6\",\"_type\":\"event\",\"test\":\"(null)\"}\n".to_string()
        )]
    );
    check(
        b.ask_from("s 9:1:n2n debug", other),
        &lines(&[r#"{"_tag":"9","_type":"subscribe","topic":"debug"}"#]),
    );
    check(
        b.ask("r 10 help.events"),
        &lines(&[
            r#"{"_tag":"10","_type":"begin","cmd":"help.events"}"#,
            r#"{"_tag":"10","_type":"row","topic":"debug","tag":"9","sockaddr":"127.0.0.1:40001","help":"All events - for event debugging"}"#,
            r#"{"_tag":"10","_type":"row","topic":"test","tag":"6","sockaddr":"127.0.0.1:40000","help":"Used only by post.test"}"#,
            r#"{"_tag":"10","_type":"row","topic":"peer","tag":"5","sockaddr":"127.0.0.1:40000","help":"Changes to peer list"}"#,
            r#"{"_tag":"10","_type":"end","cmd":"help.events"}"#,
        ]),
    );
}

#[test]
fn errors_as_the_reference() {
    let mut b = Bench::new(false);
    for (request, tag, e) in [
        // Found before the tag is read: tag -1.
        ("q 1 edges", "-1", "badtype"),
        ("r 1", "-1", "nocmd"),
        ("r ", "-1", "nooptions"),
        // Without a password only reads; a wrong one is refused even for a read.
        ("w 4 stop", "4", "badauth"),
        ("w 5 edges", "5", "badauth"),
        ("w 6:1:bad verbose", "6", "badauth"),
        ("r 7:1:bad edges", "7", "badauth"),
        ("w 8:0:n2n stop", "8", "badauth"),
        ("r 3 nosuch", "3", "unknowncmd"),
        ("w 6:1:n2n edges", "6", "readonly"),
        ("w 6:1:n2n help.events", "6", "readonly"),
        ("r 0123456789abc nosuch", "012345678", "unknowncmd"),
    ] {
        check(b.ask(request), &[error(tag, e)]);
    }
    // Requests are cut at 79 bytes: 2 + 73 + 5 = 80, "help" loses its "p".
    check(
        b.ask(&format!("r {} help", "1".repeat(73))),
        &[error("111111111", "unknowncmd")],
    );
    // begin, n2n's 12 methods and n2n-rs's `drops`, end.
    assert_eq!(b.ask(&format!("r {} help", "1".repeat(72))).len(), 15);
    // strtok: "1::1:n2n" is tag 1, flags 1, password n2n; a leading colon is skipped.
    assert_eq!(
        b.ask("w 1::1:n2n verbose")[1],
        "{\"_tag\":\"1\",\"_type\":\"row\",\"traceLevel\":2}\n"
    );
    assert_eq!(
        b.ask("r :1:n2n verbose")[0],
        "{\"_tag\":\"1\",\"_type\":\"begin\",\"cmd\":\"verbose\"}\n"
    );
    // Not `<a-z><space>`: the status table.
    for request in ["R 1 edges", ": 1 edges", "r", "r\t1 edges"] {
        assert!(
            b.ask(request)[0].starts_with("COMMUNITY 'test'\n"),
            "{request}"
        );
    }
}

#[test]
fn text_commands_as_the_reference() {
    let mut b = Bench::new(false);
    let help = "Help for edge management console:\n\tstop    | Gracefully exit edge\n\thelp    | This help message\n\t+verb   | Increase verbosity of logging\n\t-verb   | Decrease verbosity of logging\n\tr ...   | start query with JSON reply\n\tw ...   | start update with JSON reply\n\ts ...   | subscribe to event channel JSON reply\n\t<enter> | Display statistics\n\n";
    for request in ["help", "?", "helpme"] {
        check(b.ask(request), &[help.to_string()]);
    }
    // One datagram per row, the headings riding with the row after them.
    let table = [
        "COMMUNITY 'test'\n\n ### | TAP             | MAC               | EDGE                  | HINT            | LAST SEEN |     UPTIME\n=============================================================================================================\nSUPERNODE FORWARD\n   1 |                 | 02:00:00:00:00:04 | 198.18.1.4:50004      |                 |        15 |\n",
        "   2 |                 | 02:00:00:00:00:05 | 0.0.0.0:0             |                 |        18 |\n",
        "-------------------------------------------------------------------------------------------------------------\nPEER TO PEER\n   1 | 10.0.0.3        | 02:00:00:00:00:03 | 198.18.1.3:50003      | three           |        10 |\n",
        "-------------------------------------------------------------------------------------------------------------\nSUPERNODES\n                    l* | 02:00:00:00:00:F1 | 198.18.0.1:7654       |                 |           |           \n",
        "3.1.1-sn2              | 02:00:00:00:00:F2 | 198.18.0.2:7654       | load =        5 |        25 |         77\n",
        "=============================================================================================================\nuptime 30 | pend_peers 2 | known_peers 1 | transop 17,13\nsuper 6,5 | p2p 11,7\nlast_super 29 sec ago | last_p2p 20 sec ago\n\nType \"help\" to see more commands.\n\n",
    ]
    .map(String::from);
    for request in ["\n", "", "x"] {
        check(b.ask(request), &table);
    }
}

#[test]
fn a_fresh_edge_prints_zero_times_as_the_reference() {
    // Not registered, no peers: the headings and totals share datagrams; "now - 0" seconds.
    let cfg = EdgeMachineConfig {
        desc: Desc::from_text("me"),
        ..EdgeMachineConfig::new(comm(), mac(1), vec![sn(1)])
    };
    let edge = edge_at_t0(cfg);
    let tunnel = tunnel(false);
    for c in [
        &tunnel.counters().transop_tx,
        &tunnel.counters().p2p_tx,
        &tunnel.counters().super_tx,
        &tunnel.counters().super_broadcast_tx,
        &tunnel.counters().last_p2p_rx_us,
    ] {
        c.store(0, Ordering::Relaxed);
    }
    let mut ctl = control();
    let ask = |ctl: &mut Control, r: &str| {
        mgmt::handle(&edge, &tunnel, ctl, NOW, r.as_bytes(), requester())
    };
    check(
        ask(&mut ctl, "\n"),
        &[
            "COMMUNITY 'test'\n\n ### | TAP             | MAC               | EDGE                  | HINT            | LAST SEEN |     UPTIME\n=============================================================================================================\nSUPERNODE FORWARD\n-------------------------------------------------------------------------------------------------------------\nPEER TO PEER\n-------------------------------------------------------------------------------------------------------------\nSUPERNODES\n                    l. |                   | 198.18.0.1:7654       |                 |           |           \n",
            "=============================================================================================================\nuptime 30 | pend_peers 0 | known_peers 0 | transop 0,13\nsuper 0,5 | p2p 0,7\nlast_super 1800000030 sec ago | last_p2p 1800000030 sec ago\n\nType \"help\" to see more commands.\n\n",
        ]
        .map(String::from),
    );
    check(
        ask(&mut ctl, "r 1 info"),
        &lines(&[
            r#"{"_tag":"1","_type":"begin","cmd":"info"}"#,
            &format!(
                r#"{{"_tag":"1","_type":"row","version":"n2n-rs-{}","macaddr":"02:00:00:00:00:01","ip4addr":"0.0.0.0","ip4netmask":"0.0.0.0","sockaddr":"0.0.0.0:50001"}}"#,
                env!("CARGO_PKG_VERSION")
            ),
            r#"{"_tag":"1","_type":"end","cmd":"info"}"#,
        ]),
    );
    check(
        ask(&mut ctl, "r 2 supernodes"),
        &lines(&[
            r#"{"_tag":"2","_type":"begin","cmd":"supernodes"}"#,
            r#"{"_tag":"2","_type":"row","version":"","purgeable":0,"current":2,"macaddr":"","sockaddr":"198.18.0.1:7654","selection":"","last_seen":0,"uptime":0}"#,
            r#"{"_tag":"2","_type":"end","cmd":"supernodes"}"#,
        ]),
    );
    check(
        ask(&mut ctl, "r 3 timestamps"),
        &lines(&[
            r#"{"_tag":"3","_type":"begin","cmd":"timestamps"}"#,
            r#"{"_tag":"3","_type":"row","start_time":1800000000,"last_super":0,"last_p2p":0}"#,
            r#"{"_tag":"3","_type":"end","cmd":"timestamps"}"#,
        ]),
    );
}

/// The `drops` rows as (stage, reason, count).
fn drop_counts(b: &mut Bench) -> Vec<(String, String, u64)> {
    b.ask("r 5 drops")
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["_type"] == "row")
        .map(|v| {
            (
                v["stage"].as_str().unwrap_or("?").to_string(),
                v["reason"].as_str().unwrap_or("?").to_string(),
                v["count"].as_u64().unwrap_or(u64::MAX),
            )
        })
        .collect()
}

#[test]
fn drops_lists_every_reason_of_the_tunnel_and_the_machine_with_its_count() {
    let mut b = Bench::new(false);
    let before = drop_counts(&mut b);
    assert_eq!(before.len(), DropReason::ALL.len() + Refusal::ALL.len());
    assert!(before.iter().all(|r| r.2 == 0), "{before:?}");
    b.tunnel.counters().drop(DropReason::Auth, 2);
    b.tunnel.counters().drop(DropReason::ControlFull, 1);
    // A REGISTER_ACK from a socket nobody registered to.
    let ack = datagram(
        Flags::EMPTY,
        Message::RegisterAck(RegisterAck {
            cookie: cookie::REGULAR,
            dst_mac: mac(1),
            src_mac: mac(9),
            sock: None,
        }),
    );
    b.edge.handle_control(NOW, peer_sock(9), ack);
    let counted: Vec<_> = drop_counts(&mut b)
        .into_iter()
        .filter(|r| r.2 > 0)
        .collect();
    let want = [
        ("tunnel", "auth", 2),
        ("tunnel", "control_full", 1),
        ("machine", "unasked", 1),
    ];
    let want: Vec<_> = want
        .iter()
        .map(|(s, r, n)| (s.to_string(), r.to_string(), *n))
        .collect();
    assert_eq!(counted, want);
    // Read-only: a write is refused as n2n refuses writes to its read methods.
    check(b.ask("w 6:1:n2n drops"), &[error("6", "readonly")]);
}

#[test]
fn a_path_being_verified_is_listed_as_pending_at_its_socket() {
    // -A6/-A7: the peer's REGISTER_ACK came, no authenticated packet yet: still relayed.
    let cfg = EdgeMachineConfig {
        dev_addr: Some(IpSubnet::new([10, 0, 0, 1].into(), 24)),
        authenticated_paths: true,
        ..EdgeMachineConfig::new(comm(), mac(1), vec![sn(1)])
    };
    let mut e = edge_at_t0(cfg);
    let relayed = datagram(
        Flags::FROM_SUPERNODE,
        Message::Register(Register {
            cookie: cookie::FORWARDED,
            src_mac: mac(6),
            dst_mac: mac(1),
            sock: Some(Sock::from(peer_sock(6))),
            dev_addr: IpSubnet::UNSPECIFIED,
            desc: Desc::default(),
        }),
    );
    e.handle_control(T0 + S, sn(1), relayed);
    let ack = datagram(
        Flags::EMPTY,
        Message::RegisterAck(RegisterAck {
            cookie: cookie::REGULAR,
            dst_mac: mac(1),
            src_mac: mac(6),
            sock: None,
        }),
    );
    e.handle_control(T0 + 2 * S, peer_sock(6), ack);
    while e.poll_action().is_some() {}
    let mut b = Bench {
        edge: e,
        tunnel: tunnel(false),
        ctl: control(),
    };
    let modes = |b: &mut Bench| -> Vec<String> {
        b.ask("r 1 edges")
            .into_iter()
            .filter(|l| l.contains("\"_type\":\"row\""))
            .map(|l| {
                let mode = l.split("\"mode\":\"").nth(1).unwrap_or("").to_string();
                let sock = l.split("\"sockaddr\":\"").nth(1).unwrap_or("").to_string();
                format!(
                    "{} {}",
                    mode.split('"').next().unwrap_or(""),
                    sock.split('"').next().unwrap_or("")
                )
            })
            .collect()
    };
    assert_eq!(modes(&mut b), vec!["pSp 198.18.1.6:50006".to_string()]);
    // Its authenticated packet verifies the path: peer-to-peer from now on.
    b.edge.handle_hint(
        T0 + 3 * S,
        PeerHint::Direct {
            mac: mac(6),
            from: peer_sock(6),
        },
    );
    assert_eq!(modes(&mut b), vec!["p2p 198.18.1.6:50006".to_string()]);
}
