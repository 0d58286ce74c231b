//! Property tests: decode(encode(m)) == m for every message, and no decoder panics on
//! arbitrary bytes or on truncated and bit-flipped captured datagrams.

mod support;

use n2n_proto::msg::*;
use n2n_proto::tcp::Deframer;
use n2n_proto::*;
use proptest::prelude::*;

fn mac() -> impl Strategy<Value = Mac> {
    any::<[u8; 6]>().prop_map(Mac)
}

fn community() -> impl Strategy<Value = Community> {
    any::<[u8; 20]>().prop_map(Community)
}

fn sock() -> impl Strategy<Value = Sock> {
    let addr = prop_oneof![
        any::<[u8; 4]>().prop_map(SockAddr::V4),
        any::<[u8; 16]>().prop_map(SockAddr::V6)
    ];
    (any::<u16>(), any::<u16>(), addr).prop_map(|(f, port, addr)| Sock {
        flags: f & 0x7fff,
        port,
        addr,
    })
}

fn subnet() -> impl Strategy<Value = IpSubnet> {
    (any::<u32>(), any::<u8>()).prop_map(|(a, p)| IpSubnet::new(a.into(), p))
}

fn auth() -> impl Strategy<Value = Auth> {
    (any::<u16>(), proptest::collection::vec(any::<u8>(), 0..=48))
        .prop_map(|(s, t)| Auth::new(s, &t).expect("≤ 48 bytes"))
}

fn entry() -> impl Strategy<Value = SupernodeEntry> {
    (
        any::<u8>(),
        any::<u8>(),
        any::<u16>(),
        any::<[u8; 16]>(),
        mac(),
    )
        .prop_map(|(family, pad, port, addr, mac)| SupernodeEntry {
            family,
            pad,
            port,
            addr,
            mac,
        })
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        Just(Message::Ping),
        Just(Message::Deregister),
        Just(Message::Federation),
        Just(Message::ReRegisterSuper),
        (13u8..32).prop_map(Message::Unknown),
        (
            any::<u32>(),
            mac(),
            mac(),
            proptest::option::of(sock()),
            subnet(),
            any::<[u8; 16]>()
        )
            .prop_map(
                |(cookie, src_mac, dst_mac, sock, dev_addr, d)| Message::Register(Register {
                    cookie,
                    src_mac,
                    dst_mac,
                    sock,
                    dev_addr,
                    desc: Desc(d)
                })
            ),
        (
            mac(),
            mac(),
            proptest::option::of(sock()),
            any::<u8>(),
            any::<u8>()
        )
            .prop_map(
                |(src_mac, dst_mac, sock, compression, transform)| Message::Packet(PacketHeader {
                    src_mac,
                    dst_mac,
                    sock,
                    compression,
                    transform
                })
            ),
        (any::<u32>(), mac(), mac(), proptest::option::of(sock())).prop_map(
            |(cookie, dst_mac, src_mac, sock)| Message::RegisterAck(RegisterAck {
                cookie,
                dst_mac,
                src_mac,
                sock
            })
        ),
        (
            any::<u32>(),
            mac(),
            proptest::option::of(sock()),
            subnet(),
            any::<[u8; 16]>(),
            auth(),
            any::<u32>()
        )
            .prop_map(|(cookie, edge_mac, sock, dev_addr, d, auth, key_time)| {
                Message::RegisterSuper(RegisterSuper {
                    cookie,
                    edge_mac,
                    sock,
                    dev_addr,
                    desc: Desc(d),
                    auth,
                    key_time,
                })
            }),
        (auth(), mac()).prop_map(|(auth, src_mac)| Message::UnregisterSuper(UnregisterSuper {
            auth,
            src_mac
        })),
        (
            any::<u32>(),
            mac(),
            subnet(),
            any::<u16>(),
            sock(),
            auth(),
            proptest::collection::vec(entry(), 0..=MAX_SUPERNODE_ENTRIES),
            any::<u32>()
        )
            .prop_map(
                |(cookie, src_mac, dev_addr, lifetime, sock, auth, supernodes, key_time)| {
                    Message::RegisterSuperAck(RegisterSuperAck {
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
            ),
        (any::<u32>(), mac(), auth()).prop_map(
            |(cookie, src_mac, auth)| Message::RegisterSuperNak(RegisterSuperNak {
                cookie,
                src_mac,
                auth
            })
        ),
        (
            any::<u16>(),
            mac(),
            mac(),
            sock(),
            proptest::option::of(sock()),
            any::<u32>(),
            any::<u32>(),
            any::<[u8; 20]>()
        )
            .prop_map(
                |(aflags, src_mac, mac, sock, preferred_sock, load, uptime, v)| {
                    Message::PeerInfo(PeerInfo {
                        aflags,
                        src_mac,
                        mac,
                        sock,
                        preferred_sock,
                        load,
                        uptime,
                        version: VersionString(v),
                    })
                }
            ),
        (mac(), mac(), any::<u16>()).prop_map(|(src_mac, target_mac, aflags)| Message::QueryPeer(
            QueryPeer {
                src_mac,
                target_mac,
                aflags
            }
        )),
    ]
}

fn datagram() -> impl Strategy<Value = Datagram> {
    (any::<u8>(), any::<u16>(), community(), message()).prop_map(|(ttl, flags, community, msg)| {
        let mut d = Datagram::new(community, Flags::from_bits(flags), msg);
        d.ttl = ttl;
        d
    })
}

/// Checks the decoder's promises on any input: no panic, and whatever decodes re-encodes
/// to a datagram that decodes to the same value.
fn decode_is_total(bytes: &[u8]) {
    if let Ok((d, rest)) = Datagram::decode(bytes) {
        assert!(rest.len() <= bytes.len());
        let again = d.to_vec();
        let (d2, _) = Datagram::decode(&again).expect("re-encoded datagram decodes");
        assert_eq!(d2, d);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(support::cases()))]

    #[test]
    fn every_message_round_trips(d in datagram()) {
        let bytes = d.to_vec();
        let (back, rest) = Datagram::decode(&bytes).expect("decodes");
        prop_assert!(rest.is_empty());
        prop_assert_eq!(back, d);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2100)) {
        decode_is_total(&bytes);
    }

    #[test]
    fn arbitrary_bodies_of_every_code_never_panic(code in 0u8..32, flags in any::<u16>(), body in proptest::collection::vec(any::<u8>(), 0..1400)) {
        let mut bytes = vec![3, 2];
        bytes.extend((flags & 0xffe0 | u16::from(code)).to_be_bytes());
        bytes.extend([b'x'; 20]);
        bytes.extend(body);
        decode_is_total(&bytes);
    }

    #[test]
    fn mutated_captures_never_panic(bytes in support::mutated()) {
        decode_is_total(&bytes);
        let _ = header::looks_plain(&bytes);
    }

    #[test]
    fn tcp_deframer_never_panics(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8)) {
        let mut d = Deframer::default();
        for c in chunks {
            if d.push(&c, |m| assert!(m.len() <= tcp::MAX_TCP_MESSAGE)).is_err() {
                break;
            }
        }
    }
}
