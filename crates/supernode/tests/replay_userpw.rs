//! Replays the user/password capture (`userpw.jsonl`, from the C reference) into our supernode
//! machine playing `sn`: every datagram the file shows arriving at `sn` is fed at its capture
//! time (timers run when due), and everything we send must equal what the reference sent, per
//! destination and in order: the header decrypted with the key the message must use (static
//! `Ks` for REGISTER_SUPER_ACK/NAK, dynamic `H128(D)` for the rest), the same header length
//! `hl`, and the same plaintext once the 16-byte trailer and PEER_INFO's load/uptime/version
//! are masked. Our trailers are verified apart: an ACK's is `SpeckEnc_SS(H128(datagram))`.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use n2n_crypto::header_enc::stamp_in_frame;
use n2n_crypto::keys::{
    dynamic_key, key_from_text, key_to_text, private_key_from_text, public_key, shared_secret,
};
use n2n_crypto::pearson::pearson_hash_128;
use n2n_crypto::speck::Speck128;
use n2n_crypto::{HeaderKey, Xorshift128Plus};
use n2n_proto::{Community, Datagram, Mac, Message};
use n2n_supernode::machine::{DropReason, MachineConfig, Outbox, Supernode, federation_community};
use serde_json::Value;

mod support;
use support::*;

const PACKET: u8 = 3;
const REGISTER_SUPER_ACK: u8 = 7;
const REGISTER_SUPER_NAK: u8 = 8;
const PEER_INFO: u8 = 10;
const TRAILER: usize = 16;

fn unhex<const N: usize>(v: &Value) -> [u8; N] {
    hex::decode(v.as_str().expect("hex string"))
        .expect("hex")
        .try_into()
        .expect("length")
}

fn msg_type(p: &[u8]) -> u8 {
    p[3] & 0x1f
}

/// ACKs and NAKs travel under the static key with a trailer; everything else dynamic, none.
fn is_registration_answer(p: &[u8]) -> bool {
    matches!(msg_type(p), REGISTER_SUPER_ACK | REGISTER_SUPER_NAK)
}

/// A datagram the supernode sent, as its receiver sees it: the header decrypted (bytes 0–3
/// restored, community written back, the trailer kept), and the `hl` it announced.
#[derive(Clone)]
struct Sent {
    plain: Vec<u8>,
    hl: usize,
    /// The file line it was captured on (reference) or whose datagram caused it (ours).
    line: usize,
}

struct Keys {
    community: Community,
    fixed: HeaderKey,
    dynamic: HeaderKey,
}

impl Keys {
    /// Decrypts one of our datagrams with the key its type requires: plaintext, hl, stamp.
    fn open(&self, raw: &[u8]) -> (Vec<u8>, usize, u64) {
        let mut p = raw.to_vec();
        if let Some(hl) = self.dynamic.probe(&p)
            && let Some(stamp) = self.dynamic.decrypt(&mut p, &self.community)
        {
            assert!(
                !is_registration_answer(&p),
                "ACK/NAK under the dynamic key: {}",
                hex::encode(&p)
            );
            return (p, hl, stamp);
        }
        let body = raw
            .len()
            .checked_sub(TRAILER)
            .expect("longer than a trailer");
        let hl = self.fixed.probe(&p[..body]);
        let stamp = self.fixed.decrypt(&mut p[..body], &self.community);
        let (Some(hl), Some(stamp)) = (hl, stamp) else {
            panic!("our datagram opens with neither key: {}", hex::encode(raw));
        };
        assert!(
            is_registration_answer(&p),
            "only ACK/NAK may use the static key: {}",
            hex::encode(&p)
        );
        (p, hl, stamp)
    }
}

/// What may differ from the reference: a trailer, and PEER_INFO's load, uptime and version
/// (uninitialised in the C supernode's peer answers, ours in a PONG).
fn normalise(s: &Sent) -> String {
    let mut p = s.plain.clone();
    let n = p.len();
    match msg_type(&p) {
        REGISTER_SUPER_ACK | REGISTER_SUPER_NAK if n > TRAILER => p[n - TRAILER..].fill(0),
        PEER_INFO if n >= 74 => p[n - 28..].fill(0),
        _ => {}
    }
    format!("hl={} {}", s.hl, hex::encode(p))
}

fn decoded(p: &[u8]) -> String {
    let body = if is_registration_answer(p) {
        p.len().saturating_sub(TRAILER)
    } else {
        p.len()
    };
    match Datagram::decode(&p[..body]) {
        Ok((d, rest)) => format!("{d:?} + {} more bytes", p.len() - body + rest.len()),
        Err(e) => format!("undecodable: {e:?}"),
    }
}

