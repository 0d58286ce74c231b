//! User/password communities on the supernode (spec §4.7, §7.10): the users' shared secrets
//! with the federation key, the community's dynamic header key, the answer to an edge's
//! challenge, and the 16-byte trailers of registrations and their ACKs.

use std::collections::HashMap;

use n2n_crypto::HeaderKey;
use n2n_crypto::keys::{dynamic_key, shared_secret};
use n2n_crypto::pearson::pearson_hash_128;
use n2n_crypto::speck::Speck128;
use n2n_proto::{Auth, Community, auth_scheme};

use crate::community_list::User;

/// Token of a user/password registration: public key ‖ encrypted challenge.
pub const TOKEN_LEN: usize = 48;
/// The trailer after a registration or its ACK (N2N_REG_SUP_HASH_CHECK_LEN).
pub const TRAILER_LEN: usize = 16;

/// One listed user, with what the supernode shares with it.
#[derive(Clone)]
pub struct UserKeys {
    pub name: String,
    /// `H256(X(federation private key, user public key))`: its first 16 bytes key Speck.
    secret: [u8; 32],
    speck: Speck128,
}

/// The users of a community and its dynamic key.
#[derive(Clone)]
pub struct UserAuth {
    users: HashMap<[u8; 32], UserKeys>,
    dynamic_key: [u8; 16],
    /// The header key of everything but registrations, their ACKs and NAKs.
    pub dynamic: HeaderKey,
}

// Never the secrets.
impl std::fmt::Debug for UserKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UserKeys {{ name: {:?}, .. }}", self.name)
    }
}

impl std::fmt::Debug for UserAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UserAuth {{ users: {}, .. }}", self.users.len())
    }
}

impl UserAuth {
    pub fn new(
        users: &[User],
        fed_private: &[u8; 32],
        community: &Community,
        federation: &Community,
        key_time: u32,
    ) -> Self {
        let users = users
            .iter()
            .map(|u| {
                let secret = shared_secret(fed_private, &u.public_key);
                let mut k = [0u8; 16];
                k.copy_from_slice(&secret[..16]);
                let keys = UserKeys {
                    name: u.name.clone(),
                    secret,
                    speck: Speck128::new_128(&k),
                };
                (u.public_key, keys)
            })
            .collect();
        let dk = dynamic_key(&community.0, &federation.0, key_time);
        UserAuth {
            users,
            dynamic_key: dk,
            dynamic: HeaderKey::for_dynamic_key(&dk),
        }
    }

    /// A new key time (spec §7.9): the dynamic key changes with it.
    pub fn rekey(&mut self, community: &Community, federation: &Community, key_time: u32) {
        self.dynamic_key = dynamic_key(&community.0, &federation.0, key_time);
        self.dynamic = HeaderKey::for_dynamic_key(&self.dynamic_key);
    }

    /// The listed user whose public key opens a scheme-2 token.
    pub fn user_of(&self, auth: &Auth) -> Option<&UserKeys> {
        if auth.scheme != auth_scheme::USER_PASSWORD || auth.token().len() != TOKEN_LEN {
            return None;
        }
        let mut public = [0u8; 32];
        public.copy_from_slice(&auth.token()[..32]);
        self.users.get(&public)
    }

    pub fn user_of_key(&self, public: &[u8; 32]) -> Option<&UserKeys> {
        self.users.get(public)
    }

    /// The answer token (spec §7.10 step 3): the challenge encrypted once more, the second
    /// half of the public key, and `SpeckEnc(C ⊕ D ⊕ SS[0..16])` which hands the edge the
    /// dynamic key.
    pub fn answer(&self, user: &UserKeys, presented: &Auth) -> Auth {
        let t = presented.token();
        let mut out = [0u8; TOKEN_LEN];
        out.copy_from_slice(&t[..TOKEN_LEN]);
        let mut challenge = [0u8; 16];
        challenge.copy_from_slice(&t[32..48]);
        let mut twice = challenge;
        user.speck.encrypt_block(&mut twice);
        out[..16].copy_from_slice(&twice);
        user.speck.decrypt_block(&mut challenge);
        for ((c, d), s) in challenge.iter_mut().zip(self.dynamic_key).zip(user.secret) {
            *c ^= d ^ s;
        }
        user.speck.encrypt_block(&mut challenge);
        out[32..].copy_from_slice(&challenge);
        Auth::new(auth_scheme::USER_PASSWORD, &out).unwrap_or(Auth::NONE)
    }
}

impl UserKeys {
    /// The trailer for `encrypted` (spec §4.7): `SpeckEnc_SS(H128(encrypted))`.
    pub fn trailer(&self, encrypted: &[u8]) -> [u8; TRAILER_LEN] {
        let mut h = pearson_hash_128(encrypted);
        self.speck.encrypt_block(&mut h);
        h
    }

    /// Whether `trailer` is this user's for a datagram whose encrypted body hashed to `hash`.
    pub fn trailer_matches(&self, hash: &[u8; 16], trailer: &[u8]) -> bool {
        let mut h = *hash;
        self.speck.encrypt_block(&mut h);
        trailer == h
    }
}
