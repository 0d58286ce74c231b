//! The LAN side of peer discovery: `-e` (the preferred socket advertised to the supernode)
//! and n2n's multicast group (spec §7.6).

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};

use n2n_proto::Sock;
use socket2::{Domain, Protocol, Socket, Type};

use crate::cli::Preferred;
use crate::machine::LAN_GROUP;

/// `-e`: the address given, or with `auto` the local address of the route to `supernode`
/// (what the kernel would pick; nothing is sent). The port is always our own.
pub fn preferred_sock(p: Option<Preferred>, port: u16, supernode: SocketAddr) -> Option<Sock> {
    let ip = match p? {
        Preferred::Addr(ip) => ip,
        Preferred::Auto => {
            let probe = UdpSocket::bind(("0.0.0.0", 0)).ok()?;
            probe.connect(supernode).ok()?;
            match probe.local_addr().ok()? {
                SocketAddr::V4(a) => *a.ip(),
                SocketAddr::V6(_) => return None,
            }
        }
    };
    Some(Sock::from(SocketAddr::from((ip, port))))
}

/// 0.0.0.0:1968 in the group 224.0.0.68, shared with other edges on this host.
pub fn lan_socket() -> std::io::Result<UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, LAN_GROUP.port())).into())?;
    if let SocketAddr::V4(group) = LAN_GROUP {
        s.join_multicast_v4(group.ip(), &Ipv4Addr::UNSPECIFIED)?;
    }
    s.set_nonblocking(true)?;
    Ok(s.into())
}
