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

/// 224.0.0.68:1968, the group, shared with other edges on this host. Bound to the group's
/// address (n2n binds 0.0.0.0): only datagrams sent to the group arrive, and those never
/// cross a router (224.0.0.0/24 is link-local), so a unicast from the Internet to port 1968
/// is not taken for a neighbour's REGISTER.
pub fn lan_socket() -> std::io::Result<UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.bind(&LAN_GROUP.into())?;
    if let SocketAddr::V4(group) = LAN_GROUP {
        s.join_multicast_v4(group.ip(), &Ipv4Addr::UNSPECIFIED)?;
    }
    s.set_nonblocking(true)?;
    Ok(s.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_group_socket_takes_no_unicast() {
        let lan = lan_socket().expect("group socket");
        let probe = UdpSocket::bind("127.0.0.1:0").expect("bind");
        probe
            .send_to(b"not for the group", ("127.0.0.1", LAN_GROUP.port()))
            .expect("send");
        lan.set_nonblocking(false).expect("blocking");
        lan.set_read_timeout(Some(std::time::Duration::from_millis(300)))
            .expect("timeout");
        let mut buf = [0u8; 64];
        assert!(
            lan.recv_from(&mut buf).is_err(),
            "a unicast reached the group socket"
        );
    }
}
