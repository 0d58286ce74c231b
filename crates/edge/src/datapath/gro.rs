//! TAP-side GRO (data-path.md §4–5): consecutive TCP segments (IPv4 or IPv6) of one flow that arrive in
//! one receive batch (or in batches already queued behind it) are joined into one super-frame and written to the TAP once, so the
//! kernel's TCP stack runs once per batch instead of once per frame (and acknowledges less).
//! Everything else is written frame by frame, in order.

use std::io;

use tun_rs::{VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_GSO_TCPV6, VirtioNetHdr};

use super::offload::VNET_HDR;
use super::{FrameIo, checksum};

const ETH: usize = 14;
const IP4: usize = 20;
const IP6: usize = 40;
/// Largest super-frame: an IPv4 packet of 64 KiB − 1 (or an IPv6 payload of that size)
/// behind its Ethernet header.
const MAX_SUPER: usize = ETH + IP6 + 65_535;
const TCP_ACK: u8 = 0x10;
const TCP_PSH: u8 = 0x08;
const NEEDS_CSUM: u8 = 1;

/// A TCP segment that may be joined to others.
#[derive(Debug, Clone, Copy)]
struct Segment {
    /// IP header bytes: 20 (IPv4) or 40 (IPv6).
    ip_len: usize,
    /// Ethernet + IP + TCP header bytes.
    hdr_len: usize,
    payload: usize,
    seq: u32,
    psh: bool,
}

/// Parses `frame` as a plain TCP data segment with valid checksums (a super-frame goes to
/// the TAP with a partial checksum, which the kernel trusts on local delivery and fills in
/// when it forwards, so a bad segment must not get in): IPv4 without options, DF set and
/// not a fragment, or IPv6 with TCP as the first next header.
/// An `authenticated` frame (opened by an AEAD transform) is what the peer's edge sealed:
/// its TCP checksum, a sum over the whole segment, is not checked again (WireGuard marks
/// what it decrypts checksum-unnecessary). A segment written alone is still checked by the
/// kernel.
fn segment(frame: &[u8], authenticated: bool) -> Option<Segment> {
    if frame.len() < ETH + IP4 + 20 {
        return None;
    }
    let ip = &frame[ETH..];
    let (ip_len, end, addrs) = match frame[12..14] {
        [0x08, 0x00] => {
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            if ip[0] != 0x45 || ip[6] != 0x40 || ip[7] != 0 || ip[9] != 6 {
                return None;
            }
            if checksum::sum(&ip[..IP4], 0) != 0xffff {
                return None;
            }
            (IP4, total, 12..20)
        }
        [0x86, 0xdd] if frame.len() >= ETH + IP6 + 20 => {
            let payload = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
            if ip[0] >> 4 != 6 || ip[6] != 6 {
                return None;
            }
            (IP6, IP6 + payload, 8..40)
        }
        _ => return None,
    };
    // No Ethernet padding: the IP length covers the frame exactly.
    if ETH + end != frame.len() {
        return None;
    }
    let tcp = &ip[ip_len..end];
    let th = usize::from(tcp[12] >> 4) * 4;
    let flags = tcp[13];
    if th < 20 || th >= tcp.len() || flags & !TCP_PSH != TCP_ACK {
        return None;
    }
    if !authenticated && checksum::sum(tcp, checksum::pseudo(&ip[addrs], 6, tcp.len())) != 0xffff {
        return None;
    }
    Some(Segment {
        ip_len,
        hdr_len: ETH + ip_len + th,
        payload: tcp.len() - th,
        seq: u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]),
        psh: flags & TCP_PSH != 0,
    })
}

/// Joins segments into one buffer and writes super-frames with a virtio header.
pub struct Coalescer {
    /// `[virtio header][frame]`.
    buf: Box<[u8]>,
    /// Frame bytes in `buf` after the header; 0 when empty.
    len: usize,
    first: Segment,
    segments: usize,
    next_seq: u32,
    /// The last segment joined was shorter than the first: nothing may follow it.
    closed: bool,
    /// Super-frames written and segments in them (for tests and diagnostics).
    pub written: (u64, u64),
}

impl std::fmt::Debug for Coalescer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Coalescer({} segments)", self.segments)
    }
}

impl Default for Coalescer {
    fn default() -> Self {
        Coalescer {
            buf: vec![0u8; VNET_HDR + MAX_SUPER].into_boxed_slice(),
            len: 0,
            first: Segment {
                ip_len: 0,
                hdr_len: 0,
                payload: 0,
                seq: 0,
                psh: false,
            },
            segments: 0,
            next_seq: 0,
            closed: false,
            written: (0, 0),
        }
    }
}

