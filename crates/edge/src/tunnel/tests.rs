//! The Tunnel alone, no threads, no sockets: route choice, stamps and replay, every drop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use n2n_crypto::compress::Codec;
use n2n_crypto::transform::{AeadSuite, AeadTransform, RootKey, id};
use n2n_crypto::{HeaderKey, StampGenerator, Transform, Xorshift128Plus};
use n2n_proto::msg::{Register, compression};
use n2n_proto::{Community, Datagram, Desc, Flags, IpSubnet, Mac, Message, cookie};

use super::*;

pub(crate) const T0: u64 = 1_800_000_000_000_000;
pub(crate) const S: u64 = 1_000_000;
pub(crate) const A: Mac = Mac([2, 0, 0, 0, 0, 0xa]);
pub(crate) const B: Mac = Mac([2, 0, 0, 0, 0, 0xb]);

fn comm() -> Community {
    Community::new("tunnel").expect("valid")
}

pub(crate) fn sock(n: u8) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, n], 7000 + u16::from(n)))
}

const SUPERNODE: u8 = 1;

/// A tunnel for `mac`: `-A6` with `-H` when `aead`, else `-A1` without; `lzo` compresses.
pub(crate) fn tunnel(mac: Mac, aead: bool, lzo: bool) -> Tunnel {
    let compression = if lzo {
        compression::LZO
    } else {
        compression::NONE
    };
    let cfg = TunnelConfig {
        community: comm(),
        own_mac: mac,
        transform: if aead { id::AEAD } else { id::NULL },
        compression,
        header_key: aead.then(|| Box::new(HeaderKey::for_community(&comm()))),
        multicast: false,
        routing: false,
        p2p_window_us: 10 * S,
        user_auth: false,
        filter: Default::default(),
    };
    let half = |seed| {
        if aead {
            let root =
                RootKey::derive_for(AeadSuite::ChaCha20Poly1305, b"secret", &comm()).expect("key");
            let mut rng = Xorshift128Plus::seeded(seed);
            Transform::Aead(Box::new(AeadTransform::new(root, mac, T0 / S, &mut rng)))
        } else {
            Transform::Null
        }
    };
    let codec = || Codec::new(compression).expect("codec");
    let halves = Halves {
        seal: half(1),
        open: half(2),
        seal_codec: codec(),
        open_codec: codec(),
        seed: 3,
    };
    Tunnel::new(cfg, halves, Arc::new(StampGenerator::default()))
}

pub(crate) fn registered(peers: Vec<(Mac, SocketAddr, u64)>) -> View {
    View {
        registered: true,
        supernode: Some(sock(SUPERNODE)),
        own_ip: None,
        peers,
    }
}

/// A 100-byte frame from `src` to `dst` (an EtherType without address checks), compressible.
pub(crate) fn frame(src: Mac, dst: Mac) -> Vec<u8> {
    let mut f = vec![0u8; 100];
    f[..6].copy_from_slice(&dst.0);
    f[6..12].copy_from_slice(&src.0);
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    f[20..30].copy_from_slice(b"0123456789");
    f
}

/// Encapsulates one frame; the datagram and what the tunnel decided.
fn send(t: &Tunnel, now: Now, f: &[u8]) -> (Vec<u8>, Encap) {
    let mut slot = Slot::default();
    slot.0[FRAME_AT..FRAME_AT + f.len()].copy_from_slice(f);
    let mut out: [std::ops::Range<usize>; 1] = Default::default();
    let e = t.encapsulate(now, std::slice::from_mut(&mut slot), &[f.len()], &mut out);
    (slot.0[out[0].clone()].to_vec(), e)
}

/// Decapsulates; the delivered frame (if any) and the result.
pub(crate) fn receive(
    t: &Tunnel,
    now: Now,
    from: SocketAddr,
    d: &[u8],
) -> (Option<Vec<u8>>, Decap) {
    let mut data = d.to_vec();
    let mut out = vec![0u8; MAX_FRAME];
    let r = t.decapsulate(now, from, &mut data, &mut out);
    let delivered = match &r {
        Decap::Deliver {
            frame,
            decompressed: true,
            ..
        } => Some(out[frame.clone()].to_vec()),
        Decap::Deliver { frame, .. } => Some(data[frame.clone()].to_vec()),
        _ => None,
    };
    (delivered, r)
}

