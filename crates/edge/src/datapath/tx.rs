//! TAP → UDP: one thread and preallocated buffers, no allocation per frame. With TAP offloads
//! a read is a super-frame that is cut into frames, each sealed in place in its own slot, and
//! the datagrams leave in GSO batches.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use n2n_daemon::unix_micros;
use n2n_proto::Mac;
use quinn_udp::UdpSocketState;
use tokio::sync::mpsc::UnboundedSender;
use tracing::{debug, trace};

use super::frame::{dst_mac, multicast_blocked, tx_blocked};
use super::offload::{MAX_READ, MAX_SEGMENTS, Slot, segment};
use super::{BUF_LEN, Counters, Event, FRAME_AT, FrameIo, HintLimiter, MAX_FRAME, Shared};
use crate::machine::PeerHint;
use n2n_daemon::udp::GsoBatch;

/// Seals `frame` (copied into `buf`) and sends it to `to`. Used for frames the edge makes
/// itself (gratuitous ARP).
pub fn send_frame(
    shared: &Shared,
    udp: &UdpSocket,
    buf: &mut [u8; BUF_LEN],
    len: usize,
    dst: Mac,
    to: SocketAddr,
) -> bool {
    let now = unix_micros();
    let sealed = {
        let Ok(mut sealer) = shared.sealer.lock() else {
            return false;
        };
        sealer.seal(&shared.cfg, &shared.stamps, buf, len, dst, now)
    };
    let Some(range) = sealed else { return false };
    if let Some(link) = &shared.tcp {
        let ok = link.send(&buf[range]);
        if ok {
            Counters::bump(&shared.counters.transop_tx);
            if dst.is_multi_or_broadcast() {
                Counters::bump(&shared.counters.super_broadcast_tx);
            }
        }
        return ok;
    }
    match udp.send_to(&buf[range], to) {
        Ok(_) => {
            Counters::bump(&shared.counters.transop_tx);
            if dst.is_multi_or_broadcast() {
                // n2n counts its gratuitous ARPs as broadcasts through the supernode.
                Counters::bump(&shared.counters.super_broadcast_tx);
            }
            true
        }
        Err(e) => {
            debug!(%to, error = %e, "send failed");
            false
        }
    }
}

/// The send thread's state.
struct Tx {
    shared: Arc<Shared>,
    udp: UdpSocket,
    state: Arc<UdpSocketState>,
    events: UnboundedSender<Event>,
    hints: HintLimiter,
    slots: Vec<Slot>,
    lens: Vec<usize>,
    batch: GsoBatch,
}

/// Reads frames from the TAP until it fails.
pub fn run_tx(
    shared: Arc<Shared>,
    tap: Arc<dyn FrameIo>,
    udp: UdpSocket,
    state: Arc<UdpSocketState>,
    events: UnboundedSender<Event>,
) {
    let vnet = tap.vnet_hdr();
    let mut tx = Tx {
        shared,
        udp,
        state,
        events,
        hints: HintLimiter::default(),
        slots: (0..if vnet { MAX_SEGMENTS } else { 1 })
            .map(|_| Slot::default())
            .collect(),
        lens: vec![0; MAX_SEGMENTS],
        batch: GsoBatch::default(),
    };
    let mut read = vec![0u8; if vnet { MAX_READ } else { 0 }];
    loop {
        let got = if vnet {
            tap.recv(&mut read)
                .map(|n| segment(&mut read[..n], &mut tx.slots, &mut tx.lens))
        } else {
            tap.recv(&mut tx.slots[0].0[FRAME_AT..FRAME_AT + MAX_FRAME])
                .map(|n| {
                    tx.lens[0] = n;
                    Ok(1)
                })
        };
        match got {
            Ok(Ok(count)) => tx.send(count),
            Ok(Err(e)) => {
                trace!(error = %e, "TAP read dropped");
                Counters::bump(&tx.shared.counters.dropped);
            }
            Err(e) => {
                debug!(error = %e, "TAP read failed; stopping the send thread");
                return;
            }
        }
    }
}

impl Tx {
    /// Seals and sends the `count` frames now in the slots; they share one Ethernet header.
    fn send(&mut self, count: usize) {
        let shared = &*self.shared;
        let c = &shared.counters;
        let frame = &self.slots[0].0[FRAME_AT..FRAME_AT + self.lens[0]];
        if self.lens[0] < 14 {
            Counters::bump(&c.dropped);
            return;
        }
        let snap = shared.snapshot.load();
        let dst = dst_mac(frame);
        if !snap.registered
            || multicast_blocked(&dst, shared.cfg.multicast)
            || tx_blocked(frame, snap.own_ip, shared.cfg.routing)
            || !shared.cfg.filter.allows(frame)
        {
            c.dropped.fetch_add(count as u64, Ordering::Relaxed);
            return;
        }
        let now = unix_micros();
        let direct = if dst.is_multi_or_broadcast() {
            None
        } else {
            match snap.peers.get(&dst) {
                Some(r)
                    if now.saturating_sub(r.last_rx.load(Ordering::Relaxed))
                        < shared.cfg.p2p_window_us =>
                {
                    Some(r.sock)
                }
                _ => {
                    if self.hints.allow(dst, now) {
                        let _ = self.events.send(Event::Hint(PeerHint::Need(dst)));
                    }
                    None
                }
            }
        };
        let to = direct.unwrap_or(snap.supernode);
        let mut sent = 0u64;
        let mut lost = 0usize;
        if let Ok(mut sealer) = shared.sealer.lock() {
            for (slot, &len) in self.slots.iter_mut().zip(&self.lens).take(count) {
                let Some(r) = sealer.seal(&shared.cfg, &shared.stamps, &mut slot.0, len, dst, now)
                else {
                    continue;
                };
                match (&shared.tcp, direct) {
                    (Some(link), None) => lost += usize::from(!link.send(&slot.0[r])),
                    _ => lost += self.batch.push(&self.state, &self.udp, to, &slot.0[r]),
                }
                sent += 1;
            }
        }
        lost += self.batch.flush(&self.state, &self.udp);
        let ok = sent.saturating_sub(lost as u64);
        c.transop_tx.fetch_add(ok, Ordering::Relaxed);
        c.dropped.fetch_add(count as u64 - ok, Ordering::Relaxed);
        let kind = match direct {
            Some(_) => &c.p2p_tx,
            None if dst.is_multi_or_broadcast() => &c.super_broadcast_tx,
            None => &c.super_tx,
        };
        kind.fetch_add(ok, Ordering::Relaxed);
        trace!(%dst, %to, count, "frames sent");
    }
}
