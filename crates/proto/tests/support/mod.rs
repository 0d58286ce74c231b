// Shared by the test crates of proto, crypto and edge; each uses a part of it.
#![allow(dead_code)]

//! Shared by the property tests: the captured datagrams and the case count.

use std::path::PathBuf;
use std::sync::OnceLock;

use proptest::prelude::*;

/// Cases per property: 100 000 unless `N2N_FUZZ_CASES` says otherwise.
pub fn cases() -> u32 {
    std::env::var("N2N_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

/// Every datagram of ../shared/vectors, as sent (header-encrypted ones too) and, where the
/// file gives it, with the header decrypted.
pub fn captured() -> Vec<Vec<u8>> {
    let dir = std::env::var("N2N_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors")
        });
    let mut out = Vec::new();
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("vector folder {} is missing: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|x| x != "jsonl") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable");
        for line in text.lines().skip(1) {
            let v: serde_json::Value = serde_json::from_str(line).expect("JSON");
            for field in ["hex", "hdr_plain_hex"] {
                if let Some(h) = v.get(field).and_then(|x| x.as_str()) {
                    out.push(hex::decode(h).expect("hex"));
                }
            }
        }
    }
    assert!(
        out.len() > 1500,
        "too few captured datagrams in {}",
        dir.display()
    );
    out
}

/// The captured datagrams, loaded once.
pub fn captured_cached() -> &'static [Vec<u8>] {
    static C: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    C.get_or_init(captured)
}

/// A captured datagram, sometimes truncated, with up to three bits flipped.
pub fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let n = captured_cached().len();
    (
        0..n,
        any::<prop::sample::Index>(),
        proptest::collection::vec(any::<(prop::sample::Index, u8)>(), 0..4),
    )
        .prop_map(|(i, cut, flips)| {
            let mut d = captured_cached()[i].clone();
            let len = if cut.index(4) == 0 {
                cut.index(d.len() + 1)
            } else {
                d.len()
            };
            d.truncate(len);
            for (at, bit) in flips {
                if !d.is_empty() {
                    let k = at.index(d.len());
                    d[k] ^= 1 << (bit % 8);
                }
            }
            d
        })
}
