//! The thin tokio shell: moves datagrams between the sockets and the machine, runs its timer,
//! answers management requests and reloads the community list on SIGHUP.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use n2n_daemon::logging::LogHandle;
use n2n_daemon::udp::{GRO_BUF, GsoBatch, recv_batch};
use n2n_daemon::{mono_micros, unix_micros};
use quinn_udp::{UdpSockRef, UdpSocketState};
use tokio::io::Interest;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::machine::{DropReason, Outbox, Supernode};
use crate::mgmt::{self, Control};
use crate::tcp::{TcpEdges, TcpEvent};

/// n2n's N2N_SN_PKTBUF_SIZE: each datagram of a receive batch is cut to it, so longer ones
/// fail to decode or decrypt, as with the reference.
const RECV_BUF: usize = 2048;

/// The sockets `main` opened: `state` is `udp`'s GRO/GSO set-up.
pub struct Sockets {
    pub udp: UdpSocket,
    pub state: UdpSocketState,
    /// UDP GSO (after the start-up self-test).
    pub gso: bool,
    pub mgmt: UdpSocket,
    /// `-S2` edges, on the UDP port number (none if it could not be bound).
    pub tcp: Option<TcpListener>,
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
        gso,
        mgmt: mgmt_sock,
        tcp: listener,
    } = sockets;
    let mut tcp = TcpEdges::default();
    let (tcp_events_tx, mut tcp_events) = mpsc::channel(1024);
    let (anchor_tx, mut anchor_rx) = mpsc::channel(16);
    for anchor in anchors {
        tokio::spawn(resolve_anchor(anchor, anchor_tx.clone()));
    }
    drop(anchor_tx);
    let mut buf = vec![0u8; GRO_BUF];
    let mut batch = GsoBatch::new(gso);
    let mut mbuf = vec![0u8; 512];
    let mut out = Outbox::default();
    let mut hangup = signal(SignalKind::hangup())?;
    tokio::pin!(shutdown);
    info!(listen = %udp.local_addr()?, mgmt = %mgmt_sock.local_addr()?, "supernode started");
    loop {
        sn.set_wall_clock(mono_micros(), unix_micros());
        let wait = sn.poll_timeout().saturating_sub(mono_micros());
        tokio::select! {
            r = udp.async_io(Interest::READABLE, || recv_batch(&state, &udp, &mut buf)) => {
                let (len, stride, from) = match r {
                    Ok(x) => x,
                    Err(e) => { warn!(error = %e, "receive failed"); continue; }
                };
                for datagram in buf[..len].chunks_mut(stride) {
                    let n = datagram.len().min(RECV_BUF);
                    sn.handle_datagram(mono_micros(), from, &mut datagram[..n], &mut out);
                    let lost = dispatch(&out, &udp, &state, &mut batch, &tcp).await;
                    sn.count_tcp_drops(DropReason::TcpQueueFull, lost);
                }
                send(&udp, &state, &mut batch).await;
            }
            r = accept(listener.as_ref()) => {
                let Ok((stream, peer)) = r else { continue };
                if tcp.admit(stream, peer, tcp_events_tx.clone()) {
                    sn.connection_opened(peer);
                } else {
                    debug!(%peer, "TCP connection refused: too many");
                    sn.count_tcp_drops(DropReason::TcpRefused, 1);
                }
            }
            Some(ev) = tcp_events.recv() => match ev {
                TcpEvent::Message(peer, mut data) => {
                    let n = data.len().min(RECV_BUF);
                    sn.handle_datagram(mono_micros(), peer, &mut data[..n], &mut out);
                    let lost = dispatch(&out, &udp, &state, &mut batch, &tcp).await;
                    sn.count_tcp_drops(DropReason::TcpQueueFull, lost);
                    send(&udp, &state, &mut batch).await;
                }
                TcpEvent::Closed { peer, id, bad } => {
                    if tcp.closed(peer, id) {
                        sn.connection_closed(peer);
                    }
                    if bad {
                        debug!(%peer, "TCP connection dropped: bad framing");
                        sn.count_tcp_drops(DropReason::TcpFraming, 1);
                    }
                }
            },
            r = mgmt_sock.recv_from(&mut mbuf) => {
                let Ok((n, from)) = r else { continue };
                let before = ctl.verbosity;
                for reply in mgmt::handle(&mut sn, &mut ctl, mono_micros(), &mbuf[..n]) {
                    let _ = mgmt_sock.send_to(reply.as_bytes(), from).await;
                }
                send_all(&udp, &state, &mut batch, &tcp, &ctl.out).await;
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
                sn.handle_timeout(mono_micros(), &mut out);
                send_all(&udp, &state, &mut batch, &tcp, &out).await;
            }
            Some(addr) = anchor_rx.recv() => {
                sn.add_anchor(mono_micros(), addr, &mut out);
                send_all(&udp, &state, &mut batch, &tcp, &out).await;
            }
            _ = hangup.recv() => {
                match mgmt::reload(&mut sn, &mut ctl, mono_micros()) {
                    Ok(()) => info!("community list reloaded"),
                    Err(e) => warn!("{e}"),
                }
                send_all(&udp, &state, &mut batch, &tcp, &ctl.out).await;
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

/// Queues `out`'s transmits: TCP peers get theirs down their connection, the rest go in UDP
/// batches (not flushed). Returns how many were dropped for a full TCP queue.
async fn dispatch(
    out: &Outbox,
    udp: &UdpSocket,
    state: &UdpSocketState,
    batch: &mut GsoBatch,
    tcp: &TcpEdges,
) -> usize {
    let mut lost = 0;
    for t in out.transmits() {
        for &dst in &t.dests {
            match tcp.send(dst, &t.data) {
                Some(true) => continue,
                Some(false) => {
                    lost += 1;
                    continue;
                }
                None => {}
            }
            if batch.must_send_before(state, dst, t.data.len()) {
                send(udp, state, batch).await;
            }
            if batch.add(state, dst, &t.data) {
                send(udp, state, batch).await;
            }
        }
    }
    lost
}

/// Accepts from the listener, or never when there is none.
async fn accept(listener: Option<&TcpListener>) -> io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// Sends what a timer, an anchor or management produced, now: [`dispatch`] and a flush.
/// (Only the datagram path counts what a full TCP queue drops, as before.)
async fn send_all(
    udp: &UdpSocket,
    state: &UdpSocketState,
    batch: &mut GsoBatch,
    tcp: &TcpEdges,
    out: &Outbox,
) {
    dispatch(out, udp, state, batch, tcp).await;
    send(udp, state, batch).await;
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
