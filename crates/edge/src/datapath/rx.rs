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
use n2n_proto::{Datagram, Flags, Mac, Message, MsgType};
use quinn_udp::UdpSocketState;
use tokio::sync::mpsc::UnboundedSender;
use tracing::{debug, trace};

use super::frame::{dst_mac, multicast_blocked, rx_blocked};
use super::gro::Coalescer;
use super::offload::VNET_HDR;
use super::{Counters, Event, HintLimiter, MAX_FRAME, Shared, StampSender};
use crate::machine::PeerHint;
use n2n_daemon::udp::{GRO_BUF, recv_batch};

/// Senders whose PACKET time stamps are tracked (`-H`); the table is cleared when full.
const MAX_STAMP_SLOTS: usize = 4096;

/// The receive thread's state.
struct Rx {
    shared: Arc<Shared>,
    open: Transform,
    codec: Codec,
    events: UnboundedSender<Event>,
    hints: HintLimiter,
    stamps: HashMap<StampSender, SenderStamp>,
    /// Decompressed frames, behind room for the virtio header.
    frame: Vec<u8>,
    /// Joins the TCP segments of one receive batch (TAP offloads only).
    gro: Coalescer,
}

/// Receives until the socket fails. `open` is the receiving half of the transform.
pub fn run_rx(
    shared: Arc<Shared>,
    udp: UdpSocket,
    state: Arc<UdpSocketState>,
    open: Transform,
    codec: Codec,
    events: UnboundedSender<Event>,
) {
    let mut buf = vec![0u8; GRO_BUF];
    let mut rx = Rx::new(shared, open, codec, events);
    loop {
        let (len, stride, from) = match recv_batch(&state, &udp, &mut buf) {
            Ok(x) => x,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => continue,
            Err(e) => {
                debug!(error = %e, "receive failed; stopping the receive thread");
                return;
            }
        };
        for datagram in buf[..len].chunks_mut(stride) {
            rx.handle(datagram, from);
        }
        if let Some(tap) = rx.shared.tap.get()
            && let Err(e) = rx.gro.flush(&**tap)
        {
            debug!(error = %e, "TAP write failed");
        }
    }
}

/// `-S2`: keeps the TCP connection to the current supernode and receives from it.
pub fn run_rx_tcp(
    shared: Arc<Shared>,
    open: Transform,
    codec: Codec,
    events: UnboundedSender<Event>,
) {
    let target_of = Arc::clone(&shared);
    let link_up = events.clone();
    let mut rx = Rx::new(Arc::clone(&shared), open, codec, events);
    let Some(link) = &shared.tcp else { return };
    super::tcp::run_link(
        link,
        || Some(target_of.snapshot.load().supernode),
        |_| {
            let _ = link_up.send(Event::LinkUp);
        },
        |data, from| {
            rx.handle(data, from);
            if let Some(tap) = rx.shared.tap.get()
                && let Err(e) = rx.gro.flush(&**tap)
            {
                debug!(error = %e, "TAP write failed");
            }
        },
    );
}

impl Rx {
    fn new(
        shared: Arc<Shared>,
        open: Transform,
        codec: Codec,
        events: UnboundedSender<Event>,
    ) -> Self {
        Rx {
            shared,
            open,
            codec,
            events,
            hints: HintLimiter::default(),
            stamps: HashMap::with_capacity(64),
            frame: vec![0u8; VNET_HDR + MAX_FRAME],
            gro: Coalescer::default(),
        }
    }

    fn drop_one(&self) {
        Counters::bump(&self.shared.counters.dropped);
    }

