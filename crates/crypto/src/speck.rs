//! Speck-128 in n2n's byte order (spec §5.6) and its CTR mode (§4.3 step 9, §5.5).

/// Speck-128 with a 128-bit (32 rounds) or 256-bit (34 rounds) key, expanded once.
#[derive(Clone)]
pub struct Speck128 {
    round_keys: [u64; 34],
    rounds: usize,
}

impl std::fmt::Debug for Speck128 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Speck128 {{ {} rounds }}", self.rounds)
    }
}

fn le64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

impl Speck128 {
    /// Speck-128/128.
    pub fn new_128(key: &[u8; 16]) -> Self {
        Self::expand(&[le64(&key[..8]), le64(&key[8..])], 32)
    }

    /// Speck-128/256.
    pub fn new_256(key: &[u8; 32]) -> Self {
        Self::expand(
            &[
                le64(&key[..8]),
                le64(&key[8..16]),
                le64(&key[16..24]),
                le64(&key[24..]),
            ],
            34,
        )
    }

    fn expand(words: &[u64], rounds: usize) -> Self {
        let mut k = words[0];
        let mut l = [0u64; 4];
        let m = words.len();
        l[..m - 1].copy_from_slice(&words[1..]);
        let mut round_keys = [0u64; 34];
        for (i, rk) in round_keys.iter_mut().enumerate().take(rounds) {
            *rk = k;
            let li = l[i % (m - 1)];
            let new_l = k.wrapping_add(li.rotate_right(8)) ^ i as u64;
            l[i % (m - 1)] = new_l;
            k = k.rotate_left(3) ^ new_l;
        }
        Speck128 { round_keys, rounds }
    }

    pub fn encrypt_block(&self, block: &mut [u8; 16]) {
        let (mut y, mut x) = (le64(&block[..8]), le64(&block[8..]));
        for &k in &self.round_keys[..self.rounds] {
            x = x.rotate_right(8).wrapping_add(y) ^ k;
            y = y.rotate_left(3) ^ x;
        }
        block[..8].copy_from_slice(&y.to_le_bytes());
        block[8..].copy_from_slice(&x.to_le_bytes());
    }

    pub fn decrypt_block(&self, block: &mut [u8; 16]) {
        let (mut y, mut x) = (le64(&block[..8]), le64(&block[8..]));
        for &k in self.round_keys[..self.rounds].iter().rev() {
            y = (y ^ x).rotate_right(3);
            x = (x ^ k).wrapping_sub(y).rotate_left(8);
        }
        block[..8].copy_from_slice(&y.to_le_bytes());
        block[8..].copy_from_slice(&x.to_le_bytes());
    }

    /// CTR mode: the counter is the little-endian u64 in the first 8 IV bytes, incremented per
    /// 16-byte block without carry into bytes 8..16. XORs the keystream into `data`.
    pub fn ctr(&self, iv: &[u8; 16], data: &mut [u8]) {
        let mut counter = le64(&iv[..8]);
        for chunk in data.chunks_mut(16) {
            let mut ks = *iv;
            ks[..8].copy_from_slice(&counter.to_le_bytes());
            self.encrypt_block(&mut ks);
            for (d, k) in chunk.iter_mut().zip(ks) {
                *d ^= k;
            }
            counter = counter.wrapping_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_vectors() {
        let key: [u8; 16] = core::array::from_fn(|i| i as u8);
        let mut block = *b" made it equival";
        let c = Speck128::new_128(&key);
        c.encrypt_block(&mut block);
        assert_eq!(
            block,
            [
                0x18, 0x0d, 0x57, 0x5c, 0xdf, 0xfe, 0x60, 0x78, 0x65, 0x32, 0x78, 0x79, 0x51, 0x98,
                0x5d, 0xa6
            ]
        );
        c.decrypt_block(&mut block);
        assert_eq!(&block, b" made it equival");

        let key: [u8; 32] = core::array::from_fn(|i| i as u8);
        let mut block = *b"pooner. In those";
        let c = Speck128::new_256(&key);
        c.encrypt_block(&mut block);
        assert_eq!(
            block,
            [
                0x43, 0x8f, 0x18, 0x9c, 0x8d, 0xb4, 0xee, 0x4e, 0x3e, 0xf5, 0xc0, 0x05, 0x04, 0x01,
                0x09, 0x41
            ]
        );
        c.decrypt_block(&mut block);
        assert_eq!(&block, b"pooner. In those");
    }

    #[test]
    fn ctr_counter_wraps_without_carry() {
        let c = Speck128::new_128(&[7; 16]);
        let mut iv = [0xffu8; 16];
        iv[8..].copy_from_slice(&[1; 8]);
        let mut two_blocks = [0u8; 32];
        c.ctr(&iv, &mut two_blocks);
        let mut second = [0u8; 16];
        let mut iv2 = iv;
        iv2[..8].fill(0);
        c.ctr(&iv2, &mut second);
        assert_eq!(&two_blocks[16..], &second);
    }
}
