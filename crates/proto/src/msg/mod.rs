//! Every message body and the [`Datagram`] that ties a body to the common header.

mod packet;
mod peer;
mod register;
mod register_super;
mod register_super_ack;

pub use packet::{PacketHeader, compression};
pub use peer::{PeerInfo, QueryPeer};
pub use register::{Register, RegisterAck};
pub use register_super::{RegisterSuper, UnregisterSuper};
pub use register_super_ack::{MAX_SUPERNODE_ENTRIES, RegisterSuperAck, RegisterSuperNak};

use crate::codec::{Reader, Writer};
use crate::error::{DecodeError, EncodeError};
use crate::header::{DEFAULT_TTL, Flags, Header, MsgType};
use crate::types::Community;

/// A message body. Codes without a body in n2n 3.x (0 ping, 2 DEREGISTER, 9 FEDERATION,
/// 12 RE_REGISTER_SUPER) and unknown codes carry nothing; their bytes stay in the rest.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Message {
    Ping,
    Register(Register),
    Deregister,
    Packet(PacketHeader),
    RegisterAck(RegisterAck),
    RegisterSuper(RegisterSuper),
    UnregisterSuper(UnregisterSuper),
    RegisterSuperAck(RegisterSuperAck),
    RegisterSuperNak(RegisterSuperNak),
    Federation,
    PeerInfo(PeerInfo),
    QueryPeer(QueryPeer),
    ReRegisterSuper,
    Unknown(u8),
}

impl Message {
    pub fn msg_type(&self) -> MsgType {
        match self {
            Message::Ping => MsgType::Ping,
            Message::Register(_) => MsgType::Register,
            Message::Deregister => MsgType::Deregister,
            Message::Packet(_) => MsgType::Packet,
            Message::RegisterAck(_) => MsgType::RegisterAck,
            Message::RegisterSuper(_) => MsgType::RegisterSuper,
            Message::UnregisterSuper(_) => MsgType::UnregisterSuper,
            Message::RegisterSuperAck(_) => MsgType::RegisterSuperAck,
            Message::RegisterSuperNak(_) => MsgType::RegisterSuperNak,
            Message::Federation => MsgType::Federation,
            Message::PeerInfo(_) => MsgType::PeerInfo,
            Message::QueryPeer(_) => MsgType::QueryPeer,
            Message::ReRegisterSuper => MsgType::ReRegisterSuper,
            Message::Unknown(code) => MsgType::Unknown(*code),
        }
    }

    /// Whether the SOCKET flag belongs to this body (it then says an optional socket follows),
    /// and if so whether that socket is present.
    fn socket_flag(&self) -> Option<bool> {
        match self {
            Message::Register(m) => Some(m.sock.is_some()),
            Message::Packet(m) => Some(m.sock.is_some()),
            Message::RegisterAck(m) => Some(m.sock.is_some()),
            Message::RegisterSuper(m) => Some(m.sock.is_some()),
            Message::PeerInfo(m) => Some(m.preferred_sock.is_some()),
            _ => None,
        }
    }
}

/// A whole n2n datagram: header fields plus body. For the bodies whose optional socket is
/// signalled by the SOCKET flag, `flags` never holds that bit: [`Datagram::encode`] derives it
/// from the body, so the two cannot disagree.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Datagram {
    pub ttl: u8,
    pub flags: Flags,
    pub community: Community,
    pub msg: Message,
}

impl Datagram {
    /// A datagram as an edge or supernode sends it first: TTL 2.
    pub fn new(community: Community, flags: Flags, msg: Message) -> Self {
        let mut d = Datagram {
            ttl: DEFAULT_TTL,
            flags,
            community,
            msg,
        };
        if d.msg.socket_flag().is_some() {
            d.flags = d.flags.without(Flags::SOCKET);
        }
        d
    }

    /// The flags word as it goes on the wire (with the body's SOCKET bit).
    pub fn wire_flags(&self) -> Flags {
        match self.msg.socket_flag() {
            Some(present) => self.flags.set(Flags::SOCKET, present),
            None => self.flags,
        }
    }

    /// Decodes a datagram. Returns the bytes after the body: the PACKET payload, a
    /// user/password trailer, or whatever else follows (the reference ignores it too).
    pub fn decode(bytes: &[u8]) -> Result<(Datagram, &[u8]), DecodeError> {
        let header = Header::decode(&mut Reader::new(bytes))?;
        let mut r = Reader::lenient(bytes.get(crate::COMMON_HEADER_LEN..).unwrap_or(&[]));
        let sock = header.flags.contains(Flags::SOCKET);
        let msg = match header.msg_type {
            MsgType::Ping => Message::Ping,
            MsgType::Register => Message::Register(Register::decode(&mut r, sock)?),
            MsgType::Deregister => Message::Deregister,
            MsgType::Packet => Message::Packet(PacketHeader::decode(&mut r, sock)?),
            MsgType::RegisterAck => Message::RegisterAck(RegisterAck::decode(&mut r, sock)?),
            MsgType::RegisterSuper => Message::RegisterSuper(RegisterSuper::decode(&mut r, sock)?),
            MsgType::UnregisterSuper => Message::UnregisterSuper(UnregisterSuper::decode(&mut r)?),
            MsgType::RegisterSuperAck => {
                Message::RegisterSuperAck(RegisterSuperAck::decode(&mut r)?)
            }
            MsgType::RegisterSuperNak => {
                Message::RegisterSuperNak(RegisterSuperNak::decode(&mut r)?)
            }
            MsgType::Federation => Message::Federation,
            MsgType::PeerInfo => Message::PeerInfo(PeerInfo::decode(&mut r, sock)?),
            MsgType::QueryPeer => Message::QueryPeer(QueryPeer::decode(&mut r)?),
            MsgType::ReRegisterSuper => Message::ReRegisterSuper,
            MsgType::Unknown(code) => Message::Unknown(code),
        };
        let d = Datagram::new(header.community, header.flags, msg);
        let d = Datagram {
            ttl: header.ttl,
            ..d
        };
        Ok((d, r.rest()))
    }

    /// Encodes header and body into `out`; returns the length written.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::new(out);
        let header = Header {
            ttl: self.ttl,
            flags: self.wire_flags(),
            msg_type: self.msg.msg_type(),
            community: self.community,
        };
        header.encode(&mut w)?;
        match &self.msg {
            Message::Register(m) => m.encode(&mut w)?,
            Message::Packet(m) => m.encode(&mut w)?,
            Message::RegisterAck(m) => m.encode(&mut w)?,
            Message::RegisterSuper(m) => m.encode(&mut w)?,
            Message::UnregisterSuper(m) => m.encode(&mut w)?,
            Message::RegisterSuperAck(m) => m.encode(&mut w)?,
            Message::RegisterSuperNak(m) => m.encode(&mut w)?,
            Message::PeerInfo(m) => m.encode(&mut w)?,
            Message::QueryPeer(m) => m.encode(&mut w)?,
            Message::Ping
            | Message::Deregister
            | Message::Federation
            | Message::ReRegisterSuper
            | Message::Unknown(_) => {}
        }
        Ok(w.len())
    }

    /// Encodes into a new vector (control messages; the data path uses [`Datagram::encode`]).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut buf = [0u8; 2048];
        // Invariant: the largest message (an ACK with 44 entries and a 48-byte token) is
        // under 1300 bytes, so a 2048-byte buffer always suffices.
        let n = self.encode(&mut buf).unwrap_or(0);
        buf[..n].to_vec()
    }
}

#[cfg(test)]
mod tests;
