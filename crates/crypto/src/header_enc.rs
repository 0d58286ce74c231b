//! Header encryption for `-H` (spec §4): keys, time stamps, the checksum-carrying IV and
//! per-sender time-stamp acceptance. The clock and randomness are arguments.

use n2n_proto::Community;

use crate::pearson::{pearson_hash_64, pearson_hash_128};
use crate::speck::Speck128;

/// The "n2" marker in front of the header length.
const MAGIC: u16 = 0x6E32;
/// ±16 s in time-stamp units (spec §4.6, TIME_STAMP_FRAME).
pub const TIME_STAMP_FRAME: u64 = 0x0000_0010_0000_0000;
/// ≈160 ms of reordering tolerance (TIME_STAMP_JITTER).
pub const TIME_STAMP_JITTER: u64 = 0x0000_0000_2710_0000;
/// Bit 0 of a stamp: the counter-only flag.
const COUNTER_ONLY: u64 = 1;

/// One header key pair: the CTR payload key and the IV block key (spec §4.1).
#[derive(Clone, Debug)]
pub struct HeaderKey {
    payload: Speck128,
    iv: Speck128,
}

impl HeaderKey {
    /// From a payload key `K`; the IV key is `H128(K)`.
    pub fn from_payload_key(key: &[u8; 16]) -> Self {
        HeaderKey {
            payload: Speck128::new_128(key),
            iv: Speck128::new_128(&pearson_hash_128(key)),
        }
    }

    /// The static key of a community: `Ks = H128(comm20)`.
    pub fn for_community(community: &Community) -> Self {
        Self::from_payload_key(&pearson_hash_128(&community.0))
    }

    /// The dynamic key of a user/password community: `Kd = H128(D)`.
    pub fn for_dynamic_key(dynamic_key: &[u8; 16]) -> Self {
        Self::from_payload_key(&pearson_hash_128(dynamic_key))
    }

    /// Encrypts the first `hl` bytes of a plain packet in place (spec §4.3). The packet must
    /// carry its community in bytes 4..24 and be at least 24 bytes long; `hl` is clamped to
    /// the packet. `random` fills IV bytes 12..16.
    pub fn encrypt(&self, packet: &mut [u8], hl: usize, stamp: u64, random: u32) {
        if packet.len() < 24 {
            return;
        }
        let hl = hl.clamp(24, packet.len());
        let checksum = pearson_hash_64(packet);
        packet.copy_within(0..4, 20);
        packet[0..4].copy_from_slice(&((checksum >> 32) as u32).to_be_bytes());
        packet[4..8].copy_from_slice(&((checksum as u32) ^ (stamp >> 32) as u32).to_be_bytes());
        packet[8..12].copy_from_slice(&(stamp as u32).to_be_bytes());
        packet[12..16].copy_from_slice(&random.to_le_bytes());
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&packet[..16]);
        self.iv.encrypt_block(&mut iv);
        packet[..16].copy_from_slice(&iv);
        packet[16..18].copy_from_slice(&MAGIC.to_be_bytes());
        packet[18..20].copy_from_slice(&(hl as u16).to_be_bytes());
        self.payload.ctr(&iv, &mut packet[16..hl]);
    }

    /// The header length an encrypted packet announces, if this key opens it (spec §4.4 step 1).
    /// Cheap: one block of keystream, so a supernode can try many communities.
    pub fn probe(&self, packet: &[u8]) -> Option<usize> {
        if packet.len() < 24 {
            return None;
        }
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&packet[..16]);
        let mut word = [0u8; 4];
        word.copy_from_slice(&packet[16..20]);
        self.payload.ctr(&iv, &mut word);
        let m = u32::from_be_bytes(word);
        let hl = (m & 0xffff) as usize;
        ((m >> 16) as u16 == MAGIC && (24..=packet.len()).contains(&hl)).then_some(hl)
    }

    /// Decrypts in place and restores the plain header with the receiver's own community
    /// field (spec §4.4). Returns the sender's time stamp. On failure the packet is left
    /// exactly as it was.
    pub fn decrypt(&self, packet: &mut [u8], community: &Community) -> Option<u64> {
        let hl = self.probe(packet)?;
        let mut original = [0u8; 24];
        original.copy_from_slice(&packet[..24]);
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&packet[..16]);
        self.payload.ctr(&iv, &mut packet[16..hl]);
        let mut pre_iv = iv;
        self.iv.decrypt_block(&mut pre_iv);
        let cs_hi = u32::from_be_bytes([pre_iv[0], pre_iv[1], pre_iv[2], pre_iv[3]]);
        let mut s = [0u8; 8];
        s.copy_from_slice(&pre_iv[4..12]);
        let s = u64::from_be_bytes(s);
        packet.copy_within(20..24, 0);
        packet[4..24].copy_from_slice(&community.0);
        let checksum = pearson_hash_64(packet);
        if (checksum >> 32) as u32 == cs_hi {
            return Some(s ^ (checksum << 32));
        }
        // Not ours after all: undo (CTR is its own inverse) so another key can be tried.
        self.payload.ctr(&iv, &mut packet[16..hl]);
        packet[..24].copy_from_slice(&original);
        None
    }
}