fn dropped(r: &Decap) -> Option<DropReason> {
    match r {
        Decap::Drop { reason, .. } => Some(*reason),
        _ => None,
    }
}

#[test]
fn nothing_leaves_before_the_first_registration() {
    let a = tunnel(A, false, false);
    let (_, e) = send(&a, Now::at(T0), &frame(A, B));
    assert_eq!(e, Encap::Drop(DropReason::NotRegistered));
    assert_eq!(a.counters().dropped(DropReason::NotRegistered), 1);
}

#[test]
fn unicast_goes_direct_only_over_a_fresh_confirmed_path() {
    let a = tunnel(A, false, false);
    a.set_view(registered(vec![]));
    let now = Now::at(T0);
    // No route: relayed, and the machine is asked to look the peer up, once a second.
    let (_, e) = send(&a, now, &frame(A, B));
    let relayed_with_hint = Encap::Send {
        to: sock(SUPERNODE),
        path: Path::Supernode,
        hint: Some(PeerHint::Need(B)),
    };
    assert_eq!(e, relayed_with_hint);
    let (_, e) = send(&a, Now::at(T0 + S / 2), &frame(A, B));
    assert!(matches!(e, Encap::Send { hint: None, .. }), "{e:?}");
    // Broadcasts are relayed without a hint.
    let (_, e) = send(&a, now, &frame(A, Mac::BROADCAST));
    assert!(matches!(
        e,
        Encap::Send {
            path: Path::Supernode,
            hint: None,
            ..
        }
    ));
    // A confirmed path heard from 9 s ago is used; at 10 s it is stale.
    a.set_view(registered(vec![(B, sock(9), T0)]));
    let (_, e) = send(&a, Now::at(T0 + 9 * S), &frame(A, B));
    assert!(matches!(e, Encap::Send { to, path: Path::Direct, hint: None } if to == sock(9)));
    let (_, e) = send(&a, Now::at(T0 + 10 * S), &frame(A, B));
    assert_eq!(e, relayed_with_hint);
    let c = a.counters();
    assert_eq!(c.p2p_tx.load(Ordering::Relaxed), 1);
    assert_eq!(c.super_tx.load(Ordering::Relaxed), 3);
    assert_eq!(c.super_broadcast_tx.load(Ordering::Relaxed), 1);
}

#[test]
fn direct_traffic_keeps_a_path_fresh_and_hints_the_machine() {
    let (a, b) = (tunnel(A, true, false), tunnel(B, true, false));
    a.set_view(registered(vec![(B, sock(0xb), T0)]));
    b.set_view(registered(vec![(A, sock(0xa), T0)]));
    // B hears from A at +8 s: its route to A stays fresh until +18 s.
    let (d, _) = send(&a, Now::at(T0 + 8 * S), &frame(A, B));
    let (got, r) = receive(&b, Now::at(T0 + 8 * S), sock(0xa), &d);
    assert_eq!(got, Some(frame(A, B)));
    let direct = PeerHint::Direct {
        mac: A,
        from: sock(0xa),
    };
    assert!(matches!(r, Decap::Deliver { hint: Some(h), .. } if h == direct));
    // Opened by -A6: the TAP need not check its TCP checksum again.
    assert!(matches!(
        r,
        Decap::Deliver {
            authenticated: true,
            ..
        }
    ));
    assert_eq!(b.direct_path(Now::at(T0 + 17 * S), &A), Some(sock(0xa)));
    assert_eq!(b.direct_path(Now::at(T0 + 18 * S), &A), None);
    // The same liveness survives a new view that knows less.
    b.set_view(registered(vec![(A, sock(0xa), T0)]));
    assert_eq!(b.direct_path(Now::at(T0 + 17 * S), &A), Some(sock(0xa)));
}

