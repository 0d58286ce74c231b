//! n2n-rs's authenticated transform, `-A6` (id 96): ChaCha20-Poly1305 with per-session keys,
//! counter nonces and a per-sender replay window. Normative description: docs/protocol.md §2.

use std::collections::HashMap;

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce, Tag};
use n2n_proto::{Community, Mac};

use super::replay::ReplayWindow;
use super::{PacketContext, TransformError};
use crate::random::RandomSource;

/// Transform id on the wire; outside n2n's and n3n's 0–5 and n2n 2.x's 4–6 LZO combinations.
pub const AEAD_TRANSFORM_ID: u8 = 96;
/// `session id (8) ‖ counter (8)` in front of the ciphertext.
pub const AEAD_PREFIX: usize = 16;
/// The Poly1305 tag after it.
pub const AEAD_TAG: usize = 16;
/// Argon2id cost: 19 MiB, 2 passes, 1 lane (OWASP's baseline), run once at start-up.
pub const ARGON2_M_KIB: u32 = 19 * 1024;
pub const ARGON2_T: u32 = 2;
pub const ARGON2_P: u32 = 1;
const SALT_PREFIX: &[u8; 12] = b"n2n-rs/A6/v1";
const ROOT_CONTEXT: &str = "n2n-rs 2026-11 A6 packet root key v1";
/// Senders remembered at once; beyond it the least recently heard one is forgotten.
pub const DEFAULT_MAX_SENDERS: usize = 4096;

/// The community-wide root key: Argon2id(-k, salt = prefix ‖ community field), then BLAKE3.
#[derive(Clone)]
pub struct RootKey([u8; 32]);

impl std::fmt::Debug for RootKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RootKey(..)")
    }
}

impl RootKey {
    pub fn derive(password: &[u8], community: &Community) -> Result<Self, TransformError> {
        Self::derive_with_cost(password, community, ARGON2_M_KIB, ARGON2_T)
    }

    /// With explicit Argon2id costs (tests use small ones to stay fast).
    pub fn derive_with_cost(
        password: &[u8],
        community: &Community,
        m_kib: u32,
        t: u32,
    ) -> Result<Self, TransformError> {
        let params =
            argon2::Params::new(m_kib, t, ARGON2_P, Some(32)).map_err(|_| TransformError::Kdf)?;
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut salt = [0u8; 32];
        salt[..12].copy_from_slice(SALT_PREFIX);
        salt[12..].copy_from_slice(&community.0);
        let mut hardened = [0u8; 32];
        argon
            .hash_password_into(password, &salt, &mut hardened)
            .map_err(|_| TransformError::Kdf)?;
        Ok(RootKey(blake3::derive_key(ROOT_CONTEXT, &hardened)))
    }

    /// The AEAD key of one sender session: BLAKE3-keyed(root, src MAC ‖ session id).
    fn session_cipher(&self, src: &Mac, session: u64) -> ChaCha20Poly1305 {
        let mut input = [0u8; 14];
        input[..6].copy_from_slice(&src.0);
        input[6..].copy_from_slice(&session.to_be_bytes());
        let key = blake3::keyed_hash(&self.0, &input);
        ChaCha20Poly1305::new(key.as_bytes().into())
    }
}

struct SenderState {
    session: u64,
    cipher: ChaCha20Poly1305,
    window: ReplayWindow,
    last_used: u64,
}

/// The transform's state: our sending session and what we know of every sender.
pub struct AeadTransform {
    root: RootKey,
    tx_mac: Mac,
    tx_session: u64,
    tx_cipher: ChaCha20Poly1305,
    tx_counter: u64,
    senders: HashMap<Mac, SenderState>,
    max_senders: usize,
    uses: u64,
}

impl std::fmt::Debug for AeadTransform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "AeadTransform {{ session: {:016x}, senders: {} }}",
            self.tx_session,
            self.senders.len()
        )
    }
}

impl AeadTransform {
    /// `own_mac` is the sender MAC this node puts in its PACKETs; `unix_secs` is now. The
    /// session id is the start time (so a receiver can tell a newer session from a replayed
    /// older one) and 32 random bits (so two sessions never share keys).
    pub fn new(root: RootKey, own_mac: Mac, unix_secs: u64, rng: &mut dyn RandomSource) -> Self {
        let session = ((unix_secs & 0xffff_ffff) << 32) | (rng.next_u64() & 0xffff_ffff);
        let tx_cipher = root.session_cipher(&own_mac, session);
        AeadTransform {
            root,
            tx_mac: own_mac,
            tx_session: session,
            tx_cipher,
            tx_counter: 0,
            senders: HashMap::with_capacity(DEFAULT_MAX_SENDERS),
            max_senders: DEFAULT_MAX_SENDERS,
            uses: 0,
        }
    }

