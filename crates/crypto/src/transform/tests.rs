//! Transform tests: the spec's vectors (§5.8), round trips, and the AEAD's guarantees.

use super::*;

use crate::random::{OsRandom, Xorshift128Plus};

fn hex(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).expect("hex")
}

fn community() -> Community {
    Community::new("abc123def456").expect("valid")
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

fn seal(t: &mut Transform, plain: &[u8], rng: &mut dyn RandomSource) -> Vec<u8> {
    let c = community();
    let mut buf = vec![0u8; PREFIX + plain.len() + SUFFIX];
    buf[PREFIX..PREFIX + plain.len()].copy_from_slice(plain);
    let id = t.id();
    let range = t
        .encrypt(&mut buf, plain.len(), &ctx(&c, id), rng)
        .expect("encrypts");
    buf[range].to_vec()
}

fn open(t: &mut Transform, wire: &[u8]) -> Result<Vec<u8>, TransformError> {
    let c = community();
    let mut buf = wire.to_vec();
    let id = t.id();
    let range = t.decrypt(&mut buf, &ctx(&c, id))?;
    Ok(buf[range].to_vec())
}

#[test]
fn spec_vectors_5_8() {
    let key = b"SoMEVer!S$cUREPassWORD";
    let plain: Vec<u8> = (0..512).map(|i| (i % 16) as u8).collect();
    let mut rng = Xorshift128Plus::n2n_default();
    let expect = [
        (
            id::TWOFISH,
            "69 54 ba b7 b9 00 7e 1f 4e 43 6b 6e c0 b7 5a bb",
        ),
        (id::AES, "2d 8c 8e f3 c4 7e 94 3a 30 84 4a dc 2d 80 1f 12"),
        (
            id::CHACHA20,
            "f2 73 c1 14 6c df 4e 12 d6 7b 2f 27 56 8d ed 74 32 7a 66 53 0c 74 ad 3f e7 c8",
        ),
        (
            id::SPECK,
            "69 c2 17 4a ab 55 f3 8d 44 17 2c 31 09 b5 b0 2f 0c 87 f2 05",
        ),
    ];
    for (tid, prefix) in expect {
        let mut t = Transform::legacy(tid, Some(key)).expect("transform");
        let out = seal(&mut t, &plain, &mut rng);
        let want = hex(prefix);
        assert_eq!(&out[..want.len()], &want[..], "transform {tid}");
        assert_eq!(out.len(), 16 + 512);
        assert_eq!(
            open(&mut t, &out).expect("decrypts"),
            plain,
            "transform {tid}"
        );
    }
}

#[test]
fn legacy_round_trips_at_every_length() {
    let mut rng = Xorshift128Plus::seeded(9);
    for tid in [id::NULL, id::TWOFISH, id::AES, id::CHACHA20, id::SPECK] {
        for key in [
            &b"short"[..],
            b"AES192-test-key-24-chars",
            b"AES256-test-key-forty-characters-long!!!",
        ] {
            let mut t = Transform::legacy(tid, Some(key)).expect("transform");
            for len in [0usize, 1, 15, 16, 17, 31, 32, 33, 100, 1514] {
                let plain: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
                let out = seal(&mut t, &plain, &mut rng);
                assert_eq!(
                    open(&mut t, &out).expect("decrypts"),
                    plain,
                    "id {tid} len {len}"
                );
            }
        }
    }
}

#[test]
fn cts_rejects_short_input() {
    let mut t = Transform::legacy(id::AES, Some(b"k")).expect("aes");
    assert_eq!(open(&mut t, &[0u8; 15]), Err(TransformError::TooShort));
}

#[test]
fn chacha20_counter_wraps_to_zero() {
    let c = LegacyChaCha20::from_password(b"key");
    let mut iv = [0u8; 16];
    iv[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut across = [0u8; 128];
    c.apply(&iv, &mut across);
    let mut at_zero = [0u8; 64];
    iv[..4].fill(0);
    c.apply(&iv, &mut at_zero);
    assert_eq!(&across[64..], &at_zero[..]);
}

fn aead_pair() -> (Transform, Transform) {
    aead_pair_of(AeadSuite::ChaCha20Poly1305)
}

fn aead_pair_of(suite: AeadSuite) -> (Transform, Transform) {
    let c = community();
    let root = RootKey::derive_suite_with_cost(suite, b"secret", &c, 64, 1).expect("kdf");
    let sender = AeadTransform::new(
        root.clone(),
        Mac([2, 0, 0, 0, 0, 1]),
        1_700_000_000,
        &mut OsRandom,
    );
    let receiver = AeadTransform::new(root, Mac([2, 0, 0, 0, 0, 2]), 1_700_000_000, &mut OsRandom);
    (
        Transform::Aead(Box::new(sender)),
        Transform::Aead(Box::new(receiver)),
    )
}

#[test]
fn aead_round_trip_and_replay() {
    let (mut tx, mut rx) = aead_pair();
    let first = seal(&mut tx, b"hello overlay", &mut OsRandom);
    assert_eq!(first.len(), 13 + 32);
    let second = seal(&mut tx, b"second", &mut OsRandom);
    assert_eq!(open(&mut rx, &second).expect("opens"), b"second");
    assert_eq!(
        open(&mut rx, &first).expect("reordered packet opens"),
        b"hello overlay"
    );
    assert_eq!(open(&mut rx, &first), Err(TransformError::Replay));
    assert_eq!(open(&mut rx, &second), Err(TransformError::Replay));
}

/// `-A7`: the same session and replay design with AES-256-GCM; every bit of what it seals is
/// protected, and the two suites never open each other's packets.
#[test]
fn aes_gcm_round_trip_replay_tampering_and_suite_separation() {
    let (mut tx, mut rx) = aead_pair_of(AeadSuite::Aes256Gcm);
    assert_eq!((tx.id(), tx.name()), (id::AEAD_GCM, "AES-256-GCM"));
    let wire = seal(&mut tx, b"through AES-GCM", &mut OsRandom);
    assert_eq!(wire.len(), 15 + 32);
    for bit in 0..wire.len() * 8 {
        let mut w = wire.clone();
        w[bit / 8] ^= 1 << (bit % 8);
        assert!(open(&mut rx, &w).is_err(), "flip of bit {bit} accepted");
    }
    assert_eq!(open(&mut rx, &wire).expect("opens"), b"through AES-GCM");
    assert_eq!(open(&mut rx, &wire), Err(TransformError::Replay));
    // Same -k, other suite: other keys (and another id in the AAD).
    let (_, mut chacha_rx) = aead_pair_of(AeadSuite::ChaCha20Poly1305);
    let fresh = seal(&mut tx, b"x", &mut OsRandom);
    let c = community();
    let mut w = fresh.clone();
    assert!(chacha_rx.decrypt(&mut w, &ctx(&c, id::AEAD_GCM)).is_err());
}

#[test]
fn aead_rejects_too_old_packets() {
    let (mut tx, mut rx) = aead_pair();
    let old = seal(&mut tx, b"old", &mut OsRandom);
    let mut last = Vec::new();
    for _ in 0..REPLAY_WINDOW {
        last = seal(&mut tx, b"x", &mut OsRandom);
    }
    assert!(open(&mut rx, &last).is_ok());
    assert_eq!(open(&mut rx, &old), Err(TransformError::Replay));
}

#[test]
fn aead_rejects_every_single_bit_flip() {
    let (mut tx, mut rx) = aead_pair();
    let c = community();
    let plain = b"integrity of every bit";
    let wire = seal(&mut tx, plain, &mut OsRandom);
    // Payload: session id, counter, ciphertext, tag.
    for bit in 0..wire.len() * 8 {
        let mut w = wire.clone();
        w[bit / 8] ^= 1 << (bit % 8);
        assert!(
            open(&mut rx, &w).is_err(),
            "flip of payload bit {bit} accepted"
        );
    }
    // Header fields in the AAD.
    let base = ctx(&c, id::AEAD);
    for bit in 0..34 * 8 {
        let mut aad = base.aad();
        aad[bit / 8] ^= 1 << (bit % 8);
        let mut comm = Community::default();
        comm.0.copy_from_slice(&aad[..20]);
        let flipped = PacketContext {
            community: &comm,
            src_mac: Mac(aad[20..26].try_into().expect("6")),
            dst_mac: Mac(aad[26..32].try_into().expect("6")),
            compression: aad[32],
            transform: aad[33],
        };
        let mut w = wire.clone();
        assert!(
            rx.decrypt(&mut w, &flipped).is_err(),
            "flip of AAD bit {bit} accepted"
        );
    }
    assert_eq!(
        open(&mut rx, &wire).expect("the original still opens"),
        plain
    );
}

#[test]
fn aead_rejects_truncation() {
    let (mut tx, mut rx) = aead_pair();
    let wire = seal(&mut tx, b"truncate me", &mut OsRandom);
    for len in 0..wire.len() {
        assert!(open(&mut rx, &wire[..len]).is_err(), "truncated to {len}");
    }
}

#[test]
fn aead_senders_never_share_a_nonce() {
    let c = community();
    let root = RootKey::derive_with_cost(b"secret", &c, 64, 1).expect("kdf");
    let mac = Mac([2, 0, 0, 0, 0, 1]);
    // Same key, same MAC, same start second (a restart): the sessions still differ.
    let mut seen = std::collections::HashSet::new();
    for _ in 0..64 {
        let t = AeadTransform::new(root.clone(), mac, 1_700_000_000, &mut OsRandom);
        let session = t.session();
        for _ in 0..4 {
            let mut buf = [0u8; 64];
            let mut nonces = t.reserve(1).expect("counter left");
            let n = t
                .seal(&mut nonces, &mut buf, 8, &ctx(&c, id::AEAD))
                .expect("seals");
            assert_eq!(n, 40);
            assert!(seen.insert(buf[..16].to_vec()), "nonce repeated");
            assert_eq!(u64::from_be_bytes(buf[..8].try_into().expect("8")), session);
        }
    }
}

/// A batch's counters reserved once and sealed on two threads: every packet opens, and no
/// counter is used twice, also across batches reserved while others are being sealed.
#[test]
fn aead_counters_reserved_for_two_threads_are_each_used_once() {
    let c = community();
    let root = RootKey::derive_with_cost(b"secret", &c, 64, 1).expect("kdf");
    let mac = Mac([2, 0, 0, 0, 0, 1]);
    let tx = Transform::Aead(Box::new(AeadTransform::new(
        root.clone(),
        mac,
        1_000,
        &mut OsRandom,
    )));
    let seal_all = |nonces: &mut Nonces, n: usize| -> Vec<Vec<u8>> {
        let mut rng = Xorshift128Plus::seeded(n as u64);
        (0..n)
            .map(|i| {
                let mut buf = vec![i as u8; 64];
                let r = tx
                    .encrypt_reserved(nonces, &mut buf, 8, &ctx(&c, id::AEAD), &mut rng)
                    .expect("reserved");
                buf[r].to_vec()
            })
            .collect()
    };
    let sealed: Vec<Vec<u8>> = std::thread::scope(|s| {
        let mut handles = Vec::new();
        for _ in 0..4 {
            handles.push(s.spawn(|| {
                let mut out = Vec::new();
                for _ in 0..50 {
                    let mut back = tx.reserve(10).expect("counters left");
                    let mut front = back.split_off_front(4);
                    // The two halves at once, as the send thread and its helper seal them.
                    let (a, b) = std::thread::scope(|t| {
                        let a = t.spawn(|| seal_all(&mut front, 4));
                        let b = seal_all(&mut back, 6);
                        (a.join().expect("front"), b)
                    });
                    assert_eq!(front.remaining(), 0, "all of the front used");
                    out.extend(a.into_iter().chain(b));
                }
                out
            }));
        }
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("sealer"))
            .collect()
    });
    let counters: std::collections::HashSet<[u8; 8]> = sealed
        .iter()
        .map(|w| w[8..16].try_into().expect("8"))
        .collect();
    assert_eq!(counters.len(), 4 * 50 * 10, "a counter was used twice");
    let mut rx = Transform::Aead(Box::new(AeadTransform::new(root, mac, 1, &mut OsRandom)));
    for wire in &sealed {
        assert!(
            open(&mut rx, wire).is_ok(),
            "a packet sealed on a thread opens"
        );
    }
    let mut spent = Nonces::default();
    let mut buf = [0u8; 64];
    let refused = tx.encrypt_reserved(&mut spent, &mut buf, 8, &ctx(&c, id::AEAD), &mut OsRandom);
    assert_eq!(
        refused,
        Err(TransformError::Exhausted),
        "no counter without a reservation"
    );
}

/// Reservations racing on four threads get disjoint counters.
#[test]
fn aead_reservations_racing_never_overlap() {
    let c = community();
    let root = RootKey::derive_with_cost(b"secret", &c, 64, 1).expect("kdf");
    let tx = AeadTransform::new(root, Mac([2, 0, 0, 0, 0, 1]), 1_000, &mut OsRandom);
    let start = std::sync::Barrier::new(4);
    let firsts: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    (0..20_000)
                        .map(|_| {
                            let mut n = tx.reserve(3).expect("counters left");
                            let first = n.split_off_front(1);
                            assert_eq!((first.remaining(), n.remaining()), (1, 2));
                            first.first()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("thread"))
            .collect()
    });
    let mut sorted = firsts.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), firsts.len(), "two reservations overlapped");
    assert!(
        sorted.windows(2).all(|w| w[1] - w[0] >= 3),
        "ranges of 3 overlap"
    );
}

