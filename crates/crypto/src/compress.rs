//! PACKET compression (spec §5.7): LZO1X (id 2, `-z1`) and ZSTD (id 3, `-z2`), both into
//! caller-supplied buffers with a bounded output (frames decompress to at most 2048 bytes).
//!
//! The LZO1X codec is written here: the reference's decoder is miniLZO's, so any valid LZO1X
//! stream works; the decoder checks every length and distance instead of trusting the input.

use n2n_proto::msg::compression;

/// Largest decompressed frame accepted (N2N_PKT_BUF_SIZE).
pub const MAX_DECOMPRESSED: usize = 2048;
/// ZSTD level the reference uses.
pub const ZSTD_LEVEL: i32 = 7;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CompressError {
    #[error("compressed data is malformed")]
    Malformed,
    #[error("decompressed data exceeds the buffer")]
    TooLarge,
    #[error("unknown compression id {0}")]
    Unknown(u8),
    #[error("zstd: {0}")]
    Zstd(&'static str),
}

/// Worst-case LZO1X output size for `n` input bytes.
pub const fn lzo_bound(n: usize) -> usize {
    n + n / 16 + 64 + 3
}

/// Compresses `src` into `dst` as an LZO1X stream; returns the length written, or `None`
/// when `dst` is too small (callers size it with [`lzo_bound`] or treat it as "not smaller").
pub fn lzo_compress(src: &[u8], dst: &mut [u8]) -> Option<usize> {
    let mut enc = LzoEncoder {
        out: dst,
        pos: 0,
        state_at: None,
    };
    let mut table = [0u16; 1 << 12];
    let mut lit_start = 0usize;
    let mut i = 0usize;
    while i + 4 <= src.len() {
        let word = u32::from_le_bytes([src[i], src[i + 1], src[i + 2], src[i + 3]]);
        let h = (word.wrapping_mul(0x9E37_79B1) >> 20) as usize;
        let cand = usize::from(table[h]);
        table[h] = i as u16;
        let dist = i - cand;
        if cand < i && dist <= 0x4000 && src[cand..cand + 3] == src[i..i + 3] {
            let mut len = 3;
            while i + len < src.len() && src[cand + len] == src[i + len] {
                len += 1;
            }
            enc.literals(&src[lit_start..i], lit_start == 0)?;
            enc.matched(len, dist)?;
            i += len;
            lit_start = i;
        } else {
            i += 1;
        }
    }
    enc.literals(&src[lit_start..], lit_start == 0)?;
    // End of stream: an M4 match of distance 16384.
    enc.byte(0x11)?;
    enc.byte(0)?;
    enc.byte(0)?;
    Some(enc.pos)
}

struct LzoEncoder<'a> {
    out: &'a mut [u8],
    pos: usize,
    /// Where the last match keeps its 2-bit "literals follow" count.
    state_at: Option<usize>,
}

impl LzoEncoder<'_> {
    fn byte(&mut self, b: u8) -> Option<()> {
        *self.out.get_mut(self.pos)? = b;
        self.pos += 1;
        Some(())
    }

    /// `base` plus a long length: zero bytes for every 255, then the remainder (1..=255).
    fn long_len(&mut self, rem: usize) -> Option<()> {
        let mut rem = rem;
        while rem > 255 {
            self.byte(0)?;
            rem -= 255;
        }
        self.byte(rem as u8)
    }

    fn literals(&mut self, lit: &[u8], at_start: bool) -> Option<()> {
        let n = lit.len();
        if n == 0 {
            return Some(());
        }
        if at_start && n <= 238 {
            self.byte(17 + n as u8)?;
        } else if n <= 3 {
            // Folded into the previous match's state bits (never at the start: handled above).
            let at = self.state_at?;
            self.out[at] |= n as u8;
        } else if n <= 18 {
            self.byte((n - 3) as u8)?;
        } else {
            self.byte(0)?;
            self.long_len(n - 18)?;
        }
        let end = self.pos + n;
        self.out.get_mut(self.pos..end)?.copy_from_slice(lit);
        self.pos = end;
        self.state_at = None;
        Some(())
    }

    fn matched(&mut self, len: usize, dist: usize) -> Option<()> {
        if len <= 8 && dist <= 0x800 {
            // M2: LLL DDD SS, then 8 more distance bits.
            let d = dist - 1;
            self.state_at = Some(self.pos);
            self.byte((((len - 1) << 5) | ((d & 7) << 2)) as u8)?;
            self.byte((d >> 3) as u8)
        } else {
            // M3: 001 LLLLL (+ long length), then LE16 of (distance - 1) << 2 | state.
            if len <= 33 {
                self.byte(0x20 | (len - 2) as u8)?;
            } else {
                self.byte(0x20)?;
                self.long_len(len - 33)?;
            }
            let d = (dist - 1) << 2;
            self.state_at = Some(self.pos);
            self.byte(d as u8)?;
            self.byte((d >> 8) as u8)
        }
    }
}

