//! The TAP-side GRO coalescer: whatever frames arrive, each super-frame it writes splits back
//! (as the kernel would) into exactly the frames that went in, in order; everything else is
//! written unchanged. Only the IPv4 id, the checksums and PSH may differ after a split.
//! First byte: bit 0 builds one TCP flow from the pieces (checksums fixed, so segments join),
//! bit 1 makes it IPv6; otherwise the pieces are raw frames. Bit 2: the frames were opened
//! by an AEAD transform (TCP checksums not checked).
#![no_main]

use std::io;
use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;
use n2n_edge::datapath::FrameIo;
use n2n_edge::datapath::checksum::{pseudo, sum};
use n2n_edge::datapath::gro::Coalescer;
use n2n_edge::datapath::offload::{MAX_SEGMENTS, VNET_HDR, segment};
use n2n_edge::tunnel::{FRAME_AT, MAX_FRAME, Slot};
use n2n_fuzz::pieces;

const ETH: usize = 14;

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

/// A TCP segment of one flow: `template` gives the headers' bytes, `tweak` bit 0 sets PSH,
/// bit 1 skips a sequence number, bit 2 changes the TTL.
fn flow_frame(template: &[u8], v6: bool, seq: &mut u32, tweak: u8, payload: &[u8]) -> Vec<u8> {
    let ip_len = if v6 { 40 } else { 20 };
    let hdr = ETH + ip_len + 20;
    let mut f = vec![0u8; hdr + payload.len()];
    let n = template.len().min(hdr);
    f[..n].copy_from_slice(&template[..n]);
    f[hdr..].copy_from_slice(payload);
    let (ip, tcp) = (ETH, ETH + ip_len);
    let tcp_len = 20 + payload.len();
    if v6 {
        f[12..14].copy_from_slice(&[0x86, 0xdd]);
        f[ip] = 0x60 | (f[ip] & 0x0f);
        f[ip + 4..ip + 6].copy_from_slice(&(tcp_len as u16).to_be_bytes());
        f[ip + 6] = 6;
    } else {
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[ip] = 0x45;
        f[ip + 2..ip + 4].copy_from_slice(&((ip_len + tcp_len) as u16).to_be_bytes());
        f[ip + 6..ip + 8].copy_from_slice(&[0x40, 0]);
        f[ip + 9] = 6;
    }
    if tweak & 4 != 0 {
        f[ip + if v6 { 7 } else { 8 }] ^= 1;
    }
    if tweak & 2 != 0 {
        *seq = seq.wrapping_add(1);
    }
    f[tcp + 4..tcp + 8].copy_from_slice(&seq.to_be_bytes());
    *seq = seq.wrapping_add(payload.len() as u32);
    f[tcp + 12] = 5 << 4;
    f[tcp + 13] = 0x10 | if tweak & 1 != 0 { 0x08 } else { 0 };
    if !v6 {
        f[ip + 10..ip + 12].fill(0);
        let s = !sum(&f[ip..ip + 20], 0);
        f[ip + 10..ip + 12].copy_from_slice(&s.to_be_bytes());
    }
    f[tcp + 16..tcp + 18].fill(0);
    let addrs = if v6 {
        ip + 8..ip + 40
    } else {
        ip + 12..ip + 20
    };
    let s = !sum(&f[tcp..], pseudo(&f[addrs], 6, tcp_len));
    f[tcp + 16..tcp + 18].copy_from_slice(&s.to_be_bytes());
    f
}

/// The frames a written TAP frame stands for, as the kernel would split it.
fn split(written: &[u8]) -> Vec<Vec<u8>> {
    if written[..VNET_HDR].iter().all(|&b| b == 0) {
        // Written as it came (no offload fields).
        return vec![written[VNET_HDR..].to_vec()];
    }
    let mut slots: Vec<Slot> = (0..MAX_SEGMENTS).map(|_| Slot::default()).collect();
    let mut lens = vec![0; MAX_SEGMENTS];
    let mut read = written.to_vec();
    let n = segment(&mut read, &mut slots, &mut lens).expect("a written super-frame splits");
    (0..n)
        .map(|i| slots[i].0[FRAME_AT..FRAME_AT + lens[i]].to_vec())
        .collect()
}

/// Clears what a split may rewrite: IPv4 id and checksum, TCP PSH and checksum.
fn masked(f: &[u8]) -> Vec<u8> {
    let mut f = f.to_vec();
    let tcp = match f.get(12..14) {
        Some([0x08, 0x00]) if f.len() >= ETH + 40 && f[ETH + 9] == 6 => {
            f[ETH + 4..ETH + 6].fill(0);
            f[ETH + 10..ETH + 12].fill(0);
            ETH + 20
        }
        Some([0x86, 0xdd]) if f.len() >= ETH + 60 && f[ETH + 6] == 6 => ETH + 40,
        _ => return f,
    };
    f[tcp + 13] &= !0x08;
    f[tcp + 16..tcp + 18].fill(0);
    f
}

fuzz_target!(|data: &[u8]| {
    let [mode, rest @ ..] = data else {
        return;
    };
    let v6 = mode & 2 != 0;
    let authenticated = mode & 4 != 0;
    let mut frames: Vec<Vec<u8>> = Vec::new();
    let mut it = pieces(rest, 256);
    if mode & 1 != 0 {
        let template = it.next().unwrap_or_default().to_vec();
        let mut seq = 1000;
        for p in it {
            let (tweak, payload) = p.split_first().unwrap_or((&0, &[]));
            let payload = &payload[..payload.len().min(MAX_FRAME - 80)];
            frames.push(flow_frame(&template, v6, &mut seq, *tweak, payload));
        }
    } else {
        // The Tunnel delivers frames of at most MAX_FRAME bytes.
        frames.extend(it.map(|p| p[..p.len().min(MAX_FRAME)].to_vec()));
    }
    let tap = Recorder::default();
    let mut c = Coalescer::default();
    for f in &frames {
        let mut buf = vec![0u8; VNET_HDR + f.len()];
        buf[VNET_HDR..].copy_from_slice(f);
        c.write(&tap, &mut buf, (VNET_HDR, f.len()), authenticated)
            .expect("write");
    }
    c.flush(&tap).expect("flush");
    let written = tap.0.into_inner().expect("lock");
    let out: Vec<Vec<u8>> = written
        .iter()
        .flat_map(|w| split(w))
        .map(|f| masked(&f))
        .collect();
    let expect: Vec<Vec<u8>> = frames.iter().map(|f| masked(f)).collect();
    assert_eq!(out, expect);
});
