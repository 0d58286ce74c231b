//! Replays the two-supernode federation capture (`federation.jsonl`, from the C reference)
//! into our supernode machine, once as `sn2` and once as `sn`: every datagram the file shows
//! arriving at that supernode is fed at its capture time, with timers driven as the runtime
//! drives them, and what we send must equal what the reference sent, per destination and in
//! order, after header decryption and masking of what is random or time-dependent.
//!
//! The supernode's own federation REGISTER_SUPERs are timer-driven (the C supernode only
//! runs its timers when its select loop wakes), so they are checked apart: their content
//! against the reference's, their timing against the C rules. The other side's ACK echoes
//! the reference's random cookie; it is replayed with our cookie instead, re-encrypted with
//! the federation key and a fresh stamp.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use n2n_crypto::header_enc::stamp_at;
use n2n_crypto::{HeaderKey, Xorshift128Plus};
use n2n_proto::header::looks_plain;
use n2n_proto::{Community, Datagram, Mac};
use n2n_supernode::machine::{MachineConfig, Outbox, Supernode, federation_community};
use serde_json::Value;

mod support;
use support::*;

const REGISTER_SUPER: u8 = 5;
const REGISTER_SUPER_ACK: u8 = 7;
const PEER_INFO: u8 = 10;
/// LAST_SEEN_SN_ACTIVE and RE_REG_AND_PURGE_FREQUENCY of the reference.
const ACTIVE_US: u64 = 20_000_000;
const RE_REG_US: u64 = 10_000_000;

fn sock_of(v: &Value) -> SocketAddr {
    format!("{}:{}", v["ip"].as_str().expect("ip"), v["port"])
        .parse()
        .expect("socket address")
}

/// One datagram a supernode sent, as its receiver sees it after header decryption.
struct Sent {
    t_us: u64,
    dst: SocketAddr,
    plain: Vec<u8>,
    /// The file line it was captured on (reference only).
    line: Option<usize>,
}

fn is_fed(p: &[u8], fed: &Community) -> bool {
    p[4..24] == fed.0
}

fn msg_type(p: &[u8]) -> u8 {
    p[3] & 0x1f
}

/// A supernode's own registration with a federation member.
fn is_own_registration(p: &[u8], fed: &Community) -> bool {
    is_fed(p, fed) && msg_type(p) == REGISTER_SUPER && p.len() == 79
}

/// Blanks what differs legitimately between two supernodes: PEER_INFO's load, uptime and
/// version; in a federation REGISTER_SUPER the random cookie, the random simple-ID token and
/// the key time (start time); in a federation ACK the key time.
fn normalise(p: &[u8], fed: &Community) -> String {
    let mut p = p.to_vec();
    let n = p.len();
    match msg_type(&p) {
        PEER_INFO if n >= 74 => p[n - 28..].fill(0),
        REGISTER_SUPER if is_own_registration(&p, fed) => {
            p[24..28].fill(0);
            p[59..75].fill(0);
            p[75..].fill(0);
        }
        REGISTER_SUPER_ACK if is_fed(&p, fed) => p[n - 4..].fill(0),
        _ => {}
    }
    hex::encode(p)
}

fn decoded(p: &[u8]) -> String {
    match Datagram::decode(p) {
        Ok((d, rest)) => format!("{d:?} + {} payload bytes", rest.len()),
        Err(e) => format!("undecodable: {e:?}"),
    }
}

fn key_time(p: &[u8]) -> u32 {
    u32::from_be_bytes(p[p.len() - 4..].try_into().expect("4 bytes"))
}

/// What our machine sent (decrypted) and what the reference sent, playing `role`.
struct Replay {
    t0: u64,
    ours: Vec<Sent>,
    theirs: Vec<Sent>,
    /// Per own registration: when the member was last heard from before it.
    silent_since: Vec<u64>,
    fed: Community,
    mac: Mac,
    /// The first federation registration in the file (whoever sent it).
    template: Option<Vec<u8>>,
}

