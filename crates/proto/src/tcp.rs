//! TCP framing to the supernode (`-S2`, spec §3.1): a 2-byte big-endian length before each
//! message. A length above 2046 makes the receiver drop the connection.

use crate::error::{DecodeError, EncodeError};

/// The largest message a length prefix may announce.
pub const MAX_TCP_MESSAGE: usize = 2046;

/// Writes the 2-byte length prefix for a message of `len` bytes.
pub fn encode_prefix(len: usize) -> Result<[u8; 2], EncodeError> {
    if len > MAX_TCP_MESSAGE {
        return Err(EncodeError::BufferTooSmall {
            need: len,
            have: MAX_TCP_MESSAGE,
        });
    }
    Ok((len as u16).to_be_bytes())
}

/// Reassembles messages from a TCP byte stream in a fixed buffer (no allocation per message).
#[derive(Debug)]
pub struct Deframer {
    buf: [u8; MAX_TCP_MESSAGE + 2],
    len: usize,
}

impl Default for Deframer {
    fn default() -> Self {
        Deframer {
            buf: [0; MAX_TCP_MESSAGE + 2],
            len: 0,
        }
    }
}

impl Deframer {
    /// Feeds stream bytes; calls `on_message` for every complete message. Returns how many
    /// bytes of `input` were consumed; an error means the connection must be dropped.
    pub fn push(
        &mut self,
        mut input: &[u8],
        mut on_message: impl FnMut(&[u8]),
    ) -> Result<(), DecodeError> {
        while !input.is_empty() {
            let want = if self.len < 2 {
                2 - self.len
            } else {
                let announced = usize::from(u16::from_be_bytes([self.buf[0], self.buf[1]]));
                if announced > MAX_TCP_MESSAGE {
                    return Err(DecodeError::FrameTooLong(announced));
                }
                2 + announced - self.len
            };
            let take = want.min(input.len());
            self.buf[self.len..self.len + take].copy_from_slice(&input[..take]);
            self.len += take;
            input = &input[take..];
            if self.len >= 2 {
                let announced = usize::from(u16::from_be_bytes([self.buf[0], self.buf[1]]));
                if announced > MAX_TCP_MESSAGE {
                    return Err(DecodeError::FrameTooLong(announced));
                }
                if self.len == 2 + announced {
                    on_message(&self.buf[2..self.len]);
                    self.len = 0;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reassembles_split_and_joined_frames() {
        let mut stream = Vec::new();
        for msg in [&b"hello"[..], b"", b"n2n"] {
            stream.extend(encode_prefix(msg.len()).expect("small"));
            stream.extend(msg);
        }
        for split in 0..stream.len() {
            let mut d = Deframer::default();
            let mut got = Vec::new();
            d.push(&stream[..split], |m| got.push(m.to_vec()))
                .expect("ok");
            d.push(&stream[split..], |m| got.push(m.to_vec()))
                .expect("ok");
            assert_eq!(got, vec![b"hello".to_vec(), vec![], b"n2n".to_vec()]);
        }
    }

    #[test]
    fn oversize_frames_drop_the_connection() {
        let mut d = Deframer::default();
        assert_eq!(
            d.push(&[0x07, 0xff], |_| {}),
            Err(DecodeError::FrameTooLong(2047))
        );
        assert!(encode_prefix(2047).is_err());
    }
}
