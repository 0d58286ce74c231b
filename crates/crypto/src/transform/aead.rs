//! n2n-rs's authenticated transforms, `-A6` (id 96, ChaCha20-Poly1305) and `-A7` (id 97,
//! AES-256-GCM): per-session keys, counter nonces and a per-sender replay window, the same
//! design for both suites. Normative description: docs/protocol.md §2. ring's assembly does
//! ChaCha20-Poly1305 about 3× faster per packet than the portable crates (data-path.md §2a),
//! and AES-256-GCM several times faster again where the CPU has AES instructions; the tests
//! check the ChaCha20 output against RustCrypto's.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use n2n_proto::{Community, Mac};
use ring::aead::{
    AES_256_GCM, Aad, Algorithm, CHACHA20_POLY1305, LessSafeKey, Nonce, Tag, UnboundKey,
};

use super::replay::ReplayWindow;
use super::{PacketContext, TransformError};
use crate::random::RandomSource;

/// Transform id on the wire; outside n2n's and n3n's 0–5 and n2n 2.x's 4–6 LZO combinations.
pub const AEAD_TRANSFORM_ID: u8 = 96;
/// `-A7`'s id, next to it.
pub const AEAD_GCM_TRANSFORM_ID: u8 = 97;
/// `session id (8) ‖ counter (8)` in front of the ciphertext.
pub const AEAD_PREFIX: usize = 16;
/// The Poly1305 tag after it.
pub const AEAD_TAG: usize = 16;
/// Argon2id cost: 19 MiB, 2 passes, 1 lane (OWASP's baseline), run once at start-up.
pub const ARGON2_M_KIB: u32 = 19 * 1024;
pub const ARGON2_T: u32 = 2;
pub const ARGON2_P: u32 = 1;

/// The AEAD of an authenticated transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AeadSuite {
    /// `-A6`.
    ChaCha20Poly1305,
    /// `-A7`.
    Aes256Gcm,
}

impl AeadSuite {
    pub fn id(self) -> u8 {
        match self {
            AeadSuite::ChaCha20Poly1305 => AEAD_TRANSFORM_ID,
            AeadSuite::Aes256Gcm => AEAD_GCM_TRANSFORM_ID,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            AeadSuite::ChaCha20Poly1305 => "ChaCha20-Poly1305",
            AeadSuite::Aes256Gcm => "AES-256-GCM",
        }
    }

    fn algorithm(self) -> &'static Algorithm {
        match self {
            AeadSuite::ChaCha20Poly1305 => &CHACHA20_POLY1305,
            AeadSuite::Aes256Gcm => &AES_256_GCM,
        }
    }

    /// Each suite derives its own keys from the same `-k` (docs/protocol.md §2.2).
    fn salt_prefix(self) -> &'static [u8; 12] {
        match self {
            AeadSuite::ChaCha20Poly1305 => b"n2n-rs/A6/v1",
            AeadSuite::Aes256Gcm => b"n2n-rs/A7/v1",
        }
    }

    fn root_context(self) -> &'static str {
        match self {
            AeadSuite::ChaCha20Poly1305 => "n2n-rs 2026-11 A6 packet root key v1",
            AeadSuite::Aes256Gcm => "n2n-rs 2026-12 A7 packet root key v1",
        }
    }
}
/// Senders remembered at once; beyond it the least recently heard one is forgotten.
pub const DEFAULT_MAX_SENDERS: usize = 4096;

/// The community-wide root key: Argon2id(-k, salt = prefix ‖ community field), then BLAKE3.
#[derive(Clone)]
pub struct RootKey {
    key: [u8; 32],
    suite: AeadSuite,
}

impl std::fmt::Debug for RootKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RootKey(..)")
    }
}

impl RootKey {
    /// `-A6`'s root key.
    pub fn derive(password: &[u8], community: &Community) -> Result<Self, TransformError> {
        Self::derive_for(AeadSuite::ChaCha20Poly1305, password, community)
    }

    pub fn derive_for(
        suite: AeadSuite,
        password: &[u8],
        community: &Community,
    ) -> Result<Self, TransformError> {
        Self::derive_suite_with_cost(suite, password, community, ARGON2_M_KIB, ARGON2_T)
    }

    /// `-A6` with explicit Argon2id costs (tests use small ones to stay fast).
    pub fn derive_with_cost(
        password: &[u8],
        community: &Community,
        m_kib: u32,
        t: u32,
    ) -> Result<Self, TransformError> {
        Self::derive_suite_with_cost(AeadSuite::ChaCha20Poly1305, password, community, m_kib, t)
    }

