//! The broadcast fan-out budget: how many copies one source address may make the supernode
//! send by broadcasting (a token bucket per address). A community's broadcasts cost one copy
//! per edge, so without it one member could turn its uplink into N times as much traffic.

use std::collections::HashMap;
use std::net::IpAddr;

/// Default copies per second per source address (`--max-broadcast-rate`); a burst of two
/// seconds' worth is allowed.
pub const DEFAULT_BROADCAST_RATE: u32 = 16_384;
/// Sources tracked at once. Sources are registered edges' addresses (the supernode relays
/// for nobody else), so more than this broadcasting within two seconds is a very large
/// supernode: the untracked ones go unlimited rather than silenced.
const MAX_SOURCES: usize = 65_536;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Copies available, in millionths.
    micro: u64,
    last_us: u64,
}

impl Bucket {
    /// Copies available at `now_us` (millionths), refilled at `per_sec` up to `burst`.
    fn level(&self, now_us: u64, per_sec: u64, burst: u64) -> u64 {
        let refill = now_us.saturating_sub(self.last_us).saturating_mul(per_sec);
        self.micro.saturating_add(refill).min(burst)
    }
}

#[derive(Debug)]
pub struct FanoutBudget {
    per_sec: u64,
    buckets: HashMap<IpAddr, Bucket>,
    /// When the table is full, full buckets are swept at most this often.
    next_sweep_us: u64,
}

impl FanoutBudget {
    /// `per_sec` copies per second per source; 0: no limit.
    pub fn new(per_sec: u32) -> Self {
        FanoutBudget {
            per_sec: per_sec.into(),
            buckets: HashMap::new(),
            next_sweep_us: 0,
        }
    }

    fn burst_micro(&self) -> u64 {
        2 * self.per_sec * 1_000_000
    }

    /// Takes `copies` from `src`'s budget; `false` (and nothing taken) if they are not there.
    pub fn take(&mut self, src: IpAddr, copies: usize, now_us: u64) -> bool {
        if self.per_sec == 0 || copies == 0 {
            return true;
        }
        let burst = self.burst_micro();
        if self.buckets.len() >= MAX_SOURCES && !self.buckets.contains_key(&src) {
            if now_us >= self.next_sweep_us {
                self.next_sweep_us = now_us + 1_000_000;
                self.purge(now_us);
            }
            if self.buckets.len() >= MAX_SOURCES {
                return true;
            }
        }
        let b = self.buckets.entry(src).or_insert(Bucket {
            micro: burst,
            last_us: now_us,
        });
        b.micro = b.level(now_us, self.per_sec, burst);
        b.last_us = now_us;
        let cost = (copies as u64).saturating_mul(1_000_000);
        if cost > b.micro {
            return false;
        }
        b.micro -= cost;
        true
    }

    /// Forgets the sources whose budget has filled up again (they lose nothing by it).
    pub fn purge(&mut self, now_us: u64) {
        let (per_sec, burst) = (self.per_sec, self.burst_micro());
        self.buckets
            .retain(|_, b| b.level(now_us, per_sec, burst) < burst);
    }

    pub fn sources(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_gets_its_rate_and_a_two_second_burst_and_no_more() {
        let mut b = FanoutBudget::new(100);
        let (src, other) = (IpAddr::from([192, 0, 2, 1]), IpAddr::from([192, 0, 2, 2]));
        // The burst: 200 copies at once, in broadcasts of 10.
        let sent = (0..30).filter(|_| b.take(src, 10, 0)).count();
        assert_eq!(sent, 20);
        assert!(b.take(other, 10, 0), "another source has its own budget");
        // Half a second refills 50 copies.
        let sent = (0..30).filter(|_| b.take(src, 10, 500_000)).count();
        assert_eq!(sent, 5);
        // A broadcast larger than the burst never goes, and takes nothing.
        assert!(!b.take(other, 201, 10_000_000));
        assert!(b.take(other, 200, 10_000_000));
        // Full buckets are forgotten, others kept.
        b.take(src, 1, 20_000_000);
        b.purge(20_000_000);
        assert_eq!(b.sources(), 1);
        b.purge(30_000_000);
        assert_eq!(b.sources(), 0);
        assert!(FanoutBudget::new(0).take(src, usize::MAX, 0), "0: no limit");
    }

    #[test]
    fn the_table_stays_bounded_and_never_silences_a_new_source() {
        let mut b = FanoutBudget::new(100);
        assert!(b.take(IpAddr::from([192, 0, 2, 1]), 0, 0));
        assert_eq!(b.sources(), 0, "nothing to send, nothing tracked");
        for i in 0..MAX_SOURCES as u32 {
            assert!(b.take(IpAddr::from(i.to_be_bytes()), 1, 0));
        }
        // Full of sources still spending: a new one is let through, untracked.
        let new = IpAddr::from([203, 0, 113, 1]);
        assert!(b.take(new, 150, 1));
        assert_eq!(b.sources(), MAX_SOURCES);
        // Once the others have filled up again, the sweep makes room and it is tracked.
        assert!(b.take(new, 150, 10_000_000));
        assert_eq!(b.sources(), 1);
        assert!(!b.take(new, 100, 10_000_000), "its budget now counts");
    }
}
