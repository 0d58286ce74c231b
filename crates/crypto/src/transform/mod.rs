//! PACKET payload transforms (spec §5): n2n's null, Twofish, AES, ChaCha20 and Speck, and
//! n2n-rs's authenticated ChaCha20-Poly1305. All work in place on a caller's buffer that has
//! [`PREFIX`] bytes free before the plaintext and [`SUFFIX`] bytes free after it.

mod aead;
mod cbc_cts;
mod legacy_stream;
mod replay;

use std::ops::Range;

use n2n_proto::{Community, Mac};

pub use aead::{
    AEAD_GCM_TRANSFORM_ID, AEAD_PREFIX, AEAD_TAG, AEAD_TRANSFORM_ID, AeadSuite, AeadTransform,
    Nonces, RootKey,
};
pub use cbc_cts::BlockCipher;
pub use legacy_stream::{LegacyChaCha20, LegacySpeck};
pub use replay::{ReplayWindow, WINDOW as REPLAY_WINDOW};

use crate::random::RandomSource;

/// Most bytes any transform puts before the plaintext.
pub const PREFIX: usize = 16;
/// Most bytes any transform puts after the plaintext.
pub const SUFFIX: usize = 16;

/// Transform ids on the wire.
pub mod id {
    pub const NULL: u8 = 1;
    pub const TWOFISH: u8 = 2;
    pub const AES: u8 = 3;
    pub const CHACHA20: u8 = 4;
    pub const SPECK: u8 = 5;
    pub const AEAD: u8 = super::AEAD_TRANSFORM_ID;
    pub const AEAD_GCM: u8 = super::AEAD_GCM_TRANSFORM_ID;
}

/// Why a payload could not be transformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransformError {
    #[error("payload too short for the transform")]
    TooShort,
    #[error("no room in the buffer for the transform's prefix or suffix")]
    NoRoom,
    #[error("authentication failed")]
    Forged,
    #[error("replayed or too old packet")]
    Replay,
    #[error("packet from an older session of its sender")]
    StaleSession,
    #[error("sealing for a MAC other than our own")]
    WrongSender,
    #[error("packet counter exhausted")]
    Exhausted,
    #[error("key derivation failed")]
    Kdf,
    #[error("transform {0} needs a key (-k)")]
    NeedsKey(u8),
    #[error("unknown transform id {0}")]
    Unknown(u8),
}

/// The PACKET header fields that identify a frame. The AEAD transform authenticates them;
/// the fields a supernode rewrites (TTL, flags, the socket it inserts) are not part of it.
#[derive(Debug, Clone, Copy)]
pub struct PacketContext<'a> {
    pub community: &'a Community,
    pub src_mac: Mac,
    pub dst_mac: Mac,
    pub compression: u8,
    pub transform: u8,
}

impl PacketContext<'_> {
    /// `community (20) ‖ src MAC ‖ dst MAC ‖ compression ‖ transform` (34 bytes).
    pub fn aad(&self) -> [u8; 34] {
        let mut a = [0u8; 34];
        a[..20].copy_from_slice(&self.community.0);
        a[20..26].copy_from_slice(&self.src_mac.0);
        a[26..32].copy_from_slice(&self.dst_mac.0);
        a[32] = self.compression;
        a[33] = self.transform;
        a
    }
}

/// A configured transform.
#[derive(Debug)]
pub enum Transform {
    Null,
    /// AES or Twofish in CBC-CS2.
    Cts {
        id: u8,
        cipher: BlockCipher,
    },
    ChaCha20(LegacyChaCha20),
    Speck(Box<LegacySpeck>),
    Aead(Box<AeadTransform>),
}

impl Transform {
    /// An n2n legacy transform from the `-k` key (`None` for `-A1`).
    pub fn legacy(id: u8, key: Option<&[u8]>) -> Result<Self, TransformError> {
        if id == id::NULL {
            return Ok(Transform::Null);
        }
        let key = key.ok_or(TransformError::NeedsKey(id))?;
        Ok(match id {
            id::TWOFISH => Transform::Cts {
                id,
                cipher: BlockCipher::twofish_from_password(key),
            },
            id::AES => Transform::Cts {
                id,
                cipher: BlockCipher::aes_from_password(key),
            },
            id::CHACHA20 => Transform::ChaCha20(LegacyChaCha20::from_password(key)),
            id::SPECK => Transform::Speck(Box::new(LegacySpeck::from_password(key))),
            other => return Err(TransformError::Unknown(other)),
        })
    }

    /// Whether it authenticates what it opens (`-A6`, `-A7`).
    pub fn is_authenticated(&self) -> bool {
        matches!(self, Transform::Aead(_))
    }