/// Why an encrypted header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("header does not decrypt with this key")]
    NotForThisKey,
    #[error("time stamp outside the ±16 s frame")]
    StampOutOfFrame,
}

impl HeaderKey {
    /// Decrypts and applies the frame check against the receiver's clock (spec §4.6).
    pub fn open(
        &self,
        packet: &mut [u8],
        community: &Community,
        unix_micros: u64,
    ) -> Result<u64, HeaderError> {
        let stamp = self
            .decrypt(packet, community)
            .ok_or(HeaderError::NotForThisKey)?;
        if stamp_in_frame(stamp, unix_micros) {
            Ok(stamp)
        } else {
            Err(HeaderError::StampOutOfFrame)
        }
    }
}

/// The time stamp for a Unix time in microseconds, with counter and flag bits clear.
pub fn stamp_at(unix_micros: u64) -> u64 {
    let secs = unix_micros / 1_000_000;
    let micros = unix_micros % 1_000_000;
    (secs << 32) | (micros << 12)
}

/// Issues strictly increasing time stamps (spec §4.2): `max(now, last + 0x10)`, bit 0 clear.
/// Lock-free, so every sender of a process (an edge's threads and control path) can share one.
/// When the wall clock is stepped back by more than the ±16 s frame, the stamps follow it:
/// no receiver could accept the old sequence any more, so keeping it would silence us.
#[derive(Debug, Default)]
pub struct StampGenerator {
    last: std::sync::atomic::AtomicU64,
}

impl StampGenerator {
    pub fn next(&self, unix_micros: u64) -> u64 {
        use std::sync::atomic::Ordering::Relaxed;
        let now = stamp_at(unix_micros);
        let mut cur = self.last.load(Relaxed);
        loop {
            let stepped_back = now.wrapping_add(TIME_STAMP_FRAME) < cur;
            let next = if now > cur || stepped_back {
                now
            } else {
                cur + 0x10
            };
            match self.last.compare_exchange_weak(cur, next, Relaxed, Relaxed) {
                Ok(_) => return next,
                Err(actual) => cur = actual,
            }
        }
    }
}

/// The frame check every receiver applies: within ±16 s of its own clock.
pub fn stamp_in_frame(stamp: u64, unix_micros: u64) -> bool {
    let diff = stamp.wrapping_sub(stamp_at(unix_micros)) as i64;
    diff.unsigned_abs() < TIME_STAMP_FRAME
}

/// The last valid stamp of one sender (spec §4.6).
#[derive(Debug, Clone, Copy)]
pub struct SenderStamp {
    last_valid: u64,
}

impl SenderStamp {
    /// A new sender starts 16 s in the past.
    pub fn new(unix_micros: u64) -> Self {
        SenderStamp {
            last_valid: stamp_at(unix_micros).wrapping_sub(TIME_STAMP_FRAME),
        }
    }

    /// Accepts `stamp` if it is newer than the last valid one (with jitter: not older than
    /// ≈160 ms, or that shifted left by 8 for counter-only stamps) and records it.
    pub fn accept(&mut self, stamp: u64, allow_jitter: bool) -> bool {
        if !self.fresh(stamp, allow_jitter) {
            return false;
        }
        self.last_valid = self.last_valid.max(stamp);
        true
    }

    /// Whether the last valid stamp lies beyond the frame ahead of the clock: only a clock
    /// stepped back makes that happen, and then the sender must start again.
    pub fn ahead_of(&self, unix_micros: u64) -> bool {
        self.last_valid > stamp_at(unix_micros).wrapping_add(TIME_STAMP_FRAME)
    }

    /// Starts again if [`Self::ahead_of`] the clock (which then stepped back).
    pub fn follow_clock(&mut self, unix_micros: u64) -> &mut Self {
        if self.ahead_of(unix_micros) {
            *self = SenderStamp::new(unix_micros);
        }
        self
    }

