//! The thin tokio shell: moves datagrams between the sockets and the machine, runs its timer,
//! answers management requests and reloads the community list on SIGHUP.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use n2n_daemon::logging::LogHandle;
use n2n_daemon::udp::{GRO_BUF, GsoBatch, recv_batch};
use n2n_daemon::unix_micros;
use quinn_udp::{UdpSockRef, UdpSocketState};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::machine::{Outbox, Supernode};
use crate::mgmt::{self, Control};

/// n2n's N2N_SN_PKTBUF_SIZE: each datagram of a receive batch is cut to it, so longer ones
/// fail to decode or decrypt, as with the reference.
const RECV_BUF: usize = 2048;

/// The sockets `main` opened: `state` is `udp`'s GRO/GSO set-up.
pub struct Sockets {
    pub udp: UdpSocket,
    pub state: UdpSocketState,
    pub mgmt: UdpSocket,
}

impl std::fmt::Debug for Sockets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sockets").finish_non_exhaustive()
    }
}

/// Runs until `shutdown` completes or the management API says stop. A receive may return a
/// batch of datagrams from one sender, and relayed datagrams to one destination leave in GSO
/// batches (the wire still carries one datagram each). `anchors` are the `-l` supernodes,
/// resolved in the background.
pub async fn run(
    mut sn: Supernode,
    sockets: Sockets,
    anchors: Vec<String>,
    mut ctl: Control,
    log: Option<LogHandle>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let Sockets {
        udp,
        state,
        mgmt: mgmt_sock,
    } = sockets;
    let (anchor_tx, mut anchor_rx) = mpsc::channel(16);
    for anchor in anchors {
        tokio::spawn(resolve_anchor(anchor, anchor_tx.clone()));
    }
    drop(anchor_tx);
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
                send_all(&udp, &ctl.out).await;
                ctl.out.clear();
                if ctl.verbosity != before && let Some(l) = &log {
                    l.set_verbosity(ctl.verbosity);
                }
                if !ctl.keep_running {
                    info!("stop requested by the management interface");
                    break;
                }
            }
            _ = tokio::time::sleep(Duration::from_micros(wait)) => {
                sn.handle_timeout(unix_micros(), &mut out);
                send_all(&udp, &out).await;
            }
            Some(addr) = anchor_rx.recv() => {
                sn.add_anchor(unix_micros(), addr, &mut out);
                send_all(&udp, &out).await;
            }
            _ = hangup.recv() => {
                match mgmt::reload(&mut sn, &mut ctl, unix_micros()) {
                    Ok(()) => info!("community list reloaded"),
                    Err(e) => warn!("{e}"),
                }
                send_all(&udp, &ctl.out).await;
                ctl.out.clear();
            }
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

/// Sends what a timer or an anchor produced (a few datagrams: no batching).
async fn send_all(udp: &UdpSocket, out: &Outbox) {
    for t in out.transmits() {
        for &dst in &t.dests {
            if let Err(e) = udp.send_to(&t.data, dst).await {
                debug!(%dst, error = %e, "send failed");
            }
        }
    }
}

/// Resolves one `-l host:port` (IPv4, as n2n) and hands it to the loop; failures are retried
/// with backoff from 1 s to 5 min, each logged once per change.
async fn resolve_anchor(anchor: String, tx: mpsc::Sender<SocketAddr>) {
    let mut wait = Duration::from_secs(1);
    let mut warned = false;
    loop {
        let found = tokio::net::lookup_host(anchor.as_str())
            .await
            .ok()
            .and_then(|mut addrs| addrs.find(SocketAddr::is_ipv4));
        if let Some(addr) = found {
            let _ = tx.send(addr).await;
            return;
        }
        if !warned {
            warn!(supernode = %anchor, "cannot resolve -l; retrying with backoff");
            warned = true;
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(300));
    }
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