/// Whether a super-frame of `len` bytes (Ethernet header included) still has a valid IP
/// length: IPv4's total length and IPv6's payload length are 16 bits.
fn fits_ip_length(len: usize, ip_len: usize) -> bool {
    let ip_total = len.saturating_sub(ETH);
    let counted = if ip_len == IP4 {
        ip_total
    } else {
        ip_total.saturating_sub(IP6)
    };
    len <= MAX_SUPER && counted <= 65_535
}

impl Coalescer {
    /// Writes the frame `buf[at..at + len]`, joining it to the pending super-frame if it
    /// continues it. `buf[at - VNET_HDR..at]` must be free to overwrite. `authenticated`:
    /// an AEAD transform opened it (see [`segment`]).
    pub fn write(
        &mut self,
        tap: &dyn FrameIo,
        buf: &mut [u8],
        (at, len): (usize, usize),
        authenticated: bool,
    ) -> io::Result<()> {
        let frame = &buf[at..at + len];
        let Some(seg) = segment(frame, authenticated) else {
            self.flush(tap)?;
            buf[at - VNET_HDR..at].fill(0);
            return tap.send(&buf[at - VNET_HDR..at + len]).map(drop);
        };
        if self.joins(frame, &seg) {
            let end = VNET_HDR + self.len;
            self.buf[end..end + seg.payload].copy_from_slice(&frame[seg.hdr_len..]);
            self.len += seg.payload;
            self.segments += 1;
            self.next_seq = seg.seq.wrapping_add(seg.payload as u32);
            self.closed = seg.payload < self.first.payload;
            if seg.psh {
                self.buf[VNET_HDR + ETH + self.first.ip_len + 13] |= TCP_PSH;
            }
        } else {
            self.flush(tap)?;
            self.buf[VNET_HDR..VNET_HDR + len].copy_from_slice(frame);
            self.len = len;
            self.first = seg;
            self.segments = 1;
            self.next_seq = seg.seq.wrapping_add(seg.payload as u32);
            self.closed = false;
        }
        if seg.psh {
            // The sender wants it delivered now.
            self.flush(tap)?;
        }
        Ok(())
    }

    /// Whether `frame` continues the pending super-frame: same Ethernet header, same flow,
    /// IP and TCP fields and options, the next sequence number, at most the first's size.
    fn joins(&self, frame: &[u8], seg: &Segment) -> bool {
        if self.segments == 0
            || self.closed
            || seg.hdr_len != self.first.hdr_len
            || seg.ip_len != self.first.ip_len
        {
            return false;
        }
        let head = &self.buf[VNET_HDR..VNET_HDR + self.first.hdr_len];
        let (ip, tcp) = (ETH, ETH + seg.ip_len);
        let same_ip = if seg.ip_len == IP4 {
            // TOS; DF; TTL and protocol; addresses.
            head[ip + 1] == frame[ip + 1]
                && head[ip + 6] == frame[ip + 6]
                && head[ip + 8..ip + 10] == frame[ip + 8..ip + 10]
                && head[ip + 12..ip + 20] == frame[ip + 12..ip + 20]
        } else {
            // Version, traffic class and flow label; next header and hop limit; addresses.
            head[ip..ip + 4] == frame[ip..ip + 4] && head[ip + 6..ip + 40] == frame[ip + 6..ip + 40]
        };
        seg.seq == self.next_seq
            && seg.payload <= self.first.payload
            && fits_ip_length(self.len + seg.payload, seg.ip_len)
            && head[..ETH] == frame[..ETH]
            && same_ip
            // Ports; acknowledgement; data offset; window; options.
            && head[tcp..tcp + 4] == frame[tcp..tcp + 4]
            && head[tcp + 8..tcp + 13] == frame[tcp + 8..tcp + 13]
            && head[tcp + 14..tcp + 16] == frame[tcp + 14..tcp + 16]
            && head[tcp + 20..] == frame[tcp + 20..seg.hdr_len]
    }

    /// Whether a super-frame is being joined and may still grow (a write is pending).
    pub fn pending(&self) -> bool {
        self.segments > 0 && !self.closed
    }

