//! `n2n-udp-delay <listen addr:port> <upstream addr:port> <delay ms>`: a userspace UDP
//! forwarder that adds a fixed delay each way, for the end-to-end tests (this kernel has no
//! `sch_netem`, so `tc` cannot delay packets).
//!
//! Every client (source address) seen on the listen socket gets its own upstream socket, so
//! the upstream tells the clients apart; each datagram goes upstream `delay` after it arrived,
//! and each reply goes back to its client `delay` after it arrived. Bounded: at most
//! [`MAX_CLIENTS`] clients (datagrams from more are dropped) and [`QUEUE`] datagrams in flight
//! (beyond that they are dropped, as a full router queue would). Std only: one thread reads
//! the listen socket, one per client reads its upstream socket, one releases datagrams when
//! they are due. It keeps no state outside the process, so being killed is a clean exit.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::{Duration, Instant};

/// Most clients with an upstream socket (and a reader thread) at once.
const MAX_CLIENTS: usize = 64;
/// Most datagrams waiting for their time, both directions together.
const QUEUE: usize = 1024;
/// The largest UDP payload.
const MAX_DATAGRAM: usize = 65_535;

/// A datagram waiting until `due`, then sent through `via`: to `to`, or (None) to the peer
/// `via` is connected to.
struct Delayed {
    due: Instant,
    via: Arc<UdpSocket>,
    to: Option<SocketAddr>,
    /// One allocation per datagram, of its own size: the only per-packet cost.
    data: Vec<u8>,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let parsed = match args.as_slice() {
        [_, listen, upstream, ms] => listen
            .parse::<SocketAddr>()
            .ok()
            .zip(upstream.parse::<SocketAddr>().ok())
            .zip(ms.parse::<u64>().ok()),
        _ => None,
    };
    let Some(((listen, upstream), ms)) = parsed else {
        eprintln!("usage: n2n-udp-delay <listen addr:port> <upstream addr:port> <delay ms>");
        return ExitCode::from(2);
    };
    let socket = match UdpSocket::bind(listen) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("n2n-udp-delay: cannot bind {listen}: {e}");
            return ExitCode::from(1);
        }
    };
    let delay = Duration::from_millis(ms);
    let (tx, rx) = sync_channel::<Delayed>(QUEUE);
    std::thread::spawn(move || release(rx));
    // The tests wait for this line (stderr is unbuffered).
    eprintln!("n2n-udp-delay: {listen} -> {upstream}, +{ms} ms each way");

    let mut clients: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let Ok((n, client)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let due = Instant::now() + delay;
        let via = match clients.get(&client) {
            Some(up) => Arc::clone(up),
            None if clients.len() < MAX_CLIENTS => {
                match open_upstream(upstream, client, &socket, &tx, delay) {
                    Ok(up) => Arc::clone(clients.entry(client).or_insert(up)),
                    Err(e) => {
                        eprintln!("n2n-udp-delay: no upstream socket for {client}: {e}");
                        continue;
                    }
                }
            }
            None => continue, // too many clients: dropped
        };
        let _ = tx.try_send(Delayed {
            due,
            via,
            to: None,
            data: buf[..n].to_vec(),
        });
    }
}

/// A socket connected to `upstream` for one client, and the thread that queues its replies
/// back to that client.
fn open_upstream(
    upstream: SocketAddr,
    client: SocketAddr,
    listen: &Arc<UdpSocket>,
    tx: &SyncSender<Delayed>,
    delay: Duration,
) -> std::io::Result<Arc<UdpSocket>> {
    let any: SocketAddr = if upstream.is_ipv4() {
        "0.0.0.0:0".parse().expect("address")
    } else {
        "[::]:0".parse().expect("address")
    };
    let up = UdpSocket::bind(any)?;
    up.connect(upstream)?;
    let up = Arc::new(up);
    let (reader, listen, tx) = (Arc::clone(&up), Arc::clone(listen), tx.clone());
    std::thread::spawn(move || {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            match reader.recv(&mut buf) {
                Ok(n) => {
                    let _ = tx.try_send(Delayed {
                        due: Instant::now() + delay,
                        via: Arc::clone(&listen),
                        to: Some(client),
                        data: buf[..n].to_vec(),
                    });
                }
                // An ICMP unreachable from a stopped upstream: the next datagram may get through.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    });
    Ok(up)
}

/// Sends each datagram when it is due. The delay is the same for all, so arrival order is
/// due order and the channel itself is the timer queue.
fn release(rx: Receiver<Delayed>) {
    for d in rx {
        let now = Instant::now();
        if d.due > now {
            std::thread::sleep(d.due - now);
        }
        let _ = match d.to {
            Some(to) => d.via.send_to(&d.data, to),
            None => d.via.send(&d.data),
        };
    }
}