    /// One datagram: control messages go to the machine, PACKETs are opened onto the TAP.
    fn handle(&mut self, data: &mut [u8], from: SocketAddr) {
        let now = unix_micros();
        let shared = &*self.shared;
        let cfg = &shared.cfg;
        let dynamic = shared.dynamic_key.load();
        let Some(opened) = cfg.open_header(dynamic.as_deref(), data, now) else {
            return self.drop_one();
        };
        let stamp = opened.stamp;
        if MsgType::from(data[3] & 0x1f) != MsgType::Packet {
            let _ = self.events.send(Event::Control {
                from,
                data: data[..opened.body].to_vec(),
                stamp,
                trailer: opened.trailer,
            });
            return;
        }
        if opened.trailer.is_some() {
            // PACKETs never travel under the static key of a user/password community.
            return self.drop_one();
        }
        let Ok((d, _)) = Datagram::decode(data) else {
            return;
        };
        let Message::Packet(p) = d.msg else { return };
        if d.community.as_bytes() != cfg.community.as_bytes() || p.transform != cfg.transform {
            return self.drop_one();
        }
        if let Some(s) = stamp {
            if self.stamps.len() >= MAX_STAMP_SLOTS {
                self.stamps.clear();
            }
            let sender = StampSender::of(d.flags.contains(Flags::FROM_SUPERNODE), from, p.src_mac);
            let slot = self
                .stamps
                .entry(sender)
                .or_insert_with(|| SenderStamp::new(now));
            if !slot.accept(s, true) {
                return self.drop_one();
            }
        }
        let snap = shared.snapshot.load();
        let Some(tap) = shared.tap.get() else {
            return;
        };
        if !snap.registered {
            return;
        }
        let header_len = p.datagram_header_len();
        let ctx = PacketContext {
            community: &cfg.community,
            src_mac: p.src_mac,
            dst_mac: p.dst_mac,
            compression: p.compression,
            transform: p.transform,
        };
        let Ok(range) = self.open.decrypt(&mut data[header_len..], &ctx) else {
            return self.drop_one();
        };
        // The frame, with VNET_HDR bytes in front of it that are free to overwrite.
        let (buf, at, len) = if p.compression == compression::NONE {
            (data, header_len + range.start, range.len())
        } else {
            let payload = &data[header_len..][range];
            match self
                .codec
                .decompress(p.compression, payload, &mut self.frame[VNET_HDR..])
            {
                Ok(len) => (&mut self.frame[..], VNET_HDR, len),
                Err(_) => return self.drop_one(),
            }
        };
        // Counted on receipt, as n2n (before the filters and the TAP write).
        Counters::bump(&shared.counters.transop_rx);
        let sender = Sender {
            mac: p.src_mac,
            from,
            flags: d.flags,
            sock: p.sock,
            unicast: !p.dst_mac.is_multi_or_broadcast(),
        };
        account(shared, &snap, &mut self.hints, &self.events, sender, now);
        let plain = &buf[at..at + len];
        if len < 14
            || multicast_blocked(&dst_mac(plain), cfg.multicast)
            || rx_blocked(plain, snap.own_ip, cfg.routing)
            || !cfg.filter.allows(plain)
        {
            return self.drop_one();
        }
        let written = if tap.vnet_hdr() {
            self.gro.write(&**tap, buf, at, len)
        } else {
            tap.send(plain).map(drop)
        };
        if let Err(e) = written {
            debug!(error = %e, "TAP write failed");
            return;
        }
        trace!(src = %p.src_mac, %from, len, "frame received");
    }
}

/// Who sent a received PACKET, and how.
struct Sender {
    mac: Mac,
    from: SocketAddr,
    flags: Flags,
    /// The original sender's socket, when relayed.
    sock: Option<n2n_proto::Sock>,
    unicast: bool,
}

/// Counts the packet and tells the control path what it learnt of the sender.
fn account(
    shared: &Shared,
    snap: &super::Snapshot,
    hints: &mut HintLimiter,
    events: &UnboundedSender<Event>,
    sender: Sender,
    now: u64,
) {
    let Sender {
        mac: src,
        from,
        flags,
        sock,
        unicast,
    } = sender;
    let c = &shared.counters;
    if flags.contains(Flags::FROM_SUPERNODE) {
        Counters::bump(&c.super_rx);
        c.last_super_rx_us.fetch_max(now, Ordering::Relaxed);
        if !unicast {
            Counters::bump(&c.super_broadcast_rx);
        }
        if let Some(sock) = sock.filter(|s| !s.is_loopback())
            && !snap.peers.contains_key(&src)
            && hints.allow(src, now)
        {
            let _ = events.send(Event::Hint(PeerHint::Relayed {
                mac: src,
                sock: SocketAddr::from(sock),
                unicast,
            }));
        }
        return;
    }
    Counters::bump(&c.p2p_rx);
    c.last_p2p_rx_us.fetch_max(now, Ordering::Relaxed);
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
