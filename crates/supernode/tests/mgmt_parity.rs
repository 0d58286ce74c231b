//! The supernode's management replies, pinned byte for byte to what n2n's sn_management.c
//! sends for the same state (field names and order, number formats, datagram boundaries,
//! error placement). The state is built through the machine's public API with simulated time;
//! the formats were checked against the reference supernode side by side.

use std::net::SocketAddr;

use n2n_crypto::Xorshift128Plus;
use n2n_crypto::pearson::pearson_hash_64;
use n2n_proto::msg::*;
use n2n_proto::*;
use n2n_supernode::community_list::CommunityList;
use n2n_supernode::machine::{DropReason, MachineConfig, Outbox, Supernode};
use n2n_supernode::mgmt::{self, Control};

const T0: u64 = 1_800_000_000_000_000;
const S: u64 = 1_000_000;
/// When the requests are asked.
const NOW: u64 = T0 + 10 * S;

fn mac(n: u8) -> Mac {
    Mac([2, 0, 0, 0, 0, n])
}

fn from(n: u8) -> SocketAddr {
    SocketAddr::from(([198, 18, 0, n], 40000 + u16::from(n)))
}

fn comm(name: &str) -> Community {
    Community::new(name).expect("valid")
}

fn reg_super(c: &str, m: Mac, ip: [u8; 4], desc: &str) -> Vec<u8> {
    Datagram::new(
        comm(c),
        Flags::EMPTY,
        Message::RegisterSuper(RegisterSuper {
            cookie: 7,
            edge_mac: m,
            sock: None,
            dev_addr: IpSubnet::new(ip.into(), 24),
            desc: Desc::from_text(desc),
            auth: Auth::new(auth_scheme::SIMPLE_ID, &[m.0[5]; 16]).expect("16 bytes"),
            key_time: 0,
        }),
    )
    .to_vec()
}

fn packet(c: &str, src: Mac, dst: Mac) -> Vec<u8> {
    let mut b = Datagram::new(
        comm(c),
        Flags::EMPTY,
        Message::Packet(PacketHeader {
            src_mac: src,
            dst_mac: dst,
            sock: None,
            compression: 1,
            transform: 1,
        }),
    )
    .to_vec();
    b.extend_from_slice(b"frame");
    b
}

fn feed(s: &mut Supernode, now: u64, who: u8, mut bytes: Vec<u8>) {
    let mut out = Outbox::default();
    s.handle_datagram(now, from(who), &mut bytes, &mut out);
}

/// A supernode with a listed community, a pattern, an anchor (`-l`) that never answered, two
/// edges in `net` (registered in reverse MAC order), one in `listed`, one broadcast and one
/// unicast forwarded.
fn state() -> (Supernode, Control) {
    let cfg = MachineConfig {
        communities: Some(CommunityList::parse("listed\nne.*\n")),
        ..MachineConfig::default()
    };
    let mut sn = Supernode::new(cfg, T0, Box::new(Xorshift128Plus::seeded(3)));
    sn.add_anchor(
        T0,
        SocketAddr::from(([198, 18, 0, 9], 7654)),
        &mut Outbox::default(),
    );
    feed(
        &mut sn,
        T0 + S,
        2,
        reg_super("net", mac(2), [10, 0, 0, 2], "two"),
    );
    feed(
        &mut sn,
        T0 + 2 * S,
        1,
        reg_super("net", mac(1), [10, 0, 0, 1], "one"),
    );
    feed(
        &mut sn,
        T0 + 3 * S,
        3,
        reg_super("listed", mac(3), [0, 0, 0, 0], "three"),
    );
    feed(
        &mut sn,
        T0 + 4 * S,
        1,
        packet("net", mac(1), Mac::BROADCAST),
    );
    feed(&mut sn, T0 + 5 * S, 2, packet("net", mac(2), mac(1)));
    let ctl = Control {
        password_hash: pearson_hash_64(b"n2n"),
        verbosity: 2,
        keep_running: true,
        list_path: None,
        out: Outbox::default(),
    };
    (sn, ctl)
}

