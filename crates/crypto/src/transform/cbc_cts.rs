//! AES (id 3) and Twofish (id 2): CBC with ciphertext stealing CS2 and an all-zero IV over
//! `16 random bytes ‖ data` (spec §5.3). Works in place; output is 16 bytes longer than input.

use aes::cipher::consts::U16;
use aes::cipher::{
    Array, BlockCipherDecrypt, BlockCipherEncBackend, BlockCipherEncClosure, BlockCipherEncrypt,
    BlockSizeUser, KeyInit,
};
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

    /// CBC encryption of whole blocks, chained from `prev`, which ends as the last block.
    /// AES runs the chain inside one backend call: its set-up (round keys in vector
    /// registers) then happens once per packet instead of once per block.
    fn encrypt_cbc_blocks(&self, data: &mut [u8], prev: &mut [u8; 16]) {
        let chain = CbcChain { data, prev };
        match self {
            BlockCipher::Aes128(c) => c.encrypt_with_backend(chain),
            BlockCipher::Aes192(c) => c.encrypt_with_backend(chain),
            BlockCipher::Aes256(c) => c.encrypt_with_backend(chain),
            BlockCipher::Twofish(c) => {
                for b in chain.data.as_chunks_mut::<16>().0 {
                    xor(b, chain.prev);
                    c.encrypt_block(b);
                    *chain.prev = *b;
                }
            }
        }
    }

    /// ECB decryption of whole blocks, in parallel where the cipher can.
    fn decrypt_blocks(&self, blocks: &mut [[u8; 16]]) {
        let arrays = Array::cast_slice_from_core_mut(blocks);
        match self {
            BlockCipher::Aes128(c) => c.decrypt_blocks(arrays),
            BlockCipher::Aes192(c) => c.decrypt_blocks(arrays),
            BlockCipher::Aes256(c) => c.decrypt_blocks(arrays),
            BlockCipher::Twofish(c) => {
                for b in blocks {
                    c.decrypt_block(b);
                }
            }
        }
    }

    /// CBC-CS2 encryption in place, zero IV. `data.len()` must be ≥ 16.
    pub fn encrypt_cts(&self, data: &mut [u8]) {
        let len = data.len();
        let full = len / 16;
        let rem = len % 16;
        let mut prev = [0u8; 16];
        self.encrypt_cbc_blocks(&mut data[..full * 16], &mut prev);
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

    /// Plain CBC decryption of whole blocks, zero IV, in place: chunks of blocks are decrypted
    /// together from the back, each XORed with the ciphertext block before it (saved first
    /// when it lies in the same chunk).
    fn decrypt_cbc_blocks(&self, data: &mut [u8]) {
        const CHUNK: usize = 32;
        let blocks = data.as_chunks_mut::<16>().0;
        let mut end = blocks.len();
        let mut saved = [[0u8; 16]; CHUNK];
        while end > 0 {
            let start = end.saturating_sub(CHUNK);
            let n = end - start;
            saved[..n].copy_from_slice(&blocks[start..end]);
            self.decrypt_blocks(&mut blocks[start..end]);
            let before_chunk = if start > 0 {
                blocks[start - 1]
            } else {
                [0u8; 16]
            };
            for i in 0..n {
                let before = if i == 0 { &before_chunk } else { &saved[i - 1] };
                xor(&mut blocks[start + i], before);
            }
            end = start;
        }
    }
}

/// CBC encryption of whole blocks as a backend closure (see `encrypt_cbc_blocks`).
struct CbcChain<'a> {
    data: &'a mut [u8],
    prev: &'a mut [u8; 16],
}

impl BlockSizeUser for CbcChain<'_> {
    type BlockSize = U16;
}

impl BlockCipherEncClosure for CbcChain<'_> {
    fn call<B: BlockCipherEncBackend<BlockSize = U16>>(self, backend: &B) {
        for b in self.data.as_chunks_mut::<16>().0 {
            xor(b, self.prev);
            let a = Array::cast_slice_from_core_mut(std::slice::from_mut(b));
            backend.encrypt_block_inplace(&mut a[0]);
            *self.prev = *b;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Textbook CBC, one block at a time, zero IV (the chained and batched code must match).
    fn reference_cbc(c: &BlockCipher, data: &[u8]) -> Vec<u8> {
        let mut out = data.to_vec();
        let mut prev = [0u8; 16];
        for b in out.as_chunks_mut::<16>().0 {
            xor(b, &prev);
            c.enc(b);
            prev = *b;
        }
        out
    }

    #[test]
    fn chained_and_batched_cbc_match_the_textbook_for_every_cipher_and_length() {
        for c in [
            BlockCipher::aes_from_password(b"short"),
            BlockCipher::aes_from_password(b"a-key-of-twenty-six-chars"),
            BlockCipher::aes_from_password(b"a key that is longer than thirty-two characters"),
            BlockCipher::twofish_from_password(b"secret"),
        ] {
            for len in [16usize, 32, 48, 496, 512, 528, 1024, 1296, 2048, 2064] {
                let plain: Vec<u8> = (0..len).map(|i| (i * 29 + len) as u8).collect();
                let mut chained = plain.clone();
                let mut last = [0u8; 16];
                c.encrypt_cbc_blocks(&mut chained, &mut last);
                assert_eq!(chained, reference_cbc(&c, &plain), "{} {len}", c.name());
                assert_eq!(last[..], chained[len - 16..]);
                c.decrypt_cbc_blocks(&mut chained);
                assert_eq!(chained, plain, "{} {len}", c.name());
            }
            for len in [16usize, 17, 31, 33, 100, 529, 1301, 2050] {
                let plain: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
                let mut d = plain.clone();
                c.encrypt_cts(&mut d);
                assert_ne!(d, plain);
                c.decrypt_cts(&mut d).expect("decrypts");
                assert_eq!(d, plain, "{} CTS {len}", c.name());
            }
        }
    }
}