#[test]
fn aead_refuses_older_sessions_of_a_sender() {
    let c = community();
    let root = RootKey::derive_with_cost(b"secret", &c, 64, 1).expect("kdf");
    let mac = Mac([2, 0, 0, 0, 0, 1]);
    let mut old = Transform::Aead(Box::new(AeadTransform::new(
        root.clone(),
        mac,
        1_000,
        &mut OsRandom,
    )));
    let mut new = Transform::Aead(Box::new(AeadTransform::new(
        root.clone(),
        mac,
        2_000,
        &mut OsRandom,
    )));
    let mut rx = Transform::Aead(Box::new(AeadTransform::new(
        root,
        Mac([2, 0, 0, 0, 0, 2]),
        0,
        &mut OsRandom,
    )));
    let recorded = seal(&mut old, b"before restart", &mut OsRandom);
    assert!(open(&mut rx, &seal(&mut new, b"after restart", &mut OsRandom)).is_ok());
    assert_eq!(open(&mut rx, &recorded), Err(TransformError::StaleSession));
}

/// A known sender that restarts: its new session replaces the old one, with a replay window
/// of its own; a forged datagram of a newer session changes nothing.
#[test]
fn aead_follows_a_sender_into_its_next_session() {
    let c = community();
    let root = RootKey::derive_with_cost(b"secret", &c, 64, 1).expect("kdf");
    let mac = Mac([2, 0, 0, 0, 0, 1]);
    let sender = |at| {
        Transform::Aead(Box::new(AeadTransform::new(
            root.clone(),
            mac,
            at,
            &mut OsRandom,
        )))
    };
    let (mut old, mut new) = (sender(1_000), sender(2_000));
    let mut rx = Transform::Aead(Box::new(AeadTransform::new(
        root.clone(),
        Mac([2, 0, 0, 0, 0, 2]),
        0,
        &mut OsRandom,
    )));
    let before = seal(&mut old, b"first session", &mut OsRandom);
    let pending = seal(&mut old, b"still the first session", &mut OsRandom);
    assert_eq!(open(&mut rx, &before).expect("opens"), b"first session");
    let mut forged = seal(&mut new, b"next session", &mut OsRandom);
    let last = forged.len() - 1;
    forged[last] ^= 1;
    assert_eq!(open(&mut rx, &forged), Err(TransformError::Forged));
    // The forgery did not move the sender on: the first session still opens.
    assert_eq!(
        open(&mut rx, &pending).expect("opens"),
        b"still the first session"
    );
    let after = seal(&mut new, b"next session", &mut OsRandom);
    assert_eq!(open(&mut rx, &after).expect("opens"), b"next session");
    assert_eq!(open(&mut rx, &after), Err(TransformError::Replay));
    assert_eq!(open(&mut rx, &before), Err(TransformError::StaleSession));
}

#[test]
fn aead_wrong_key_is_forged() {
    let (mut tx, _) = aead_pair();
    let c = community();
    let other = RootKey::derive_with_cost(b"other secret", &c, 64, 1).expect("kdf");
    let mut rx = Transform::Aead(Box::new(AeadTransform::new(
        other,
        Mac([2, 0, 0, 0, 0, 2]),
        0,
        &mut OsRandom,
    )));
    let wire = seal(&mut tx, b"x", &mut OsRandom);
    assert_eq!(open(&mut rx, &wire), Err(TransformError::Forged));
}

#[test]
fn chacha20_portable_block_matches_the_crate() {
    let c = LegacyChaCha20::from_password(b"key");
    let mut iv = [7u8; 16];
    iv[..4].copy_from_slice(&(u32::MAX - 40).to_le_bytes());
    // 40 blocks stay on the crate's path, 41 cross into the portable one: same keystream.
    let mut a = [0u8; 64 * 40];
    c.apply(&iv, &mut a);
    let mut b = [0u8; 64 * 41];
    c.apply(&iv, &mut b);
    assert_eq!(&a[..], &b[..64 * 40]);
}
