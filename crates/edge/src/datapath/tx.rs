//! TAP → UDP, on the thread that reads the TAP (`n2n-io`, or `n2n-tx` when two threads serve
//! the two directions), with preallocated buffers, no allocation per frame. With TAP offloads
//! a read is a super-frame that is cut into frames, one per slot; the Tunnel seals them in
//! place and says where they go; the datagrams leave in GSO batches.

use std::io::IoSlice;
use std::net::UdpSocket;
use std::ops::Range;
use std::sync::Arc;

use tracing::{debug, trace};

use super::offload::{MAX_READ, MAX_SEGMENTS, segment};
use super::seal_helper::{SPLIT_AT, SealHelper};
use super::{ControlTx, FrameIo, Shared, ToControl, now};
use crate::tunnel::{DropReason, Encap, FRAME_AT, MAX_FRAME, Path, Slot};
use n2n_crypto::transform::id as transform_id;
use n2n_daemon::udp::send_datagrams;
use n2n_proto::msg::compression;

/// Seals the frame in `slot` and sends it where the Tunnel says. Used for frames the edge
/// makes itself (gratuitous ARP).
pub fn send_frame(shared: &Shared, udp: &UdpSocket, slot: &mut Slot, len: usize) -> bool {
    let mut out: [std::ops::Range<usize>; 1] = Default::default();
    let tunnel = &shared.tunnel;
    let Encap::Send { to, path, .. } =
        tunnel.encapsulate(now(), std::slice::from_mut(slot), &[len], &mut out)
    else {
        return false;
    };
    let datagram = &slot.0[out[0].clone()];
    let sent = match (&shared.tcp, path) {
        (Some(link), Path::Supernode) => link.send(datagram),
        _ => udp
            .send_to(datagram, to)
            .inspect_err(|e| debug!(%to, error = %e, "send failed"))
            .is_ok(),
    };
    if !sent {
        tunnel.count_drop(DropReason::Send, 1);
    }
    sent
}

/// The sending side's state (the send thread's, or the one-thread data path's).
pub(super) struct Tx {
    shared: Arc<Shared>,
    udp: UdpSocket,
    control: ControlTx,
    slots: Vec<Slot>,
    lens: Vec<usize>,
    out: Vec<Range<usize>>,
    /// Seals half of a big batch on the other core (`Shared::parallel`).
    helper: Option<SealHelper>,
    /// What a TAP read lands in (a super-frame, with TAP offloads).
    read: Vec<u8>,
}

/// The send thread of the two-thread data path: reads frames from the TAP until it fails.
pub fn run_tx(shared: Arc<Shared>, tap: Arc<dyn FrameIo>, udp: UdpSocket, control: ControlTx) {
    let mut tx = Tx::new(shared, &*tap, udp, control);
    while tx.read_once(&*tap) {}
}

impl Tx {
    pub(super) fn new(
        shared: Arc<Shared>,
        tap: &dyn FrameIo,
        udp: UdpSocket,
        control: ControlTx,
    ) -> Self {
        let vnet = tap.vnet_hdr();
        let mut tx = Tx {
            shared,
            udp,
            control,
            slots: (0..if vnet { MAX_SEGMENTS } else { 1 })
                .map(|_| Slot::default())
                .collect(),
            lens: vec![0; MAX_SEGMENTS],
            out: vec![0..0; MAX_SEGMENTS],
            helper: None,
            read: vec![0u8; if vnet { MAX_READ } else { 0 }],
        };
        // Sealing a batch is worth sharing only when there is a transform or compression to run.
        let cfg = tx.shared.tunnel.config();
        let work = cfg.transform != transform_id::NULL || cfg.compression != compression::NONE;
        if vnet && work && tx.shared.parallel {
            tx.helper = SealHelper::start(&tx.shared);
        }
        tx
    }

    /// Reads one frame or super-frame from the TAP and sends it; false once the TAP failed.
    pub(super) fn read_once(&mut self, tap: &dyn FrameIo) -> bool {
        let got = if tap.vnet_hdr() {
            tap.recv(&mut self.read)
                .map(|n| segment(&mut self.read[..n], &mut self.slots, &mut self.lens))
        } else {
            tap.recv(&mut self.slots[0].0[FRAME_AT..FRAME_AT + MAX_FRAME])
                .map(|n| {
                    self.lens[0] = n;
                    Ok(1)
                })
        };
        match got {
            Ok(Ok(count)) => self.send(count),
            Ok(Err(e)) => {
                trace!(error = %e, "TAP read dropped");
                self.shared.tunnel.count_drop(DropReason::TapRead, 1);
            }
            Err(e) => {
                debug!(error = %e, "TAP read failed; the data path stops");
                self.control.post_blocking(ToControl::Stopped("send"));
                return false;
            }
        }
        true
    }
}

impl Tx {
    /// Sends the `count` frames now in the slots where the Tunnel says.
    fn send(&mut self, count: usize) {
        let tunnel = &self.shared.tunnel;
        let (slots, lens, out) = (
            &mut self.slots[..count],
            &self.lens[..count],
            &mut self.out[..count],
        );
        let encap = match &mut self.helper {
            Some(helper) if count >= SPLIT_AT => {
                helper.encapsulate(now(), tunnel, slots, lens, out)
            }
            _ => tunnel.encapsulate(now(), slots, lens, out),
        };
        let Encap::Send { to, path, hint } = encap else {
            return;
        };
        self.control.hint(tunnel, hint);
        let sealed = self.slots.iter().zip(&self.out).take(count);
        let datagrams = sealed.filter(|(_, r)| !r.is_empty());
        let lost = match (&self.shared.tcp, path) {
            (Some(link), Path::Supernode) => datagrams
                .filter(|(slot, r)| !link.send(&slot.0[(*r).clone()]))
                .count(),
            _ => {
                // Straight from the slots they were sealed in: no copy into a batch buffer.
                let mut iov = [IoSlice::new(&[]); MAX_SEGMENTS];
                let mut n = 0;
                for (slot, r) in datagrams {
                    iov[n] = IoSlice::new(&slot.0[r.clone()]);
                    n += 1;
                }
                send_datagrams(&self.udp, to, &iov[..n], &self.shared.gso)
            }
        };
        tunnel.count_drop(DropReason::Send, lost as u64);
        trace!(%to, count, "frames sent");
    }
}