/// The receive side refreshes a route once per sender, path, time and view: a datagram at
/// the same time still refreshes the path once it is confirmed, or when it comes on it.
#[test]
fn a_path_confirmed_or_used_within_one_batch_is_kept_fresh() {
    let (a, b) = (tunnel(A, true, false), tunnel(B, true, false));
    a.set_view(registered(vec![(B, sock(0xb), T0)]));
    let now = Now::at(T0 + 8 * S);
    // Heard from A before B's view has the path, then again at the same time after.
    b.set_view(registered(vec![]));
    let (d, _) = send(&a, now, &frame(A, B));
    assert_eq!(receive(&b, now, sock(0xa), &d).0, Some(frame(A, B)));
    b.set_view(registered(vec![(A, sock(0xa), T0)]));
    let (d, _) = send(&a, now, &frame(A, B));
    assert_eq!(receive(&b, now, sock(0xa), &d).0, Some(frame(A, B)));
    assert_eq!(b.direct_path(Now::at(T0 + 17 * S), &A), Some(sock(0xa)));
    // From another socket first, then on the path, at one time: the path is refreshed.
    let later = Now::at(T0 + 20 * S);
    let (d, _) = send(&a, later, &frame(A, B));
    assert_eq!(receive(&b, later, sock(0xc), &d).0, Some(frame(A, B)));
    assert_eq!(b.direct_path(Now::at(T0 + 21 * S), &A), None);
    let (d, _) = send(&a, later, &frame(A, B));
    assert_eq!(receive(&b, later, sock(0xa), &d).0, Some(frame(A, B)));
    assert_eq!(b.direct_path(Now::at(T0 + 29 * S), &A), Some(sock(0xa)));
}

#[test]
fn a_relayed_packet_tells_the_machine_where_its_sender_is() {
    let (a, b) = (tunnel(A, false, false), tunnel(B, false, false));
    a.set_view(registered(vec![]));
    b.set_view(registered(vec![]));
    let (d, _) = send(&a, Now::at(T0), &frame(A, B));
    // As the supernode relays it: FROM_SUPERNODE and A's public socket.
    let (mut dg, payload) = Datagram::decode(&d).expect("packet");
    dg.flags = Flags::FROM_SUPERNODE;
    let Message::Packet(p) = &mut dg.msg else {
        panic!("not a PACKET")
    };
    p.sock = Some(sock(0xa).into());
    let mut relayed = dg.to_vec();
    relayed.extend_from_slice(payload);
    let (got, r) = receive(&b, Now::at(T0), sock(SUPERNODE), &relayed);
    assert_eq!(got, Some(frame(A, B)));
    let hint = PeerHint::Relayed {
        mac: A,
        sock: sock(0xa),
        unicast: true,
    };
    assert!(matches!(r, Decap::Deliver { hint: Some(h), .. } if h == hint));
    // -A1 vouches for nothing.
    assert!(matches!(
        r,
        Decap::Deliver {
            authenticated: false,
            ..
        }
    ));
    assert_eq!(b.counters().super_rx.load(Ordering::Relaxed), 1);
}

#[test]
fn replays_are_dropped_and_a_forged_header_cannot_block_its_sender() {
    let (a, b) = (tunnel(A, true, false), tunnel(B, true, false));
    a.set_view(registered(vec![]));
    b.set_view(registered(vec![]));
    let now = Now::at(T0);
    let (first, _) = send(&a, now, &frame(A, B));
    let (second, _) = send(&a, now, &frame(A, B));
    // Forged by someone who knows the community (so the header key): a newer stamp over a
    // payload that does not authenticate.
    let key = HeaderKey::for_community(&comm());
    let mut forged = second.clone();
    key.decrypt(&mut forged, &comm()).expect("opens");
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let newer = StampGenerator::default().next(T0 + S);
    key.encrypt(&mut forged, PACKET_HEADER, newer, 9);
    let (_, r) = receive(&b, now, sock(0xa), &forged);
    assert_eq!(dropped(&r), Some(DropReason::Auth));
    // The genuine, older ones still arrive: the forged stamp was never recorded.
    assert!(receive(&b, now, sock(0xa), &first).0.is_some());
    assert!(receive(&b, now, sock(0xa), &second).0.is_some());
    // PACKET stamps may be reordered by 160 ms (spec §4.6): a quick replay passes the stamp
    // check and the AEAD's replay window drops it.
    let (_, r) = receive(&b, now, sock(0xa), &second);
    assert_eq!(dropped(&r), Some(DropReason::Auth));
    // Once a stamp a second newer arrived, an old datagram is refused by its stamp.
    let later = Now::at(T0 + S);
    let (third, _) = send(&a, later, &frame(A, B));
    assert!(receive(&b, later, sock(0xa), &third).0.is_some());
    let (_, r) = receive(&b, later, sock(0xa), &first);
    assert_eq!(dropped(&r), Some(DropReason::Replay));
    assert_eq!(b.counters().dropped(DropReason::Replay), 1);
    assert_eq!(b.counters().dropped(DropReason::Auth), 2);
}

