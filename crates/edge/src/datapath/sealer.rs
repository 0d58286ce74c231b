//! Turns a frame in a headroom buffer into a PACKET datagram in place: compress (if it
//! shrinks), encrypt, write the header in front, encrypt the header (`-H`).

use std::ops::Range;

use n2n_crypto::compress::{Codec, lzo_bound};
use n2n_crypto::{PacketContext, RandomSource, Transform, Xorshift128Plus};
use n2n_proto::msg::{PacketHeader, compression};
use n2n_proto::{Datagram, Flags, Mac, Message};

use super::{BUF_LEN, DataConfig, FRAME_AT, MAX_FRAME, PACKET_HEADER, SharedStamps};

/// The sending half of the transform, shared by the TAP thread and the control path.
pub struct Sealer {
    transform: Transform,
    codec: Codec,
    rng: Xorshift128Plus,
    scratch: Vec<u8>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealer({})", self.transform.name())
    }
}

impl Sealer {
    pub fn new(transform: Transform, codec: Codec, seed: u64) -> Self {
        Sealer {
            transform,
            codec,
            rng: Xorshift128Plus::seeded(seed),
            scratch: vec![0u8; lzo_bound(MAX_FRAME)],
        }
    }

    /// `buf[FRAME_AT..FRAME_AT + len]` holds the frame. Returns the datagram's range in `buf`.
    pub fn seal(
        &mut self,
        cfg: &DataConfig,
        stamps: &SharedStamps,
        buf: &mut [u8; BUF_LEN],
        len: usize,
        dst: Mac,
        now_us: u64,
    ) -> Option<Range<usize>> {
        let mut comp = compression::NONE;
        let mut len = len;
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
        if let Some(key) = &cfg.header_key {
            let random = self.rng.next_u64() as u32;
            key.encrypt(
                &mut buf[start..end],
                PACKET_HEADER,
                stamps.next(now_us),
                random,
            );
        }
        Some(start..end)
    }
}