fn replay(role: &str) -> Replay {
    let (config, lines) = load("federation.jsonl");
    let (me, other) = match role {
        "sn" => (&config["supernode"], &config["supernode2"]),
        _ => (&config["supernode2"], &config["supernode"]),
    };
    let other_name = if role == "sn" { "sn2" } else { "sn" };
    let fed_name = config["supernode2"]["federation"]
        .as_str()
        .expect("federation");
    let fed = federation_community(fed_name.strip_prefix('*').expect("'*' + name"));
    let list = community_list(me);
    let mac: Mac = me["mac"].as_str().expect("mac").parse().expect("mac");
    let cfg = MachineConfig {
        mac,
        federation: fed,
        listen: Some(sock_of(me)),
        communities: Some(list),
        ..MachineConfig::default()
    };
    let t0 = micros(&lines[0]);
    let mut sn = Supernode::new(cfg, t0, Box::new(Xorshift128Plus::seeded(1)));
    let key = HeaderKey::for_community(&fed);
    let mut r = Replay {
        t0,
        ours: Vec::new(),
        theirs: Vec::new(),
        silent_since: Vec::new(),
        fed,
        mac,
        template: None,
    };
    let mut out = Outbox::default();
    let mut cookie = None;
    // Started with -l naming the other supernode.
    let other_sock = sock_of(other);
    assert!(sn.add_anchor(t0, other_sock, &mut out));
    collect(&sn, &out, t0, &key, &mut r, &mut cookie);
    for (i, line) in lines.iter().enumerate() {
        let (src, dst) = (
            line["src"].as_str().expect("src"),
            line["dst"].as_str().expect("dst"),
        );
        let plain = line
            .get("hdr_plain_hex")
            .and_then(Value::as_str)
            .unwrap_or_else(|| line["hex"].as_str().expect("hex"));
        let mut plain = hex::decode(plain).expect("hex");
        let now = micros(line);
        if r.template.is_none() && is_own_registration(&plain, &fed) {
            r.template = Some(plain.clone());
        }
        if node(src) == role {
            r.theirs.push(Sent {
                t_us: now,
                dst: addr(dst),
                plain,
                line: Some(i + 2),
            });
            continue;
        }
        if node(dst) != role {
            continue;
        }
        // Timers fire as the runtime fires them: whenever poll_timeout comes due.
        while sn.poll_timeout() <= now {
            let at = sn.poll_timeout();
            sn.handle_timeout(at, &mut out);
            collect(&sn, &out, at, &key, &mut r, &mut cookie);
        }
        let mut data = hex::decode(line["hex"].as_str().expect("hex")).expect("hex");
        if node(src) == other_name && is_fed(&plain, &fed) && msg_type(&plain) == REGISTER_SUPER_ACK
        {
            // It answers the reference's registration: make it answer ours.
            let c: u32 = cookie.expect("an ACK before we registered");
            plain[24..28].copy_from_slice(&c.to_be_bytes());
            let n = plain.len();
            key.encrypt(&mut plain, n, stamp_at(now), 0x5eed_f00d);
            data = plain;
        }
        sn.handle_datagram(now, addr(src), &mut data, &mut out);
        collect(&sn, &out, now, &key, &mut r, &mut cookie);
    }
    r
}

/// Decrypts what the machine sent (federation datagrams must open with the federation key,
/// everything else is plain), checks the key time it announces, remembers our cookie.
fn collect(
    sn: &Supernode,
    out: &Outbox,
    t_us: u64,
    key: &HeaderKey,
    r: &mut Replay,
    cookie: &mut Option<u32>,
) {
    for t in out.transmits() {
        let mut p = t.data.clone();
        if !looks_plain(&p) {
            assert!(
                key.decrypt(&mut p, &r.fed).is_some(),
                "our datagram is neither plain nor federation-encrypted: {}",
                hex::encode(&t.data)
            );
        }
        let fed_msg = is_fed(&p, &r.fed);
        assert_eq!(fed_msg, !looks_plain(&t.data), "federation <=> encrypted");
        if fed_msg && matches!(msg_type(&p), REGISTER_SUPER | REGISTER_SUPER_ACK) {
            assert_eq!(key_time(&p), sn.federation().key_time, "our key time");
        }
        if is_own_registration(&p, &r.fed) {
            *cookie = Some(u32::from_be_bytes(p[24..28].try_into().expect("4")));
            let m = &sn.federation().members[0];
            r.silent_since.push(m.last_seen_us);
        }
        for &dst in &t.dests {
            r.ours.push(Sent {
                t_us,
                dst,
                plain: p.clone(),
                line: None,
            });
        }
    }
}

fn secs(us: u64) -> String {
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}

