//! User/password authentication on the edge (spec §4.7, §7.10): the token of each
//! REGISTER_SUPER (public key and a fresh encrypted challenge), the trailer after it, and the
//! supernode's answer that proves it knows our secret and hands over the dynamic header key.

use n2n_crypto::keys::{private_key_from_text, public_key, shared_secret, user_private_key_raw};
use n2n_crypto::pearson::pearson_hash_128;
use n2n_crypto::speck::Speck128;
use n2n_proto::{Auth, auth_scheme};

use super::DynamicKey;

/// The user's keys, derived once at start-up.
#[derive(Clone)]
pub struct UserCredentials {
    public: [u8; 32],
    /// `H256(X(user private key, federation public key))`.
    secret: [u8; 32],
    speck: Speck128,
}

impl std::fmt::Debug for UserCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.write_str("UserCredentials { .. }")
    }
}

impl UserCredentials {
    /// `-I user -J password -P federation-key` (the user as the description field's bytes,
    /// the key as bytes).
    pub fn new(user: &[u8], password: &str, federation_public: &[u8; 32]) -> Self {
        let private = user_private_key_raw(user, password);
        let secret = shared_secret(&private, federation_public);
        let mut k = [0u8; 16];
        k.copy_from_slice(&secret[..16]);
        UserCredentials {
            public: public_key(&private),
            secret,
            speck: Speck128::new_128(&k),
        }
    }

    /// The public key of the default federation (`*Federation`), n2n's built-in `-P`.
    pub fn default_federation_key() -> [u8; 32] {
        public_key(&private_key_from_text("Federation"))
    }

    /// The token of a REGISTER_SUPER: public key ‖ `SpeckEnc_SS(challenge)`.
    pub fn token(&self, challenge: &[u8; 16]) -> Auth {
        let mut t = [0u8; 48];
        t[..32].copy_from_slice(&self.public);
        let mut c = *challenge;
        self.speck.encrypt_block(&mut c);
        t[32..].copy_from_slice(&c);
        Auth::new(auth_scheme::USER_PASSWORD, &t).unwrap_or(Auth::NONE)
    }

    /// The trailer after an encrypted registration: `SpeckEnc_SS(H128(encrypted))`.
    pub fn trailer(&self, encrypted: &[u8]) -> [u8; 16] {
        let mut h = pearson_hash_128(encrypted);
        self.speck.encrypt_block(&mut h);
        h
    }

    /// Whether an ACK's trailer is the supernode's for a body that hashed to `hash`.
    pub fn trailer_matches(&self, hash: &[u8; 16], trailer: &[u8; 16]) -> bool {
        let mut h = *hash;
        self.speck.encrypt_block(&mut h);
        h == *trailer
    }

    /// Opens the supernode's answer (spec §7.10 step 4): the challenge must come back
    /// encrypted twice; the dynamic key is `SpeckDec(answer[32..]) ⊕ challenge ⊕ SS[0..16]`.
    pub fn open_answer(&self, challenge: &[u8; 16], answer: &Auth) -> Option<DynamicKey> {
        let t = answer.token();
        if answer.scheme != auth_scheme::USER_PASSWORD || t.len() != 48 {
            return None;
        }
        let mut twice = [0u8; 16];
        twice.copy_from_slice(&t[..16]);
        self.speck.decrypt_block(&mut twice);
        self.speck.decrypt_block(&mut twice);
        if twice != *challenge {
            return None;
        }
        let mut d = [0u8; 16];
        d.copy_from_slice(&t[32..48]);
        self.speck.decrypt_block(&mut d);
        for ((k, c), s) in d.iter_mut().zip(challenge).zip(&self.secret) {
            *k ^= c ^ s;
        }
        Some(DynamicKey(d))
    }
}