    pub fn session(&self) -> u64 {
        self.tx_session
    }

    /// Seals `buf[16..16 + len]` in place: writes the prefix into `buf[..16]` and the tag after
    /// the ciphertext. Returns the output length (`len + 32`).
    pub fn seal(
        &mut self,
        buf: &mut [u8],
        len: usize,
        ctx: &PacketContext<'_>,
    ) -> Result<usize, TransformError> {
        let out_len = AEAD_PREFIX + len + AEAD_TAG;
        if buf.len() < out_len {
            return Err(TransformError::NoRoom);
        }
        if ctx.src_mac != self.tx_mac {
            // The session key is bound to our MAC; a receiver would derive another one.
            return Err(TransformError::WrongSender);
        }
        let counter = self.tx_counter;
        self.tx_counter = counter.checked_add(1).ok_or(TransformError::Exhausted)?;
        buf[..8].copy_from_slice(&self.tx_session.to_be_bytes());
        buf[8..16].copy_from_slice(&counter.to_be_bytes());
        let aad = ctx.aad();
        let (body, rest) = buf[AEAD_PREFIX..].split_at_mut(len);
        let tag = self
            .tx_cipher
            .encrypt_inout_detached(&nonce(counter), &aad, body.into())
            .map_err(|_| TransformError::NoRoom)?;
        rest[..AEAD_TAG].copy_from_slice(&tag);
        Ok(out_len)
    }

    /// Opens `buf` (prefix ‖ ciphertext ‖ tag) in place. On success the plaintext is
    /// `buf[16..16 + n]` and `n` is returned. Rejections allocate nothing and change no state.
    pub fn open(
        &mut self,
        buf: &mut [u8],
        ctx: &PacketContext<'_>,
    ) -> Result<usize, TransformError> {
        if buf.len() < AEAD_PREFIX + AEAD_TAG {
            return Err(TransformError::TooShort);
        }
        let session = u64::from_be_bytes(prefix8(&buf[..8]));
        let counter = u64::from_be_bytes(prefix8(&buf[8..16]));
        let len = buf.len() - AEAD_PREFIX - AEAD_TAG;
        let known = self.senders.get(&ctx.src_mac);
        let fresh;
        let cipher = match known {
            Some(s) if s.session == session => {
                if !s.window.check(counter) {
                    return Err(TransformError::Replay);
                }
                &s.cipher
            }
            Some(s) if (session >> 32) < (s.session >> 32) => {
                return Err(TransformError::StaleSession);
            }
            _ => {
                fresh = self.root.session_cipher(&ctx.src_mac, session);
                &fresh
            }
        };
        let (body, rest) = buf[AEAD_PREFIX..].split_at_mut(len);
        let tag = Tag::try_from(&rest[..AEAD_TAG]).map_err(|_| TransformError::TooShort)?;
        cipher
            .decrypt_inout_detached(&nonce(counter), &ctx.aad(), body.into(), &tag)
            .map_err(|_| TransformError::Forged)?;
        self.uses += 1;
        let uses = self.uses;
        match self.senders.get_mut(&ctx.src_mac) {
            Some(s) if s.session == session => {
                s.window.mark(counter);
                s.last_used = uses;
            }
            _ => {
                let cipher = self.root.session_cipher(&ctx.src_mac, session);
                let mut window = ReplayWindow::default();
                window.mark(counter);
                self.remember(
                    ctx.src_mac,
                    SenderState {
                        session,
                        cipher,
                        window,
                        last_used: uses,
                    },
                );
            }
        }
        Ok(len)
    }

    fn remember(&mut self, mac: Mac, state: SenderState) {
        if !self.senders.contains_key(&mac) && self.senders.len() >= self.max_senders {
            let oldest = self
                .senders
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(m, _)| *m);
            if let Some(m) = oldest {
                self.senders.remove(&m);
            }
        }
        self.senders.insert(mac, state);
    }
}

fn nonce(counter: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_be_bytes());
    n.into()
}

fn prefix8(b: &[u8]) -> [u8; 8] {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    a
}
