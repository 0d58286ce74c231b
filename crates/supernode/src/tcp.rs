//! `-S2` edges (spec §3.1, §7.12): the supernode also listens on TCP on its UDP port. Each
//! connection carries n2n datagrams behind 2-byte lengths; what the machine sends to an
//! address with a connection goes down that connection. A slow or stuck reader only loses its
//! own messages (bounded queue per connection), garbage or an oversized frame ends the
//! connection, and connections are capped in total and per source address.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use n2n_proto::tcp::{Deframer, MAX_TCP_MESSAGE, encode_prefix};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Most TCP connections at once (n2n: FD_SETSIZE − 4).
pub const MAX_CONNECTIONS: usize = 1000;
/// Most TCP connections from one address.
pub const MAX_PER_SOURCE: usize = 8;
/// Messages queued for one connection before new ones are dropped.
const QUEUE: usize = 256;

/// What a connection reports to the main loop.
#[derive(Debug)]
pub enum TcpEvent {
    Message(SocketAddr, Vec<u8>),
    /// The connection `id` ended; `bad` when the peer sent garbage or an oversized frame.
    Closed {
        peer: SocketAddr,
        id: u64,
        bad: bool,
    },
}

/// The open connections, by the peer's address.
#[derive(Debug, Default)]
pub struct TcpEdges {
    /// Each connection with its id: a peer that reconnects from the same address gets a new
    /// one, so the old connection's late `Closed` cannot take the new one down.
    conns: HashMap<SocketAddr, (u64, mpsc::Sender<Vec<u8>>)>,
    per_source: HashMap<IpAddr, usize>,
    next_id: u64,
}

impl TcpEdges {
    /// Takes a new connection if the caps allow; its task reports to `events`.
    pub fn admit(
        &mut self,
        stream: TcpStream,
        peer: SocketAddr,
        events: mpsc::Sender<TcpEvent>,
    ) -> bool {
        if let Some((old, _)) = self.conns.get(&peer) {
            // The same address again: the old connection is replaced (its task ends when its
            // queue's sender goes).
            let old = *old;
            self.closed(peer, old);
        }
        let from_source = self.per_source.get(&peer.ip()).copied().unwrap_or(0);
        if self.conns.len() >= MAX_CONNECTIONS || from_source >= MAX_PER_SOURCE {
            return false;
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        let id = self.next_id;
        self.next_id += 1;
        self.conns.insert(peer, (id, tx));
        *self.per_source.entry(peer.ip()).or_default() += 1;
        tokio::spawn(connection(stream, peer, id, events, rx));
        true
    }

    /// Forgets connection `id` of `peer`; `false` if that connection was already replaced
    /// (then its edge belongs to the new one).
    pub fn closed(&mut self, peer: SocketAddr, id: u64) -> bool {
        if self.conns.get(&peer).is_none_or(|(i, _)| *i != id) {
            return false;
        }
        self.conns.remove(&peer);
        if let Some(n) = self.per_source.get_mut(&peer.ip()) {
            *n -= 1;
            if *n == 0 {
                self.per_source.remove(&peer.ip());
            }
        }
        true
    }

    /// Queues `data` for `dst` if it is a TCP peer: `None` if it is not, `Some(false)` if its
    /// queue is full (the message is dropped).
    pub fn send(&self, dst: SocketAddr, data: &[u8]) -> Option<bool> {
        let (_, conn) = self.conns.get(&dst)?;
        let Ok(prefix) = encode_prefix(data.len()) else {
            return Some(false);
        };
        let mut frame = Vec::with_capacity(2 + data.len());
        frame.extend_from_slice(&prefix);
        frame.extend_from_slice(data);
        Some(conn.try_send(frame).is_ok())
    }

    pub fn len(&self) -> usize {
        self.conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }
}

/// Reads frames into the main loop and writes what it queues, until either side fails.
async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    id: u64,
    events: mpsc::Sender<TcpEvent>,
    mut outgoing: mpsc::Receiver<Vec<u8>>,
) {
    let _ = stream.set_nodelay(true);
    let mut deframer = Deframer::default();
    let mut buf = vec![0u8; 4096];
    let bad = loop {
        tokio::select! {
            r = stream.read(&mut buf) => {
                let n = match r {
                    Ok(0) | Err(_) => break false,
                    Ok(n) => n,
                };
                let mut messages = Vec::new();
                if deframer
                    .push(&buf[..n], |m| messages.push(m.to_vec()))
                    .is_err()
                {
                    break true;
                }
                for m in messages {
                    debug_assert!(m.len() <= MAX_TCP_MESSAGE);
                    if events.send(TcpEvent::Message(peer, m)).await.is_err() {
                        return;
                    }
                }
            }
            frame = outgoing.recv() => match frame {
                Some(f) => {
                    if stream.write_all(&f).await.is_err() {
                        break false;
                    }
                }
                None => break false,
            },
        }
    };
    let _ = events.send(TcpEvent::Closed { peer, id, bad }).await;
}
