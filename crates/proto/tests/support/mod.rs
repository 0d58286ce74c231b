//! Shared by the property tests: the captured datagrams and the case count.

use std::path::PathBuf;

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