fn ask(sn: &mut Supernode, ctl: &mut Control, request: &str) -> Vec<String> {
    mgmt::handle(sn, ctl, NOW, request.as_bytes())
}

/// Compares line by line, so that a failure names the datagram.
#[track_caller]
fn check(got: Vec<String>, want: &[&str]) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g, w, "datagram {i}");
    }
    assert_eq!(got.len(), want.len(), "datagrams: {got:#?}");
}

#[test]
fn help_lists_the_methods_in_the_reference_order() {
    let (mut sn, mut ctl) = state();
    let want = [
        r#"{"_tag":"1","_type":"begin","cmd":"help"}"#,
        r#"{"_tag":"1","_type":"row","cmd":"supernodes","help":"Reserved for edge"}"#,
        r#"{"_tag":"1","_type":"row","cmd":"stop","help":"Gracefully exit edge"}"#,
        r#"{"_tag":"1","_type":"row","cmd":"verbose","help":"Manage verbosity level"}"#,
        r#"{"_tag":"1","_type":"row","cmd":"reload_communities","help":"Reloads communities and user's public keys"}"#,
        r#"{"_tag":"1","_type":"row","cmd":"communities","help":"List current communities"}"#,
        r#"{"_tag":"1","_type":"row","cmd":"edges","help":"List current edges/peers"}"#,
        r#"{"_tag":"1","_type":"row","cmd":"timestamps","help":"Event timestamps"}"#,
        r#"{"_tag":"1","_type":"row","cmd":"packetstats","help":"Traffic statistics"}"#,
        r#"{"_tag":"1","_type":"row","cmd":"help","help":"Show JSON commands"}"#,
        // n2n-rs's one addition, after n2n's own.
        r#"{"_tag":"1","_type":"row","cmd":"drops","help":"Dropped datagrams by reason"}"#,
        r#"{"_tag":"1","_type":"end","cmd":"help"}"#,
    ]
    .map(|l| format!("{l}\n"));
    let want: Vec<&str> = want.iter().map(String::as_str).collect();
    check(ask(&mut sn, &mut ctl, "r 1 help"), &want);
    // `help` may be written, and asked with a password as a subscription.
    let written = ask(&mut sn, &mut ctl, "w 1:1:n2n help");
    check(written, &want);
    check(ask(&mut sn, &mut ctl, "s 1:1:n2n help"), &want);
}

/// The `drops` rows with a count, as (reason, count); `rows` is how many rows came.
fn counted_drops(sn: &mut Supernode, ctl: &mut Control) -> (Vec<(String, u64)>, usize) {
    let rows: Vec<serde_json::Value> = ask(sn, ctl, "r 4 drops")
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v["_type"] == "row")
        .collect();
    let counted = rows
        .iter()
        .filter(|v| v["stage"] == "machine" && v["count"].as_u64() != Some(0))
        .map(|v| {
            (
                v["reason"].as_str().unwrap_or("?").to_string(),
                v["count"].as_u64().unwrap_or(u64::MAX),
            )
        })
        .collect();
    (counted, rows.len())
}

#[test]
fn drops_lists_every_reason_with_its_count() {
    let (mut sn, mut ctl) = state();
    let (counted, rows) = counted_drops(&mut sn, &mut ctl);
    assert_eq!(rows, DropReason::ALL.len());
    assert_eq!(counted, []);
    // Three bytes; a community the list does not allow, twice.
    feed(&mut sn, NOW, 4, vec![3, 2, 0]);
    for who in [4, 5] {
        feed(
            &mut sn,
            NOW,
            who,
            reg_super("other", mac(who), [0, 0, 0, 0], "x"),
        );
    }
    let (counted, _) = counted_drops(&mut sn, &mut ctl);
    assert_eq!(
        counted,
        [
            ("too_short".to_string(), 1),
            ("community_not_allowed".to_string(), 2)
        ]
    );
    check(
        ask(&mut sn, &mut ctl, "w 5:1:n2n drops"),
        &["{\"_tag\":\"5\",\"_type\":\"error\",\"error\":\"readonly\"}\n"],
    );
}

