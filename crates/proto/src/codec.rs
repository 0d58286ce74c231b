//! The one bounds-checked reader and writer every codec goes through.

use crate::error::{DecodeError, EncodeError};

/// A cursor over received bytes.
///
/// In lenient mode (spec §3.8, the reference's behaviour for message bodies) a read past the end
/// yields zero bytes instead of an error, exactly as the C decoder's zeroed structures do.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    lenient: bool,
}

impl<'a> Reader<'a> {
    /// A strict reader: reading past the end is [`DecodeError::Truncated`].
    pub fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            lenient: false,
        }
    }

    /// A lenient reader: missing bytes read as zero.
    pub fn lenient(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            lenient: true,
        }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Everything not read yet, consuming it.
    pub fn rest(&mut self) -> &'a [u8] {
        let rest = self.buf.get(self.pos..).unwrap_or(&[]);
        self.pos = self.buf.len();
        rest
    }

    /// Reads exactly `N` bytes (zero-filled past the end when lenient).
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        let avail = self.remaining().min(N);
        if avail < N && !self.lenient {
            return Err(DecodeError::Truncated {
                need: self.pos + N,
                have: self.buf.len(),
            });
        }
        out[..avail].copy_from_slice(&self.buf[self.pos..self.pos + avail]);
        self.pos = (self.pos + N).min(self.buf.len());
        Ok(out)
    }

    /// Reads `out.len()` bytes into `out` (zero-filled past the end when lenient).
    pub fn fill(&mut self, out: &mut [u8]) -> Result<(), DecodeError> {
        let n = out.len();
        let avail = self.remaining().min(n);
        if avail < n && !self.lenient {
            return Err(DecodeError::Truncated {
                need: self.pos + n,
                have: self.buf.len(),
            });
        }
        out[..avail].copy_from_slice(&self.buf[self.pos..self.pos + avail]);
        out[avail..].fill(0);
        self.pos = (self.pos + n).min(self.buf.len());
        Ok(())
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub fn u16_be(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub fn u16_le(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub fn u32_be(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
}

/// A cursor writing into a caller-supplied buffer (no allocation).
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.pos == 0
    }

    pub fn bytes(&mut self, src: &[u8]) -> Result<(), EncodeError> {
        let end = self.pos + src.len();
        let have = self.buf.len();
        let dst = self
            .buf
            .get_mut(self.pos..end)
            .ok_or(EncodeError::BufferTooSmall { need: end, have })?;
        dst.copy_from_slice(src);
        self.pos = end;
        Ok(())
    }

    pub fn u8(&mut self, v: u8) -> Result<(), EncodeError> {
        self.bytes(&[v])
    }

    pub fn u16_be(&mut self, v: u16) -> Result<(), EncodeError> {
        self.bytes(&v.to_be_bytes())
    }

    pub fn u16_le(&mut self, v: u16) -> Result<(), EncodeError> {
        self.bytes(&v.to_le_bytes())
    }

    pub fn u32_be(&mut self, v: u32) -> Result<(), EncodeError> {
        self.bytes(&v.to_be_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_reader_reports_truncation() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u16_be(), Ok(0x0102));
        assert_eq!(r.u16_be(), Err(DecodeError::Truncated { need: 4, have: 3 }));
    }

    #[test]
    fn lenient_reader_zero_fills() {
        let mut r = Reader::lenient(&[1, 2, 3]);
        assert_eq!(r.u16_be(), Ok(0x0102));
        assert_eq!(r.u32_be(), Ok(0x0300_0000));
        assert_eq!(r.u8(), Ok(0));
        assert!(r.rest().is_empty());
    }

    #[test]
    fn writer_refuses_overflow() {
        let mut buf = [0u8; 3];
        let mut w = Writer::new(&mut buf);
        assert!(w.u16_be(7).is_ok());
        assert_eq!(
            w.u16_be(7),
            Err(EncodeError::BufferTooSmall { need: 4, have: 3 })
        );
        assert_eq!(w.len(), 2);
    }
}