    /// Whether [`Self::accept`] would take `stamp`, without recording it: checked before a
    /// payload authenticates, recorded only after, so a forged header cannot block a sender.
    pub fn fresh(&self, stamp: u64, allow_jitter: bool) -> bool {
        let mut d = stamp.wrapping_sub(self.last_valid) as i64;
        if allow_jitter {
            let jitter = if stamp & COUNTER_ONLY != 0 {
                TIME_STAMP_JITTER << 8
            } else {
                TIME_STAMP_JITTER
            };
            d = d.wrapping_add(jitter as i64);
        }
        d > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        hex::decode(s.split_whitespace().collect::<String>()).expect("hex")
    }

    #[test]
    fn spec_keys() {
        let c = Community::new("abc123def456").expect("valid");
        let ks = pearson_hash_128(&c.0);
        assert_eq!(ks.to_vec(), hex("2c391f6e80b63bbe5f7804ae8daa7cce"));
        assert_eq!(
            pearson_hash_128(&ks).to_vec(),
            hex("323870914f4767421b2aaa5f2b119bfc")
        );
    }

    #[test]
    fn spec_vector_4_8() {
        let c = Community::new("abc123def456").expect("valid");
        let mut plain = hex("03 02 00 03");
        plain.extend(c.0);
        plain.extend(hex("00 01 02 03 04 05 10 11 12 13 14 15 01 01"));
        plain.extend(0u8..0x3c);
        let mut pkt = plain.clone();
        let key = HeaderKey::for_community(&c);
        key.encrypt(&mut pkt, 38, 0x0123_4567_89ab_cde0, 0xee61_ddc7);
        let want = hex("41 6c b8 37 c9 94 ed f0 3c fa 68 a8 d8 f7 08 2c 1c ac 95 4c
             39 2c e4 8e 9c 8f 6b d5 38 2c 34 7f ba c6 34 9f 42 2b");
        assert_eq!(&pkt[..38], &want[..]);
        assert_eq!(&pkt[38..], &plain[38..]);
        assert_eq!(key.decrypt(&mut pkt, &c), Some(0x0123_4567_89ab_cde0));
        assert_eq!(pkt, plain);
    }

    #[test]
    fn failed_decryption_leaves_packet_untouched() {
        let c = Community::new("abc123def456").expect("valid");
        let mut pkt = vec![3, 2, 0, 3];
        pkt.extend(c.0);
        pkt.extend([9u8; 30]);
        HeaderKey::for_community(&c).encrypt(&mut pkt, 38, 1 << 40, 7);
        let sealed = pkt.clone();
        let other = Community::new("other").expect("valid");
        assert_eq!(
            HeaderKey::for_community(&other).decrypt(&mut pkt, &other),
            None
        );
        assert_eq!(pkt, sealed);
        pkt[50] ^= 1; // payload tampering breaks the checksum
        assert_eq!(HeaderKey::for_community(&c).decrypt(&mut pkt, &c), None);
        pkt[50] ^= 1;
        assert_eq!(pkt, sealed);
    }

    #[test]
    fn stamps_increase_and_are_checked() {
        let g = StampGenerator::default();
        let t = 1_700_000_000_000_000;
        let a = g.next(t);
        let b = g.next(t);
        assert!(b > a && b & 1 == 0);
        assert!(stamp_in_frame(a, t + 15_000_000));
        assert!(!stamp_in_frame(a, t + 17_000_000));
        assert!(!stamp_in_frame(a, t - 17_000_000));
        let mut s = SenderStamp::new(t);
        assert!(s.accept(a, false));
        assert!(!s.accept(a, false), "replay");
        assert!(s.accept(b, false));
        assert!(s.accept(a, true), "within jitter");
        assert!(!s.accept(a - 2 * TIME_STAMP_JITTER, true), "too old");
        let c = g.next(t);
        assert!(
            s.fresh(c, false) && s.fresh(c, false),
            "fresh does not record"
        );
        assert!(s.accept(c, false) && !s.fresh(c, false));
    }

    #[test]
    fn stamps_follow_a_wall_clock_stepped_back_beyond_the_frame() {
        let g = StampGenerator::default();
        let t = 1_700_000_000_000_000;
        let ahead = g.next(t + 3_600_000_000);
        // Stepped back by 10 s: still within the frame, so the sequence keeps increasing.
        let small = g.next(t + 3_590_000_000);
        assert!(small > ahead);
        // Stepped back by an hour: receivers with the right time would refuse the old
        // sequence, so the stamps start again from the clock.
        let back = g.next(t);
        assert!(stamp_in_frame(back, t), "stamps follow the clock");
        assert!(g.next(t) > back, "and increase again from there");
    }
}