/// Decompresses an LZO1X stream into `dst`; returns the length written. Malformed or
/// oversized input is an error, never a panic or an out-of-bounds access.
pub fn lzo_decompress(src: &[u8], dst: &mut [u8]) -> Result<usize, CompressError> {
    let mut d = LzoDecoder {
        src,
        ip: 0,
        dst,
        op: 0,
    };
    d.run()?;
    Ok(d.op)
}

struct LzoDecoder<'a, 'b> {
    src: &'a [u8],
    ip: usize,
    dst: &'b mut [u8],
    op: usize,
}

impl LzoDecoder<'_, '_> {
    fn next(&mut self) -> Result<usize, CompressError> {
        let b = *self.src.get(self.ip).ok_or(CompressError::Malformed)?;
        self.ip += 1;
        Ok(usize::from(b))
    }

    /// A length continued in zero bytes (255 each) and a final non-zero byte.
    fn long_len(&mut self, base: usize) -> Result<usize, CompressError> {
        let mut len = base;
        loop {
            let b = self.next()?;
            if b != 0 {
                return Ok(len + b);
            }
            len += 255;
            if len > MAX_DECOMPRESSED * 2 {
                return Err(CompressError::TooLarge);
            }
        }
    }

    fn copy_literals(&mut self, n: usize) -> Result<(), CompressError> {
        let src = self
            .src
            .get(self.ip..self.ip + n)
            .ok_or(CompressError::Malformed)?;
        let dst = self
            .dst
            .get_mut(self.op..self.op + n)
            .ok_or(CompressError::TooLarge)?;
        dst.copy_from_slice(src);
        self.ip += n;
        self.op += n;
        Ok(())
    }

    fn copy_match(&mut self, dist: usize, len: usize) -> Result<(), CompressError> {
        if dist == 0 || dist > self.op {
            return Err(CompressError::Malformed);
        }
        if self.op + len > self.dst.len() {
            return Err(CompressError::TooLarge);
        }
        for _ in 0..len {
            self.dst[self.op] = self.dst[self.op - dist];
            self.op += 1;
        }
        Ok(())
    }

    fn run(&mut self) -> Result<(), CompressError> {
        // `state`: literals copied by the previous instruction (0, 1..=3, or 4 for a run).
        let mut state;
        let first = *self.src.first().ok_or(CompressError::Malformed)?;
        if first > 17 {
            self.ip = 1;
            let n = usize::from(first) - 17;
            self.copy_literals(n)?;
            state = if n < 4 { n } else { 4 };
        } else {
            state = 0;
        }
        loop {
            let t = self.next()?;
            if t < 16 {
                match state {
                    0 => {
                        let n = if t == 0 { self.long_len(18)? } else { t + 3 };
                        self.copy_literals(n)?;
                        state = 4;
                        continue;
                    }
                    1..=3 => {
                        let h = self.next()?;
                        self.copy_match((h << 2) + (t >> 2) + 1, 2)?;
                    }
                    _ => {
                        let h = self.next()?;
                        self.copy_match((h << 2) + (t >> 2) + 2049, 3)?;
                    }
                }
                state = t & 3;
            } else if t < 32 {
                let len = if t & 7 == 0 {
                    self.long_len(9)?
                } else {
                    (t & 7) + 2
                };
                let le = self.next()? | (self.next()? << 8);
                let dist = 16384 + ((t & 8) << 11) + (le >> 2);
                if dist == 16384 {
                    return if self.ip == self.src.len() {
                        Ok(())
                    } else {
                        Err(CompressError::Malformed)
                    };
                }
                self.copy_match(dist, len)?;
                state = le & 3;
            } else if t < 64 {
                let len = if t & 31 == 0 {
                    self.long_len(33)?
                } else {
                    (t & 31) + 2
                };
                let le = self.next()? | (self.next()? << 8);
                self.copy_match((le >> 2) + 1, len)?;
                state = le & 3;
            } else {
                let h = self.next()?;
                let len = (t >> 5) + 1;
                self.copy_match((h << 3) + ((t >> 2) & 7) + 1, len)?;
                state = t & 3;
            }
            if state > 0 {
                self.copy_literals(state)?;
            }
        }
    }
}

/// The compressor/decompressor pair a node keeps (ZSTD contexts are reused, not reallocated).
/// The ZSTD decompressor (about 100 KiB) is made on the first ZSTD payload, so a node that
/// never sees one (and the simulator's many edges) does not carry it.
pub struct Codec {
    zstd_c: Option<zstd::bulk::Compressor<'static>>,
    zstd_d: Option<zstd::bulk::Decompressor<'static>>,
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Codec")
    }
}

impl Codec {
    /// `compression` is the id this node sends with (1 none, 2 LZO, 3 ZSTD); every node can
    /// decode all three.
    pub fn new(compression: u8) -> Result<Self, CompressError> {
        let zstd_c = if compression == compression::ZSTD {
            Some(zstd::bulk::Compressor::new(ZSTD_LEVEL).map_err(|_| CompressError::Zstd("init"))?)
        } else {
            None
        };
        Ok(Codec {
            zstd_c,
            zstd_d: None,
        })
    }