    /// Writes what is pending: a single segment as it came, several as one super-frame.
    pub fn flush(&mut self, tap: &dyn FrameIo) -> io::Result<()> {
        if self.segments == 0 {
            return Ok(());
        }
        let segments = std::mem::take(&mut self.segments);
        let len = std::mem::take(&mut self.len);
        if segments == 1 {
            self.buf[..VNET_HDR].fill(0);
        } else {
            let ip_len = self.first.ip_len;
            let f = &mut self.buf[VNET_HDR..VNET_HDR + len];
            let tcp_len = len - ETH - ip_len;
            let (gso_type, addrs) = if ip_len == IP4 {
                let total = (len - ETH) as u16;
                f[ETH + 2..ETH + 4].copy_from_slice(&total.to_be_bytes());
                f[ETH + 10..ETH + 12].fill(0);
                let ip_sum = !checksum::sum(&f[ETH..ETH + IP4], 0);
                f[ETH + 10..ETH + 12].copy_from_slice(&ip_sum.to_be_bytes());
                (VIRTIO_NET_HDR_GSO_TCPV4, ETH + 12..ETH + 20)
            } else {
                f[ETH + 4..ETH + 6].copy_from_slice(&(tcp_len as u16).to_be_bytes());
                (VIRTIO_NET_HDR_GSO_TCPV6, ETH + 8..ETH + 40)
            };
            // A partial checksum: the kernel adds the segment's sum to this pseudo-header sum.
            let pseudo = checksum::sum(&[], checksum::pseudo(&f[addrs], 6, tcp_len));
            let at = ETH + ip_len + 16;
            f[at..at + 2].copy_from_slice(&pseudo.to_be_bytes());
            let hdr = VirtioNetHdr {
                flags: NEEDS_CSUM,
                gso_type,
                hdr_len: self.first.hdr_len as u16,
                gso_size: self.first.payload as u16,
                csum_start: (ETH + ip_len) as u16,
                csum_offset: 16,
            };
            hdr.encode(&mut self.buf[..VNET_HDR])?;
        }
        self.written.0 += 1;
        self.written.1 += segments as u64;
        tap.send(&self.buf[..VNET_HDR + len]).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::datapath::offload::tests::{tcp_super_frame, tcp6_super_frame};
    use crate::datapath::offload::{MAX_SEGMENTS, segment as split};
    use crate::tunnel::{FRAME_AT, Slot};

    #[derive(Default)]
    struct Recorder(Mutex<Vec<Vec<u8>>>);

    impl FrameIo for Recorder {
        fn recv(&self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::ErrorKind::Unsupported.into())
        }
        fn send(&self, frame: &[u8]) -> io::Result<usize> {
            self.0.lock().expect("lock").push(frame.to_vec());
            Ok(frame.len())
        }
        fn vnet_hdr(&self) -> bool {
            true
        }
    }

    /// The frames a TAP read of `read` (virtio header + frame) stands for.
    fn frames_of(read: &[u8]) -> Vec<Vec<u8>> {
        let mut slots: Vec<Slot> = (0..MAX_SEGMENTS).map(|_| Slot::default()).collect();
        let mut lens = vec![0; MAX_SEGMENTS];
        let mut read = read.to_vec();
        let n = split(&mut read, &mut slots, &mut lens).expect("valid super-frame");
        (0..n)
            .map(|i| slots[i].0[FRAME_AT..FRAME_AT + lens[i]].to_vec())
            .collect()
    }

    /// Feeds `frames` through a coalescer the way the receive thread does.
    fn coalesce(frames: &[Vec<u8>]) -> (Vec<Vec<u8>>, (u64, u64)) {
        coalesce_opened(frames, false)
    }

    /// The same, for frames an AEAD transform opened (or not).
    fn coalesce_opened(frames: &[Vec<u8>], authenticated: bool) -> (Vec<Vec<u8>>, (u64, u64)) {
        let tap = Recorder::default();
        let mut c = Coalescer::default();
        for f in frames {
            let mut buf = vec![0u8; VNET_HDR + f.len()];
            buf[VNET_HDR..].copy_from_slice(f);
            c.write(&tap, &mut buf, (VNET_HDR, f.len()), authenticated)
                .expect("write");
        }
        c.flush(&tap).expect("flush");
        (tap.0.into_inner().expect("lock"), c.written)
    }

    #[test]
    fn a_flow_becomes_one_super_frame_that_splits_back_into_the_same_frames() {
        let frames = frames_of(&tcp_super_frame(20_000, 1200));
        assert_eq!(frames.len(), 17);
        let (written, counts) = coalesce(&frames);
        assert_eq!(written.len(), 1);
        assert_eq!(counts, (1, 17));
        assert_eq!(frames_of(&written[0]), frames);
    }

    #[test]
    fn a_super_frame_never_outgrows_its_ip_length_field() {
        // IPv4: the total length counts the IP header; 20 + 20 + 65 495 is the most.
        assert!(fits_ip_length(ETH + 65_535, IP4));
        assert!(!fits_ip_length(ETH + 65_536, IP4));
        // IPv6: the payload length leaves out the 40-byte header.
        assert!(fits_ip_length(ETH + IP6 + 65_535, IP6));
        assert!(!fits_ip_length(ETH + IP6 + 65_536, IP6));
    }

