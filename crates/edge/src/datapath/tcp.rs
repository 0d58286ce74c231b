//! `-S2`: everything to and from the supernode over one TCP connection with n2n's 2-byte
//! length framing (spec §3.1). The send side is shared (the TAP thread, the control path);
//! one thread owns the connection: it connects to the current supernode, feeds the frames it
//! reads into the receive path, and reconnects with backoff when the connection fails.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Mutex;
use std::time::Duration;

use n2n_proto::tcp::{Deframer, MAX_TCP_MESSAGE, encode_prefix};

/// The write half of the connection, if there is one.
#[derive(Debug, Default)]
pub struct TcpLink {
    stream: Mutex<Option<TcpStream>>,
}

impl TcpLink {
    /// Sends one message (length prefix and message in one write); `false` when there is no
    /// connection or it failed (the reading thread then reconnects).
    pub fn send(&self, message: &[u8]) -> bool {
        let Ok(prefix) = encode_prefix(message.len()) else {
            return false;
        };
        let mut frame = [0u8; MAX_TCP_MESSAGE + 2];
        frame[..2].copy_from_slice(&prefix);
        frame[2..2 + message.len()].copy_from_slice(message);
        let Ok(mut guard) = self.stream.lock() else {
            return false;
        };
        let Some(s) = guard.as_mut() else {
            return false;
        };
        if s.write_all(&frame[..2 + message.len()]).is_err() {
            // Shut it so the reader notices at once.
            let _ = s.shutdown(std::net::Shutdown::Both);
            *guard = None;
            return false;
        }
        true
    }

    fn set(&self, stream: Option<TcpStream>) {
        if let Ok(mut guard) = self.stream.lock() {
            *guard = stream;
        }
    }
}

/// A write to the supernode that takes longer ends the connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often a quiet connection checks that its supernode is still the current one.
const RECHECK: Duration = Duration::from_secs(1);
/// Backoff between connection attempts.
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(8);

/// Keeps a connection to `target()` (the current supernode) up until `target` returns `None`:
/// calls `connected` after each (re)connection and `on_message` for each message read.
pub fn run_link(
    link: &TcpLink,
    mut target: impl FnMut() -> Option<SocketAddr>,
    mut connected: impl FnMut(SocketAddr),
    mut on_message: impl FnMut(&mut [u8], SocketAddr),
) {
    let mut backoff = BACKOFF_MIN;
    let mut buf = [0u8; 4096];
    let mut message = [0u8; MAX_TCP_MESSAGE];
    while let Some(to) = target() {
        let Ok(stream) = TcpStream::connect_timeout(&to, Duration::from_secs(3)) else {
            tracing::debug!(supernode = %to, "cannot connect over TCP; retrying");
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(BACKOFF_MAX);
            continue;
        };
        let _ = stream.set_nodelay(true);
        // A stalled supernode must not hold the senders (the TAP thread, the control loop)
        // for long: a write that cannot finish in 2 s ends the connection.
        let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
        let _ = stream.set_read_timeout(Some(RECHECK));
        let Ok(reader) = stream.try_clone() else {
            continue;
        };
        link.set(Some(stream));
        tracing::info!(supernode = %to, "connected to the supernode over TCP");
        backoff = BACKOFF_MIN;
        connected(to);
        let mut still_current = || target() == Some(to);
        read_until_closed(
            reader,
            to,
            &mut buf,
            &mut message,
            &mut on_message,
            &mut still_current,
        );
        link.set(None);
        tracing::warn!(supernode = %to, "the TCP connection to the supernode closed; reconnecting");
        std::thread::sleep(backoff);
    }
}

/// Reads until the connection closes, or the machine moved to another supernode (checked
/// whenever the connection has been quiet for [`RECHECK`]).
fn read_until_closed(
    mut reader: TcpStream,
    from: SocketAddr,
    buf: &mut [u8],
    message: &mut [u8; MAX_TCP_MESSAGE],
    on_message: &mut impl FnMut(&mut [u8], SocketAddr),
    still_current: &mut impl FnMut() -> bool,
) {
    let mut deframer = Deframer::default();
    loop {
        let n = match reader.read(buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if still_current() {
                    continue;
                }
                let _ = reader.shutdown(std::net::Shutdown::Both);
                return;
            }
            Err(_) => return,
        };
        let ok = deframer.push(&buf[..n], |m| {
            message[..m.len()].copy_from_slice(m);
            on_message(&mut message[..m.len()], from);
        });
        if ok.is_err() {
            // An oversized frame: n2n drops the connection.
            return;
        }
    }
}