#[test]
fn control_datagrams_go_to_the_machine_once() {
    let b = tunnel(B, true, false);
    let key = HeaderKey::for_community(&comm());
    let reg = Datagram::new(
        comm(),
        Flags::EMPTY,
        Message::Register(Register {
            cookie: cookie::REGULAR,
            src_mac: A,
            dst_mac: B,
            sock: None,
            dev_addr: IpSubnet::UNSPECIFIED,
            desc: Desc::default(),
        }),
    );
    let mut d = reg.to_vec();
    let n = d.len();
    key.encrypt(&mut d, n, StampGenerator::default().next(T0), 7);
    // Control messages are not held back before registration: they are how it happens.
    let (_, r) = receive(&b, Now::at(T0), sock(0xa), &d);
    let Decap::Control(msg) = r else {
        panic!("{r:?}")
    };
    assert_eq!(
        (msg.from, msg.datagram, msg.trailer),
        (sock(0xa), reg.clone(), None)
    );
    // A peer's REGISTER may be reordered with its PACKETs by 160 ms (they share its slot),
    // not by a second: once a stamp a second newer came, the old one is a replay.
    let mut newer = reg.to_vec();
    key.encrypt(&mut newer, n, StampGenerator::default().next(T0 + S), 7);
    assert!(matches!(
        receive(&b, Now::at(T0 + S), sock(0xa), &newer).1,
        Decap::Control(_)
    ));
    let (_, r) = receive(&b, Now::at(T0 + S), sock(0xa), &d);
    assert_eq!(dropped(&r), Some(DropReason::Replay));
    // The LAN path shares the table.
    let mut older = reg.to_vec();
    key.encrypt(&mut older, n, StampGenerator::default().next(T0), 7);
    assert!(b.open_lan(Now::at(T0 + S), sock(0xa), &mut older).is_none());
    let mut newest = reg.to_vec();
    key.encrypt(
        &mut newest,
        n,
        StampGenerator::default().next(T0 + 2 * S),
        7,
    );
    assert!(
        b.open_lan(Now::at(T0 + S), sock(0xa), &mut newest)
            .is_some()
    );
}

#[test]
fn every_drop_is_counted_with_its_reason() {
    let (a, b) = (tunnel(A, false, false), tunnel(B, false, false));
    a.set_view(registered(vec![]));
    let now = Now::at(T0);
    let (d, _) = send(&a, now, &frame(A, B));
    // Not registered yet.
    let (_, r) = receive(&b, now, sock(0xa), &d);
    assert_eq!(dropped(&r), Some(DropReason::NotRegistered));
    b.set_view(registered(vec![]));
    // Short junk, another community, another transform.
    let (_, r) = receive(&b, now, sock(0xa), &d[..10]);
    assert_eq!(dropped(&r), Some(DropReason::Header));
    let mut other = d.clone();
    other[4] ^= 1;
    let (_, r) = receive(&b, now, sock(0xa), &other);
    assert_eq!(dropped(&r), Some(DropReason::Foreign));
    let mut other = d.clone();
    other[PACKET_HEADER - 1] = id::AES;
    let (_, r) = receive(&b, now, sock(0xa), &other);
    assert_eq!(dropped(&r), Some(DropReason::Foreign));
    // Multicast without -E: dropped both ways, and still a hint of its sender.
    let mcast = Mac([0x01, 0, 0x5e, 0, 0, 1]);
    let (_, e) = send(&a, now, &frame(A, mcast));
    assert_eq!(e, Encap::Drop(DropReason::Multicast));
    let (mut d, _) = send(&a, now, &frame(A, B));
    d[PACKET_HEADER..PACKET_HEADER + 6].copy_from_slice(&mcast.0);
    let (_, r) = receive(&b, now, sock(0xa), &d);
    assert!(matches!(
        r,
        Decap::Drop {
            reason: DropReason::Multicast,
            hint: Some(PeerHint::Direct { .. })
        }
    ));
    // A frame too short for an Ethernet header.
    let (_, e) = send(&a, now, &[0u8; 13]);
    assert_eq!(e, Encap::Drop(DropReason::TooShort));
    // Our own frame, reflected back to us.
    let (mine, _) = send(&b, now, &frame(B, A));
    let (_, r) = receive(&b, now, sock(0xa), &mine);
    assert_eq!(dropped(&r), Some(DropReason::Reflected));
    let c = b.counters();
    assert_eq!(c.dropped_total(), 6);
    assert_eq!(a.counters().dropped_total(), 2);
}

