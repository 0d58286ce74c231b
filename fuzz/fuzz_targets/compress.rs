//! LZO1X and ZSTD decompression of hostile payloads (first byte: compression id) into the
//! 2 KiB frame buffer; and any frame compresses and decompresses back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use n2n_crypto::compress::{Codec, MAX_DECOMPRESSED, lzo_bound};
use n2n_proto::msg::compression;

fuzz_target!(|data: &[u8]| {
    let [id, payload @ ..] = data else {
        return;
    };
    let mut codec = Codec::new(compression::ZSTD).expect("codec");
    let mut out = [0u8; MAX_DECOMPRESSED];
    if let Ok(n) = codec.decompress(*id % 4, payload, &mut out) {
        assert!(n <= MAX_DECOMPRESSED);
    }
    if payload.len() > MAX_DECOMPRESSED {
        return;
    }
    let mut packed = vec![0u8; lzo_bound(payload.len())];
    for id in [compression::LZO, compression::ZSTD] {
        if let Some(n) = codec.compress(id, payload, &mut packed) {
            let back = codec
                .decompress(id, &packed[..n], &mut out)
                .expect("our own output decompresses");
            assert_eq!(&out[..back], payload);
        }
    }
});
