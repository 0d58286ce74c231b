//! PACKET (code 3): the header in front of an encapsulated Ethernet frame (spec §3.5, §5.1).

use crate::codec::{Reader, Writer};
use crate::error::{DecodeError, EncodeError};
use crate::types::{Mac, Sock};

/// Compression ids (spec §5.7). 0 is invalid and rejected by C receivers.
pub mod compression {
    pub const INVALID: u8 = 0;
    pub const NONE: u8 = 1;
    pub const LZO: u8 = 2;
    pub const ZSTD: u8 = 3;
}

/// The PACKET fields before the transformed payload.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PacketHeader {
    pub src_mac: Mac,
    pub dst_mac: Mac,
    /// The original sender's public socket, added by a relaying supernode (SOCKET flag).
    pub sock: Option<Sock>,
    pub compression: u8,
    pub transform: u8,
}

impl PacketHeader {
    /// Length of a PACKET datagram up to the payload: 38, 46 (IPv4 sock) or 58 (IPv6 sock).
    pub fn datagram_header_len(&self) -> usize {
        38 + self.sock.map_or(0, |s| s.encoded_len())
    }

    pub(crate) fn decode(r: &mut Reader<'_>, has_sock: bool) -> Result<Self, DecodeError> {
        Ok(PacketHeader {
            src_mac: Mac::decode(r)?,
            dst_mac: Mac::decode(r)?,
            sock: if has_sock {
                Some(Sock::decode(r)?)
            } else {
                None
            },
            compression: r.u8()?,
            transform: r.u8()?,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        self.src_mac.encode(w)?;
        self.dst_mac.encode(w)?;
        if let Some(s) = &self.sock {
            s.encode(w)?;
        }
        w.u8(self.compression)?;
        w.u8(self.transform)
    }
}
