//! The thin tokio shell: moves datagrams between the sockets and the machine, runs its timer,
//! answers management requests and reloads the community list on SIGHUP.

use std::future::Future;
use std::io;
use std::time::Duration;

use n2n_daemon::logging::LogHandle;
use n2n_daemon::udp::{GRO_BUF, GsoBatch, recv_batch};
use n2n_daemon::unix_micros;
use quinn_udp::{UdpSockRef, UdpSocketState};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{info, warn};

use crate::machine::{Outbox, Supernode};
use crate::mgmt::{self, Control};

/// n2n's N2N_SN_PKTBUF_SIZE: each datagram of a receive batch is cut to it, so longer ones
/// fail to decode or decrypt, as with the reference.
const RECV_BUF: usize = 2048;

/// Runs until `shutdown` completes or the management API says stop. `state` is `udp`'s
/// GRO/GSO set-up: a receive may return a batch of datagrams from one sender, and relayed
/// datagrams to one destination leave in GSO batches (the wire still carries one datagram
/// each).
pub async fn run(
    mut sn: Supernode,
    udp: UdpSocket,
    state: UdpSocketState,
    mgmt_sock: UdpSocket,
    mut ctl: Control,
    log: Option<LogHandle>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let mut buf = vec![0u8; GRO_BUF];
    let mut batch = GsoBatch::default();
    let mut mbuf = vec![0u8; 512];
    let mut out = Outbox::default();
    let mut hangup = signal(SignalKind::hangup())?;
    tokio::pin!(shutdown);
    info!(listen = %udp.local_addr()?, mgmt = %mgmt_sock.local_addr()?, "supernode started");
    loop {
        let wait = sn.poll_timeout().saturating_sub(unix_micros());
        tokio::select! {
            r = udp.async_io(Interest::READABLE, || recv_batch(&state, &udp, &mut buf)) => {
                let (len, stride, from) = match r {
                    Ok(x) => x,
                    Err(e) => { warn!(error = %e, "receive failed"); continue; }
                };
                for datagram in buf[..len].chunks_mut(stride) {
                    let n = datagram.len().min(RECV_BUF);
                    sn.handle_datagram(unix_micros(), from, &mut datagram[..n], &mut out);
                    for t in out.transmits() {
                        for &dst in &t.dests {
                            if batch.must_send_before(&state, dst, t.data.len()) {
                                send(&udp, &state, &mut batch).await;
                            }
                            if batch.add(&state, dst, &t.data) {
                                send(&udp, &state, &mut batch).await;
                            }
                        }
                    }
                }
                send(&udp, &state, &mut batch).await;
            }
            r = mgmt_sock.recv_from(&mut mbuf) => {
                let Ok((n, from)) = r else { continue };
                let before = ctl.verbosity;
                for reply in mgmt::handle(&mut sn, &mut ctl, unix_micros(), &mbuf[..n]) {
                    let _ = mgmt_sock.send_to(reply.as_bytes(), from).await;
                }
                if ctl.verbosity != before && let Some(l) = &log {
                    l.set_verbosity(ctl.verbosity);
                }
                if !ctl.keep_running {
                    info!("stop requested by the management interface");
                    break;
                }
            }
            _ = tokio::time::sleep(Duration::from_micros(wait)) => sn.handle_timeout(unix_micros()),
            _ = hangup.recv() => match mgmt::reload(&mut sn, &ctl) {
                Ok(()) => info!("community list reloaded"),
                Err(e) => warn!("{e}"),
            },
            _ = &mut shutdown => {
                info!("shutting down");
                break;
            }
        }
    }
    Ok(())
}

/// Sends the queued batch, waiting while the socket buffer is full.
async fn send(udp: &UdpSocket, state: &UdpSocketState, batch: &mut GsoBatch) {
    if let Some(t) = batch.transmit() {
        let r = udp
            .async_io(Interest::WRITABLE, || {
                state.try_send(UdpSockRef::from(udp), &t)
            })
            .await;
        if let Err(e) = r {
            warn!(dst = %t.destination, error = %e, "send failed");
        }
    }
    batch.clear();
}

/// Completes on SIGTERM or SIGINT.
pub async fn termination() {
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return std::future::pending().await;
    };
    let Ok(mut int) = signal(SignalKind::interrupt()) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
