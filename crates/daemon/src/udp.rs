//! Batched UDP (data-path.md §2b): a run of equal-sized datagrams to one address leaves in
//! one `sendmsg` with UDP_SEGMENT, and one receive returns a UDP_GRO batch. The kernel splits
//! them on the way out, so the wire still carries one ordinary datagram per frame. quinn-udp
//! sets the socket up, sends and (for the supernode) receives, falling back to one datagram
//! per call where the kernel cannot; the edge receives with `os::recv_gro`, which can be told
//! not to wait.

use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;

use quinn_udp::{RecvMeta, Transmit, UdpSockRef, UdpSocketState};

mod datagrams;
mod selftest;

pub use datagrams::{MAX_GSO_SEGMENTS, Offloads, Receiver, send_datagrams};
pub use selftest::{LoopbackProbe, Probe, choose_offloads, self_test, setup_offloads};

/// UDP payload bytes one GSO send may carry (IPv4 limit, rounded down).
const MAX_GSO_BYTES: usize = 65_000;
/// A receive buffer large enough for the largest GRO batch.
pub const GRO_BUF: usize = 65_536 + 4_096;

/// Sets up GSO/GRO on `udp` (every clone shares it). quinn-udp switches the socket to
/// non-blocking and to "probe" path-MTU handling; `blocking` sets the first as wanted (the
/// edge's data threads block) and the MTU handling is put back as it was (n2n's).
pub fn offload_state(udp: &UdpSocket, blocking: bool) -> io::Result<UdpSocketState> {
    let mtu_mode = crate::os::mtu_discover(udp)?;
    let state = UdpSocketState::new(UdpSockRef::from(udp))?;
    udp.set_nonblocking(!blocking)?;
    crate::os::set_mtu_discover(udp, mtu_mode)?;
    Ok(state)
}

/// Asks for `bytes` of receive and send buffer (the kernel caps them at rmem_max/wmem_max);
/// best effort.
pub fn set_buffer_sizes(udp: &UdpSocket, bytes: usize) {
    let sock = socket2::SockRef::from(udp);
    let _ = sock.set_recv_buffer_size(bytes);
    let _ = sock.set_send_buffer_size(bytes);
}

/// Collects datagrams for one GSO send.
#[derive(Debug)]
pub struct GsoBatch {
    buf: Vec<u8>,
    seg: usize,
    count: usize,
    to: SocketAddr,
    /// Off (the self-test failed or a switch said so): every datagram is sent on its own.
    gso: bool,
}

impl Default for GsoBatch {
    fn default() -> Self {
        GsoBatch::new(true)
    }
}

impl GsoBatch {
    pub fn new(gso: bool) -> Self {
        GsoBatch {
            buf: Vec::with_capacity(MAX_GSO_BYTES),
            seg: 0,
            count: 0,
            to: SocketAddr::from(([0, 0, 0, 0], 0)),
            gso,
        }
    }

    /// Whether `len` bytes for `to` cannot join what is queued (send that first).
    pub fn must_send_before(&self, state: &UdpSocketState, to: SocketAddr, len: usize) -> bool {
        self.count > 0
            && (to != self.to
                || len > self.seg
                || self.buf.len() + len > MAX_GSO_BYTES
                || self.count >= state.max_gso_segments())
    }

    /// Queues `d` for `to` (after [`Self::must_send_before`] said it may join). Returns
    /// whether the batch must now be sent: a shorter datagram can only end a batch.
    pub fn add(&mut self, state: &UdpSocketState, to: SocketAddr, d: &[u8]) -> bool {
        if self.count == 0 {
            self.to = to;
            self.seg = d.len();
        }
        self.buf.extend_from_slice(d);
        self.count += 1;
        d.len() < self.seg || state.max_gso_segments() <= 1 || !self.gso
    }

