//! The Internet checksum (RFC 1071) for the offload code.

/// One's-complement sum of `data` as big-endian 16-bit words, plus `seed`, folded to 16 bits.
pub fn sum(data: &[u8], seed: u64) -> u16 {
    // The sum does not depend on byte order (RFC 1071 §2(B)): add the data as little-endian
    // u32s (no byte swaps, and the loop vectorizes), fold, swap the result's two bytes. A u32
    // is w0 + w1·2¹⁶ and 2¹⁶ ≡ 1 (mod 2¹⁶ − 1), so u32s sum as their 16-bit words do.
    let mut acc = 0u64;
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        acc += u64::from(u32::from_le_bytes([w[0], w[1], w[2], w[3]]));
    }
    let rest = words.remainder();
    let mut tail = [0u8; 4];
    tail[..rest.len()].copy_from_slice(rest);
    acc += u64::from(u32::from_le_bytes(tail));
    fold(u64::from(fold(acc).swap_bytes()) + seed)
}

/// Folds a one's-complement sum to 16 bits.
fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The pseudo-header sum for `proto` and a transport segment of `len` bytes; `addrs` is
/// source and destination, 8 bytes (IPv4) or 32 (IPv6).
pub fn pseudo(addrs: &[u8], proto: u8, len: usize) -> u64 {
    u64::from(sum(addrs, 0)) + u64::from(proto) + len as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(data: &[u8], seed: u64) -> u16 {
        let mut s = seed;
        for w in data.chunks(2) {
            s += u64::from(w[0]) << 8 | u64::from(*w.get(1).unwrap_or(&0));
        }
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    }

    #[test]
    fn matches_the_word_by_word_definition() {
        let data: Vec<u8> = (0..1503u32).map(|i| (i * 37 + 11) as u8).collect();
        for len in 0..data.len() {
            assert_eq!(
                sum(&data[..len], 7),
                reference(&data[..len], 7),
                "len {len}"
            );
        }
        // RFC 1071 §3's example.
        assert_eq!(
            sum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7], 0),
            0xddf2
        );
    }
}
