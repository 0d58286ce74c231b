//! QUERY_PEER (code 11) and PEER_INFO (code 10): peer look-up and supernode ping/pong.

use crate::codec::{Reader, Writer};
use crate::error::{DecodeError, EncodeError};
use crate::types::{Mac, Sock, VersionString};

/// Look-up of a peer's socket; a null target is a PING to the supernode.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct QueryPeer {
    pub src_mac: Mac,
    pub target_mac: Mac,
    pub aflags: u16,
}

impl QueryPeer {
    pub fn is_ping(&self) -> bool {
        self.target_mac.is_null()
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(QueryPeer {
            src_mac: Mac::decode(r)?,
            target_mac: Mac::decode(r)?,
            aflags: r.u16_be()?,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        self.src_mac.encode(w)?;
        self.target_mac.encode(w)?;
        w.u16_be(self.aflags)
    }
}

/// Answer to QUERY_PEER; with a null `mac` it is the PONG carrying load, uptime and version.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PeerInfo {
    pub aflags: u16,
    /// For a PONG the supernode's MAC; otherwise the MAC of the edge that asked.
    pub src_mac: Mac,
    /// The looked-up edge (null for a PONG).
    pub mac: Mac,
    /// Public socket of the looked-up edge (for a PONG, the asker's).
    pub sock: Sock,
    /// The looked-up edge's preferred local socket (SOCKET flag).
    pub preferred_sock: Option<Sock>,
    pub load: u32,
    pub uptime: u32,
    pub version: VersionString,
}

impl PeerInfo {
    pub fn is_pong(&self) -> bool {
        self.mac.is_null()
    }

    pub(crate) fn decode(r: &mut Reader<'_>, has_preferred: bool) -> Result<Self, DecodeError> {
        Ok(PeerInfo {
            aflags: r.u16_be()?,
            src_mac: Mac::decode(r)?,
            mac: Mac::decode(r)?,
            sock: Sock::decode(r)?,
            preferred_sock: if has_preferred {
                Some(Sock::decode(r)?)
            } else {
                None
            },
            load: r.u32_be()?,
            uptime: r.u32_be()?,
            version: VersionString::decode(r)?,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u16_be(self.aflags)?;
        self.src_mac.encode(w)?;
        self.mac.encode(w)?;
        self.sock.encode(w)?;
        if let Some(s) = &self.preferred_sock {
            s.encode(w)?;
        }
        w.u32_be(self.load)?;
        w.u32_be(self.uptime)?;
        self.version.encode(w)
    }
}