#[test]
fn read_methods_pin_the_reference_rows() {
    let (mut sn, mut ctl) = state();
    check(
        ask(&mut sn, &mut ctl, "r 2 communities"),
        &[
            "{\"_tag\":\"2\",\"_type\":\"begin\",\"cmd\":\"communities\"}\n",
            "{\"_tag\":\"2\",\"_type\":\"row\",\"community\":\"-/-\",\"purgeable\":0,\"is_federation\":1,\"ip4addr\":\"\"}\n",
            "{\"_tag\":\"2\",\"_type\":\"row\",\"community\":\"listed\",\"purgeable\":0,\"is_federation\":0,\"ip4addr\":\"10.218.86.0/24\"}\n",
            "{\"_tag\":\"2\",\"_type\":\"row\",\"community\":\"net\",\"purgeable\":1,\"is_federation\":0,\"ip4addr\":\"10.220.17.0/24\"}\n",
            "{\"_tag\":\"2\",\"_type\":\"end\",\"cmd\":\"communities\"}\n",
        ],
    );
    check(
        ask(&mut sn, &mut ctl, "r 3 edges"),
        &[
            "{\"_tag\":\"3\",\"_type\":\"begin\",\"cmd\":\"edges\"}\n",
            "{\"_tag\":\"3\",\"_type\":\"row\",\"community\":\"-/-\",\"ip4addr\":\"\",\"purgeable\":0,\"macaddr\":\"\",\"sockaddr\":\"198.18.0.9:7654\",\"proto\":\"UDP\",\"desc\":\"\",\"last_seen\":0}\n",
            "{\"_tag\":\"3\",\"_type\":\"row\",\"community\":\"listed\",\"ip4addr\":\"\",\"purgeable\":1,\"macaddr\":\"02:00:00:00:00:03\",\"sockaddr\":\"198.18.0.3:40003\",\"proto\":\"UDP\",\"desc\":\"three\",\"last_seen\":1800000003}\n",
            "{\"_tag\":\"3\",\"_type\":\"row\",\"community\":\"net\",\"ip4addr\":\"10.0.0.1/24\",\"purgeable\":1,\"macaddr\":\"02:00:00:00:00:01\",\"sockaddr\":\"198.18.0.1:40001\",\"proto\":\"UDP\",\"desc\":\"one\",\"last_seen\":1800000002}\n",
            "{\"_tag\":\"3\",\"_type\":\"row\",\"community\":\"net\",\"ip4addr\":\"10.0.0.2/24\",\"purgeable\":1,\"macaddr\":\"02:00:00:00:00:02\",\"sockaddr\":\"198.18.0.2:40002\",\"proto\":\"UDP\",\"desc\":\"two\",\"last_seen\":1800000001}\n",
            "{\"_tag\":\"3\",\"_type\":\"end\",\"cmd\":\"edges\"}\n",
        ],
    );
    check(
        ask(&mut sn, &mut ctl, "r 4 timestamps"),
        &[
            "{\"_tag\":\"4\",\"_type\":\"begin\",\"cmd\":\"timestamps\"}\n",
            "{\"_tag\":\"4\",\"_type\":\"row\",\"start_time\":1800000000,\"last_fwd\":1800000005,\"last_reg_super\":1800000003}\n",
            "{\"_tag\":\"4\",\"_type\":\"end\",\"cmd\":\"timestamps\"}\n",
        ],
    );
    check(
        ask(&mut sn, &mut ctl, "r 5 packetstats"),
        &[
            "{\"_tag\":\"5\",\"_type\":\"begin\",\"cmd\":\"packetstats\"}\n",
            "{\"_tag\":\"5\",\"_type\":\"row\",\"type\":\"forward\",\"tx_pkt\":1}\n",
            "{\"_tag\":\"5\",\"_type\":\"row\",\"type\":\"broadcast\",\"tx_pkt\":1}\n",
            "{\"_tag\":\"5\",\"_type\":\"row\",\"type\":\"reg_super\",\"rx_pkt\":3,\"nak\":0}\n",
            "{\"_tag\":\"5\",\"_type\":\"row\",\"type\":\"errors\",\"tx_pkt\":0}\n",
            "{\"_tag\":\"5\",\"_type\":\"end\",\"cmd\":\"packetstats\"}\n",
        ],
    );
    // Reserved for the edge: the error comes between begin and end.
    check(
        ask(&mut sn, &mut ctl, "r 6 supernodes"),
        &[
            "{\"_tag\":\"6\",\"_type\":\"begin\",\"cmd\":\"supernodes\"}\n",
            "{\"_tag\":\"6\",\"_type\":\"error\",\"error\":\"unimplemented\"}\n",
            "{\"_tag\":\"6\",\"_type\":\"end\",\"cmd\":\"supernodes\"}\n",
        ],
    );
    check(
        ask(&mut sn, &mut ctl, "r 7 stop"),
        &[
            "{\"_tag\":\"7\",\"_type\":\"begin\",\"cmd\":\"stop\"}\n",
            "{\"_tag\":\"7\",\"_type\":\"row\",\"keep_running\":1}\n",
            "{\"_tag\":\"7\",\"_type\":\"end\",\"cmd\":\"stop\"}\n",
        ],
    );
    check(
        ask(&mut sn, &mut ctl, "r 8 verbose"),
        &[
            "{\"_tag\":\"8\",\"_type\":\"begin\",\"cmd\":\"verbose\"}\n",
            "{\"_tag\":\"8\",\"_type\":\"row\",\"traceLevel\":2}\n",
            "{\"_tag\":\"8\",\"_type\":\"end\",\"cmd\":\"verbose\"}\n",
        ],
    );
    assert!(ctl.keep_running);
}

