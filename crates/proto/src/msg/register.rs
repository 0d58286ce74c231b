//! REGISTER (code 1) and REGISTER_ACK (code 4): peer-to-peer registration (spec §3.5, §7.5).

use crate::codec::{Reader, Writer};
use crate::error::{DecodeError, EncodeError};
use crate::types::{Desc, IpSubnet, Mac, Sock};

/// Hole-punching registration, edge to edge (directly or relayed by a supernode).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Register {
    /// A path-class constant from [`crate::types::cookie`].
    pub cookie: u32,
    pub src_mac: Mac,
    pub dst_mac: Mac,
    /// The registering edge's public socket, inserted by a relaying supernode (SOCKET flag).
    pub sock: Option<Sock>,
    pub dev_addr: IpSubnet,
    pub desc: Desc,
}

impl Register {
    pub(crate) fn decode(r: &mut Reader<'_>, has_sock: bool) -> Result<Self, DecodeError> {
        Ok(Register {
            cookie: r.u32_be()?,
            src_mac: Mac::decode(r)?,
            dst_mac: Mac::decode(r)?,
            sock: if has_sock {
                Some(Sock::decode(r)?)
            } else {
                None
            },
            dev_addr: IpSubnet::decode(r)?,
            desc: Desc::decode(r)?,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u32_be(self.cookie)?;
        self.src_mac.encode(w)?;
        self.dst_mac.encode(w)?;
        if let Some(s) = &self.sock {
            s.encode(w)?;
        }
        self.dev_addr.encode(w)?;
        self.desc.encode(w)
    }
}

/// Answer to a direct REGISTER. Note the order on the wire: destination MAC first.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RegisterAck {
    /// Echo of the REGISTER's cookie.
    pub cookie: u32,
    /// The edge that sent the REGISTER.
    pub dst_mac: Mac,
    /// The acknowledging edge.
    pub src_mac: Mac,
    pub sock: Option<Sock>,
}

impl RegisterAck {
    pub(crate) fn decode(r: &mut Reader<'_>, has_sock: bool) -> Result<Self, DecodeError> {
        Ok(RegisterAck {
            cookie: r.u32_be()?,
            dst_mac: Mac::decode(r)?,
            src_mac: Mac::decode(r)?,
            sock: if has_sock {
                Some(Sock::decode(r)?)
            } else {
                None
            },
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u32_be(self.cookie)?;
        self.dst_mac.encode(w)?;
        self.src_mac.encode(w)?;
        match &self.sock {
            Some(s) => s.encode(w),
            None => Ok(()),
        }
    }
}
