//! Field types of the wire format (spec §3.4). Each can only hold a value the wire can carry.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use crate::codec::{Reader, Writer};
use crate::error::{DecodeError, EncodeError};

/// Size of the community field (19 characters and a NUL).
pub const COMMUNITY_SIZE: usize = 20;
/// Size of the description field (15 characters and a NUL).
pub const DESC_SIZE: usize = 16;
/// Size of the PEER_INFO version field.
pub const VERSION_SIZE: usize = 20;
/// Largest auth token the reference accepts (spec §9, N2N_AUTH_MAX_TOKEN_SIZE).
pub const AUTH_MAX_TOKEN_SIZE: usize = 48;

/// REGISTER cookies name the path a peer registration took (spec §7.5); higher is better.
pub mod cookie {
    pub const FORWARDED: u32 = 0x0000_1000;
    pub const PORT: u32 = 0x0000_4000;
    pub const REGULAR: u32 = 0x0001_0000;
    pub const MCAST: u32 = 0x0040_0000;
    pub const LOCAL: u32 = 0x0100_0000;
}

/// Auth schemes (spec §7.10).
pub mod auth_scheme {
    pub const NONE: u16 = 0;
    pub const SIMPLE_ID: u16 = 1;
    pub const USER_PASSWORD: u16 = 2;
}

/// A MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    pub const NULL: Mac = Mac([0; 6]);
    pub const BROADCAST: Mac = Mac([0xff; 6]);

    pub fn is_null(&self) -> bool {
        self.0 == [0; 6]
    }

    /// Broadcast or multicast in n2n's sense (spec §7.7): ff:ff:ff:ff:ff:ff, 01:00:5e with bit 7
    /// of byte 3 clear, or 33:33:*.
    pub fn is_multi_or_broadcast(&self) -> bool {
        let m = self.0;
        m == [0xff; 6]
            || (m[0] == 0x01 && m[1] == 0x00 && m[2] == 0x5e && m[3] & 0x80 == 0)
            || (m[0] == 0x33 && m[1] == 0x33)
    }

    /// IPv4 or IPv6 Ethernet multicast, which edges drop unless `-E` (spec §7.7).
    pub fn is_multicast_not_broadcast(&self) -> bool {
        self.is_multi_or_broadcast() && *self != Mac::BROADCAST
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Mac(r.array()?))
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.bytes(&self.0)
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02X}:{:02X}:{:02X}:{:02X}:{:02X}:{:02X}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for Mac {
    type Err = &'static str;
    /// Parses `AA:BB:CC:DD:EE:FF` as n2n does: six hex pairs at fixed positions, any separator.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        if b.len() != 17 {
            return Err("a MAC address is six hex pairs, e.g. 02:00:00:00:00:01");
        }
        let mut mac = [0u8; 6];
        for (i, byte) in mac.iter_mut().enumerate() {
            let pair = s.get(i * 3..i * 3 + 2).ok_or("invalid MAC address")?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| "invalid hex digit in MAC address")?;
        }
        Ok(Mac(mac))
    }
}

/// Fixed-size NUL-padded text field, as received: the bytes after the first NUL are kept (C
/// senders may leave garbage there) so that re-encoding gives the same bytes.
macro_rules! text_field {
    ($(#[$doc:meta])* $name:ident, $size:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(pub [u8; $size]);

        impl $name {
            /// Builds the field from text, truncated to leave room for a NUL, as the reference does.
            pub fn from_text(text: &str) -> Self {
                let mut field = [0u8; $size];
                let n = text.len().min($size - 1);
                field[..n].copy_from_slice(&text.as_bytes()[..n]);
                Self(field)
            }

            /// The bytes up to the first NUL.
            pub fn as_bytes(&self) -> &[u8] {
                let end = self.0.iter().position(|&b| b == 0).unwrap_or($size);
                &self.0[..end]
            }

            /// The text up to the first NUL, lossily decoded.
            pub fn text(&self) -> std::borrow::Cow<'_, str> {
                String::from_utf8_lossy(self.as_bytes())
            }

            pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok(Self(r.array()?))
            }

            pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
                w.bytes(&self.0)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self([0; $size])
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?}", self.text())
            }
        }

        /// The text with control characters escaped: these fields come from the network, and
        /// a newline in a log line would forge the next one.
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                for c in self.text().chars() {
                    if c.is_control() {
                        write!(f, "{}", c.escape_default())?;
                    } else {
                        write!(f, "{c}")?;
                    }
                }
                Ok(())
            }
        }
    };
}

text_field!(
    /// The 20-byte community field.
    Community,
    COMMUNITY_SIZE
);
text_field!(
    /// The 16-byte description ("hint") field; also the user name in user/password mode.
    Desc,
    DESC_SIZE
);
text_field!(
    /// The 20-byte version string of PEER_INFO.
    VersionString,
    VERSION_SIZE
);

