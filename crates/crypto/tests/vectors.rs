//! The reference's captured datagrams (../shared/vectors, read at run time): every datagram
//! decodes, re-encodes to the same bytes, every header-encrypted one opens at its capture time
//! and not 60 s later, and every PACKET decrypts and decompresses to the frame it carried.

use std::path::PathBuf;

use n2n_crypto::compress::Codec;
use n2n_crypto::header_enc::HeaderError;
use n2n_crypto::keys::dynamic_key;
use n2n_crypto::pearson::pearson_hash_128;
use n2n_crypto::{HeaderKey, PacketContext, Transform};
use n2n_proto::{Community, Datagram, Message, MsgType};
use serde_json::Value;

fn vectors_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("N2N_VECTORS") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors")
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("hex in vector file")
}

struct File {
    name: String,
    config: Value,
    lines: Vec<Value>,
}

fn load_all() -> Vec<File> {
    let dir = vectors_dir();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("vector folder {} is missing: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 18,
        "expected the 18 vector files in {}",
        dir.display()
    );
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("readable vector file");
            let mut lines = text
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).expect("JSON line"));
            let config = lines.next().expect("config line")["config"].clone();
            File {
                name: config["name"].as_str().expect("name").to_string(),
                config,
                lines: lines.collect(),
            }
        })
        .collect()
}

fn msg_name(t: MsgType) -> &'static str {
    match t {
        MsgType::Register => "REGISTER",
        MsgType::Packet => "PACKET",
        MsgType::RegisterAck => "REGISTER_ACK",
        MsgType::RegisterSuper => "REGISTER_SUPER",
        MsgType::UnregisterSuper => "UNREGISTER_SUPER",
        MsgType::RegisterSuperAck => "REGISTER_SUPER_ACK",
        MsgType::RegisterSuperNak => "REGISTER_SUPER_NAK",
        MsgType::PeerInfo => "PEER_INFO",
        MsgType::QueryPeer => "QUERY_PEER",
        MsgType::ReRegisterSuper => "RE_REGISTER_SUPER",
        _ => "other",
    }
}

/// The header keys a receiver of this file would try, each with its community.
fn header_keys(f: &File) -> Vec<(&'static str, HeaderKey, Community)> {
    let comm = Community::new(f.config["community"].as_str().expect("community")).expect("valid");
    let mut keys = vec![("static", HeaderKey::for_community(&comm), comm)];
    if let Some(up) = f.config.get("user_password").filter(|v| !v.is_null()) {
        let fed = Community::new(up["federation"].as_str().expect("federation")).expect("valid");
        let key_time = up["supernode_key_time"].as_u64().expect("key time") as u32;
        let d = dynamic_key(&comm.0, &fed.0, key_time);
        assert_eq!(
            hex::encode(d),
            f.config["derived"]["dynamic_key"]
                .as_str()
                .expect("derived")
        );
        assert_eq!(
            hex::encode(pearson_hash_128(&d)),
            f.config["derived"]["header_key_dynamic"]
                .as_str()
                .expect("derived")
        );
        keys.push(("dynamic", HeaderKey::for_dynamic_key(&d), comm));
    }
    // edge4 (null* files) registers in a community the supernode does not list.
    let outsider = Community::new("vecnotlisted").expect("valid");
    keys.push(("static", HeaderKey::for_community(&outsider), outsider));
    // Federation traffic always uses the federation's static key.
    let fed = Community::new("*Federation").expect("valid");
    keys.push(("federation", HeaderKey::for_community(&fed), fed));
    keys
}

fn micros(t: f64) -> u64 {
    (t * 1e6).round() as u64
}

