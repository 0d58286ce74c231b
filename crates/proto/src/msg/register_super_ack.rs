//! REGISTER_SUPER_ACK (code 7) and REGISTER_SUPER_NAK (code 8): the supernode's answers.

use crate::codec::{Reader, Writer};
use crate::error::{DecodeError, EncodeError};
use crate::types::{Auth, IpSubnet, Mac, Sock, SupernodeEntry};

/// At most this many 26-byte supernode entries fit in an ACK (spec §3.7, §9).
pub const MAX_SUPERNODE_ENTRIES: usize = 44;

/// Registration accepted.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RegisterSuperAck {
    pub cookie: u32,
    /// The supernode's MAC.
    pub src_mac: Mac,
    /// The assigned address, or 0.0.0.0/0.
    pub dev_addr: IpSubnet,
    /// Always 15; ignored by edges.
    pub lifetime: u16,
    /// The registrant's public socket as the supernode sees it; always present on the wire.
    pub sock: Sock,
    pub auth: Auth,
    /// Other supernodes of the federation, at most [`MAX_SUPERNODE_ENTRIES`].
    pub supernodes: Vec<SupernodeEntry>,
    pub key_time: u32,
}

impl RegisterSuperAck {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let cookie = r.u32_be()?;
        let src_mac = Mac::decode(r)?;
        let dev_addr = IpSubnet::decode(r)?;
        let lifetime = r.u16_be()?;
        let sock = Sock::decode(r)?;
        let auth = Auth::decode(r)?;
        let num_sn = usize::from(r.u8()?);
        // Cap the count by what the ACK can hold and what the datagram carries.
        let count = num_sn
            .min(MAX_SUPERNODE_ENTRIES)
            .min(r.remaining() / SupernodeEntry::LEN);
        let mut supernodes = Vec::with_capacity(count);
        for _ in 0..count {
            supernodes.push(SupernodeEntry::decode(r)?);
        }
        let key_time = r.u32_be()?;
        Ok(RegisterSuperAck {
            cookie,
            src_mac,
            dev_addr,
            lifetime,
            sock,
            auth,
            supernodes,
            key_time,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u32_be(self.cookie)?;
        self.src_mac.encode(w)?;
        self.dev_addr.encode(w)?;
        w.u16_be(self.lifetime)?;
        self.sock.encode(w)?;
        self.auth.encode(w)?;
        let entries = &self.supernodes[..self.supernodes.len().min(MAX_SUPERNODE_ENTRIES)];
        w.u8(entries.len() as u8)?;
        for e in entries {
            e.encode(w)?;
        }
        w.u32_be(self.key_time)
    }
}

/// Registration refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RegisterSuperNak {
    /// Echo of the refused request's cookie.
    pub cookie: u32,
    /// The refused edge's MAC.
    pub src_mac: Mac,
    pub auth: Auth,
}

impl RegisterSuperNak {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(RegisterSuperNak {
            cookie: r.u32_be()?,
            src_mac: Mac::decode(r)?,
            auth: Auth::decode(r)?,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u32_be(self.cookie)?;
        self.src_mac.encode(w)?;
        self.auth.encode(w)
    }
}
