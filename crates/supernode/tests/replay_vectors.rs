//! Replays every datagram the reference edges sent to the reference supernode (all single-
//! supernode vector files, plain and `-H`, at their capture times) into our supernode
//! machine, and checks that it answers and relays exactly what the reference did.

use std::collections::BTreeMap;

use n2n_crypto::{HeaderKey, Xorshift128Plus};
use n2n_proto::{Community, Mac};
use n2n_supernode::machine::{MachineConfig, Outbox, Supernode};
use serde_json::Value;

mod support;
use support::*;

/// A datagram as the receiver sees it after header decryption; PEER_INFO's load, uptime and
/// version (which differ between any two supernodes) are blanked.
fn normalise(mut plain: Vec<u8>) -> String {
    if plain.len() >= 74 && plain[3] & 0x1f == 10 {
        let n = plain.len();
        plain[n - 28..].fill(0);
    }
    hex::encode(plain)
}

/// Datagrams per destination address, in order.
type PerDest = BTreeMap<String, Vec<String>>;

fn replay(file: &str) -> (usize, PerDest, PerDest) {
    let (config, lines) = load(file);
    let community =
        Community::new(config["community"].as_str().expect("community")).expect("valid");
    let list = community_list(&config["supernode"]);
    let cfg = MachineConfig {
        mac: config["supernode"]["mac"]
            .as_str()
            .expect("mac")
            .parse::<Mac>()
            .expect("mac"),
        communities: Some(list),
        ..MachineConfig::default()
    };
    let t0 = micros(&lines[0]);
    let mut sn = Supernode::new(cfg, t0, Box::new(Xorshift128Plus::seeded(1)));
    let key = HeaderKey::for_community(&community);
    let mut ours: PerDest = BTreeMap::new();
    let mut theirs: PerDest = BTreeMap::new();
    let mut out = Outbox::default();
    let mut fed = 0;
    for line in &lines {
        let src = line["src"].as_str().expect("src");
        let dst = line["dst"].as_str().expect("dst");
        if src.starts_with("sn ") {
            let plain = line
                .get("hdr_plain_hex")
                .and_then(Value::as_str)
                .unwrap_or_else(|| line["hex"].as_str().expect("hex"));
            theirs
                .entry(dst.split_whitespace().nth(1).expect("addr").to_string())
                .or_default()
                .push(normalise(hex::decode(plain).expect("hex")));
            continue;
        }
        if !dst.starts_with("sn ") {
            continue;
        }
        let now = micros(line);
        sn.handle_timeout(now, &mut out);
        let mut data = hex::decode(line["hex"].as_str().expect("hex")).expect("hex");
        sn.handle_datagram(now, addr(src), &mut data, &mut out);
        fed += 1;
        for t in out.transmits() {
            for d in &t.dests {
                let mut bytes = t.data.clone();
                if config["header_encryption"].as_bool() == Some(true) {
                    assert!(
                        key.decrypt(&mut bytes, &community).is_some(),
                        "{file}: our header does not open"
                    );
                }
                ours.entry(d.to_string())
                    .or_default()
                    .push(normalise(bytes));
            }
        }
    }
    (fed, ours, theirs)
}

#[test]
fn answers_and_relays_like_the_reference() {
    let files = [
        "null",
        "null-hdrenc",
        "twofish",
        "twofish-hdrenc",
        "aes128",
        "aes128-hdrenc",
        "aes192",
        "aes256",
        "aes256-hdrenc",
        "chacha20",
        "chacha20-hdrenc",
        "speck",
        "speck-hdrenc",
        "aes128-lzo",
        "aes128-zstd",
        "autoip",
    ];
    for f in files {
        let (fed, ours, theirs) = replay(&format!("{f}.jsonl"));
        assert!(fed > 20, "{f}: only {fed} datagrams to the supernode");
        assert_eq!(
            ours.keys().collect::<Vec<_>>(),
            theirs.keys().collect::<Vec<_>>(),
            "{f}: destinations"
        );
        for (dst, want) in &theirs {
            assert_eq!(&ours[dst], want, "{f}: datagrams to {dst}");
        }
    }
}
