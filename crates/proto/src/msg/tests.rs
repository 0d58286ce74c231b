//! The spec's encoding vectors (§3.10).

use super::*;
use crate::types::{Auth, Desc, IpSubnet, Mac, Sock};
use std::net::{Ipv4Addr, SocketAddr};

fn hex(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).expect("hex")
}

fn community() -> Community {
    Community::new("abc123def456z").expect("valid")
}

fn token() -> Auth {
    Auth::new(1, &hex("fe000000fd000000fc000000000000fb")).expect("16 bytes")
}

#[test]
fn register_vector() {
    let d = Datagram::new(
        community(),
        Flags::EMPTY,
        Message::Register(Register {
            cookie: 0,
            src_mac: Mac([0, 1, 2, 3, 4, 5]),
            dst_mac: Mac([0x10, 0x11, 0x12, 0x13, 0x14, 0x15]),
            sock: None,
            dev_addr: IpSubnet::new(Ipv4Addr::new(32, 33, 34, 35), 25),
            desc: Desc::from_text("Dummy_Dev_Desc"),
        }),
    );
    let want = hex(
        "03 02 00 01 61 62 63 31 32 33 64 65 66 34 35 36 7a 00 00 00 00 00 00 00
         00 00 00 00 00 01 02 03 04 05 10 11 12 13 14 15 20 21 22 23 19 44 75 6d
         6d 79 5f 44 65 76 5f 44 65 73 63 00 00",
    );
    assert_eq!(d.to_vec(), want);
    assert_eq!(Datagram::decode(&want), Ok((d, &[][..])));
}

#[test]
fn register_super_vector() {
    let d = Datagram::new(
        community(),
        Flags::EMPTY,
        Message::RegisterSuper(RegisterSuper {
            cookie: 0,
            edge_mac: Mac([0x20, 0x21, 0x22, 0x23, 0x24, 0x25]),
            sock: None,
            dev_addr: IpSubnet::new(Ipv4Addr::new(32, 33, 34, 35), 25),
            desc: Desc::from_text("Dummy_Dev_Desc"),
            auth: token(),
            key_time: 600,
        }),
    );
    let mut want = hex("03 02 00 05");
    want.extend(community().0);
    want.extend(hex("00 00 00 00 20 21 22 23 24 25 20 21 22 23 19
         44 75 6d 6d 79 5f 44 65 76 5f 44 65 73 63 00 00 00 01 00 10 fe 00 00 00 fd
         00 00 00 fc 00 00 00 00 00 00 fb 00 00 02 58"));
    assert_eq!(want.len(), 79);
    assert_eq!(d.to_vec(), want);
    assert_eq!(Datagram::decode(&want).map(|x| x.0), Ok(d));
}

#[test]
fn unregister_super_vector() {
    let d = Datagram::new(
        community(),
        Flags::EMPTY,
        Message::UnregisterSuper(UnregisterSuper {
            auth: token(),
            src_mac: Mac([0x30, 0x31, 0x32, 0x33, 0x34, 0x35]),
        }),
    );
    let mut want = hex("03 02 00 06");
    want.extend(community().0);
    want.extend(hex(
        "00 01 00 10 fe000000fd000000fc000000000000fb 30 31 32 33 34 35",
    ));
    assert_eq!(want.len(), 50);
    assert_eq!(d.to_vec(), want);
}

#[test]
fn packet_header_vector() {
    let mac = Mac([0, 1, 2, 3, 4, 5]);
    let d = Datagram::new(
        Community::new("abc123def456").expect("valid"),
        Flags::EMPTY,
        Message::Packet(PacketHeader {
            src_mac: mac,
            dst_mac: mac,
            sock: None,
            compression: 0,
            transform: 0,
        }),
    );
    let want = hex(
        "03 02 00 03 61 62 63 31 32 33 64 65 66 34 35 36 00 00 00 00 00 00 00 00
         00 01 02 03 04 05 00 01 02 03 04 05 00 00",
    );
    assert_eq!(d.to_vec(), want);
}

#[test]
fn live_ack_vector() {
    let mut want = hex("03 02 00 67");
    want.extend(Community::new("plaincomm").expect("valid").0);
    want.extend(hex(
        "12 34 56 78 26 1f b0 9d d7 32 0a c8 ce 10 18 00 0f 00 00 a4 28 7f 00 00 01
         00 00 00 00 00 00 00 00 00",
    ));
    assert_eq!(want.len(), 58);
    let (d, rest) = Datagram::decode(&want).expect("decodes");
    assert!(rest.is_empty());
    assert_eq!(d.flags, Flags::FROM_SUPERNODE.with(Flags::SOCKET));
    let Message::RegisterSuperAck(ack) = &d.msg else {
        panic!("not an ACK: {d:?}")
    };
    assert_eq!(ack.cookie, 0x1234_5678);
    assert_eq!(
        ack.dev_addr,
        IpSubnet::new(Ipv4Addr::new(10, 200, 206, 16), 24)
    );
    assert_eq!(ack.lifetime, 15);
    assert_eq!(
        SocketAddr::from(ack.sock),
        "127.0.0.1:42024".parse().expect("addr")
    );
    assert!(ack.supernodes.is_empty());
    assert_eq!(d.to_vec(), want);
}

#[test]
fn socket_flag_follows_the_body() {
    let sock = Sock::from("192.0.2.1:7654".parse::<SocketAddr>().expect("addr"));
    let mut d = Datagram::new(
        community(),
        Flags::SOCKET,
        Message::QueryPeer(QueryPeer {
            src_mac: Mac::NULL,
            target_mac: Mac::NULL,
            aflags: 0,
        }),
    );
    assert!(
        d.wire_flags().contains(Flags::SOCKET),
        "QUERY_PEER keeps flags as given"
    );
    d.msg = Message::Packet(PacketHeader {
        src_mac: Mac::NULL,
        dst_mac: Mac::NULL,
        sock: Some(sock),
        compression: 1,
        transform: 1,
    });
    let bytes = d.to_vec();
    assert_eq!(bytes.len(), 46);
    assert_eq!(bytes[3], 0x43);
}

#[test]
fn short_bodies_read_as_zero() {
    let mut bytes = hex("03 02 00 0b");
    bytes.extend(community().0);
    bytes.extend([1, 2, 3]);
    let (d, _) = Datagram::decode(&bytes).expect("lenient");
    assert_eq!(
        d.msg,
        Message::QueryPeer(QueryPeer {
            src_mac: Mac([1, 2, 3, 0, 0, 0]),
            target_mac: Mac::NULL,
            aflags: 0
        })
    );
}

#[test]
fn header_is_strict() {
    assert!(matches!(
        Datagram::decode(&[3, 2, 0]),
        Err(DecodeError::Truncated { .. })
    ));
    let mut bytes = vec![4u8; 24];
    bytes[3] = 1;
    assert_eq!(Datagram::decode(&bytes), Err(DecodeError::Version(4)));
}
