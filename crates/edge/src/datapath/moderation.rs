//! Wake-up moderation, as a NIC moderates its interrupts: while bulk traffic is steady, a
//! data thread that runs out of work naps for a moment before it waits again, so one wake-up
//! serves the frames that arrived meanwhile instead of each waking it.
//!
//! Why: on this VM a wake-up across cores costs tens of µs (the waker's IPI, the sleeper's
//! switch in and out). A TCP flow of 64 KiB TSO frames woke each edge thread 2 000–6 000
//! times a second; napping cut that by half to two thirds and the edges' CPU per GB by about
//! a sixth (bench/throughput.sh, offload mode, -A6 and -A7). While a thread naps nothing waits
//! on its descriptors, so the kernel path that queues a frame for it wakes no one either.
//!
//! When: a thread naps after bulk work (a TSO super-frame, several datagrams at once, or the
//! ACKs the receive thread of a sending edge gets) once two idle moments in a row each came
//! less than a nap after the one before (or after the end of the nap taken then) and each
//! followed bulk work; an idle moment after a single frame halves that streak. Frames that
//! come one at a time (pings, interactive traffic) and request/response traffic (the idle
//! moment after each single-frame request halves the streak) never wait behind a nap; under a bulk flow, a frame of another flow may wait up to one nap (plus the
//! timer's slack) per edge it crosses. Pure: it is told the time and the work.
//! `N2N_RS_NAP=0` turns it off.

use std::time::{Duration, Instant};

/// How long a busy thread naps before waiting again.
pub const NAP: Duration = Duration::from_micros(500);
/// Short gaps after bulk work, in a row, that make the traffic steady.
const STEADY: u8 = 2;

#[derive(Debug)]
pub struct Moderation {
    nap: Duration,
    /// When the thread was last idle, or when the nap it took then ended.
    last_idle: Option<Instant>,
    /// Idle moments in a row that came less than a nap after the last and after bulk work
    /// (one after a single frame halves it).
    streak: u8,
    /// Whether bulk work was done since the last idle moment.
    bulk: bool,
}

impl Moderation {
    /// Moderation with naps of `nap` (zero: never nap).
    pub fn new(nap: Duration) -> Self {
        Moderation {
            nap,
            last_idle: None,
            streak: 0,
            bulk: false,
        }
    }

    /// Whether it never naps (`N2N_RS_NAP=0`): the thread may wait without looking first.
    pub fn off(&self) -> bool {
        self.nap.is_zero()
    }

    /// The thread handled work: `bulk` if several frames or datagrams came at once (or the
    /// ACKs of a bulk flow the edge is sending).
    pub fn worked(&mut self, bulk: bool) {
        self.bulk |= bulk;
    }

    /// Nothing is ready at `now`: how long to nap before waiting (zero: wait at once).
    pub fn idle(&mut self, now: Instant) -> Duration {
        let short = self
            .last_idle
            .is_some_and(|t| now.saturating_duration_since(t) < self.nap);
        let bulk = std::mem::take(&mut self.bulk);
        self.streak = match (short, bulk) {
            (false, _) => 0,
            (true, true) => (self.streak + 1).min(STEADY + 1),
            // A single frame halves the streak: a stray one (the TCP window update a reader
            // sends) keeps bulk traffic napping, every other one (requests) ends it.
            (true, false) => self.streak / 2,
        };
        let nap = if bulk && self.streak >= STEADY {
            self.nap
        } else {
            Duration::ZERO
        };
        self.last_idle = Some(now.checked_add(nap).unwrap_or(now));
        nap
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: u64 = NAP.as_micros() as u64;

    /// Idle moments, each after work (`bulk` or not) and `gap` µs after the previous idle
    /// moment or the end of its nap: the naps taken, in µs.
    fn naps(m: &mut Moderation, moments: &[(bool, u64)]) -> Vec<u64> {
        let mut t = Instant::now();
        let mut taken = 0;
        let mut out = Vec::new();
        for &(bulk, gap) in moments {
            t += Duration::from_micros(taken + gap);
            m.worked(bulk);
            taken = m.idle(t).as_micros() as u64;
            out.push(taken);
        }
        out
    }

    fn bulk(gaps: &[u64]) -> Vec<(bool, u64)> {
        gaps.iter().map(|&g| (true, g)).collect()
    }

    #[test]
    fn steady_bulk_naps_and_keeps_napping_while_it_comes() {
        let mut m = Moderation::new(NAP);
        let got = naps(&mut m, &bulk(&[0, 120, 130, 60, 10, 0]));
        assert_eq!(got, [0, 0, N, N, N, N]);
    }

    #[test]
    fn a_long_wait_ends_the_naps_until_bulk_is_steady_again() {
        let mut m = Moderation::new(NAP);
        let got = naps(&mut m, &bulk(&[0, 100, 100, 2_000, 100, 100]));
        assert_eq!(got, [0, 0, N, 0, 0, N]);
    }

    #[test]
    fn frames_that_come_one_at_a_time_never_wait_behind_a_nap() {
        // A ping flood: single frames, 10 µs apart.
        let mut m = Moderation::new(NAP);
        let got = naps(&mut m, &[(false, 10); 50]);
        assert!(got.iter().all(|&n| n == 0), "{got:?}");
    }

    #[test]
    fn requests_answered_by_bursts_never_wait_behind_a_nap() {
        // A single-frame request out, a multi-frame answer back, 200 µs apart: the idle
        // moment after each request breaks the streak.
        let mut m = Moderation::new(NAP);
        let moments: Vec<(bool, u64)> = (0..40).map(|i| (i % 2 == 1, 200)).collect();
        let got = naps(&mut m, &moments);
        assert!(got.iter().all(|&n| n == 0), "{got:?}");
        // The same gaps with bulk work every time do nap: the streak is what decides.
        assert!(naps(&mut m, &bulk(&[200; 4])).contains(&N));
    }

    #[test]
    fn a_stray_single_frame_keeps_bulk_napping() {
        // A TCP receiver's window update among the super-frames of a bulk flow.
        let mut m = Moderation::new(NAP);
        let moments = [
            (true, 0),
            (true, 100),
            (true, 100),
            (true, 50),
            (false, 50),
            (true, 50),
        ];
        assert_eq!(naps(&mut m, &moments), [0, 0, N, N, 0, N]);
        // Two in a row end it.
        let moments = [(false, 50), (false, 50), (true, 50)];
        assert_eq!(naps(&mut m, &moments), [0, 0, 0]);
    }

    #[test]
    fn a_zero_nap_is_off() {
        // Off, the data threads wait at once without asking (duplex.rs, rx.rs).
        assert!(Moderation::new(Duration::ZERO).off());
        assert!(!Moderation::new(NAP).off());
    }
}
