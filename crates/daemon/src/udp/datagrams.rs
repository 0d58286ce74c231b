//! The edge's data path on the socket: datagrams leave from the buffers they were sealed in
//! (GSO runs as one `sendmsg` of several buffers, else `sendmmsg`), and arrive as one GRO
//! batch or, with GRO off, as up to 32 datagrams from one `recvmmsg`.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{GRO_BUF, MAX_GSO_BYTES};
use crate::os;

/// Most datagrams in one GSO send (the kernel's UDP_MAX_SEGMENTS).
pub const MAX_GSO_SEGMENTS: usize = 64;
/// Datagrams one receive returns with GRO off, and the room for each.
const MMSG_COUNT: usize = 32;
const MMSG_ROOM: usize = 4096;

/// Which UDP offloads the data path uses (after the start-up self-test).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offloads {
    pub gso: bool,
    pub gro: bool,
}

/// Sends each of `parts` as one datagram to `to`. While `gso` holds, each run of equal sizes
/// (ended by at most one shorter datagram, ≤ 64 datagrams, ≤ 65 000 bytes) is one `sendmsg`
/// that the kernel segments; else all go in `sendmmsg` calls. A GSO send the kernel refuses
/// for GSO's sake (EIO: no checksum offload on the way out; EINVAL/EMSGSIZE: a segment over
/// the route's MTU) is sent again datagram by datagram and turns `gso` off for good, as
/// quinn-udp does. Returns how many were lost.
pub fn send_datagrams(
    sock: &impl AsRawFd,
    to: SocketAddr,
    parts: &[IoSlice<'_>],
    gso: &AtomicBool,
) -> usize {
    if !gso.load(Ordering::Relaxed) {
        return send_each(sock, to, parts);
    }
    let mut lost = 0;
    let mut start = 0;
    while start < parts.len() {
        let size = parts[start].len();
        let mut end = start + 1;
        let mut bytes = size;
        while end < parts.len()
            && end - start < MAX_GSO_SEGMENTS
            && bytes + parts[end].len() <= MAX_GSO_BYTES
            && parts[end].len() <= size
        {
            bytes += parts[end].len();
            end += 1;
            if parts[end - 1].len() < size {
                break;
            }
        }
        let run = &parts[start..end];
        let segment = (run.len() > 1).then_some(size as u16);
        match os::send_segments(sock, to, run, segment) {
            Ok(()) => {}
            Err(e) if segment.is_some() && refuses_gso(&e) => {
                tracing::warn!(%to, error = %e, "UDP GSO refused: sending datagram by datagram");
                gso.store(false, Ordering::Relaxed);
                lost += send_each(sock, to, run);
            }
            Err(e) => {
                tracing::debug!(%to, error = %e, "send failed");
                lost += run.len();
            }
        }
        start = end;
    }
    lost
}

/// The errors with which a kernel or a device refuses a GSO send as such.
fn refuses_gso(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EIO | libc::EINVAL | libc::EMSGSIZE)
    )
}

/// `sendmmsg`; returns how many were lost.
fn send_each(sock: &impl AsRawFd, to: SocketAddr, parts: &[IoSlice<'_>]) -> usize {
    match os::send_each(sock, to, parts) {
        Ok(n) => parts.len() - n,
        Err(e) => {
            tracing::debug!(%to, error = %e, "send failed");
            parts.len()
        }
    }
}

/// A receive buffer: one GRO batch, or with GRO off the datagrams of one `recvmmsg`.
pub struct Receiver {
    buf: Vec<u8>,
    room: usize,
    /// Length, stride and sender of what each part of `buf` holds.
    got: [(usize, usize, SocketAddr); MMSG_COUNT],
    count: usize,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Receiver({} x {})",
            self.buf.len() / self.room,
            self.room
        )
    }
}

impl Receiver {
    pub fn new(gro: bool) -> Self {
        let (count, room) = if gro {
            (1, GRO_BUF)
        } else {
            (MMSG_COUNT, MMSG_ROOM)
        };
        Receiver {
            buf: vec![0u8; count * room],
            room,
            got: [(0, 1, SocketAddr::from(([0, 0, 0, 0], 0))); MMSG_COUNT],
            count: 0,
        }
    }

