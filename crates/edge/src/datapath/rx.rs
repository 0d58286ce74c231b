//! UDP → TAP: one thread, one preallocated buffer. PACKETs are opened and written to the TAP
//! here; every other message goes to the control path.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use n2n_crypto::compress::Codec;
use n2n_crypto::{PacketContext, SenderStamp, Transform};
use n2n_daemon::unix_micros;
use n2n_proto::msg::compression;
use n2n_proto::{Datagram, Flags, Mac, Message, MsgType, PKT_VERSION};
use tokio::sync::mpsc::UnboundedSender;
use tracing::{debug, trace};

use super::frame::{dst_mac, multicast_blocked, rx_blocked};
use super::{Counters, Event, HintLimiter, MAX_FRAME, Shared, StampSender};
use crate::machine::PeerHint;

/// Senders whose PACKET time stamps are tracked (`-H`); the table is cleared when full.
const MAX_STAMP_SLOTS: usize = 4096;

/// Receives until the socket fails. `open` is the receiving half of the transform.
pub fn run_rx(
    shared: Arc<Shared>,
    udp: UdpSocket,
    mut open: Transform,
    mut codec: Codec,
    events: UnboundedSender<Event>,
) {
    let mut buf = vec![0u8; MAX_FRAME + 64];
    let mut frame = vec![0u8; MAX_FRAME];
    let mut hints = HintLimiter::default();
    let mut stamps: HashMap<StampSender, SenderStamp> = HashMap::with_capacity(64);
    loop {
        let (n, from) = match udp.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => continue,
            Err(e) => {
                debug!(error = %e, "receive failed; stopping the receive thread");
                return;
            }
        };
        let now = unix_micros();
        let data = &mut buf[..n];
        let cfg = &shared.cfg;
        let stamp = match &cfg.header_key {
            Some(key) => match key.open(data, &cfg.community, now) {
                Ok(s) => Some(s),
                Err(_) => {
                    Counters::bump(&shared.counters.dropped);
                    continue;
                }
            },
            None => {
                if n < 24 || data[0] != PKT_VERSION {
                    Counters::bump(&shared.counters.dropped);
                    continue;
                }
                None
            }
        };
        if MsgType::from(data[3] & 0x1f) != MsgType::Packet {
            let _ = events.send(Event::Control {
                from,
                data: data.to_vec(),
                stamp,
            });
            continue;
        }
        let Ok((d, _)) = Datagram::decode(data) else {
            continue;
        };
        let Message::Packet(p) = d.msg else { continue };
        if d.community.as_bytes() != cfg.community.as_bytes() || p.transform != cfg.transform {
            Counters::bump(&shared.counters.dropped);
            continue;
        }
        if let Some(s) = stamp {
            if stamps.len() >= MAX_STAMP_SLOTS {
                stamps.clear();
            }
            let sender = StampSender::of(d.flags.contains(Flags::FROM_SUPERNODE), from, p.src_mac);
            let slot = stamps
                .entry(sender)
                .or_insert_with(|| SenderStamp::new(now));
            if !slot.accept(s, true) {
                Counters::bump(&shared.counters.dropped);
                continue;
            }
        }
        let snap = shared.snapshot.load();
        let Some(tap) = shared.tap.get() else {
            continue;
        };
        if !snap.registered {
            continue;
        }
        let header_len = p.datagram_header_len();
        let ctx = PacketContext {
            community: &cfg.community,
            src_mac: p.src_mac,
            dst_mac: p.dst_mac,
            compression: p.compression,
            transform: p.transform,
        };
        let payload = &mut buf[header_len..n];
        let Ok(range) = open.decrypt(payload, &ctx) else {
            Counters::bump(&shared.counters.dropped);
            continue;
        };
        let plain: &[u8] = if p.compression == compression::NONE {
            &payload[range]
        } else {
            match codec.decompress(p.compression, &payload[range], &mut frame) {
                Ok(len) => &frame[..len],
                Err(_) => {
                    Counters::bump(&shared.counters.dropped);
                    continue;
                }
            }
        };
        if plain.len() < 14
            || multicast_blocked(&dst_mac(plain), cfg.multicast)
            || rx_blocked(plain, snap.own_ip, cfg.routing)
        {
            Counters::bump(&shared.counters.dropped);
            continue;
        }
        if let Err(e) = tap.send(plain) {
            debug!(error = %e, "TAP write failed");
            continue;
        }
        Counters::bump(&shared.counters.transop_rx);
        account(
            &shared, &snap, &mut hints, &events, p.src_mac, from, d.flags, p.sock, now,
        );
        trace!(src = %p.src_mac, %from, len = plain.len(), "frame received");
    }
}

/// Counts the packet and tells the control path what it learnt of the sender.
#[allow(clippy::too_many_arguments)]
fn account(
    shared: &Shared,
    snap: &super::Snapshot,
    hints: &mut HintLimiter,
    events: &UnboundedSender<Event>,
    src: Mac,
    from: SocketAddr,
    flags: Flags,
    sock: Option<n2n_proto::Sock>,
    now: u64,
) {
    let c = &shared.counters;
    if flags.contains(Flags::FROM_SUPERNODE) {
        Counters::bump(&c.super_rx);
        if let Some(sock) = sock.filter(|s| !s.is_loopback())
            && !snap.peers.contains_key(&src)
            && hints.allow(src, now)
        {
            let _ = events.send(Event::Hint(PeerHint::Relayed {
                mac: src,
                sock: SocketAddr::from(sock),
            }));
        }
        return;
    }
    Counters::bump(&c.p2p_rx);
    match snap.peers.get(&src) {
        Some(r) if r.sock == from => {
            r.last_rx.fetch_max(now, Ordering::Relaxed);
        }
        _ => {
            if hints.allow(src, now) {
                let _ = events.send(Event::Hint(PeerHint::Direct { mac: src, from }));
            }
        }
    }
}
