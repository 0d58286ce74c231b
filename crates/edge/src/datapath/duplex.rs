//! One thread for both directions (UDP, once the TAP is up): it waits on the TAP and the
//! socket at once and serves whichever is ready, so a frame in the light direction does not
//! have to wake a second thread (n2n's own edge is one select loop too). When sending keeps
//! it busy, the receive thread takes the socket back ([`Roles`]). The sealing helper still
//! takes half of a big batch when a core is idle. `N2N_RS_DUPLEX=0` keeps two threads always.

use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tracing::debug;

use super::roles::{Roles, WINDOW};
use super::rx::Rx;
use super::tx::Tx;
use super::{ControlTx, FrameIo, Shared, ToControl};
use n2n_daemon::udp::Receiver;

/// Starts the thread that reads the TAP (and, while [`Roles`] says so, the socket). False if
/// the TAP has no descriptor to wait on: the caller then starts `run_tx`.
pub fn start_duplex(
    shared: &Arc<Shared>,
    tap: &Arc<dyn FrameIo>,
    udp: &UdpSocket,
    control: &ControlTx,
) -> std::io::Result<bool> {
    let Some(tap_fd) = tap.raw_fd() else {
        return Ok(false);
    };
    let (shared, tap, control) = (Arc::clone(shared), Arc::clone(tap), control.clone());
    let (rx_udp, tx_udp) = (udp.try_clone()?, udp.try_clone()?);
    std::thread::Builder::new()
        .name("n2n-io".into())
        .spawn(move || {
            let mut tx = Tx::new(Arc::clone(&shared), &*tap, tx_udp, control.clone());
            let mut rx = Rx::new(Arc::clone(&shared), control.clone());
            let mut batch = Receiver::new(shared.gro);
            let mut roles = Roles::new(Instant::now());
            // The receive thread parks after its next batch (run_rx).
            shared.duplex.store(true, Ordering::Release);
            loop {
                // The socket is ours once the receive thread has parked; until then (and while
                // split) only the TAP, with a timeout to look again and to see sending stop.
                let serve_udp = !roles.split() && shared.rx_parked.load(Ordering::Acquire);
                let (udp_fd, timeout) = match serve_udp {
                    true => (Some(rx_udp.as_raw_fd()), -1),
                    false => (None, WINDOW.as_millis() as i32),
                };
                let (tap_ready, udp_ready) =
                    match n2n_daemon::os::wait_readable(tap_fd, udp_fd, timeout) {
                        Ok(ready) => ready,
                        Err(e) => {
                            debug!(error = %e, "poll failed; the data path stops");
                            return control.post_blocking(ToControl::Stopped("poll"));
                        }
                    };
                // The TAP has one reader, so a ready TAP does not block; the socket is read
                // without waiting (the kernel may drop what made it ready).
                if tap_ready {
                    let start = Instant::now();
                    if !tx.read_once(&*tap) {
                        return;
                    }
                    roles.sent(start.elapsed());
                }
                if udp_ready && !rx.receive(&mut batch, &rx_udp, false) {
                    return;
                }
                match roles.tick(Instant::now()) {
                    Some(true) => {
                        debug!(
                            "sending keeps this thread busy: the receive thread takes the socket"
                        );
                        shared.duplex.store(false, Ordering::Release);
                        if let Some(t) = shared.rx_thread.get() {
                            t.unpark();
                        }
                    }
                    Some(false) => {
                        debug!("one thread serves both directions again");
                        shared.duplex.store(true, Ordering::Release);
                    }
                    None => {}
                }
            }
        })?;
    Ok(true)
}
