//! Turns a frame in a headroom buffer into a PACKET datagram in place: compress (if it
//! shrinks), encrypt, write the header in front, encrypt the header (`-H`).

use std::ops::Range;

use n2n_crypto::compress::{Codec, lzo_bound};
use n2n_crypto::{HeaderKey, PacketContext, RandomSource, Transform, Xorshift128Plus};
use n2n_proto::msg::{PacketHeader, compression};
use n2n_proto::{Datagram, Flags, Mac, Message};

use super::{BUF_LEN, FRAME_AT, MAX_FRAME, PACKET_HEADER, TunnelConfig};
use n2n_crypto::StampGenerator;

/// The sending half of the transform: one per edge, so an `-A6` edge has one sending session.
pub struct Sealer {
    transform: Transform,
    codec: Codec,
    rng: Xorshift128Plus,
    scratch: Vec<u8>,
    /// User/password: the dynamic header key, which replaces the static one for PACKETs.
    dynamic_key: Option<Box<HeaderKey>>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealer({})", self.transform.name())
    }
}

impl Sealer {
    /// `compress`: whether frames are compressed (only then is the scratch buffer needed).
    pub fn new(transform: Transform, codec: Codec, seed: u64, compress: bool) -> Self {
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
            dynamic_key: None,
        }
    }

    /// User/password: the dynamic header key the supernode handed over.
    pub fn set_dynamic_key(&mut self, key: HeaderKey) {
        self.dynamic_key = Some(Box::new(key));
    }

    /// `buf[FRAME_AT..FRAME_AT + len]` holds the frame. Returns the datagram's range in `buf`.
    pub fn seal(
        &mut self,
        cfg: &TunnelConfig,
        stamps: &StampGenerator,
        buf: &mut [u8; BUF_LEN],
        len: usize,
        dst: Mac,
        wall_us: u64,
    ) -> Option<Range<usize>> {
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
            dst_mac: dst,
            compression: comp,
            transform: cfg.transform,
        };
        let r = self
            .transform
            .encrypt(&mut buf[PACKET_HEADER..], len, &ctx, &mut self.rng)
            .ok()?;
        let start = r.start;
        let end = PACKET_HEADER + r.end;
        let header = Datagram::new(
            cfg.community,
            Flags::EMPTY,
            Message::Packet(PacketHeader {
                src_mac: cfg.own_mac,
                dst_mac: dst,
                sock: None,
                compression: comp,
                transform: cfg.transform,
            }),
        );
        let n = header.encode(&mut buf[start..start + PACKET_HEADER]).ok()?;
        debug_assert_eq!(n, PACKET_HEADER);
        // User/password: the dynamic key, over the header and up to 16 payload bytes (the
        // cipher's IV; spec §4.5).
        let (key, hl) = match (&self.dynamic_key, cfg.user_auth) {
            (Some(k), true) => (
                Some(&**k),
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
            key.encrypt(&mut buf[start..end], hl, stamps.next(wall_us), random);
        }
        Some(start..end)
    }
}
