//! UDP → TAP, on the receive thread or on the one-thread data path (duplex.rs), with
//! preallocated buffers. Each datagram goes through the Tunnel; frames go to the TAP (joined by
//! the GRO coalescer), control messages to the queue.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tracing::{debug, trace};

use super::gro::Coalescer;
use super::offload::VNET_HDR;
use super::{ControlTx, Shared, ToControl, now};
use crate::tunnel::{Decap, DropReason, MAX_FRAME, Now};
use n2n_daemon::udp::Receiver;

/// The receiving side's buffers (the receive thread's, or the one-thread data path's).
pub(super) struct Rx {
    shared: Arc<Shared>,
    control: ControlTx,
    /// Decompressed frames, behind room for the virtio header.
    frame: Vec<u8>,
    /// Joins the TCP segments of one receive batch (TAP offloads only).
    gro: Coalescer,
}

/// Extra receive batches whose segments may still join one super-frame before it is
/// written: a sender's TSO frame often leaves in two GSO sends, and each TAP write costs a
/// TCP ACK. Only batches already queued join; none is waited for.
const JOIN_BATCHES: usize = 4;

/// Receives until the socket fails. Once the TAP is up, the thread that reads it may serve
/// the socket too (`Shared::duplex`, see duplex.rs): meanwhile this one is parked, and says
/// so (`Shared::rx_parked`) only after its last batch is written, so the two never write
/// the TAP at once.
pub fn run_rx(shared: Arc<Shared>, udp: UdpSocket, control: ControlTx) {
    let _ = shared.rx_thread.set(std::thread::current());
    let mut batch = Receiver::new(shared.gro);
    let mut rx = Rx::new(shared, control);
    let mut resumed = false;
    while rx.receive(&mut batch, &udp, true) {
        if resumed {
            resumed = false;
            debug!("the receive thread has the socket again");
        }
        if rx.shared.duplex.load(Ordering::Acquire) {
            rx.shared.rx_parked.store(true, Ordering::Release);
            while rx.shared.duplex.load(Ordering::Acquire) {
                std::thread::park();
            }
            rx.shared.rx_parked.store(false, Ordering::Release);
            resumed = true;
        }
    }
}

/// `-S2`: keeps the TCP connection to the current supernode and receives from it.
pub fn run_rx_tcp(shared: Arc<Shared>, control: ControlTx) {
    let target_of = Arc::clone(&shared);
    let link_up = control.clone();
    let mut rx = Rx::new(Arc::clone(&shared), control);
    let Some(link) = &shared.tcp else { return };
    super::tcp::run_link(
        link,
        || target_of.tunnel.supernode(),
        |_| link_up.post_blocking(ToControl::LinkUp),
        |data, from| {
            rx.handle(data, from, now());
            rx.flush();
        },
    );
}

impl Rx {
    pub(super) fn new(shared: Arc<Shared>, control: ControlTx) -> Self {
        Rx {
            shared,
            control,
            frame: vec![0u8; VNET_HDR + MAX_FRAME],
            gro: Coalescer::default(),
        }
    }

    /// Receives one batch (waiting for it with `wait`), joins the batches already queued
    /// behind it to a pending super-frame, and writes the frames. False once the socket
    /// failed (the control machine has been told).
    pub(super) fn receive(&mut self, batch: &mut Receiver, udp: &UdpSocket, wait: bool) -> bool {
        let mut wait = wait;
        for joined in 0..=JOIN_BATCHES {
            match batch.recv(udp, wait) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => break,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => break,
                Err(e) => {
                    debug!(error = %e, "receive failed; the data path stops");
                    self.flush();
                    self.control.post_blocking(ToControl::Stopped("receive"));
                    return false;
                }
            }
            // One reading of the clocks per receive batch, not per datagram.
            let now = now();
            for (datagram, from) in batch.datagrams() {
                self.handle(datagram, from, now);
            }
            // More already queued may join the pending super-frame (never waits for it).
            if !self.gro.pending() || joined == JOIN_BATCHES || !n2n_daemon::os::readable_now(udp) {
                break;
            }
            wait = false;
        }
        self.flush();
        true
    }

    fn flush(&mut self) {
        if let Some(tap) = self.shared.tap.get()
            && let Err(e) = self.gro.flush(&**tap)
        {
            debug!(error = %e, "TAP write failed");
        }
    }

    /// One datagram, as the Tunnel decides.
    fn handle(&mut self, data: &mut [u8], from: SocketAddr, now: Now) {
        let tunnel = &self.shared.tunnel;
        let decap = tunnel.decapsulate(now, from, data, &mut self.frame[VNET_HDR..]);
        let (frame, decompressed, authenticated) = match decap {
            Decap::Deliver {
                frame,
                decompressed,
                authenticated,
                hint,
            } => {
                self.control.hint(tunnel, hint);
                (frame, decompressed, authenticated)
            }
            Decap::Control(msg) => return self.control.post(tunnel, ToControl::Datagram(msg)),
            Decap::Drop { reason, hint } => {
                trace!(%from, %reason, "datagram dropped");
                return self.control.hint(tunnel, hint);
            }
        };
        let Some(tap) = self.shared.tap.get() else {
            return tunnel.count_drop(DropReason::NoDevice, 1);
        };
        // The frame, with VNET_HDR bytes in front of it that are free to overwrite.
        let (buf, at) = if decompressed {
            (&mut self.frame[..], VNET_HDR + frame.start)
        } else {
            (data, frame.start)
        };
        let len = frame.len();
        let written = if tap.vnet_hdr() {
            self.gro.write(&**tap, buf, (at, len), authenticated)
        } else {
            tap.send(&buf[at..at + len]).map(drop)
        };
        if let Err(e) = written {
            debug!(error = %e, "TAP write failed");
        }
    }
}
