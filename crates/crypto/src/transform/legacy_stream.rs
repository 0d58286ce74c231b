//! ChaCha20 (id 4) and Speck-CTR (id 5): `16-byte IV ‖ ciphertext` (spec §5.4, §5.5).

use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};

use crate::pearson::pearson_hash_256;
use crate::speck::Speck128;

/// ChaCha20 with n2n's 16-byte IV: LE block counter ‖ 96-bit nonce.
#[derive(Clone)]
pub struct LegacyChaCha20 {
    key: [u8; 32],
}

impl std::fmt::Debug for LegacyChaCha20 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LegacyChaCha20")
    }
}

impl LegacyChaCha20 {
    pub fn from_password(password: &[u8]) -> Self {
        LegacyChaCha20 {
            key: pearson_hash_256(password),
        }
    }

    /// XORs the keystream for `iv` into `data`. The 32-bit block counter wraps to 0 without
    /// carrying into the nonce, as non-OpenSSL C builds do (spec §5.4). The crate refuses to
    /// run into the end of its counter, so the rare packets near it take the portable path.
    pub fn apply(&self, iv: &[u8; 16], data: &mut [u8]) {
        let counter = u32::from_le_bytes([iv[0], iv[1], iv[2], iv[3]]);
        let blocks = data.len().div_ceil(64) as u64;
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&iv[4..]);
        if u64::from(counter) + blocks < u64::from(u32::MAX) {
            let mut c = ChaCha20::new((&self.key).into(), (&nonce).into());
            c.seek(u64::from(counter) * 64);
            c.apply_keystream(data);
        } else {
            let mut ctr = counter;
            for chunk in data.chunks_mut(64) {
                let ks = chacha20_block(&self.key, ctr, &nonce);
                chunk.iter_mut().zip(ks).for_each(|(d, k)| *d ^= k);
                ctr = ctr.wrapping_add(1);
            }
        }
    }
}

/// One ChaCha20 block (RFC 8439 §2.3), for the counter wrap-around case only.
fn chacha20_block(key: &[u8; 32], counter: u32, nonce: &[u8; 12]) -> [u8; 64] {
    let word = |b: &[u8], i: usize| {
        u32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
    };
    let mut init = [0u32; 16];
    init[..4].copy_from_slice(&[0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574]);
    for i in 0..8 {
        init[4 + i] = word(key, i);
    }
    init[12] = counter;
    for i in 0..3 {
        init[13 + i] = word(nonce, i);
    }
    let mut x = init;
    let qr = |x: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize| {
        x[a] = x[a].wrapping_add(x[b]);
        x[d] = (x[d] ^ x[a]).rotate_left(16);
        x[c] = x[c].wrapping_add(x[d]);
        x[b] = (x[b] ^ x[c]).rotate_left(12);
        x[a] = x[a].wrapping_add(x[b]);
        x[d] = (x[d] ^ x[a]).rotate_left(8);
        x[c] = x[c].wrapping_add(x[d]);
        x[b] = (x[b] ^ x[c]).rotate_left(7);
    };
    for _ in 0..10 {
        qr(&mut x, 0, 4, 8, 12);
        qr(&mut x, 1, 5, 9, 13);
        qr(&mut x, 2, 6, 10, 14);
        qr(&mut x, 3, 7, 11, 15);
        qr(&mut x, 0, 5, 10, 15);
        qr(&mut x, 1, 6, 11, 12);
        qr(&mut x, 2, 7, 8, 13);
        qr(&mut x, 3, 4, 9, 14);
    }
    let mut out = [0u8; 64];
    for i in 0..16 {
        out[4 * i..4 * i + 4].copy_from_slice(&x[i].wrapping_add(init[i]).to_le_bytes());
    }
    out
}

/// Speck-128/256 in CTR mode, key `H256(password)`.
#[derive(Clone, Debug)]
pub struct LegacySpeck {
    cipher: Speck128,
}

impl LegacySpeck {
    pub fn from_password(password: &[u8]) -> Self {
        LegacySpeck {
            cipher: Speck128::new_256(&pearson_hash_256(password)),
        }
    }

    pub fn apply(&self, iv: &[u8; 16], data: &mut [u8]) {
        self.cipher.ctr(iv, data);
    }
}