    #[test]
    fn an_ipv6_flow_is_joined_too() {
        let frames = frames_of(&tcp6_super_frame(20_000, 1200));
        assert_eq!(frames.len(), 17);
        let (written, counts) = coalesce(&frames);
        assert_eq!(counts, (1, 17));
        assert_eq!(written[0][1], tun_rs::VIRTIO_NET_HDR_GSO_TCPV6);
        assert_eq!(frames_of(&written[0]), frames);
        // An IPv4 segment after IPv6 ones starts a new super-frame.
        let mut mixed = frames[..3].to_vec();
        mixed.extend(frames_of(&tcp_super_frame(3000, 1000)));
        let (written, counts) = coalesce(&mixed);
        assert_eq!((written.len(), counts), (2, (2, 6)));
    }

    #[test]
    fn gaps_bad_checksums_and_other_traffic_are_written_apart_in_order() {
        let frames = frames_of(&tcp_super_frame(6000, 1000));
        let mut corrupt = frames[3].clone();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 1;
        let arp = vec![0xffu8; 42];
        // 0,1 | arp | 2 | corrupt 3 | 5 (gap: 4 missing)
        let input = vec![
            frames[0].clone(),
            frames[1].clone(),
            arp.clone(),
            frames[2].clone(),
            corrupt.clone(),
            frames[5].clone(),
        ];
        let (written, counts) = coalesce(&input);
        // [0 1] [2] [5] pass the coalescer; the ARP frame and the corrupt segment bypass it.
        assert_eq!(counts, (3, 4));
        assert_eq!(written.len(), 5);
        let strip = |w: &Vec<u8>| w[VNET_HDR..].to_vec();
        assert_eq!(frames_of(&written[0]), frames[..2].to_vec());
        assert_eq!(strip(&written[1]), arp);
        assert_eq!(strip(&written[2]), frames[2]);
        assert_eq!(strip(&written[3]), corrupt);
        assert_eq!(strip(&written[4]), frames[5]);
        assert!(written[1..].iter().all(|w| w[..VNET_HDR] == [0; VNET_HDR]));
    }

    #[test]
    fn an_authenticated_segment_joins_without_its_tcp_checksum_checked() {
        let frames = frames_of(&tcp_super_frame(3000, 1000));
        let mut input = frames.clone();
        // A wrong TCP checksum only (the IPv4 header's is still checked).
        input[1][ETH + IP4 + 16] ^= 0x5a;
        let (written, counts) = coalesce_opened(&input, true);
        assert_eq!(counts, (1, 3));
        // Split as the kernel splits it, with the checksum filled in again.
        assert_eq!(frames_of(&written[0]), frames);
        let (_, counts) = coalesce_opened(&input, false);
        assert_eq!(
            counts,
            (2, 2),
            "unauthenticated: the bad segment goes alone"
        );
        let mut bad_ip = frames.clone();
        bad_ip[1][ETH + 10] ^= 0x5a;
        let (_, counts) = coalesce_opened(&bad_ip, true);
        assert_eq!(counts, (2, 2));
    }

    /// Frames from peers are hostile: mutated segments never panic the coalescer, and
    /// every super-frame it writes is one the kernel's segmentation accepts.
    #[test]
    fn mutated_segments_never_panic_and_super_frames_stay_valid() {
        let frames = frames_of(&tcp_super_frame(12_000, 1000));
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for _ in 0..3_000 {
            let mut input = Vec::new();
            for f in &frames {
                let mut f = f.clone();
                if next() % 3 == 0 {
                    let at = next() as usize % f.len();
                    f[at] ^= (next() >> 8) as u8 | 1;
                }
                if next() % 7 == 0 {
                    let cut = next() as usize % f.len();
                    f.truncate(cut.max(1));
                }
                input.push(f);
            }
            for authenticated in [false, true] {
                let (written, _) = coalesce_opened(&input, authenticated);
                for w in written.iter().filter(|w| w[1] != 0) {
                    assert!(!frames_of(w).is_empty());
                }
            }
        }
    }

    #[test]
    fn psh_ends_a_super_frame_and_a_short_segment_closes_it() {
        let frames = frames_of(&tcp_super_frame(2500, 1000));
        // The last segment (500 bytes) carries PSH; nothing may follow it.
        let mut input = frames.clone();
        input.extend(frames_of(&tcp_super_frame(2500, 1000)));
        let (written, _) = coalesce(&input);
        assert_eq!(written.len(), 2);
        assert_eq!(frames_of(&written[0]), frames);
        assert!(written.iter().all(|w| w.len() <= VNET_HDR + 14 + 40 + 2500));
    }
}
