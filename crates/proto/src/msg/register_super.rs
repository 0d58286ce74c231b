//! REGISTER_SUPER (code 5) and UNREGISTER_SUPER (code 6): edge ↔ supernode registration.

use crate::codec::{Reader, Writer};
use crate::error::{DecodeError, EncodeError};
use crate::types::{Auth, Desc, IpSubnet, Mac, Sock};

/// Registration with a supernode (also supernode to supernode in a federation).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RegisterSuper {
    /// Random, echoed in the ACK or NAK.
    pub cookie: u32,
    /// All-zero during the address request (spec §7.1).
    pub edge_mac: Mac,
    /// From an edge: its preferred local socket (`-e`); from a supernode forwarding an edge's
    /// registration: that edge's public socket.
    pub sock: Option<Sock>,
    /// 0.0.0.0/0 asks the supernode to assign an address.
    pub dev_addr: IpSubnet,
    pub desc: Desc,
    pub auth: Auth,
    /// Dynamic-key time, meaningful only between supernodes; edges send 0.
    pub key_time: u32,
}

impl RegisterSuper {
    pub(crate) fn decode(r: &mut Reader<'_>, has_sock: bool) -> Result<Self, DecodeError> {
        Ok(RegisterSuper {
            cookie: r.u32_be()?,
            edge_mac: Mac::decode(r)?,
            sock: if has_sock {
                Some(Sock::decode(r)?)
            } else {
                None
            },
            dev_addr: IpSubnet::decode(r)?,
            desc: Desc::decode(r)?,
            auth: Auth::decode(r)?,
            key_time: r.u32_be()?,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u32_be(self.cookie)?;
        self.edge_mac.encode(w)?;
        if let Some(s) = &self.sock {
            s.encode(w)?;
        }
        self.dev_addr.encode(w)?;
        self.desc.encode(w)?;
        self.auth.encode(w)?;
        w.u32_be(self.key_time)
    }
}

/// Deregistration; the auth must equal the registered token.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct UnregisterSuper {
    pub auth: Auth,
    pub src_mac: Mac,
}

impl UnregisterSuper {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(UnregisterSuper {
            auth: Auth::decode(r)?,
            src_mac: Mac::decode(r)?,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        self.auth.encode(w)?;
        self.src_mac.encode(w)
    }
}