    pub fn derive_suite_with_cost(
        suite: AeadSuite,
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
        salt[..12].copy_from_slice(suite.salt_prefix());
        salt[12..].copy_from_slice(&community.0);
        let mut hardened = [0u8; 32];
        argon
            .hash_password_into(password, &salt, &mut hardened)
            .map_err(|_| TransformError::Kdf)?;
        Ok(RootKey {
            key: blake3::derive_key(suite.root_context(), &hardened),
            suite,
        })
    }

    pub fn suite(&self) -> AeadSuite {
        self.suite
    }

    /// The AEAD key of one sender session: BLAKE3-keyed(root, src MAC ‖ session id).
    fn session_cipher(&self, src: &Mac, session: u64) -> LessSafeKey {
        let mut input = [0u8; 14];
        input[..6].copy_from_slice(&src.0);
        input[6..].copy_from_slice(&session.to_be_bytes());
        let key = blake3::keyed_hash(&self.key, &input);
        // A 32-byte key is the only thing UnboundKey::new checks (both suites take 32).
        let unbound = UnboundKey::new(self.suite.algorithm(), key.as_bytes());
        LessSafeKey::new(unbound.unwrap_or_else(|_| unreachable!("32-byte key")))
    }
}

struct SenderState {
    session: u64,
    cipher: LessSafeKey,
    window: ReplayWindow,
    last_used: u64,
}

/// The transform's state: our sending session and what we know of every sender.
pub struct AeadTransform {
    root: RootKey,
    tx_mac: Mac,
    tx_session: u64,
    tx_cipher: LessSafeKey,
    /// The next counter to seal with. Atomic: two threads may seal for one session, each with
    /// counters it reserved ([`Self::reserve`]).
    tx_counter: AtomicU64,
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
            tx_counter: AtomicU64::new(0),
            senders: HashMap::with_capacity(DEFAULT_MAX_SENDERS),
            max_senders: DEFAULT_MAX_SENDERS,
            uses: 0,
        }
    }

    pub fn session(&self) -> u64 {
        self.tx_session
    }

    pub fn suite(&self) -> AeadSuite {
        self.root.suite
    }

    /// Reserves `n` counter values for sealing; each is handed out once, whichever thread
    /// reserves. Fails, reserving nothing, when the counter would run out.
    pub fn reserve(&self, n: u64) -> Result<Nonces, TransformError> {
        let next = self
            .tx_counter
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| c.checked_add(n))
            .map_err(|_| TransformError::Exhausted)?;
        Ok(Nonces {
            next,
            end: next + n,
        })
    }

    /// Seals `buf[16..16 + len]` in place with the next counter of `nonces`: writes the prefix
    /// into `buf[..16]` and the tag after the ciphertext. Returns the output length (`len + 32`).
    pub fn seal(
        &self,
        nonces: &mut Nonces,
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
        let counter = nonces.take().ok_or(TransformError::Exhausted)?;
        buf[..8].copy_from_slice(&self.tx_session.to_be_bytes());
        buf[8..16].copy_from_slice(&counter.to_be_bytes());
        let aad = ctx.aad();
        let (body, rest) = buf[AEAD_PREFIX..].split_at_mut(len);
        let tag = self
            .tx_cipher
            .seal_in_place_separate_tag(nonce(counter), Aad::from(&aad), body)
            .map_err(|_| TransformError::NoRoom)?;
        rest[..AEAD_TAG].copy_from_slice(tag.as_ref());
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
        let (body, rest) = buf[AEAD_PREFIX..].split_at_mut(len);
        let tag = Tag::try_from(&rest[..AEAD_TAG]).map_err(|_| TransformError::TooShort)?;
        let aad = ctx.aad();
        let open = |cipher: &LessSafeKey, body: &mut [u8]| {
            cipher
                .open_in_place_separate_tag(nonce(counter), Aad::from(&aad), tag, body, 0..)
                .map(drop)
                .map_err(|_| TransformError::Forged)
        };
        // The sender's current session: one lookup per datagram (the common case).
        if let Some(s) = self.senders.get_mut(&ctx.src_mac) {
            if s.session == session {
                if !s.window.check(counter) {
                    return Err(TransformError::Replay);
                }
                open(&s.cipher, body)?;
                self.uses += 1;
                s.window.mark(counter);
                s.last_used = self.uses;
                return Ok(len);
            }
            if (session >> 32) < (s.session >> 32) {
                return Err(TransformError::StaleSession);
            }
        }
        // A new sender, or a newer session of a known one.
        let cipher = self.root.session_cipher(&ctx.src_mac, session);
        open(&cipher, body)?;
        self.uses += 1;
        let mut window = ReplayWindow::default();
        window.mark(counter);
        self.remember(
            ctx.src_mac,
            SenderState {
                session,
                cipher,
                window,
                last_used: self.uses,
            },
        );
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

/// Counter values reserved for sealing ([`AeadTransform::reserve`]): `next..end`, each used
/// once. Neither `Copy` nor `Clone`, so no value can be used twice.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Nonces {
    next: u64,
    end: u64,
}