impl Community {
    /// A community name as the command line gives it: 1–19 bytes, no NUL.
    pub fn new(name: &str) -> Result<Self, &'static str> {
        if name.is_empty() {
            return Err("the community name is empty");
        }
        if name.len() >= COMMUNITY_SIZE {
            return Err("the community name is longer than 19 characters");
        }
        if name.as_bytes().contains(&0) {
            return Err("the community name contains a NUL byte");
        }
        Ok(Self::from_text(name))
    }
}

/// The address part of a socket field.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum SockAddr {
    V4([u8; 4]),
    V6([u8; 16]),
}

/// A socket field (spec §3.4): flags, port and an IPv4 or IPv6 address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Sock {
    /// The flags word without the IPv6 bit (0x4000 = TCP; other bits as received).
    pub flags: u16,
    pub port: u16,
    pub addr: SockAddr,
}

impl Sock {
    const IPV6: u16 = 0x8000;
    pub const TCP: u16 = 0x4000;

    pub fn encoded_len(&self) -> usize {
        match self.addr {
            SockAddr::V4(_) => 8,
            SockAddr::V6(_) => 20,
        }
    }

    /// True for 127.0.0.1 and ::1, which edges treat as absent (spec §7.5).
    pub fn is_loopback(&self) -> bool {
        SocketAddr::from(*self).ip().is_loopback()
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let raw_flags = r.u16_be()?;
        let port = r.u16_be()?;
        let addr = if raw_flags & Self::IPV6 != 0 {
            SockAddr::V6(r.array()?)
        } else {
            SockAddr::V4(r.array()?)
        };
        Ok(Sock {
            flags: raw_flags & !Self::IPV6,
            port,
            addr,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let family = match self.addr {
            SockAddr::V4(_) => 0,
            SockAddr::V6(_) => Self::IPV6,
        };
        w.u16_be((self.flags & !Self::IPV6) | family)?;
        w.u16_be(self.port)?;
        match &self.addr {
            SockAddr::V4(a) => w.bytes(a),
            SockAddr::V6(a) => w.bytes(a),
        }
    }
}

impl From<SocketAddr> for Sock {
    fn from(sa: SocketAddr) -> Self {
        let addr = match sa.ip() {
            std::net::IpAddr::V4(ip) => SockAddr::V4(ip.octets()),
            std::net::IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
                Some(v4) => SockAddr::V4(v4.octets()),
                None => SockAddr::V6(ip.octets()),
            },
        };
        Sock {
            flags: 0,
            port: sa.port(),
            addr,
        }
    }
}

impl From<Sock> for SocketAddr {
    fn from(s: Sock) -> Self {
        match s.addr {
            SockAddr::V4(a) => SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(a), s.port)),
            SockAddr::V6(a) => SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(a), s.port, 0, 0)),
        }
    }
}

/// An IPv4 address with prefix length ("dev_addr", 5 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpSubnet {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Default for IpSubnet {
    fn default() -> Self {
        IpSubnet::UNSPECIFIED
    }
}

impl IpSubnet {
    pub const UNSPECIFIED: IpSubnet = IpSubnet {
        addr: Ipv4Addr::UNSPECIFIED,
        prefix: 0,
    };

    pub fn new(addr: Ipv4Addr, prefix: u8) -> Self {
        IpSubnet { addr, prefix }
    }

    /// The netmask for the prefix (prefixes above 32 count as 32).
    pub fn netmask(&self) -> u32 {
        match self.prefix {
            0 => 0,
            p => u32::MAX << (32 - u32::from(p.min(32))),
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(IpSubnet {
            addr: Ipv4Addr::from(r.u32_be()?),
            prefix: r.u8()?,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u32_be(u32::from(self.addr))?;
        w.u8(self.prefix)
    }
}

impl fmt::Display for IpSubnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl fmt::Debug for IpSubnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// An auth field: scheme and a token of at most 48 bytes, held inline (no allocation).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Auth {
    pub scheme: u16,
    len: u8,
    token: [u8; AUTH_MAX_TOKEN_SIZE],
}

impl Auth {
    pub const NONE: Auth = Auth {
        scheme: 0,
        len: 0,
        token: [0; AUTH_MAX_TOKEN_SIZE],
    };

    /// `None` when the token is longer than 48 bytes.
    pub fn new(scheme: u16, token: &[u8]) -> Option<Self> {
        if token.len() > AUTH_MAX_TOKEN_SIZE {
            return None;
        }
        let mut a = Auth {
            scheme,
            len: token.len() as u8,
            token: [0; AUTH_MAX_TOKEN_SIZE],
        };
        a.token[..token.len()].copy_from_slice(token);
        Some(a)
    }

    pub fn token(&self) -> &[u8] {
        &self.token[..usize::from(self.len)]
    }

    pub fn encoded_len(&self) -> usize {
        4 + usize::from(self.len)
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let scheme = r.u16_be()?;
        let size = r.u16_be()?;
        if usize::from(size) > AUTH_MAX_TOKEN_SIZE {
            return Err(DecodeError::TokenTooLong(size));
        }
        let mut a = Auth {
            scheme,
            len: size as u8,
            token: [0; AUTH_MAX_TOKEN_SIZE],
        };
        r.fill(&mut a.token[..usize::from(size)])?;
        Ok(a)
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u16_be(self.scheme)?;
        w.u16_be(u16::from(self.len))?;
        w.bytes(self.token())
    }
}

impl Default for Auth {
    fn default() -> Self {
        Auth::NONE
    }
}

impl fmt::Debug for Auth {
    /// Tokens are credentials: only their size is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Auth {{ scheme: {}, token: {} bytes }}",
            self.scheme, self.len
        )
    }
}

