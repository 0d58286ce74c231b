//! One thread for both directions (UDP, once the TAP exists): it waits on the TAP and the
//! socket at once and serves whichever is ready. A frame then never has to wake a second
//! thread of the same edge: with one heavy direction (a download), the light one (its TCP
//! ACKs) used to cost a wake-up and a sleep per ACK on each side. n2n's own edge is one
//! select loop too. The sealing helper still takes half of a big batch when a core is idle.
//! `N2N_RS_DUPLEX=0` keeps two threads (`run_tx` and `run_rx`).

use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tracing::debug;

use super::rx::Rx;
use super::tx::Tx;
use super::{ControlTx, FrameIo, Shared, ToControl};
use n2n_daemon::udp::Receiver;

/// Serves the TAP and the socket until either fails. Returns at once (false) if the TAP has
/// no descriptor to wait on or the socket cannot be shared; the caller then starts `run_tx`.
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
            // The receive thread that ran until now stops after its next batch.
            shared.duplex.store(true, Ordering::Release);
            loop {
                let (tap_ready, udp_ready) =
                    match n2n_daemon::os::wait_readable(tap_fd, rx_udp.as_raw_fd()) {
                        Ok(ready) => ready,
                        Err(e) => {
                            debug!(error = %e, "poll failed; stopping the data path");
                            return control.post_blocking(ToControl::Stopped("poll"));
                        }
                    };
                // The TAP has one reader now, so a ready TAP does not block; the socket is
                // read without waiting (the kernel may drop what made it ready).
                if tap_ready && !tx.read_once(&*tap) {
                    return;
                }
                if udp_ready && !rx.receive(&mut batch, &rx_udp, false) {
                    return;
                }
            }
        })?;
    Ok(true)
}