/// `SpeckEnc_{SS[0..16]}(H128(datagram without its trailer))` (spec §4.7).
fn trailer_of(secret: &[u8; 32], raw: &[u8]) -> [u8; 16] {
    let mut k = [0u8; 16];
    k.copy_from_slice(&secret[..16]);
    let mut h = pearson_hash_128(&raw[..raw.len() - TRAILER]);
    Speck128::new_128(&k).encrypt_block(&mut h);
    h
}

type PerDest = BTreeMap<SocketAddr, Vec<Sent>>;

#[test]
fn plays_the_userpw_supernode_like_the_reference() {
    let (config, lines) = load("userpw.jsonl");
    let up = &config["user_password"];
    let derived = &config["derived"];

    // The keys, derived as the reference does and checked against the file's `derived`.
    let community = Community::new(config["community"].as_str().expect("community")).expect("ok");
    let fed_name = up["federation"].as_str().expect("federation");
    let fed = federation_community(fed_name.strip_prefix('*').expect("'*' + name"));
    let key_time =
        u32::try_from(up["supernode_key_time"].as_u64().expect("key time")).expect("u32");
    let (ks, d) = (
        pearson_hash_128(&community.0),
        dynamic_key(&community.0, &fed.0, key_time),
    );
    let kd = pearson_hash_128(&d);
    for (name, key) in [
        ("header_key_static", ks),
        ("header_iv_key_static", pearson_hash_128(&ks)),
        ("dynamic_key", d),
        ("header_key_dynamic", kd),
        ("header_iv_key_dynamic", pearson_hash_128(&kd)),
    ] {
        assert_eq!(key, unhex(&derived[name]), "derived {name}");
    }
    let keys = Keys {
        community,
        fixed: HeaderKey::for_community(&community),
        dynamic: HeaderKey::for_dynamic_key(&d),
    };

    // Each edge's socket, user and shared secret (checked against the federation key).
    let fed_private = private_key_from_text(&fed_name[1..]);
    assert_eq!(
        key_to_text(&public_key(&fed_private)),
        up["federation_public_key"]
            .as_str()
            .expect("federation public key")
    );
    let mut users: BTreeMap<SocketAddr, (String, [u8; 32])> = BTreeMap::new();
    for (edge, u) in up["users"].as_object().expect("users") {
        let mut srcs = lines.iter().filter_map(|l| l["src"].as_str());
        let sock = addr(
            srcs.find(|s| s.starts_with(&format!("{edge} ")))
                .expect("sends"),
        );
        let public = key_from_text(u["public_key"].as_str().expect("key")).expect("key text");
        let secret: [u8; 32] = unhex(&u["shared_secret"]);
        assert_eq!(
            shared_secret(&fed_private, &public),
            secret,
            "{edge}'s secret"
        );
        users.insert(sock, (u["user"].as_str().expect("user").into(), secret));
    }
    let user_at = |s: &SocketAddr| users.get(s).map_or("?", |u| u.0.as_str());

    let list = community_list(&config["supernode"]);
    let cfg = MachineConfig {
        mac: config["supernode"]["mac"]
            .as_str()
            .expect("mac")
            .parse::<Mac>()
            .expect("mac"),
        federation: fed,
        communities: Some(list),
        ..MachineConfig::default()
    };
    // Started in the key-time second, so our dynamic key is the reference's.
    let t0 = u64::from(key_time) * 1_000_000;
    assert!(t0 <= micros(&lines[0]), "key time after the first datagram");
    let mut sn = Supernode::new(cfg, t0, Box::new(Xorshift128Plus::seeded(1)));

    let (mut ours, mut theirs) = (PerDest::new(), PerDest::new());
    let mut out = Outbox::default();
    let (mut fed_count, mut undecryptable) = (0, 0);
    // Everything we send: decrypted with the right key, stamp in frame, trailer verified.
    let collect = |out: &Outbox, now: u64, line: usize, ours: &mut PerDest| {
        for t in out.transmits() {
            let (plain, hl, stamp) = keys.open(&t.data);
            assert!(stamp_in_frame(stamp, now), "line {line}: our stamp");
            let s = Sent { plain, hl, line };
            let n = t.data.len();
            match msg_type(&s.plain) {
                REGISTER_SUPER_ACK => {
                    let [dst] = t.dests[..] else {
                        panic!("line {line}: ACK to {:?}", t.dests)
                    };
                    let secret = users.get(&dst).expect("ACK to a user's edge").1;
                    assert_eq!(s.hl, n - TRAILER, "line {line}: ACK hl");
                    assert_eq!(
                        t.data[n - TRAILER..],
                        trailer_of(&secret, &t.data),
                        "line {line}: our ACK trailer to {}",
                        user_at(&dst)
                    );
                }
                REGISTER_SUPER_NAK => assert_eq!((n, s.hl), (38 + TRAILER, 38), "line {line}"),
                PACKET => {
                    let (d, _) = Datagram::decode(&s.plain).expect("our PACKET decodes");
                    let Message::Packet(h) = d.msg else {
                        unreachable!()
                    };
                    let hl = (h.datagram_header_len() + 16).min(n);
                    assert_eq!(s.hl, hl, "line {line}: PACKET hl = header + 16");
                }
                _ => assert_eq!(s.hl, n, "line {line}: whole datagram encrypted"),
            }
            for &dst in &t.dests {
                ours.entry(dst).or_default().push(s.clone());
            }
        }
    };

    for (i, line) in lines.iter().enumerate() {
        let no = i + 2;
        let (src, dst) = (
            line["src"].as_str().expect("src"),
            line["dst"].as_str().expect("dst"),
        );
        if src.starts_with("sn ") {
            let raw = hex::decode(line["hex"].as_str().expect("hex")).expect("hex");
            let plain = hex::decode(line["hdr_plain_hex"].as_str().expect("plain")).expect("hex");
            if msg_type(&plain) == REGISTER_SUPER_ACK {
                // The verifier agrees with the reference's trailers.
                let secret = users[&addr(dst)].1;
                assert_eq!(
                    raw[raw.len() - TRAILER..],
                    trailer_of(&secret, &raw),
                    "{no}"
                );
            }
            let hl = line["hdr_len"].as_u64().expect("hdr_len") as usize;
            theirs.entry(addr(dst)).or_default().push(Sent {
                plain,
                hl,
                line: no,
            });
            continue;
        }
        if !dst.starts_with("sn ") {
            continue;
        }
        let now = micros(line);
        while sn.poll_timeout() <= now {
            let at = sn.poll_timeout();
            sn.handle_timeout(at, &mut out);
            collect(&out, at, no, &mut ours);
        }
        let mut data = hex::decode(line["hex"].as_str().expect("hex")).expect("hex");
        let before = sn.stats().dropped_for(DropReason::Undecryptable);
        sn.handle_datagram(now, addr(src), &mut data, &mut out);
        fed_count += 1;
        if line["undecryptable"].as_bool() == Some(true) {
            undecryptable += 1;
            assert!(
                out.is_empty(),
                "line {no}: answered an undecryptable datagram"
            );
            assert_eq!(
                sn.stats().dropped_for(DropReason::Undecryptable),
                before + 1,
                "line {no}"
            );
        }
        collect(&out, now, no, &mut ours);
    }
    println!(
        "fed {fed_count} datagrams; drops: {:?}; edges left: {}",
        sn.stats(),
        sn.edge_count()
    );
    assert!(
        fed_count > 30,
        "only {fed_count} datagrams to the supernode"
    );
    assert_eq!(undecryptable, 1, "mallory's undecryptable UNREGISTER_SUPER");
    // Nothing else was dropped, and alice's and bob's UNREGISTER_SUPERs took them out.
    assert_eq!(sn.stats().dropped(), 1, "datagrams dropped");
    assert_eq!(sn.edge_count(), 0, "edges left after the UNREGISTER_SUPERs");

    // Who got which answer: ACKs for alice and bob, only NAKs for mallory.
    for (dst, v) in &ours {
        let count = |ty| v.iter().filter(|s| msg_type(&s.plain) == ty).count();
        let (acks, naks) = (count(REGISTER_SUPER_ACK), count(REGISTER_SUPER_NAK));
        println!(
            "to {dst} ({}): {} datagrams, {acks} ACKs, {naks} NAKs",
            user_at(dst),
            v.len()
        );
        match user_at(dst) {
            "alice" | "bob" => assert!(acks >= 1 && naks == 0, "{dst}"),
            "mallory" => assert!(acks == 0 && naks >= 1 && naks == v.len(), "{dst}"),
            u => panic!("we sent to {dst} ({u})"),
        }
    }

    // Per destination and in order, as the reference.
    let mut diffs = Vec::new();
    let dests: std::collections::BTreeSet<_> = ours.keys().chain(theirs.keys()).collect();
    for dst in dests {
        let none = Vec::new();
        let (o, t) = (
            ours.get(dst).unwrap_or(&none),
            theirs.get(dst).unwrap_or(&none),
        );
        for k in 0..o.len().max(t.len()) {
            let (a, b) = (o.get(k), t.get(k));
            if a.map(normalise) == b.map(normalise) {
                continue;
            }
            let show = |s: Option<&Sent>| match s {
                Some(s) => format!(
                    "line {} hl {}\n      {}\n      {}",
                    s.line,
                    s.hl,
                    hex::encode(&s.plain),
                    decoded(&s.plain)
                ),
                None => "nothing".into(),
            };
            diffs.push(format!(
                "to {dst} ({}) #{k} ({} ours, {} expected):\n  expected {}\n  got      {}",
                user_at(dst),
                o.len(),
                t.len(),
                show(b),
                show(a)
            ));
            if o.len() != t.len() {
                break;
            }
        }
    }
    assert!(
        diffs.is_empty(),
        "differs from the reference:\n{}",
        diffs.join("\n")
    );
}