/// One 26-byte supernode entry of REGISTER_SUPER_ACK (spec §3.7): a leaked C struct image with
/// the host's address-family value and a little-endian port.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct SupernodeEntry {
    /// Address family as the sender's host constant: 2 = IPv4 everywhere.
    pub family: u8,
    /// The padding byte (zero from HEAD; may be garbage from 3.1.1).
    pub pad: u8,
    pub port: u16,
    pub addr: [u8; 16],
    pub mac: Mac,
}

impl SupernodeEntry {
    pub const LEN: usize = 26;
    pub const AF_INET: u8 = 2;

    pub fn ipv4(addr: SocketAddrV4, mac: Mac) -> Self {
        let mut a = [0u8; 16];
        a[..4].copy_from_slice(&addr.ip().octets());
        SupernodeEntry {
            family: Self::AF_INET,
            pad: 0,
            port: addr.port(),
            addr: a,
            mac,
        }
    }

    /// The IPv4 socket, if the entry is IPv4.
    pub fn socket_v4(&self) -> Option<SocketAddrV4> {
        (self.family == Self::AF_INET).then(|| {
            SocketAddrV4::new(
                Ipv4Addr::new(self.addr[0], self.addr[1], self.addr[2], self.addr[3]),
                self.port,
            )
        })
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SupernodeEntry {
            family: r.u8()?,
            pad: r.u8()?,
            port: r.u16_le()?,
            addr: r.array()?,
            mac: Mac::decode(r)?,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u8(self.family)?;
        w.u8(self.pad)?;
        w.u16_le(self.port)?;
        w.bytes(&self.addr)?;
        self.mac.encode(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_fields_from_the_network_cannot_forge_log_lines() {
        let mut field = [0u8; COMMUNITY_SIZE];
        field[..10].copy_from_slice(b"ok\nFAKE\x1b[0");
        let shown = Community(field).to_string();
        assert!(!shown.contains('\n') && !shown.contains('\x1b'), "{shown}");
        assert!(shown.starts_with("ok\\nFAKE"));
        assert_eq!(Desc::from_text("laptop").to_string(), "laptop");
    }

    #[test]
    fn mac_parses_like_n2n() {
        let m: Mac = "02:00:00:aa:bb:cc".parse().expect("valid mac");
        assert_eq!(m.0, [2, 0, 0, 0xaa, 0xbb, 0xcc]);
        let m: Mac = "02-00-00-AA-BB-CC".parse().expect("any separator");
        assert_eq!(m.0, [2, 0, 0, 0xaa, 0xbb, 0xcc]);
        assert!("02:00:00:aa:bb".parse::<Mac>().is_err());
        assert!("zz:00:00:aa:bb:cc".parse::<Mac>().is_err());
    }

    #[test]
    fn multicast_classes() {
        assert!(Mac::BROADCAST.is_multi_or_broadcast());
        assert!(Mac([1, 0, 0x5e, 0x7f, 1, 1]).is_multi_or_broadcast());
        assert!(!Mac([1, 0, 0x5e, 0x80, 1, 1]).is_multi_or_broadcast());
        assert!(Mac([0x33, 0x33, 0, 0, 0, 1]).is_multicast_not_broadcast());
        assert!(!Mac([2, 0, 0, 0, 0, 1]).is_multi_or_broadcast());
    }

    #[test]
    fn community_limits() {
        assert!(Community::new("").is_err());
        assert!(Community::new("0123456789012345678").is_ok());
        assert!(Community::new("01234567890123456789").is_err());
        assert_eq!(Community::new("abc").map(|c| c.0[3]), Ok(0));
    }

    #[test]
    fn auth_rejects_long_tokens() {
        let mut wire = vec![0, 1, 0, 49];
        wire.extend([0u8; 49]);
        assert_eq!(
            Auth::decode(&mut Reader::new(&wire)),
            Err(DecodeError::TokenTooLong(49))
        );
        assert!(Auth::new(1, &[0; 49]).is_none());
    }
}