    pub fn id(&self) -> u8 {
        match self {
            Transform::Null => id::NULL,
            Transform::Cts { id, .. } => *id,
            Transform::ChaCha20(_) => id::CHACHA20,
            Transform::Speck(_) => id::SPECK,
            Transform::Aead(a) => a.suite().id(),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Transform::Null => "null",
            Transform::Cts { cipher, .. } => cipher.name(),
            Transform::ChaCha20(_) => "ChaCha20",
            Transform::Speck(_) => "Speck-CTR",
            Transform::Aead(a) => a.suite().name(),
        }
    }

    /// Reserves what sealing `n` payloads takes: `-A6`/`-A7` counter values (a batch's
    /// payloads may then be sealed on several threads); nothing for the other transforms.
    pub fn reserve(&self, n: usize) -> Result<Nonces, TransformError> {
        match self {
            Transform::Aead(a) => a.reserve(n as u64),
            _ => Ok(Nonces::default()),
        }
    }

    /// Encrypts in place. The plaintext is `buf[PREFIX..PREFIX + len]`, and `buf` must have
    /// [`SUFFIX`] more bytes after it. Returns where the output lies in `buf`.
    pub fn encrypt(
        &self,
        buf: &mut [u8],
        len: usize,
        ctx: &PacketContext<'_>,
        rng: &mut dyn RandomSource,
    ) -> Result<Range<usize>, TransformError> {
        let mut nonces = self.reserve(1)?;
        self.encrypt_reserved(&mut nonces, buf, len, ctx, rng)
    }

    /// [`Self::encrypt`] with what was reserved beforehand ([`Self::reserve`]); takes the
    /// nonce it uses from `nonces`. Needs only `&self`: two threads may seal at once.
    pub fn encrypt_reserved(
        &self,
        nonces: &mut Nonces,
        buf: &mut [u8],
        len: usize,
        ctx: &PacketContext<'_>,
        rng: &mut dyn RandomSource,
    ) -> Result<Range<usize>, TransformError> {
        if buf.len() < PREFIX + len {
            return Err(TransformError::NoRoom);
        }
        match self {
            Transform::Null => Ok(PREFIX..PREFIX + len),
            Transform::Cts { cipher, .. } => {
                rng.fill(&mut buf[..PREFIX]);
                cipher.encrypt_cts(&mut buf[..PREFIX + len]);
                Ok(0..PREFIX + len)
            }
            Transform::ChaCha20(c) => {
                let iv = random_iv(rng);
                buf[..PREFIX].copy_from_slice(&iv);
                c.apply(&iv, &mut buf[PREFIX..PREFIX + len]);
                Ok(0..PREFIX + len)
            }
            Transform::Speck(c) => {
                let iv = random_iv(rng);
                buf[..PREFIX].copy_from_slice(&iv);
                c.apply(&iv, &mut buf[PREFIX..PREFIX + len]);
                Ok(0..PREFIX + len)
            }
            Transform::Aead(a) => Ok(0..a.seal(nonces, buf, len, ctx)?),
        }
    }

    /// Decrypts the whole payload `buf` in place; returns where the plaintext lies in it.
    pub fn decrypt(
        &mut self,
        buf: &mut [u8],
        ctx: &PacketContext<'_>,
    ) -> Result<Range<usize>, TransformError> {
        match self {
            Transform::Null => Ok(0..buf.len()),
            Transform::Cts { cipher, .. } => {
                cipher.decrypt_cts(buf)?;
                Ok(PREFIX..buf.len())
            }
            Transform::ChaCha20(c) => {
                let iv = split_iv(buf)?;
                c.apply(&iv, &mut buf[PREFIX..]);
                Ok(PREFIX..buf.len())
            }
            Transform::Speck(c) => {
                let iv = split_iv(buf)?;
                c.apply(&iv, &mut buf[PREFIX..]);
                Ok(PREFIX..buf.len())
            }
            Transform::Aead(a) => {
                let n = a.open(buf, ctx)?;
                Ok(AEAD_PREFIX..AEAD_PREFIX + n)
            }
        }
    }
}

fn random_iv(rng: &mut dyn RandomSource) -> [u8; 16] {
    let mut iv = [0u8; 16];
    rng.fill(&mut iv);
    iv
}

fn split_iv(buf: &[u8]) -> Result<[u8; 16], TransformError> {
    let mut iv = [0u8; 16];
    iv.copy_from_slice(buf.get(..PREFIX).ok_or(TransformError::TooShort)?);
    Ok(iv)
}

#[cfg(test)]
mod tests;