/// Compares everything but the own registrations, per destination and in order; returns
/// one message per destination that differs.
fn differences(r: &Replay) -> Vec<String> {
    fn group<'a>(v: &'a [Sent], fed: &Community) -> BTreeMap<SocketAddr, Vec<&'a Sent>> {
        let mut m: BTreeMap<SocketAddr, Vec<&Sent>> = BTreeMap::new();
        for s in v.iter().filter(|s| !is_own_registration(&s.plain, fed)) {
            m.entry(s.dst).or_default().push(s);
        }
        m
    }
    let (ours, theirs) = (group(&r.ours, &r.fed), group(&r.theirs, &r.fed));
    for (dst, v) in &theirs {
        println!("  to {dst}: {} datagrams expected", v.len());
    }
    let mut diffs = Vec::new();
    let dests: std::collections::BTreeSet<_> = ours.keys().chain(theirs.keys()).collect();
    for dst in dests {
        let (o, t) = (
            ours.get(dst).map_or(&[][..], |v| v),
            theirs.get(dst).map_or(&[][..], |v| v),
        );
        for k in 0..o.len().max(t.len()) {
            let (a, b) = (o.get(k), t.get(k));
            if a.map(|s| normalise(&s.plain, &r.fed)) == b.map(|s| normalise(&s.plain, &r.fed)) {
                continue;
            }
            let show = |s: Option<&&Sent>| match s {
                Some(s) => format!(
                    "at {} {}\n      {}",
                    secs(s.t_us),
                    hex::encode(&s.plain),
                    decoded(&s.plain)
                ),
                None => "nothing".into(),
            };
            diffs.push(format!(
                "to {dst}, datagram #{k} (line {:?}; {} of ours, {} expected):\n  expected {}\n  got      {}",
                b.and_then(|s| s.line),
                o.len(),
                t.len(),
                show(b),
                show(a)
            ));
            break;
        }
    }
    diffs
}

/// The own registrations: same content as the reference's (the MAC aside), the first one
/// when the anchor is added, later ones only to a member silent for over 20 s, and none
/// later than the reference's (each of those has one of ours at most 10 s before it).
fn check_registrations(r: &Replay) {
    let own = |v: &[Sent]| -> Vec<(u64, Vec<u8>)> {
        v.iter()
            .filter(|s| is_own_registration(&s.plain, &r.fed))
            .map(|s| (s.t_us, s.plain.clone()))
            .collect()
    };
    let (ours, theirs) = (own(&r.ours), own(&r.theirs));
    println!(
        "  own federation REGISTER_SUPERs: ours at {:?}, reference at {:?}",
        ours.iter().map(|o| secs(o.0)).collect::<Vec<_>>(),
        theirs.iter().map(|o| secs(o.0)).collect::<Vec<_>>()
    );
    let mut want = r
        .template
        .clone()
        .expect("a federation registration in the file");
    want[28..34].copy_from_slice(&r.mac.0);
    let want = normalise(&want, &r.fed);
    for (t, p) in ours.iter().chain(&theirs) {
        assert_eq!(normalise(p, &r.fed), want, "registration at {}", secs(*t));
    }
    assert_eq!(ours.first().map(|o| o.0), Some(r.t0), "anchor registration");
    for ((t, _), seen) in ours.iter().zip(&r.silent_since).skip(1) {
        assert!(
            t - seen > ACTIVE_US,
            "re-registered at {} though heard from at {}",
            secs(*t),
            secs(*seen)
        );
    }
    for (t, _) in &theirs {
        assert!(
            ours.iter().any(|(o, _)| *o <= *t && t - o <= RE_REG_US),
            "the reference registered at {}, we did not within 10 s before",
            secs(*t)
        );
    }
}

fn check(role: &str) {
    let r = replay(role);
    println!(
        "{role}: {} datagrams sent by us, {} by the reference",
        r.ours.len(),
        r.theirs.len()
    );
    let relayed = r
        .theirs
        .iter()
        .filter(|s| !is_fed(&s.plain, &r.fed))
        .count();
    assert!(relayed >= 30, "{role}: only {relayed} datagrams to compare");
    check_registrations(&r);
    let diffs = differences(&r);
    assert!(
        diffs.is_empty(),
        "{role} differs from the reference:\n{}",
        diffs.join("\n")
    );
}

#[test]
fn plays_sn2_like_the_reference() {
    check("sn2");
}

#[test]
fn plays_sn_like_the_reference() {
    check("sn");
}
