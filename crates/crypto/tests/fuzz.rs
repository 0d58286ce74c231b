//! Hostile input never panics: header decryption, every transform's decryption and both
//! decompressors, on arbitrary bytes and on truncated, bit-flipped captured datagrams.

#[path = "../../proto/tests/support/mod.rs"]
mod support;

use n2n_crypto::compress::{Codec, lzo_decompress};
use n2n_crypto::keys::key_from_text;
use n2n_crypto::transform::{AeadSuite, AeadTransform, RootKey, id};
use n2n_crypto::{HeaderKey, OsRandom, PacketContext, Transform};
use n2n_proto::{Community, Mac};
use proptest::prelude::*;

fn community() -> Community {
    Community::new("n2nvectors").expect("valid")
}

fn ctx(c: &Community, transform: u8) -> PacketContext<'_> {
    PacketContext {
        community: c,
        src_mac: Mac([2, 0, 0, 0, 0, 1]),
        dst_mac: Mac([2, 0, 0, 0, 0, 2]),
        compression: 1,
        transform,
    }
}

fn transforms() -> Vec<Transform> {
    let c = community();
    let root = RootKey::derive_with_cost(b"k", &c, 64, 1).expect("kdf");
    let mut all: Vec<Transform> = [id::NULL, id::TWOFISH, id::AES, id::CHACHA20, id::SPECK]
        .into_iter()
        .map(|i| Transform::legacy(i, Some(b"fuzz-key")).expect("legacy"))
        .collect();
    all.push(Transform::Aead(Box::new(AeadTransform::new(
        root,
        Mac([2, 0, 0, 0, 0, 9]),
        1,
        &mut OsRandom,
    ))));
    let gcm = RootKey::derive_suite_with_cost(AeadSuite::Aes256Gcm, b"k", &c, 64, 1).expect("kdf");
    all.push(Transform::Aead(Box::new(AeadTransform::new(
        gcm,
        Mac([2, 0, 0, 0, 0, 9]),
        1,
        &mut OsRandom,
    ))));
    all
}

/// Decrypts arbitrary bytes with transform `which` (0 null … 5 `-A6`, 6 `-A7`) of a
/// per-thread set.
fn open_any(which: usize, bytes: &[u8]) {
    thread_local!(static T: std::cell::RefCell<Vec<Transform>> = std::cell::RefCell::new(transforms()));
    let c = community();
    T.with(|t| {
        let t = &mut t.borrow_mut()[which];
        let mut b = bytes.to_vec();
        let id = t.id();
        if let Ok(r) = t.decrypt(&mut b, &ctx(&c, id)) {
            assert!(r.end <= b.len());
            // Only the unauthenticated legacy transforms accept random input.
            assert!(
                id != id::AEAD && id != id::AEAD_GCM,
                "AEAD accepted random bytes"
            );
        }
    });
}

fn headers(bytes: &[u8]) {
    let c = community();
    for key in [
        HeaderKey::for_community(&c),
        HeaderKey::for_community(&Community::new("*Federation").expect("ok")),
    ] {
        let mut b = bytes.to_vec();
        let _ = key.probe(&b);
        let _ = key.open(&mut b, &c, 1_795_543_491_000_000);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(support::cases()))]

    #[test]
    fn header_decryption_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        headers(&bytes);
    }

    #[test]
    fn header_decryption_of_mutated_captures_never_panics(bytes in support::mutated()) {
        headers(&bytes);
    }

    #[test]
    fn null_decrypt_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1600)) {
        open_any(0, &bytes);
    }

    #[test]
    fn twofish_decrypt_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1600)) {
        open_any(1, &bytes);
    }

    #[test]
    fn aes_decrypt_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1600)) {
        open_any(2, &bytes);
    }

    #[test]
    fn chacha20_decrypt_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1600)) {
        open_any(3, &bytes);
    }

    #[test]
    fn speck_decrypt_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1600)) {
        open_any(4, &bytes);
    }

    #[test]
    fn aead_open_never_panics_and_never_accepts_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..1600)) {
        open_any(5, &bytes);
    }

    #[test]
    fn aes_gcm_open_never_panics_and_never_accepts_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..1600)) {
        open_any(6, &bytes);
    }

    #[test]
    fn lzo_decompress_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1600)) {
        let mut out = [0u8; 2048];
        if let Ok(n) = lzo_decompress(&bytes, &mut out) {
            assert!(n <= 2048);
        }
        let mut small = [0u8; 100];
        if let Ok(n) = lzo_decompress(&bytes, &mut small) {
            assert!(n <= 100);
        }
    }

    #[test]
    fn zstd_and_other_ids_never_panic(z in 0u8..5, bytes in proptest::collection::vec(any::<u8>(), 0..1600)) {
        thread_local!(static C: std::cell::RefCell<Codec> = std::cell::RefCell::new(Codec::new(3).expect("codec")));
        let mut out = [0u8; 2048];
        // Mostly ZSTD (id 3); the other ids check the dispatch.
        let id = if z < 3 { 3 } else { z - 3 };
        C.with(|c| {
            if let Ok(n) = c.borrow_mut().decompress(id, &bytes, &mut out) {
                assert!(n <= 2048);
            }
        });
    }

    #[test]
    fn key_text_never_panics(s in "\\PC{0,50}") {
        let _ = key_from_text(&s);
    }
}
