//! User/password authentication keys (spec §7.10): X25519 with n2n's base point, the shared
//! secret, the per-community dynamic key and the 43-character `n2n-keygen` text form.

use crate::pearson::{pearson_hash_128, pearson_hash_256};
use crate::speck::Speck128;

/// n2n's X25519 base point: 31 zero bytes then 9 (u = 9·2²⁴⁸), not RFC 7748's.
pub const N2N_BASE_POINT: [u8; 32] = {
    let mut b = [0u8; 32];
    b[31] = 9;
    b
};

const ALPHABET: &[u8; 64] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz+-";

/// X25519 scalar multiplication (clamped scalar, top bit of u masked).
pub fn x25519(scalar: [u8; 32], point: [u8; 32]) -> [u8; 32] {
    x25519_dalek::x25519(scalar, point)
}

/// A user's private key: `H256(H256(password)) XOR H256(username)`.
pub fn user_private_key(username: &str, password: &str) -> [u8; 32] {
    user_private_key_raw(username.as_bytes(), password)
}

/// The same with the user name as raw bytes (the edge's 15-byte description field, which may
/// cut a character in two, as n2n's does).
pub fn user_private_key_raw(username: &[u8], password: &str) -> [u8; 32] {
    let mut k = pearson_hash_256(&pearson_hash_256(password.as_bytes()));
    for (a, b) in k.iter_mut().zip(pearson_hash_256(username)) {
        *a ^= b;
    }
    k
}

/// `generate_private_key` of the reference: `H256(H256(text))`. Used for the federation key
/// (the federation name without its leading `*`).
pub fn private_key_from_text(text: &str) -> [u8; 32] {
    pearson_hash_256(&pearson_hash_256(text.as_bytes()))
}

/// The public key for a private key: `X(prv, B)`.
pub fn public_key(private: &[u8; 32]) -> [u8; 32] {
    x25519(*private, N2N_BASE_POINT)
}

/// The shared secret `H256(X(prv, pub))`.
pub fn shared_secret(private: &[u8; 32], peer_public: &[u8; 32]) -> [u8; 32] {
    pearson_hash_256(&x25519(*private, *peer_public))
}

fn h128_cubed(x: &[u8]) -> [u8; 16] {
    pearson_hash_128(&pearson_hash_128(&pearson_hash_128(x)))
}

/// The 16-byte dynamic key of a user/password community:
/// `SpeckEnc_{H128³(comm20) ⊕ H128³(fed20)}(H128³(key_time as 4 LE bytes))`.
pub fn dynamic_key(comm20: &[u8; 20], fed20: &[u8; 20], key_time: u32) -> [u8; 16] {
    let mut k = h128_cubed(comm20);
    for (a, b) in k.iter_mut().zip(h128_cubed(fed20)) {
        *a ^= b;
    }
    let mut t = h128_cubed(&key_time.to_le_bytes());
    Speck128::new_128(&k).encrypt_block(&mut t);
    t
}

/// The 43-character text form: bits MSB-first in 6-bit groups over `0-9A-Za-z+-`.
pub fn key_to_text(key: &[u8; 32]) -> String {
    bytes_to_text(key)
}

fn bytes_to_text(bytes: &[u8]) -> String {
    let bits = bytes.len() * 8;
    (0..bits.div_ceil(6))
        .map(|g| {
            let mut v = 0usize;
            for i in 0..6 {
                let bit = g * 6 + i;
                let set = bit < bits && bytes[bit / 8] & (0x80 >> (bit % 8)) != 0;
                v = (v << 1) | usize::from(set);
            }
            char::from(ALPHABET[v])
        })
        .collect()
}

/// Parses the 43-character text form; `None` for any other length or character.
pub fn key_from_text(text: &str) -> Option<[u8; 32]> {
    if text.len() != 43 {
        return None;
    }
    let mut out = [0u8; 32];
    for (g, c) in text.bytes().enumerate() {
        let v = ALPHABET.iter().position(|&a| a == c)?;
        for i in 0..6 {
            let bit = g * 6 + i;
            if bit < 256 && v & (0x20 >> i) != 0 {
                out[bit / 8] |= 0x80 >> (bit % 8);
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_vectors() {
        let prv = private_key_from_text("00420mG51WS82GeB30qE3m");
        assert_eq!(
            hex::encode(prv),
            "a4f4b51c8a0a09f97e9822ca8accb3f94d5a0d020b9d08ea039b46418e3c0d49"
        );
        let pubk = public_key(&prv);
        assert_eq!(
            hex::encode(pubk),
            "ca58616ff925d0cd1da56248a0155eada9f35c105f20b642b0a97c1e0ed7e94b"
        );
        assert_eq!(
            hex::encode(shared_secret(&prv, &pubk)),
            "5d947b0bdb54e8708a09b0db6f0b0d311bb85fba577434bd3bc5c46cd5aea484"
        );
        assert_eq!(
            hex::encode(x25519([0x55; 32], N2N_BASE_POINT)),
            "7f421bf9345a59844a30bc536474fa7c158177a44d346d2f8bc18c05d6a94454"
        );
        let seq: Vec<u8> = (0..16).collect();
        assert_eq!(bytes_to_text(&seq), "00420mG51WS82GeB30qE3m");
        let mut comm = [0u8; 20];
        comm[..6].copy_from_slice(b"mycomm");
        let mut fed = [0u8; 20];
        fed[..11].copy_from_slice(b"*Federation");
        assert_eq!(
            hex::encode(dynamic_key(&comm, &fed, 1_700_000_000)),
            "f7190893bb751cee73eb0a272af01828"
        );
    }

    #[test]
    fn keygen_examples() {
        let user = public_key(&user_private_key("alice", "secret"));
        assert_eq!(
            key_to_text(&user),
            "ROMg4FBgfOcHeWb5QKC-XQi6tvTCIx4q6-DeJ7Wrd2O"
        );
        let fed = public_key(&private_key_from_text("Federation"));
        assert_eq!(
            key_to_text(&fed),
            "i0IuBFO0RC22m2Ya32uUUFUA2yfQSwsxVZ3-S5F2k7O"
        );
        let fed = public_key(&private_key_from_text("mynet"));
        assert_eq!(
            key_to_text(&fed),
            "L9Rl3Ozd2D-E8AEG2DZi3Bv59ctTPfmjuN7CvysmRb0"
        );
        assert_eq!(key_from_text(&key_to_text(&user)), Some(user));
        assert_eq!(key_from_text("short"), None);
        assert_eq!(key_from_text(&"*".repeat(43)), None);
    }
}