#[test]
fn every_datagram_decodes_and_reencodes() {
    let mut datagrams = 0;
    for f in load_all() {
        let userpw = f.name == "userpw";
        let keys = header_keys(&f);
        for line in &f.lines {
            let wire = unhex(line["hex"].as_str().expect("hex"));
            let t = micros(line["t"].as_f64().expect("t"));
            let mut plain = wire.clone();
            if let Some(expected_plain) = line.get("hdr_plain_hex").and_then(Value::as_str) {
                let mut opened = None;
                for (name, key, comm) in &keys {
                    // A static-key attempt in user/password mode excludes the 16-byte trailer.
                    let end = if userpw && *name == "static" {
                        wire.len() - 16
                    } else {
                        wire.len()
                    };
                    let mut attempt = wire.clone();
                    if let Ok(stamp) = key.open(&mut attempt[..end], comm, t) {
                        let mut late = wire.clone();
                        assert_eq!(
                            key.open(&mut late[..end], comm, t + 60_000_000),
                            Err(HeaderError::StampOutOfFrame),
                            "{}: accepted 60 s late",
                            f.name
                        );
                        assert_eq!(
                            Some(key.probe(&wire[..end]).expect("hl")),
                            line["hdr_len"].as_u64().map(|v| v as usize)
                        );
                        opened = Some((*name, stamp, attempt));
                        break;
                    }
                }
                let (name, stamp, attempt) =
                    opened.unwrap_or_else(|| panic!("{}: no key opens {line}", f.name));
                assert_eq!(
                    format!("{stamp:016x}"),
                    line["stamp"].as_str().expect("stamp"),
                    "{}",
                    f.name
                );
                let want_key = line["hdr_key"].as_str().expect("hdr_key");
                assert!(
                    name == want_key || name == "federation",
                    "{}: opened with {name}, file says {want_key}",
                    f.name
                );
                assert_eq!(hex::encode(&attempt), expected_plain, "{}", f.name);
                plain = attempt;
            } else if line.get("undecryptable").and_then(Value::as_bool) == Some(true) {
                for (name, key, comm) in &keys {
                    let mut attempt = wire.clone();
                    assert!(
                        key.decrypt(&mut attempt, comm).is_none(),
                        "{}: {name} opened the undecryptable",
                        f.name
                    );
                }
                continue;
            }
            let (d, rest) =
                Datagram::decode(&plain).unwrap_or_else(|e| panic!("{}: {e}: {line}", f.name));
            assert_eq!(
                msg_name(d.msg.msg_type()),
                line["msg"].as_str().expect("msg"),
                "{}",
                f.name
            );
            let mut again = d.to_vec();
            again.extend_from_slice(rest);
            assert_eq!(
                hex::encode(&again),
                hex::encode(&plain),
                "{}: re-encoding differs",
                f.name
            );
            datagrams += 1;
        }
    }
    assert!(datagrams > 1500, "only {datagrams} datagrams checked");
}

#[test]
fn every_packet_decrypts_to_its_frame() {
    let mut packets = 0;
    let mut per_cipher = std::collections::BTreeMap::new();
    for f in load_all() {
        let userpw = f.name == "userpw";
        let cipher = f.config["cipher"]["id"].as_u64().expect("cipher id") as u8;
        let key = f.config["key"].as_str().map(str::as_bytes);
        let mut transform = Transform::legacy(cipher, key).expect("legacy transform");
        let mut codec = Codec::new(1).expect("codec");
        for line in f.lines.iter().filter(|l| l["msg"] == "PACKET") {
            let mut bytes = unhex(line["hex"].as_str().expect("hex"));
            if line.get("hdr_plain_hex").is_some() {
                bytes = unhex(line["hdr_plain_hex"].as_str().expect("plain"));
                // The plain header must also be what our decryption produced (other test).
                assert!(!userpw || bytes.len() > 38);
            }
            let (d, payload) = Datagram::decode(&bytes).expect("PACKET decodes");
            let Message::Packet(p) = d.msg else {
                panic!("not a PACKET")
            };
            assert_eq!(p.transform, cipher, "{}", f.name);
            let mut payload = payload.to_vec();
            let ctx = PacketContext {
                community: &d.community,
                src_mac: p.src_mac,
                dst_mac: p.dst_mac,
                compression: p.compression,
                transform: p.transform,
            };
            let range = transform.decrypt(&mut payload, &ctx).expect("decrypts");
            let decrypted = &payload[range];
            if let Some(c) = line.get("compressed_hex").and_then(Value::as_str) {
                assert_eq!(hex::encode(decrypted), c, "{}", f.name);
            }
            let mut frame = [0u8; 2048];
            let n = codec
                .decompress(p.compression, decrypted, &mut frame)
                .expect("decompresses");
            assert_eq!(
                hex::encode(&frame[..n]),
                line["frame_hex"].as_str().expect("frame"),
                "{}",
                f.name
            );
            packets += 1;
            *per_cipher.entry((cipher, p.compression)).or_insert(0) += 1;
        }
    }
    // Every cipher 1..5, and LZO and ZSTD frames, were exercised.
    for c in 1..=5u8 {
        assert!(
            per_cipher.keys().any(|(id, _)| *id == c),
            "no PACKET with transform {c}"
        );
    }
    assert!(per_cipher.keys().any(|(_, z)| *z == 2), "no LZO PACKET");
    assert!(per_cipher.keys().any(|(_, z)| *z == 3), "no ZSTD PACKET");
    assert!(packets > 300, "only {packets} PACKETs");
}
