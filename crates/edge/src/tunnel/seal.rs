//! Turns a frame in a headroom buffer into a PACKET datagram in place: compress (if it
//! shrinks), encrypt, write the header in front, encrypt the header (`-H`).

use std::ops::Range;
use std::sync::Arc;

use n2n_crypto::compress::{Codec, lzo_bound};
use n2n_crypto::transform::Nonces;
use n2n_crypto::{HeaderKey, PacketContext, RandomSource, Transform, Xorshift128Plus};
use n2n_proto::msg::{PacketHeader, compression};
use n2n_proto::{Datagram, Flags, Mac, Message};

use super::{BUF_LEN, FRAME_AT, MAX_FRAME, PACKET_HEADER, TunnelConfig};
use n2n_crypto::StampGenerator;

/// One thread's sealing state. The transform (an `-A6` edge's one sending session) is shared
/// by every sealer of the edge; the compressor, its scratch buffer and the IV source are each
/// sealer's own, so two threads can seal the frames of one batch at once.
pub struct Sealer {
    transform: Arc<Transform>,
    codec: Codec,
    rng: Xorshift128Plus,
    scratch: Vec<u8>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealer({})", self.transform.name())
    }
}

/// What every frame of one batch is sealed with.
pub struct SealWith<'a> {
    pub cfg: &'a TunnelConfig,
    pub stamps: &'a StampGenerator,
    /// User/password: the dynamic header key, which replaces the static one for PACKETs.
    pub dynamic_key: Option<&'a HeaderKey>,
    pub dst: Mac,
    pub wall_us: u64,
}

impl std::fmt::Debug for SealWith<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealWith({})", self.dst)
    }
}

impl Sealer {
    /// `compress`: whether frames are compressed (only then is the scratch buffer needed).
    pub fn new(transform: Arc<Transform>, codec: Codec, seed: u64, compress: bool) -> Self {
        let scratch = if compress {
            vec![0u8; lzo_bound(MAX_FRAME)]
        } else {
            Vec::new()
        };
        Sealer {
            transform,
            codec,
            rng: Xorshift128Plus::seeded(seed),
            scratch,
        }
    }

    /// A sealer for another thread, sealing for the same session.
    pub fn twin(&self, codec: Codec, seed: u64) -> Self {
        Sealer::new(
            Arc::clone(&self.transform),
            codec,
            seed,
            !self.scratch.is_empty(),
        )
    }

    /// What sealing `n` frames takes (`-A6`/`-A7` counters); `None` when the session is spent.
    pub fn reserve(&self, n: usize) -> Option<Nonces> {
        self.transform.reserve(n).ok()
    }

    /// `buf[FRAME_AT..FRAME_AT + len]` holds the frame. Returns the datagram's range in `buf`.
    pub fn seal(
        &mut self,
        with: &SealWith<'_>,
        nonces: &mut Nonces,
        buf: &mut [u8; BUF_LEN],
        len: usize,
    ) -> Option<Range<usize>> {
        let cfg = with.cfg;
        let mut comp = compression::NONE;
        let mut len = len.min(MAX_FRAME);
        if cfg.compression != compression::NONE
            && let Some(n) = self.codec.compress(
                cfg.compression,
                &buf[FRAME_AT..FRAME_AT + len],
                &mut self.scratch,
            )
        {
            buf[FRAME_AT..FRAME_AT + n].copy_from_slice(&self.scratch[..n]);
            len = n;
            comp = cfg.compression;
        }
        let ctx = PacketContext {
            community: &cfg.community,
            src_mac: cfg.own_mac,
            dst_mac: with.dst,
            compression: comp,
            transform: cfg.transform,
        };
        let r = self
            .transform
            .encrypt_reserved(nonces, &mut buf[PACKET_HEADER..], len, &ctx, &mut self.rng)
            .ok()?;
        let start = r.start;
        let end = PACKET_HEADER + r.end;
        let header = Datagram::new(
            cfg.community,
            Flags::EMPTY,
            Message::Packet(PacketHeader {
                src_mac: cfg.own_mac,
                dst_mac: with.dst,
                sock: None,
                compression: comp,
                transform: cfg.transform,
            }),
        );
        let n = header.encode(&mut buf[start..start + PACKET_HEADER]).ok()?;
        debug_assert_eq!(n, PACKET_HEADER);
        // User/password: the dynamic key, over the header and up to 16 payload bytes (the
        // cipher's IV; spec §4.5).
        let (key, hl) = match (with.dynamic_key, cfg.user_auth) {
            (Some(k), true) => (
                Some(k),
                PACKET_HEADER + (end - start - PACKET_HEADER).min(16),
            ),
            (_, true) => (None, PACKET_HEADER),
            _ => (cfg.header_key.as_deref(), PACKET_HEADER),
        };
        if cfg.user_auth && key.is_none() {
            // Not authenticated yet: nothing can be sent that peers could read.
            return None;
        }
        if let Some(key) = key {
            let random = self.rng.next_u64() as u32;
            key.encrypt(
                &mut buf[start..end],
                hl,
                with.stamps.next(with.wall_us),
                random,
            );
        }
        Some(start..end)
    }
}
