//! TAP → UDP: one thread, one preallocated buffer, no allocation per frame.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use n2n_daemon::unix_micros;
use n2n_proto::Mac;
use tokio::sync::mpsc::UnboundedSender;
use tracing::{debug, trace};

use super::frame::{dst_mac, multicast_blocked, tx_blocked};
use super::{BUF_LEN, Counters, Event, FRAME_AT, FrameIo, HintLimiter, MAX_FRAME, Shared};
use crate::machine::PeerHint;

/// Seals `frame` (copied into `buf`) and sends it to `to`. Used by the TAP thread and for
/// frames the edge makes itself (gratuitous ARP).
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
    match udp.send_to(&buf[range], to) {
        Ok(_) => {
            Counters::bump(&shared.counters.transop_tx);
            true
        }
        Err(e) => {
            debug!(%to, error = %e, "send failed");
            false
        }
    }
}

/// Reads frames from the TAP until it fails.
pub fn run_tx(
    shared: Arc<Shared>,
    tap: Arc<dyn FrameIo>,
    udp: UdpSocket,
    events: UnboundedSender<Event>,
) {
    let mut buf = Box::new([0u8; BUF_LEN]);
    let mut hints = HintLimiter::default();
    loop {
        let len = match tap.recv(&mut buf[FRAME_AT..FRAME_AT + MAX_FRAME]) {
            Ok(n) => n,
            Err(e) => {
                debug!(error = %e, "TAP read failed; stopping the send thread");
                return;
            }
        };
        if len < 14 {
            continue;
        }
        let snap = shared.snapshot.load();
        let frame = &buf[FRAME_AT..FRAME_AT + len];
        let dst = dst_mac(frame);
        if !snap.registered
            || multicast_blocked(&dst, shared.cfg.multicast)
            || tx_blocked(frame, snap.own_ip, shared.cfg.routing)
        {
            Counters::bump(&shared.counters.dropped);
            continue;
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
                    if hints.allow(dst, now) {
                        let _ = events.send(Event::Hint(PeerHint::Need(dst)));
                    }
                    None
                }
            }
        };
        let to = direct.unwrap_or(snap.supernode);
        if send_frame(&shared, &udp, &mut buf, len, dst, to) {
            let c = &shared.counters;
            match direct {
                Some(_) => Counters::bump(&c.p2p_tx),
                None if dst.is_multi_or_broadcast() => Counters::bump(&c.super_broadcast_tx),
                None => Counters::bump(&c.super_tx),
            }
            trace!(%dst, %to, len, "frame sent");
        }
    }
}
