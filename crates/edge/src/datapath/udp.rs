//! Batched UDP (data-path.md §2b): a run of equal-sized datagrams to one address leaves in
//! one `sendmsg` with UDP_SEGMENT, and one receive returns a UDP_GRO batch. The kernel splits
//! them on the way out, so the wire still carries one ordinary datagram per frame. quinn-udp
//! does the cmsg work and falls back to one datagram per call where the kernel cannot.

use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};

use quinn_udp::{RecvMeta, Transmit, UdpSockRef, UdpSocketState};

/// UDP payload bytes one GSO send may carry (IPv4 limit, rounded down).
const MAX_GSO_BYTES: usize = 65_000;
/// A receive buffer large enough for the largest GRO batch.
pub const GRO_BUF: usize = 65_536 + 4_096;

/// Sets up GSO/GRO on `udp` (every clone shares it). quinn-udp switches the socket to
/// non-blocking and to "probe" path-MTU handling; the data threads block, and `-D` decides
/// the MTU handling, so both are put back.
pub fn offload_state(udp: &UdpSocket, pmtu_discovery: bool) -> io::Result<UdpSocketState> {
    let state = UdpSocketState::new(UdpSockRef::from(udp))?;
    udp.set_nonblocking(false)?;
    n2n_daemon::os::set_pmtu_discovery(udp, pmtu_discovery)?;
    Ok(state)
}

/// Collects datagrams for one GSO send.
#[derive(Debug)]
pub struct GsoBatch {
    buf: Vec<u8>,
    seg: usize,
    count: usize,
    to: SocketAddr,
}

impl Default for GsoBatch {
    fn default() -> Self {
        GsoBatch {
            buf: Vec::with_capacity(MAX_GSO_BYTES),
            seg: 0,
            count: 0,
            to: SocketAddr::from(([0, 0, 0, 0], 0)),
        }
    }
}

impl GsoBatch {
    /// Queues `d` for `to`, sending what is queued first when `d` cannot join it. Returns
    /// how many datagrams a failed send lost.
    pub fn push(
        &mut self,
        state: &UdpSocketState,
        udp: &UdpSocket,
        to: SocketAddr,
        d: &[u8],
    ) -> usize {
        let mut lost = 0;
        if self.count > 0
            && (to != self.to
                || d.len() > self.seg
                || self.buf.len() + d.len() > MAX_GSO_BYTES
                || self.count >= state.max_gso_segments())
        {
            lost += self.flush(state, udp);
        }
        if self.count == 0 {
            self.to = to;
            self.seg = d.len();
        }
        self.buf.extend_from_slice(d);
        self.count += 1;
        // A shorter datagram can only end a batch.
        if d.len() < self.seg || state.max_gso_segments() <= 1 {
            lost += self.flush(state, udp);
        }
        lost
    }

    /// Sends what is queued. Returns how many datagrams were lost.
    pub fn flush(&mut self, state: &UdpSocketState, udp: &UdpSocket) -> usize {
        if self.count == 0 {
            return 0;
        }
        let t = Transmit {
            destination: self.to,
            ecn: None,
            contents: &self.buf,
            segment_size: (self.count > 1).then_some(self.seg),
            src_ip: None,
        };
        let lost = match state.try_send(UdpSockRef::from(udp), &t) {
            Ok(()) => 0,
            Err(e) => {
                tracing::debug!(to = %self.to, error = %e, "send failed");
                self.count
            }
        };
        self.buf.clear();
        self.count = 0;
        lost
    }
}

/// Blocks for the next datagram or GRO batch in `buf`; returns its length, the size of each
/// datagram in it (the last may be shorter) and the sender.
pub fn recv_batch(
    state: &UdpSocketState,
    udp: &UdpSocket,
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
        let sa = offload_state(&a, false).expect("state");
        let sb = offload_state(&b, false).expect("state");
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
