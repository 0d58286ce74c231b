//! n2n's "Pearson" hashes (spec §6): lane-parallel 64-bit mixing hashes (Stafford's Mix13),
//! used for key derivation, the header checksum, address assignment and the management password.

fn mix(mut h: u64) -> u64 {
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Runs the hash with `N` lanes; lane j (1-based) subtracts j in every round.
fn lanes<const N: usize>(input: &[u8]) -> [u64; N] {
    let mut h = [0u64; N];
    let round = |h: &mut [u64; N], v: u64| {
        for (j, lane) in h.iter_mut().enumerate() {
            *lane = mix((*lane ^ v).wrapping_sub(j as u64 + 1));
        }
    };
    let mut words = input.chunks_exact(8);
    for w in words.by_ref() {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        round(&mut h, u64::from_le_bytes(b));
    }
    h.iter_mut().for_each(|l| *l = !*l);
    for &byte in words.remainder() {
        round(&mut h, u64::from(byte));
    }
    h.iter_mut().for_each(|l| *l = !*l);
    round(&mut h, input.len() as u64);
    h
}

pub fn pearson_hash_64(input: &[u8]) -> u64 {
    lanes::<1>(input)[0]
}

pub fn pearson_hash_32(input: &[u8]) -> u32 {
    pearson_hash_64(input) as u32
}

pub fn pearson_hash_16(input: &[u8]) -> u16 {
    pearson_hash_64(input) as u16
}

/// `BE(h2) ‖ BE(h1)`.
pub fn pearson_hash_128(input: &[u8]) -> [u8; 16] {
    let h = lanes::<2>(input);
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&h[1].to_be_bytes());
    out[8..].copy_from_slice(&h[0].to_be_bytes());
    out
}

/// `BE(h4) ‖ BE(h3) ‖ BE(h2) ‖ BE(h1)`.
pub fn pearson_hash_256(input: &[u8]) -> [u8; 32] {
    let h = lanes::<4>(input);
    let mut out = [0u8; 32];
    for (i, lane) in h.iter().rev().enumerate() {
        out[i * 8..i * 8 + 8].copy_from_slice(&lane.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_vectors() {
        let input: Vec<u8> = (0..512).map(|i| (i % 16) as u8).collect();
        assert_eq!(
            hex::encode(pearson_hash_256(&input)),
            "40095cca286bfb934c4af7c079a8045ab53dcfb3a7ed1856b2d98fa82ea108be"
        );
        assert_eq!(
            hex::encode(pearson_hash_128(&input)),
            "b53dcfb3a7ed1856b2d98fa82ea108be"
        );
        assert_eq!(pearson_hash_64(&input), 0xb2d9_8fa8_2ea1_08be);
        assert_eq!(pearson_hash_32(&input), 0x2ea1_08be);
        assert_eq!(pearson_hash_16(&input), 0x08be);
        assert_eq!(pearson_hash_64(b"abc"), 0x582b_9df2_877c_ecc8);
        assert_eq!(
            hex::encode(pearson_hash_128(b"")),
            "da26e52fa3730902b4d055fcf2cbbd7b"
        );
        assert_eq!(pearson_hash_64(b"n2n"), 0x0c3c_c376_7829_1925);
    }
}
