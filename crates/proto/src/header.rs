//! The 24-byte common header (spec §3.2) and the packet codes (§3.3).

use crate::codec::{Reader, Writer};
use crate::error::{DecodeError, EncodeError};
use crate::types::Community;

pub const PKT_VERSION: u8 = 3;
pub const COMMON_HEADER_LEN: usize = 24;
/// TTL every sender puts in a new packet.
pub const DEFAULT_TTL: u8 = 2;

/// The flag bits of the flags word (mask 0xFFE0); the packet code lives in [`MsgType`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug)]
pub struct Flags(u16);

impl Flags {
    pub const FROM_SUPERNODE: Flags = Flags(0x0020);
    pub const SOCKET: Flags = Flags(0x0040);
    pub const OPTIONS: Flags = Flags(0x0080);
    pub const MASK: u16 = 0xFFE0;
    pub const EMPTY: Flags = Flags(0);

    /// Keeps only the flag bits; the code bits are dropped.
    pub const fn from_bits(bits: u16) -> Self {
        Flags(bits & Self::MASK)
    }

    pub const fn bits(self) -> u16 {
        self.0
    }

    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    #[must_use]
    pub const fn with(self, other: Flags) -> Self {
        Flags(self.0 | other.0)
    }

    #[must_use]
    pub const fn without(self, other: Flags) -> Self {
        Flags(self.0 & !other.0)
    }

    #[must_use]
    pub const fn set(self, other: Flags, on: bool) -> Self {
        if on {
            self.with(other)
        } else {
            self.without(other)
        }
    }
}

/// The 5-bit packet code. Total over all values: unknown codes are data, not errors.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum MsgType {
    Ping,
    Register,
    Deregister,
    Packet,
    RegisterAck,
    RegisterSuper,
    UnregisterSuper,
    RegisterSuperAck,
    RegisterSuperNak,
    Federation,
    PeerInfo,
    QueryPeer,
    ReRegisterSuper,
    Unknown(u8),
}

impl From<u8> for MsgType {
    fn from(code: u8) -> Self {
        match code {
            0 => MsgType::Ping,
            1 => MsgType::Register,
            2 => MsgType::Deregister,
            3 => MsgType::Packet,
            4 => MsgType::RegisterAck,
            5 => MsgType::RegisterSuper,
            6 => MsgType::UnregisterSuper,
            7 => MsgType::RegisterSuperAck,
            8 => MsgType::RegisterSuperNak,
            9 => MsgType::Federation,
            10 => MsgType::PeerInfo,
            11 => MsgType::QueryPeer,
            12 => MsgType::ReRegisterSuper,
            other => MsgType::Unknown(other),
        }
    }
}

impl From<MsgType> for u8 {
    fn from(t: MsgType) -> u8 {
        match t {
            MsgType::Ping => 0,
            MsgType::Register => 1,
            MsgType::Deregister => 2,
            MsgType::Packet => 3,
            MsgType::RegisterAck => 4,
            MsgType::RegisterSuper => 5,
            MsgType::UnregisterSuper => 6,
            MsgType::RegisterSuperAck => 7,
            MsgType::RegisterSuperNak => 8,
            MsgType::Federation => 9,
            MsgType::PeerInfo => 10,
            MsgType::QueryPeer => 11,
            MsgType::ReRegisterSuper => 12,
            MsgType::Unknown(c) => c & 0x1f,
        }
    }
}

/// The common header of every datagram.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Header {
    pub ttl: u8,
    pub flags: Flags,
    pub msg_type: MsgType,
    pub community: Community,
}

impl Header {
    pub fn new(msg_type: MsgType, community: Community) -> Self {
        Header {
            ttl: DEFAULT_TTL,
            flags: Flags::EMPTY,
            msg_type,
            community,
        }
    }

    /// Decodes the header; a version other than 3 is refused (the reference drops it).
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = r.u8()?;
        if version != PKT_VERSION {
            return Err(DecodeError::Version(version));
        }
        let ttl = r.u8()?;
        let word = r.u16_be()?;
        let community = Community::decode(r)?;
        Ok(Header {
            ttl,
            flags: Flags::from_bits(word),
            msg_type: MsgType::from((word & 0x1f) as u8),
            community,
        })
    }

    pub fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u8(PKT_VERSION)?;
        w.u8(self.ttl)?;
        w.u16_be(self.flags.bits() | u16::from(u8::from(self.msg_type)))?;
        self.community.encode(w)
    }
}

/// The supernode's plain-header test (spec §3.9): plain iff at least 24 bytes, byte 0 == 3,
/// byte 23 == 0, code ≤ 11 and the flags word < 0x0080.
pub fn looks_plain(datagram: &[u8]) -> bool {
    if datagram.len() < COMMON_HEADER_LEN {
        return false;
    }
    let word = u16::from_be_bytes([datagram[2], datagram[3]]);
    datagram[0] == PKT_VERSION && datagram[23] == 0 && word & 0x1f <= 11 && word < 0x0080
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msg_type_is_total_and_round_trips() {
        for code in 0u8..32 {
            assert_eq!(u8::from(MsgType::from(code)), code);
        }
        assert_eq!(MsgType::from(13), MsgType::Unknown(13));
    }

    #[test]
    fn plain_heuristic() {
        let mut d = [0u8; 24];
        d[0] = 3;
        d[3] = 5;
        assert!(looks_plain(&d));
        d[3] = 12;
        assert!(!looks_plain(&d), "RE_REGISTER_SUPER is only ever encrypted");
        d[3] = 0x85;
        assert!(!looks_plain(&d));
        d[3] = 5;
        d[23] = 1;
        assert!(!looks_plain(&d));
        assert!(!looks_plain(&d[..23]));
    }
}