impl Nonces {
    /// The first `n` of these (fewer if there are not so many), for another thread to use.
    pub fn split_off_front(&mut self, n: u64) -> Nonces {
        let mid = self.next.saturating_add(n).min(self.end);
        let front = Nonces {
            next: self.next,
            end: mid,
        };
        self.next = mid;
        front
    }

    /// The next one to be used (tests).
    pub fn first(&self) -> u64 {
        self.next
    }

    /// How many are left.
    pub fn remaining(&self) -> u64 {
        self.end - self.next
    }

    fn take(&mut self) -> Option<u64> {
        (self.next < self.end).then(|| {
            self.next += 1;
            self.next - 1
        })
    }
}

/// Each session key seals each counter value once (the counter never wraps).
fn nonce(counter: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

fn prefix8(b: &[u8]) -> [u8; 8] {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    a
}

#[cfg(test)]
mod tests {
    use chacha20poly1305::ChaCha20Poly1305;
    use chacha20poly1305::aead::{AeadInOut, KeyInit};

    use super::*;
    use crate::random::Xorshift128Plus;

    /// The wire format is RFC 8439 ChaCha20-Poly1305: a second implementation (RustCrypto's)
    /// opens what ring sealed, byte for byte, and ring opens what it sealed.
    #[test]
    fn ring_output_is_rfc8439_as_rustcrypto_computes_it() {
        let community = Community::new("xcheck").expect("community");
        let root = RootKey {
            key: [0x5a; 32],
            suite: AeadSuite::ChaCha20Poly1305,
        };
        let mac = Mac([2, 1, 2, 3, 4, 5]);
        let ctx = PacketContext {
            community: &community,
            src_mac: mac,
            dst_mac: Mac([2, 9, 9, 9, 9, 9]),
            compression: 0,
            transform: AEAD_TRANSFORM_ID,
        };
        let mut rng = Xorshift128Plus::seeded(7);
        let tx = AeadTransform::new(root.clone(), mac, 1_790_000_000, &mut rng);
        let mut rx = AeadTransform::new(root.clone(), Mac([2, 0, 0, 0, 0, 9]), 1, &mut rng);
        for len in [0usize, 1, 15, 64, 1290, 1500] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 13 + len) as u8).collect();
            let mut buf = vec![0u8; len + AEAD_PREFIX + AEAD_TAG];
            buf[AEAD_PREFIX..AEAD_PREFIX + len].copy_from_slice(&plain);
            let mut nonces = tx.reserve(1).expect("counter left");
            let n = tx.seal(&mut nonces, &mut buf, len, &ctx).expect("seal");
            let wire = buf[..n].to_vec();

            let key = blake3::keyed_hash(&root.key, &{
                let mut k = [0u8; 14];
                k[..6].copy_from_slice(&mac.0);
                k[6..].copy_from_slice(&wire[..8]);
                k
            });
            let other = ChaCha20Poly1305::new(key.as_bytes().into());
            let mut nonce = [0u8; 12];
            nonce[4..].copy_from_slice(&wire[8..16]);
            let mut body = wire[AEAD_PREFIX..AEAD_PREFIX + len].to_vec();
            let tag = chacha20poly1305::Tag::try_from(&wire[AEAD_PREFIX + len..]).expect("tag");
            other
                .decrypt_inout_detached(&nonce.into(), &ctx.aad(), body.as_mut_slice().into(), &tag)
                .expect("RustCrypto opens ring's packet");
            assert_eq!(body, plain);

            let mut again = wire.clone();
            assert_eq!(rx.open(&mut again, &ctx), Ok(len));
            assert_eq!(&again[AEAD_PREFIX..AEAD_PREFIX + len], &plain[..]);
        }
    }
}
