//! AES (id 3) and Twofish (id 2): CBC with ciphertext stealing CS2 and an all-zero IV over
//! `16 random bytes ‖ data` (spec §5.3). Works in place; output is 16 bytes longer than input.

use aes::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use aes::{Aes128, Aes192, Aes256};

use super::TransformError;
use crate::pearson::pearson_hash_256;
use crate::twofish::Twofish256;

/// A 16-byte block cipher with its expanded key.
#[derive(Clone)]
pub enum BlockCipher {
    Aes128(Box<Aes128>),
    Aes192(Box<Aes192>),
    Aes256(Box<Aes256>),
    Twofish(Box<Twofish256>),
}

impl std::fmt::Debug for BlockCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl BlockCipher {
    /// n2n's AES key: the *last* 16/24/32 bytes of `H256(key)`, chosen by the key's length
    /// (≤ 22 characters → 128 bits, 23–32 → 192, ≥ 33 → 256).
    pub fn aes_from_password(password: &[u8]) -> Self {
        let m = pearson_hash_256(password);
        match password.len() {
            0..=22 => BlockCipher::Aes128(Box::new(Aes128::new(&sub::<16>(&m[16..]).into()))),
            23..=32 => BlockCipher::Aes192(Box::new(Aes192::new(&sub::<24>(&m[8..]).into()))),
            _ => BlockCipher::Aes256(Box::new(Aes256::new(&m.into()))),
        }
    }

    /// n2n's Twofish key: all 32 bytes of `H256(key)`.
    pub fn twofish_from_password(password: &[u8]) -> Self {
        BlockCipher::Twofish(Twofish256::new(&pearson_hash_256(password)))
    }

    pub fn name(&self) -> &'static str {
        match self {
            BlockCipher::Aes128(_) => "AES-128-CBC-CTS",
            BlockCipher::Aes192(_) => "AES-192-CBC-CTS",
            BlockCipher::Aes256(_) => "AES-256-CBC-CTS",
            BlockCipher::Twofish(_) => "Twofish-CBC-CTS",
        }
    }

    fn enc(&self, block: &mut [u8; 16]) {
        match self {
            BlockCipher::Aes128(c) => c.encrypt_block(block.into()),
            BlockCipher::Aes192(c) => c.encrypt_block(block.into()),
            BlockCipher::Aes256(c) => c.encrypt_block(block.into()),
            BlockCipher::Twofish(c) => c.encrypt_block(block),
        }
    }

    fn dec(&self, block: &mut [u8; 16]) {
        match self {
            BlockCipher::Aes128(c) => c.decrypt_block(block.into()),
            BlockCipher::Aes192(c) => c.decrypt_block(block.into()),
            BlockCipher::Aes256(c) => c.decrypt_block(block.into()),
            BlockCipher::Twofish(c) => c.decrypt_block(block),
        }
    }

    /// CBC-CS2 encryption in place, zero IV. `data.len()` must be ≥ 16.
    pub fn encrypt_cts(&self, data: &mut [u8]) {
        let len = data.len();
        let full = len / 16;
        let rem = len % 16;
        let mut prev = [0u8; 16];
        for i in 0..full {
            let mut b = block(&data[i * 16..]);
            xor(&mut b, &prev);
            self.enc(&mut b);
            data[i * 16..i * 16 + 16].copy_from_slice(&b);
            prev = b;
        }
        if rem != 0 && full >= 1 {
            // C_n = E(C_{n-1} ^ (P_n ‖ 0)); output … C_n ‖ first rem bytes of C_{n-1}.
            let mut last = prev;
            for (l, p) in last.iter_mut().zip(&data[full * 16..]) {
                *l ^= p;
            }
            self.enc(&mut last);
            data[(full - 1) * 16..full * 16].copy_from_slice(&last);
            data[full * 16..].copy_from_slice(&prev[..rem]);
        }
    }

    /// CBC-CS2 decryption in place, zero IV.
    pub fn decrypt_cts(&self, data: &mut [u8]) -> Result<(), TransformError> {
        let len = data.len();
        if len < 16 {
            return Err(TransformError::TooShort);
        }
        let full = len / 16;
        let rem = len % 16;
        if rem != 0 {
            // Rebuild C_{n-1} and P_n from the swapped tail.
            let x = block(&data[(full - 1) * 16..]);
            let mut d = x;
            self.dec(&mut d);
            let mut c_prev = d;
            c_prev[..rem].copy_from_slice(&data[full * 16..]);
            for i in 0..rem {
                data[full * 16 + i] = d[i] ^ c_prev[i];
            }
            // P_{n-1} = D(C_{n-1}) ^ C_{n-2}.
            let before = if full >= 2 {
                block(&data[(full - 2) * 16..])
            } else {
                [0u8; 16]
            };
            let mut p = c_prev;
            self.dec(&mut p);
            xor(&mut p, &before);
            data[(full - 1) * 16..full * 16].copy_from_slice(&p);
            self.decrypt_cbc_blocks(&mut data[..(full - 1) * 16]);
        } else {
            self.decrypt_cbc_blocks(data);
        }
        Ok(())
    }

    /// Plain CBC decryption of whole blocks, zero IV, back to front so it works in place.
    fn decrypt_cbc_blocks(&self, data: &mut [u8]) {
        let n = data.len() / 16;
        for i in (0..n).rev() {
            let before = if i >= 1 {
                block(&data[(i - 1) * 16..])
            } else {
                [0u8; 16]
            };
            let mut b = block(&data[i * 16..]);
            self.dec(&mut b);
            xor(&mut b, &before);
            data[i * 16..i * 16 + 16].copy_from_slice(&b);
        }
    }
}

fn sub<const N: usize>(s: &[u8]) -> [u8; N] {
    let mut b = [0u8; N];
    b.copy_from_slice(&s[..N]);
    b
}

fn block(s: &[u8]) -> [u8; 16] {
    let mut b = [0u8; 16];
    b.copy_from_slice(&s[..16]);
    b
}

fn xor(a: &mut [u8; 16], b: &[u8; 16]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x ^= y;
    }
}