fn verbose(sn: &mut Supernode, ctl: &mut Control, request: &str, level: u8) {
    check(
        ask(sn, ctl, request),
        &[
            "{\"_tag\":\"2\",\"_type\":\"begin\",\"cmd\":\"verbose\"}\n",
            &format!("{{\"_tag\":\"2\",\"_type\":\"row\",\"traceLevel\":{level}}}\n"),
            "{\"_tag\":\"2\",\"_type\":\"end\",\"cmd\":\"verbose\"}\n",
        ],
    );
    assert_eq!(ctl.verbosity, level, "{request}");
}

#[test]
fn write_methods_as_the_reference() {
    let (mut sn, mut ctl) = state();
    // strtoul(arg, NULL, 0): octal, hex, leading blanks, no digits at all (0); no argument
    // leaves the level alone.
    verbose(&mut sn, &mut ctl, "w 2:1:n2n verbose 3", 3);
    verbose(&mut sn, &mut ctl, "w 2:1:n2n verbose 010", 8);
    verbose(&mut sn, &mut ctl, "w 2:1:n2n verbose 0x2", 2);
    verbose(&mut sn, &mut ctl, "w 2:1:n2n verbose  1", 1);
    verbose(&mut sn, &mut ctl, "w 2:1:n2n verbose", 1);
    verbose(&mut sn, &mut ctl, "w 2:1:n2n verbose abc", 0);
    verbose(&mut sn, &mut ctl, "w 2:1:n2n verbose 2", 2);

    // reload_communities: read → writeonly; no -c → nofile; then the loader's result.
    let between = |tag: &str, what: &str| {
        vec![
            format!("{{\"_tag\":\"{tag}\",\"_type\":\"begin\",\"cmd\":\"reload_communities\"}}\n"),
            what.to_string(),
            format!("{{\"_tag\":\"{tag}\",\"_type\":\"end\",\"cmd\":\"reload_communities\"}}\n"),
        ]
    };
    let as_strs = |v: &[String]| v.iter().map(String::as_str).collect::<Vec<_>>().join("");
    let got = ask(&mut sn, &mut ctl, "r 3 reload_communities");
    assert_eq!(
        got.concat(),
        as_strs(&between(
            "3",
            "{\"_tag\":\"3\",\"_type\":\"error\",\"error\":\"writeonly\"}\n"
        ))
    );
    let got = ask(&mut sn, &mut ctl, "w 4:1:n2n reload_communities");
    assert_eq!(
        got.concat(),
        as_strs(&between(
            "4",
            "{\"_tag\":\"4\",\"_type\":\"error\",\"error\":\"nofile\"}\n"
        ))
    );
    let dir = std::env::temp_dir().join(format!("n2n-mgmt-parity-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let list = dir.join("community.list");
    ctl.list_path = Some(list.to_string_lossy().into_owned());
    for (contents, ok, text) in [
        (Some("listed\nother\n"), "0", "OK.\n"),
        (
            Some("# nothing\n"),
            "4294967294",
            "Error while re-loading community file (not found or no valid content)\n",
        ),
        (
            None,
            "4294967295",
            "Error while re-loading community file (not found or no valid content)\n",
        ),
    ] {
        match contents {
            Some(c) => std::fs::write(&list, c).expect("write list"),
            None => {
                let _ = std::fs::remove_file(&list);
            }
        }
        let got = ask(&mut sn, &mut ctl, "w 5:1:n2n reload_communities");
        assert_eq!(
            got.concat(),
            as_strs(&between(
                "5",
                &format!("{{\"_tag\":\"5\",\"_type\":\"row\",\"ok\":{ok}}}\n")
            ))
        );
        check(ask(&mut sn, &mut ctl, "reload_communities"), &[text]);
    }
    let _ = std::fs::remove_dir_all(&dir);
    ctl.list_path = None;
    check(
        ask(&mut sn, &mut ctl, "reload_communities"),
        &["No community file provided (-c command line option)\n"],
    );

    check(
        ask(&mut sn, &mut ctl, "w 6:1:n2n stop"),
        &[
            "{\"_tag\":\"6\",\"_type\":\"begin\",\"cmd\":\"stop\"}\n",
            "{\"_tag\":\"6\",\"_type\":\"row\",\"keep_running\":0}\n",
            "{\"_tag\":\"6\",\"_type\":\"end\",\"cmd\":\"stop\"}\n",
        ],
    );
    assert!(!ctl.keep_running);
}

fn error(tag: &str, e: &str) -> String {
    format!("{{\"_tag\":\"{tag}\",\"_type\":\"error\",\"error\":\"{e}\"}}\n")
}

#[test]
fn errors_as_the_reference() {
    let (mut sn, mut ctl) = state();
    for (request, tag, e) in [
        // Found before the tag is read: tag -1.
        ("x 1 edges", "-1", "badtype"),
        (": 1 edges", "-1", "badtype"),
        ("r 1", "-1", "nocmd"),
        ("r ", "-1", "nooptions"),
        ("  ", "-1", "notype"),
        // Without a password only reads; a wrong one is refused even for a read.
        ("w 4 stop", "4", "badauth"),
        ("w 6:1:bad verbose", "6", "badauth"),
        ("r 7:1:bad edges", "7", "badauth"),
        ("s 8 edges", "8", "badauth"),
        // "1::1:n2n": strtok skips the empty field, the flags are "1" and the password
        // "n2n"; "1:0:n2n" has no password.
        ("w 9:0:n2n stop", "9", "badauth"),
        ("r 3 nosuch", "3", "unknowncmd"),
        ("s 3:1:n2n nosuch", "3", "unknowncmd"),
        ("w 5:1:n2n edges", "5", "readonly"),
        // Tags are cut to 9 bytes.
        ("r 0123456789abc nosuch", "012345678", "unknowncmd"),
    ] {
        check(ask(&mut sn, &mut ctl, request), &[&error(tag, e)]);
    }
    // Requests are cut at 79 bytes: 2 + 73 + 5 = 80, "help" loses its "p".
    let long = format!("r {} help", "1".repeat(73));
    check(
        ask(&mut sn, &mut ctl, &long),
        &[&error("111111111", "unknowncmd")],
    );
    // 2 + 66 + 11 = 79 bytes: all of it is read.
    let fits = format!("r {} timestamps", "1".repeat(66));
    assert_eq!(ask(&mut sn, &mut ctl, &fits).len(), 3);
    // Leading blanks and a leading colon are skipped as strtok does.
    assert_eq!(
        ask(&mut sn, &mut ctl, "  r 1 timestamps")[0],
        "{\"_tag\":\"1\",\"_type\":\"begin\",\"cmd\":\"timestamps\"}\n"
    );
    assert_eq!(
        ask(&mut sn, &mut ctl, "w 1::1:n2n stop")[1],
        "{\"_tag\":\"1\",\"_type\":\"row\",\"keep_running\":0}\n"
    );
}

#[test]
fn text_commands_as_the_reference() {
    let (mut sn, mut ctl) = state();
    let help = "Help for supernode management console:\n\thelp                 | This help message\n\treload_communities   | Reloads communities and user's public keys\n\t<enter>              | Display status and statistics\n";
    for request in ["help", "?", "helpme", "help\n"] {
        check(ask(&mut sn, &mut ctl, request), &[help]);
    }
    let table = [
        " ### | TAP                 | MAC               | EDGE                      | HINT            | LAST SEEN\n========================================================================================================\nFEDERATION '-/-'\n",
        "   1 | -l                  |                   | 198.18.0.9:7654           |                 |          \n",
        "--------------------------------------------------------------------------------------------------------\nFIXED NAME COMMUNITY 'listed'\n",
        "   1 |                     | 02:00:00:00:00:03 | 198.18.0.3:40003          | three           |         7\n",
        "--------------------------------------------------------------------------------------------------------\nCOMMUNITY 'net'\n",
        "   1 | 10.0.0.1/24         | 02:00:00:00:00:01 | 198.18.0.1:40001          | one             |         8\n",
        "   2 | 10.0.0.2/24         | 02:00:00:00:00:02 | 198.18.0.2:40002          | two             |         9\n",
        "========================================================================================================\nuptime 10 | edges 4 | reg_sup 3 | reg_nak 0 | errors 0 \nfwd 1 | broadcast 1 | cur_cmnts 3\nlast_fwd  5 sec ago | last reg  7 sec ago\n\n",
    ];
    for request in ["\n", "", "x", "stop", "+verb"] {
        check(ask(&mut sn, &mut ctl, request), &table);
    }
    // Nothing forwarded or registered yet: "now - 0" seconds ago, as n2n prints it.
    let mut fresh = Supernode::new(
        MachineConfig::default(),
        T0,
        Box::new(Xorshift128Plus::seeded(3)),
    );
    check(
        ask(&mut fresh, &mut ctl, "\n"),
        &[
            " ### | TAP                 | MAC               | EDGE                      | HINT            | LAST SEEN\n========================================================================================================\nFEDERATION '-/-'\n",
            "========================================================================================================\nuptime 10 | edges 0 | reg_sup 0 | reg_nak 0 | errors 0 \nfwd 0 | broadcast 0 | cur_cmnts 1\nlast_fwd  1800000010 sec ago | last reg  1800000010 sec ago\n\n",
        ],
    );
}
