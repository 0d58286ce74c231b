//! Every transform's open on hostile payloads (first byte: transform id), and for the
//! authenticated ones: a sealed payload opens to its plaintext, and any change to it
//! (second byte ≠ 0: which byte to flip, or a cut) is refused.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use n2n_crypto::transform::{AeadSuite, AeadTransform, PREFIX, RootKey, SUFFIX, id};
use n2n_crypto::{PacketContext, Transform, Xorshift128Plus};
use n2n_fuzz::{KEY, community};
use n2n_proto::Mac;

const A: Mac = Mac([2, 0, 0, 0, 0, 1]);
const B: Mac = Mac([2, 0, 0, 0, 0, 2]);
const NOW_SECS: u64 = 1_795_544_064;

fn root(suite: AeadSuite) -> RootKey {
    static KEYS: OnceLock<[RootKey; 2]> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        let c = community();
        let cheap = |s| RootKey::derive_suite_with_cost(s, KEY, &c, 8, 1).expect("key");
        [
            cheap(AeadSuite::ChaCha20Poly1305),
            cheap(AeadSuite::Aes256Gcm),
        ]
    });
    keys[usize::from(suite == AeadSuite::Aes256Gcm)].clone()
}

fn transform(tid: u8, mac: Mac, seed: u64) -> Option<Transform> {
    let suite = match tid {
        id::AEAD => AeadSuite::ChaCha20Poly1305,
        id::AEAD_GCM => AeadSuite::Aes256Gcm,
        other => return Transform::legacy(other, Some(KEY)).ok(),
    };
    let mut rng = Xorshift128Plus::seeded(seed);
    Some(Transform::Aead(Box::new(AeadTransform::new(
        root(suite),
        mac,
        NOW_SECS,
        &mut rng,
    ))))
}

fuzz_target!(|data: &[u8]| {
    let [tid, change, payload @ ..] = data else {
        return;
    };
    let tid = [
        id::NULL,
        id::TWOFISH,
        id::AES,
        id::CHACHA20,
        id::SPECK,
        id::AEAD,
        id::AEAD_GCM,
    ][usize::from(*tid % 7)];
    let c = community();
    let ctx = |src| PacketContext {
        community: &c,
        src_mac: src,
        dst_mac: B,
        compression: 1,
        transform: tid,
    };
    let Some(mut receiver) = transform(tid, B, 2) else {
        return;
    };
    let mut hostile = payload.to_vec();
    if let Ok(r) = receiver.decrypt(&mut hostile, &ctx(A)) {
        assert!(r.end <= hostile.len());
    }
    if tid != id::AEAD && tid != id::AEAD_GCM {
        return;
    }
    // Seal the payload as A, then open it as B: intact it opens, changed it never does.
    let sender = transform(tid, A, 1).expect("aead");
    let mut buf = vec![0u8; PREFIX + payload.len() + SUFFIX];
    buf[PREFIX..PREFIX + payload.len()].copy_from_slice(payload);
    let mut rng = Xorshift128Plus::seeded(3);
    let sealed = sender
        .encrypt(&mut buf, payload.len(), &ctx(A), &mut rng)
        .expect("seal");
    let mut wire = buf[sealed].to_vec();
    if *change == 0 {
        let r = receiver
            .decrypt(&mut wire, &ctx(A))
            .expect("intact payload opens");
        assert_eq!(&wire[r], payload);
    } else {
        let at = usize::from(*change) % (wire.len() + 1);
        if at == wire.len() {
            wire.pop();
        } else {
            wire[at] ^= 1 << (change % 8);
        }
        assert!(
            receiver.decrypt(&mut wire, &ctx(A)).is_err(),
            "forgery opened"
        );
    }
});
