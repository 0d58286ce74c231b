//! TAP offloads (IFF_VNET_HDR, data-path.md §3): the kernel hands the edge TCP and UDP
//! super-frames of up to 64 KiB behind a virtio header. They are cut here into ordinary
//! MTU-sized Ethernet frames, because on the wire it stays one frame per datagram, as n2n.
//! Frames with a partial checksum are completed. Frames written back carry a zero header.

use tun_rs::{VIRTIO_NET_HDR_GSO_UDP_L4, VIRTIO_NET_HDR_LEN, VirtioNetHdr};

use super::checksum;
use crate::tunnel::{FRAME_AT, MAX_FRAME, Slot};

/// Length of the virtio header in front of every TAP read and write when offloads are on.
pub const VNET_HDR: usize = VIRTIO_NET_HDR_LEN;
/// Largest TAP read with offloads on: the header and a 64 KiB super-frame.
pub const MAX_READ: usize = VNET_HDR + 65_536 + 14;
/// Segments one super-frame may be cut into (64 KiB at MSS ≥ 512).
pub const MAX_SEGMENTS: usize = 128;

const NEEDS_CSUM: u8 = 1;
const GSO_NONE: u8 = 0;
const GSO_ECN: u8 = 0x80;
const ETH: usize = 14;

/// Why a TAP read was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OffloadError {
    #[error("shorter than its headers")]
    Short,
    #[error("checksum offsets out of range")]
    Checksum,
    #[error("super-frame is not IPv4 or IPv6")]
    NotIp,
    #[error("bad transport header")]
    Transport,
    #[error("cannot be segmented")]
    Split,
}

/// Turns one TAP read (virtio header + frame) into frames at `slots[i][FRAME_AT..][..lens[i]]`.
/// Returns how many.
pub fn segment(
    read: &mut [u8],
    slots: &mut [Slot],
    lens: &mut [usize],
) -> Result<usize, OffloadError> {
    if read.len() < VNET_HDR + ETH || slots.is_empty() || lens.len() < slots.len() {
        return Err(OffloadError::Short);
    }
    let mut hdr = VirtioNetHdr::decode(read).map_err(|_| OffloadError::Short)?;
    let frame = &mut read[VNET_HDR..];
    if hdr.gso_type == GSO_NONE {
        if hdr.flags & NEEDS_CSUM != 0 {
            complete_checksum(frame, hdr.csum_start.into(), hdr.csum_offset.into())?;
        }
        let n = frame.len();
        if n > MAX_FRAME {
            return Err(OffloadError::Split);
        }
        slots[0].0[FRAME_AT..FRAME_AT + n].copy_from_slice(frame);
        lens[0] = n;
        return Ok(1);
    }
    // Untagged, or one 802.1Q tag (a bridged VLAN with -r).
    let ethertype = |at: usize| {
        frame
            .get(at..at + 2)
            .map(|t| u16::from_be_bytes([t[0], t[1]]))
    };
    let (l2, inner) = match ethertype(12) {
        Some(0x8100) => (ETH + 4, ethertype(16)),
        t => (ETH, t),
    };
    let is_v6 = match inner {
        Some(0x0800) => false,
        Some(0x86dd) => true,
        _ => return Err(OffloadError::NotIp),
    };
    let (eth, l3) = frame.split_at_mut(l2);
    let csum_start = usize::from(hdr.csum_start)
        .checked_sub(l2)
        .ok_or(OffloadError::Checksum)?;
    // The kernel's hdr_len may cover the whole first segment: take it from the transport header.
    let transport = if hdr.gso_type & !GSO_ECN == VIRTIO_NET_HDR_GSO_UDP_L4 {
        8
    } else {
        let off = *l3.get(csum_start + 12).ok_or(OffloadError::Transport)?;
        usize::from(off >> 4) * 4
    };
    if !(8..=60).contains(&transport) || l3.len() < csum_start + transport {
        return Err(OffloadError::Transport);
    }
    hdr.csum_start = csum_start as u16;
    hdr.hdr_len = (csum_start + transport) as u16;
    let n = tun_rs::gso_split(l3, hdr, slots, lens, FRAME_AT + l2, is_v6)
        .map_err(|_| OffloadError::Split)?;
    if n == 0 {
        // A super-frame with no segment in it (found by fuzzing): nothing to send.
        return Err(OffloadError::Split);
    }
    for (slot, len) in slots.iter_mut().zip(lens.iter_mut()).take(n) {
        *len += l2;
        if *len > MAX_FRAME {
            return Err(OffloadError::Split);
        }
        slot.0[FRAME_AT..FRAME_AT + l2].copy_from_slice(eth);
    }
    Ok(n)
}