    /// Receives what is queued (see [`Self::datagrams`]). With `wait` it blocks until something
    /// arrives; without, nothing queued is `WouldBlock` (it never blocks, even when the kernel
    /// drops the only datagram it found, e.g. for a bad checksum).
    pub fn recv(&mut self, sock: &impl AsRawFd, wait: bool) -> io::Result<()> {
        if self.buf.len() == self.room {
            self.got[0] = os::recv_gro(sock, &mut self.buf, wait)?;
            self.count = 1;
            return Ok(());
        }
        let mut chunks = self.buf.chunks_mut(self.room);
        let mut iov: [IoSliceMut<'_>; MMSG_COUNT] =
            std::array::from_fn(|_| IoSliceMut::new(chunks.next().unwrap_or_default()));
        let mut got = [(0, SocketAddr::from(([0, 0, 0, 0], 0))); MMSG_COUNT];
        let n = os::recv_each(sock, &mut iov, &mut got, wait)?;
        for (slot, (len, from)) in self.got.iter_mut().zip(&got[..n]) {
            *slot = (*len, (*len).max(1), *from);
        }
        self.count = n;
        Ok(())
    }

    /// Every datagram of the last receive, in order, with its sender.
    pub fn datagrams(&mut self) -> impl Iterator<Item = (&mut [u8], SocketAddr)> {
        let got = &self.got[..self.count];
        self.buf
            .chunks_mut(self.room)
            .zip(got)
            .filter(|(_, (len, _, _))| *len > 0)
            .flat_map(|(chunk, &(len, stride, from))| {
                let len = len.min(chunk.len());
                chunk[..len].chunks_mut(stride).map(move |d| (d, from))
            })
    }
}

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;

    use super::*;
    use crate::udp::offload_state;

    #[test]
    fn mixed_sizes_arrive_as_sent_in_order_with_and_without_offloads() {
        for (gso, gro) in [(true, true), (true, false), (false, true), (false, false)] {
            let a = UdpSocket::bind("127.0.0.1:0").expect("bind");
            let b = UdpSocket::bind("127.0.0.1:0").expect("bind");
            offload_state(&b, true).expect("state");
            os::set_udp_gro(&b, gro).expect("gro");
            // Runs of equal sizes, a shorter one ending a run, a longer one starting the next,
            // and more than one GSO send can take.
            let mut sizes = vec![1300, 1300, 1300, 700, 1300, 1400, 90, 1300];
            sizes.extend([1000; 70]);
            let sent: Vec<Vec<u8>> = sizes
                .iter()
                .enumerate()
                .map(|(i, &n)| (0..n).map(|j| (i * 31 + j) as u8).collect())
                .collect();
            let parts: Vec<IoSlice<'_>> = sent.iter().map(|d| IoSlice::new(d)).collect();
            let to = b.local_addr().expect("addr");
            assert_eq!(send_datagrams(&a, to, &parts, &AtomicBool::new(gso)), 0);
            b.set_read_timeout(Some(std::time::Duration::from_secs(2)))
                .expect("timeout");
            let mut rx = Receiver::new(gro);
            let mut got = Vec::new();
            while got.len() < sent.len() && rx.recv(&b, true).is_ok() {
                got.extend(rx.datagrams().map(|(d, _)| d.to_vec()));
            }
            let sizes: Vec<usize> = got.iter().map(Vec::len).collect();
            assert!(got == sent, "gso {gso} gro {gro}: got {sizes:?}");
        }
    }

    #[test]
    fn a_receive_that_must_not_wait_returns_at_once() {
        for gro in [true, false] {
            let a = UdpSocket::bind("127.0.0.1:0").expect("bind");
            let b = UdpSocket::bind("127.0.0.1:0").expect("bind");
            offload_state(&b, true).expect("state");
            os::set_udp_gro(&b, gro).expect("gro");
            // A receive that waited would end only at this timeout.
            b.set_read_timeout(Some(std::time::Duration::from_secs(2)))
                .expect("timeout");
            let mut rx = Receiver::new(gro);
            let started = std::time::Instant::now();
            let e = rx.recv(&b, false).expect_err("nothing queued");
            assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "gro {gro}");
            assert!(started.elapsed() < std::time::Duration::from_millis(500));
            // Loopback queues a datagram within the send call.
            let sent = [7u8; 300];
            a.send_to(&sent, b.local_addr().expect("addr"))
                .expect("send");
            rx.recv(&b, false).expect("queued");
            let got: Vec<(Vec<u8>, SocketAddr)> =
                rx.datagrams().map(|(d, from)| (d.to_vec(), from)).collect();
            assert_eq!(got, vec![(sent.to_vec(), a.local_addr().expect("addr"))]);
        }
    }
}