    /// What is queued, as one send; `None` when empty.
    pub fn transmit(&self) -> Option<Transmit<'_>> {
        (self.count > 0).then(|| Transmit {
            destination: self.to,
            ecn: None,
            contents: &self.buf,
            segment_size: (self.count > 1).then_some(self.seg),
            src_ip: None,
        })
    }

    /// Forgets what is queued; returns how many datagrams that was.
    pub fn clear(&mut self) -> usize {
        self.buf.clear();
        std::mem::take(&mut self.count)
    }

    /// Blocking sockets: queues `d` for `to`, sending first what it cannot join. Returns how
    /// many datagrams a failed send lost.
    pub fn push(
        &mut self,
        state: &UdpSocketState,
        udp: &impl AsFd,
        to: SocketAddr,
        d: &[u8],
    ) -> usize {
        let mut lost = 0;
        if self.must_send_before(state, to, d.len()) {
            lost += self.flush(state, udp);
        }
        if self.add(state, to, d) {
            lost += self.flush(state, udp);
        }
        lost
    }

    /// Blocking sockets: sends what is queued. Returns how many datagrams were lost.
    pub fn flush(&mut self, state: &UdpSocketState, udp: &impl AsFd) -> usize {
        let failed = match self.transmit() {
            None => false,
            Some(t) => state
                .try_send(UdpSockRef::from(udp), &t)
                .inspect_err(|e| tracing::debug!(to = %self.to, error = %e, "send failed"))
                .is_err(),
        };
        let count = self.clear();
        if failed { count } else { 0 }
    }
}

/// Blocks for the next datagram or GRO batch in `buf`; returns its length, the size of each
/// datagram in it (the last may be shorter) and the sender.
pub fn recv_batch(
    state: &UdpSocketState,
    udp: &impl AsFd,
    buf: &mut [u8],
) -> io::Result<(usize, usize, SocketAddr)> {
    let mut meta = [RecvMeta::default()];
    let n = state.recv(
        UdpSockRef::from(udp),
        &mut [IoSliceMut::new(buf)],
        &mut meta,
    )?;
    if n == 0 {
        return Err(io::ErrorKind::WouldBlock.into());
    }
    let m = &meta[0];
    Ok((m.len, m.stride.max(1), m.addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (UdpSocket, UdpSocket, UdpSocketState, UdpSocketState) {
        let a = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let b = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let sa = offload_state(&a, true).expect("state");
        let sb = offload_state(&b, true).expect("state");
        (a, b, sa, sb)
    }

    /// Receives until `want` datagrams arrived, splitting GRO batches by their stride.
    fn receive(b: &UdpSocket, sb: &UdpSocketState, want: usize) -> Vec<Vec<u8>> {
        let mut buf = vec![0u8; GRO_BUF];
        let mut got = Vec::new();
        while got.len() < want {
            let (len, stride, _) = recv_batch(sb, b, &mut buf).expect("recv");
            got.extend(buf[..len].chunks(stride).map(<[u8]>::to_vec));
        }
        got
    }

    #[test]
    fn the_mtu_mode_is_kept() {
        let a = UdpSocket::bind("127.0.0.1:0").expect("bind");
        crate::os::set_pmtu_discovery(&a, false).expect("DONT");
        offload_state(&a, true).expect("state");
        assert_eq!(
            crate::os::mtu_discover(&a).expect("mode"),
            libc::IP_PMTUDISC_DONT
        );
    }

    #[test]
    fn batches_arrive_as_the_datagrams_pushed_in_order() {
        let (a, b, sa, sb) = pair();
        let to = b.local_addr().expect("addr");
        let mut batch = GsoBatch::default();
        let mut sent = Vec::new();
        // Equal sizes, then a shorter one, then sizes that force new batches.
        for (i, len) in [1300, 1300, 1300, 700, 1300, 1400, 90, 1300]
            .into_iter()
            .enumerate()
        {
            let d: Vec<u8> = (0..len).map(|j| (i * 31 + j) as u8).collect();
            assert_eq!(batch.push(&sa, &a, to, &d), 0);
            sent.push(d);
        }
        assert_eq!(batch.flush(&sa, &a), 0);
        assert_eq!(receive(&b, &sb, sent.len()), sent);
    }

    #[test]
    fn a_full_batch_is_sent_before_it_outgrows_one_send() {
        let (a, b, sa, sb) = pair();
        let to = b.local_addr().expect("addr");
        let mut batch = GsoBatch::default();
        let sent: Vec<Vec<u8>> = (0..150).map(|i| vec![i as u8; 1200]).collect();
        for d in &sent {
            assert_eq!(batch.push(&sa, &a, to, d), 0);
        }
        batch.flush(&sa, &a);
        assert_eq!(receive(&b, &sb, sent.len()), sent);
    }
}