#[test]
fn compressed_frames_are_opened_into_the_callers_buffer() {
    let (a, b) = (tunnel(A, false, true), tunnel(B, false, false));
    a.set_view(registered(vec![]));
    b.set_view(registered(vec![]));
    let (d, _) = send(&a, Now::at(T0), &frame(A, B));
    assert!(d.len() < PACKET_HEADER + 100, "compressed");
    let (got, r) = receive(&b, Now::at(T0), sock(0xa), &d);
    assert!(matches!(
        r,
        Decap::Deliver {
            decompressed: true,
            ..
        }
    ));
    assert_eq!(got, Some(frame(A, B)));
}

#[test]
fn a_stepped_wall_clock_moves_no_deadline() {
    let (a, b) = (tunnel(A, true, false), tunnel(B, true, false));
    a.set_view(registered(vec![(B, sock(0xb), T0)]));
    b.set_view(registered(vec![]));
    let hour = 3600 * S;
    for wall in [T0 + hour, T0 - hour, T0] {
        // Routes follow the monotonic clock only.
        let now = Now {
            mono_us: T0 + 5 * S,
            wall_us: wall,
        };
        assert_eq!(a.direct_path(now, &B), Some(sock(0xb)));
        // Stamps follow the wall clock, and a receiver whose clock stepped with it takes
        // them (its table forgets stamps from beyond the frame of its clock).
        let (d, _) = send(&a, now, &frame(A, B));
        let (got, _) = receive(&b, Now::at(wall), sock(0xa), &d);
        assert!(got.is_some(), "wall clock at {wall}");
    }
}

#[test]
fn keep_alives_over_the_direct_path_keep_it_fresh() {
    // One-way traffic A → B: B only answers with keep-alive REGISTERs, and A's path to B must
    // stay direct.
    let a = tunnel(A, true, false);
    a.set_view(registered(vec![(B, sock(0xb), T0)]));
    let key = HeaderKey::for_community(&comm());
    let keepalive = |t: u64, from: SocketAddr| {
        let mut d = Datagram::new(
            comm(),
            Flags::EMPTY,
            Message::Register(Register {
                cookie: cookie::REGULAR,
                src_mac: B,
                dst_mac: A,
                sock: None,
                dev_addr: IpSubnet::UNSPECIFIED,
                desc: Desc::default(),
            }),
        )
        .to_vec();
        let n = d.len();
        key.encrypt(&mut d, n, StampGenerator::default().next(t), 1);
        receive(&a, Now::at(t), from, &d).1
    };
    // From elsewhere: no effect on the path.
    assert!(matches!(
        keepalive(T0 + 8 * S, sock(0xc)),
        Decap::Control(_)
    ));
    assert_eq!(a.direct_path(Now::at(T0 + 10 * S), &B), None);
    // From the path itself: fresh again for another window.
    assert!(matches!(
        keepalive(T0 + 11 * S, sock(0xb)),
        Decap::Control(_)
    ));
    assert_eq!(a.direct_path(Now::at(T0 + 20 * S), &B), Some(sock(0xb)));
}

#[test]
fn an_authenticated_path_probe_is_reported_never_delivered() {
    let (a, b) = (tunnel(A, true, false), tunnel(B, true, false));
    for t in [&a, &b] {
        t.set_view(registered(vec![]));
    }
    let now = Now::at(T0);
    // A frame first: the hint limiter has just spoken for A.
    let (d, _) = send(&a, now, &frame(A, B));
    assert!(receive(&b, now, sock(2), &d).0.is_some());
    let mut slot = Slot::default();
    let r = a.probe(now, B, &mut slot).expect("sealed");
    let probe = slot.0[r].to_vec();
    let (delivered, r) = receive(&b, now, sock(2), &probe);
    assert!(delivered.is_none(), "a probe carries no frame");
    assert!(
        matches!(r, Decap::Drop { reason: DropReason::PathProbe, hint: Some(PeerHint::Direct { mac: A, from }) } if from == sock(2)),
        "{r:?}"
    );
    // Replayed, it is refused before any hint.
    let (_, r) = receive(&b, now, sock(2), &probe);
    assert!(matches!(r, Decap::Drop { hint: None, .. }), "{r:?}");
}