    /// Compresses `src` into `dst` with `id`; `Some(len)` only when strictly smaller than
    /// the input (the reference sends the frame uncompressed otherwise).
    pub fn compress(&mut self, id: u8, src: &[u8], dst: &mut [u8]) -> Option<usize> {
        let n = match id {
            compression::LZO => lzo_compress(src, dst)?,
            compression::ZSTD => self.zstd_c.as_mut()?.compress_to_buffer(src, dst).ok()?,
            _ => return None,
        };
        (n < src.len()).then_some(n)
    }

    /// Decompresses a payload with compression byte `id` into `dst`.
    pub fn decompress(
        &mut self,
        id: u8,
        src: &[u8],
        dst: &mut [u8],
    ) -> Result<usize, CompressError> {
        let dst_len = dst.len().min(MAX_DECOMPRESSED);
        let dst = &mut dst[..dst_len];
        match id {
            compression::NONE => {
                dst.get_mut(..src.len())
                    .ok_or(CompressError::TooLarge)?
                    .copy_from_slice(src);
                Ok(src.len())
            }
            compression::LZO => lzo_decompress(src, dst),
            compression::ZSTD => {
                if self.zstd_d.is_none() {
                    let d =
                        zstd::bulk::Decompressor::new().map_err(|_| CompressError::Zstd("init"))?;
                    self.zstd_d = Some(d);
                }
                let d = self.zstd_d.as_mut().ok_or(CompressError::Zstd("init"))?;
                d.decompress_to_buffer(src, dst)
                    .map_err(|_| CompressError::Zstd("malformed"))
            }
            other => Err(CompressError::Unknown(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(data: &[u8]) {
        let mut c = vec![0u8; lzo_bound(data.len())];
        let n = lzo_compress(data, &mut c).expect("fits the bound");
        let mut d = vec![0u8; data.len()];
        assert_eq!(lzo_decompress(&c[..n], &mut d), Ok(data.len()));
        assert_eq!(d, data);
        // An independent LZO1X decoder agrees that the stream is valid.
        let other =
            lzokay_native::decompress_all(&c[..n], Some(data.len())).expect("lzokay decodes");
        assert_eq!(other, data);
    }

    #[test]
    fn lzo_round_trips() {
        round_trip(b"");
        round_trip(b"a");
        round_trip(b"abc");
        round_trip(&[0u8; 242]);
        round_trip(&[7u8; 2000]);
        let text = b"the quick brown fox jumps over the lazy dog; the quick brown fox again";
        round_trip(text);
        let mixed: Vec<u8> = (0..1500u32)
            .map(|i| (i * i % 251) as u8 ^ (i / 100) as u8)
            .collect();
        round_trip(&mixed);
        let mut x = 1u32;
        let noise: Vec<u8> = (0..1500)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        round_trip(&noise);
    }

    #[test]
    fn lzo_compresses_zero_pings_well() {
        let frame = [0u8; 242];
        let mut c = [0u8; 400];
        let n = lzo_compress(&frame, &mut c).expect("fits");
        assert!(n < 40, "{n} bytes");
    }

    #[test]
    fn lzo_rejects_garbage_without_panicking() {
        let mut d = [0u8; 64];
        assert!(lzo_decompress(&[], &mut d).is_err());
        assert!(lzo_decompress(&[0x11, 0, 0, 5], &mut d).is_err());
        assert!(
            lzo_decompress(&[0x20 | 5, 0xff, 0xff], &mut d).is_err(),
            "distance before start"
        );
        assert!(lzo_decompress(&[0, 0, 0, 0], &mut d).is_err());
        let long_run = [&[17u8 + 200][..], &[1u8; 200][..], &[0x11, 0, 0][..]].concat();
        assert_eq!(
            lzo_decompress(&long_run, &mut d),
            Err(CompressError::TooLarge)
        );
    }

    #[test]
    fn zstd_round_trip_and_only_when_smaller() {
        let mut codec = Codec::new(compression::ZSTD).expect("zstd");
        let frame = [0u8; 242];
        let mut c = [0u8; 512];
        let n = codec
            .compress(compression::ZSTD, &frame, &mut c)
            .expect("smaller");
        let mut d = [0u8; 2048];
        assert_eq!(
            codec.decompress(compression::ZSTD, &c[..n], &mut d),
            Ok(242)
        );
        let tiny = [1u8, 2, 3];
        assert_eq!(codec.compress(compression::ZSTD, &tiny, &mut c), None);
        assert_eq!(codec.compress(compression::LZO, &tiny, &mut c), None);
        assert!(
            codec.decompress(0, &tiny, &mut d).is_err(),
            "id 0 is invalid"
        );
    }
}