/// Fills in a checksum the kernel left partial: the one's-complement sum from `start` to the
/// end, seeded with the pseudo-header sum already in the field.
pub fn complete_checksum(
    frame: &mut [u8],
    start: usize,
    offset: usize,
) -> Result<(), OffloadError> {
    let at = start + offset;
    if at + 2 > frame.len() {
        return Err(OffloadError::Checksum);
    }
    let seed = u16::from_be_bytes([frame[at], frame[at + 1]]);
    frame[at..at + 2].fill(0);
    let sum = checksum::sum(&frame[start..], u64::from(seed));
    frame[at..at + 2].copy_from_slice(&(!sum).to_be_bytes());
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn slots() -> (Vec<Slot>, Vec<usize>) {
        (
            (0..MAX_SEGMENTS).map(|_| Slot::default()).collect(),
            vec![0; MAX_SEGMENTS],
        )
    }

    /// A TSO virtio header and an Ethernet header for IP headers of `ip_len` bytes.
    fn tso_head(gso_type: u8, ip_len: u16, mss: u16, ethertype: [u8; 2]) -> Vec<u8> {
        let mut f = vec![0u8; VNET_HDR];
        let hdr = VirtioNetHdr {
            flags: NEEDS_CSUM,
            gso_type,
            hdr_len: 14 + ip_len + 20,
            gso_size: mss,
            csum_start: 14 + ip_len,
            csum_offset: 16,
        };
        hdr.encode(&mut f).expect("10 bytes");
        f.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
        f.extend_from_slice(&ethertype);
        f
    }

    /// Ethernet + IPv4 + TCP with `payload` bytes, checksums as the kernel leaves them for TSO.
    pub(crate) fn tcp_super_frame(payload: usize, mss: u16) -> Vec<u8> {
        let mut f = tso_head(tun_rs::VIRTIO_NET_HDR_GSO_TCPV4, 20, mss, [0x08, 0x00]);
        let total = (20 + 20 + payload) as u16;
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip[6] = 0x40; // DF, as TCP sends
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
        ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
        f.extend_from_slice(&ip);
        let mut tcp = [0u8; 20];
        tcp[0..2].copy_from_slice(&5001u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&40000u16.to_be_bytes());
        tcp[4..8].copy_from_slice(&1000u32.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = 0x18;
        f.extend_from_slice(&tcp);
        f.extend((0..payload).map(|i| (i * 7) as u8));
        f
    }

    /// The same over IPv6 (fd00::1 → fd00::2).
    pub(crate) fn tcp6_super_frame(payload: usize, mss: u16) -> Vec<u8> {
        let v4 = tcp_super_frame(payload, mss);
        let mut f = tso_head(tun_rs::VIRTIO_NET_HDR_GSO_TCPV6, 40, mss, [0x86, 0xdd]);
        let mut ip = [0u8; 40];
        ip[0] = 0x60;
        ip[4..6].copy_from_slice(&((20 + payload) as u16).to_be_bytes());
        ip[6] = 6;
        ip[7] = 64;
        ip[8] = 0xfd;
        ip[23] = 1;
        ip[24] = 0xfd;
        ip[39] = 2;
        f.extend_from_slice(&ip);
        // TCP header and payload as in the IPv4 frame.
        f.extend_from_slice(&v4[VNET_HDR + 14 + 20..]);
        f
    }

    fn tcp_checksum_ok(frame: &[u8]) -> bool {
        let ip = &frame[14..];
        let ihl = usize::from(ip[0] & 15) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        let seg = &ip[ihl..total];
        let mut pseudo = 0u64;
        for w in ip[12..20].chunks(2) {
            pseudo += u64::from(u16::from_be_bytes([w[0], w[1]]));
        }
        pseudo += 6 + seg.len() as u64;
        checksum::sum(seg, pseudo) == 0xffff && checksum::sum(&ip[..ihl], 0) == 0xffff
    }

    #[test]
    fn a_super_frame_without_segments_is_refused() {
        // Found by fuzzing: a UDP GSO header whose split yields no segment at all.
        let hex = "fb05200002002f00060000000000200000012000002908000000271922000002\
                   fff4f4363636363636363636363636000500000000200000002722000002fff4\
                   f4";
        let mut read: Vec<u8> = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex"))
            .collect();
        let (mut slots, mut lens) = slots();
        assert_eq!(
            segment(&mut read, &mut slots, &mut lens),
            Err(OffloadError::Split)
        );
    }

    #[test]
    fn super_frame_becomes_mss_sized_frames_with_valid_checksums() {
        let mut read = tcp_super_frame(5000, 1200);
        let (mut slots, mut lens) = slots();
        let n = segment(&mut read, &mut slots, &mut lens).expect("segments");
        assert_eq!(n, 5);
        let mut seq = 1000u32;
        let mut payload = Vec::new();
        for i in 0..n {
            let f = &slots[i].0[FRAME_AT..FRAME_AT + lens[i]];
            assert_eq!(&f[..14], &read[VNET_HDR..VNET_HDR + 14]);
            assert!(tcp_checksum_ok(f), "segment {i}");
            assert_eq!(
                u32::from_be_bytes(f[38..42].try_into().expect("4 bytes")),
                seq
            );
            let data = &f[54..];
            seq += data.len() as u32;
            payload.extend_from_slice(data);
            // PSH only on the last segment.
            assert_eq!(f[47] & 0x08 != 0, i == n - 1);
        }
        assert_eq!(lens[..4], [14 + 40 + 1200; 4]);
        assert_eq!(payload, read[VNET_HDR + 54..]);
    }

    #[test]
    fn a_vlan_tagged_super_frame_keeps_its_tag_in_every_frame() {
        let plain = tcp_super_frame(3000, 1000);
        // Insert an 802.1Q tag (VLAN 7) after the MAC addresses; offsets move by 4.
        let mut read = plain[..VNET_HDR + 12].to_vec();
        read.extend_from_slice(&[0x81, 0x00, 0x00, 0x07]);
        read.extend_from_slice(&plain[VNET_HDR + 12..]);
        let mut hdr = VirtioNetHdr::decode(&read).expect("header");
        hdr.csum_start += 4;
        hdr.hdr_len += 4;
        hdr.encode(&mut read).expect("header");
        let (mut slots, mut lens) = slots();
        let n = segment(&mut read, &mut slots, &mut lens).expect("segments");
        let (mut slots0, mut lens0) = self::slots();
        let mut untagged = plain.clone();
        assert_eq!(segment(&mut untagged, &mut slots0, &mut lens0), Ok(n));
        for i in 0..n {
            let tagged = &slots[i].0[FRAME_AT..FRAME_AT + lens[i]];
            let expect = &slots0[i].0[FRAME_AT..FRAME_AT + lens0[i]];
            assert_eq!(&tagged[12..16], &[0x81, 0x00, 0x00, 0x07]);
            assert_eq!(&tagged[..12], &expect[..12]);
            assert_eq!(&tagged[16..], &expect[12..], "segment {i}");
        }
    }

    #[test]
    fn partial_checksum_of_a_single_frame_is_completed() {
        let mut read = tcp_super_frame(300, 1200);
        read[1] = GSO_NONE;
        // What the kernel leaves: the pseudo-header sum, not folded into the data.
        let ip = &read[VNET_HDR + 14..];
        let mut pseudo = 0u64;
        for w in ip[12..20].chunks(2) {
            pseudo += u64::from(u16::from_be_bytes([w[0], w[1]]));
        }
        let pseudo = checksum::sum(&[], pseudo + 6 + 320);
        let at = VNET_HDR + 14 + 20 + 16;
        read[at..at + 2].copy_from_slice(&pseudo.to_be_bytes());
        let ip_sum = !checksum::sum(&read[VNET_HDR + 14..VNET_HDR + 34], 0);
        read[VNET_HDR + 24..VNET_HDR + 26].copy_from_slice(&ip_sum.to_be_bytes());
        let (mut slots, mut lens) = slots();
        assert_eq!(segment(&mut read, &mut slots, &mut lens), Ok(1));
        assert!(tcp_checksum_ok(&slots[0].0[FRAME_AT..FRAME_AT + lens[0]]));
    }

    #[test]
    fn hostile_headers_are_refused_without_panic() {
        let (mut slots, mut lens) = slots();
        let base = tcp_super_frame(3000, 1000);
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            let mut read = base.clone();
            for _ in 0..4 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let at = (rng as usize) % (VNET_HDR + 60);
                read[at] = (rng >> 32) as u8;
            }
            let cut = (rng >> 40) as usize % read.len();
            let _ = segment(&mut read[..cut.max(1)], &mut slots, &mut lens);
            let _ = segment(&mut read, &mut slots, &mut lens);
        }
        let mut tiny = tcp_super_frame(3000, 1);
        assert_eq!(
            segment(&mut tiny, &mut slots, &mut lens),
            Err(OffloadError::Split)
        );
    }
}
