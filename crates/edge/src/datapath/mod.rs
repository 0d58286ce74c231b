//! The data-path threads (docs/architecture.md): once the TAP is up, one thread reads it and
//! sends, and receives and writes it too while it is not busy sending (duplex.rs, roles.rs);
//! otherwise a receive thread does. They only move bytes: every decision is the [`Tunnel`]'s,
//! and what the control machine must hear goes through one bounded queue.

pub mod checksum;
mod duplex;
pub mod gro;
mod idle;
pub mod offload;
mod roles;
mod rx;
pub mod seal_helper;
mod tcp;
mod tx;

use std::sync::{Arc, OnceLock};

use tokio::sync::mpsc::{Receiver, Sender, channel};

pub use duplex::start_duplex;
pub use rx::{run_rx, run_rx_tcp};
pub use tcp::TcpLink;
pub use tx::{run_tx, send_frame};

use crate::machine::PeerHint;
use crate::tunnel::{ControlMsg, DropReason, Tunnel};

/// A frame device: the TAP, or an in-memory one in tests.
pub trait FrameIo: Send + Sync {
    fn recv(&self, buf: &mut [u8]) -> std::io::Result<usize>;
    fn send(&self, frame: &[u8]) -> std::io::Result<usize>;
    /// Whether reads and writes carry a virtio header (TAP offloads, see [`offload`]).
    fn vnet_hdr(&self) -> bool {
        false
    }
    /// The descriptor to wait on, for a thread that serves the TAP and the socket at once.
    fn raw_fd(&self) -> Option<std::os::fd::RawFd> {
        None
    }
}

/// What the data path tells the control machine.
#[derive(Debug)]
pub enum ToControl {
    Datagram(ControlMsg),
    Hint(PeerHint),
    /// `-S2`: the TCP connection to the supernode is (re)established.
    LinkUp,
    /// A data-path thread ended (its socket or the TAP failed): the edge cannot go on.
    Stopped(&'static str),
}

/// Messages waiting for the control loop; a full queue drops (counted), so a flood of
/// control datagrams costs a bounded amount of memory and never stalls the data path.
pub const CONTROL_QUEUE: usize = 1024;

/// The control queue's sending end, shared by the data-path threads.
#[derive(Debug, Clone)]
pub struct ControlTx(Sender<ToControl>);

/// The control queue: its sending end and the control loop's receiving end.
pub fn control_queue() -> (ControlTx, Receiver<ToControl>) {
    let (tx, rx) = channel(CONTROL_QUEUE);
    (ControlTx(tx), rx)
}

impl ControlTx {
    /// Queues `msg`, or counts it dropped when the queue is full.
    pub fn post(&self, tunnel: &Tunnel, msg: ToControl) {
        if self.0.try_send(msg).is_err() {
            tunnel.count_drop(DropReason::ControlFull, 1);
        }
    }

    pub fn hint(&self, tunnel: &Tunnel, hint: Option<PeerHint>) {
        if let Some(h) = hint {
            self.post(tunnel, ToControl::Hint(h));
        }
    }

    /// Waits for room: for the rare message that must not be lost.
    pub fn post_blocking(&self, msg: ToControl) {
        let _ = self.0.blocking_send(msg);
    }
}

/// Everything the threads share.
pub struct Shared {
    pub tunnel: Tunnel,
    /// UDP GSO (the self-test's verdict; turned off for good if a send refuses it).
    pub gso: std::sync::atomic::AtomicBool,
    /// UDP GRO, as the start-up self-test left it.
    pub gro: bool,
    /// Whether big batches may be sealed on two threads, the send thread and a helper
    /// (`N2N_RS_PARALLEL=0` turns it off).
    pub parallel: bool,
    /// Whether one thread serves both directions (`N2N_RS_DUPLEX=0` keeps two).
    pub duplex_wanted: bool,
    /// Whether the thread that reads the TAP serves the socket too; the receive thread is
    /// parked meanwhile.
    pub duplex: std::sync::atomic::AtomicBool,
    /// Set by the receive thread once it has written its last batch and parks: only then
    /// does the one-thread data path read the socket.
    pub rx_parked: std::sync::atomic::AtomicBool,
    /// The receive thread, to wake when it takes the socket back.
    pub rx_thread: OnceLock<std::thread::Thread>,
    /// `-S2`: the TCP connection to the supernode.
    pub tcp: Option<TcpLink>,
    /// Set once the TAP exists (auto mode creates it after the address is assigned).
    pub tap: OnceLock<Arc<dyn FrameIo>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Shared")
    }
}

/// The two clocks now: monotonic for the Tunnel's windows, wall for its stamps.
pub fn now() -> crate::tunnel::Now {
    crate::tunnel::Now {
        mono_us: n2n_daemon::mono_micros(),
        wall_us: n2n_daemon::unix_micros(),
    }
}
