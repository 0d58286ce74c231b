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
//! Latency: a thread naps only when it has just handled bulk work (a TSO super-frame, several
//! datagrams, or the receive thread of an edge that is busy sending) and its last [`STEADY`] idle moments each came less than a nap after the one
//! before (or after the end of the nap taken then): bulk traffic keeps arriving. Pings and
//! request/response traffic come a frame at a time and never wait behind a nap; under a bulk
//! flow, a frame of another flow may wait up to one nap per edge it crosses. Pure: it is told
//! the time and the work. `N2N_RS_NAP=0` turns it off.

use std::time::{Duration, Instant};

/// How long a busy thread naps before waiting again.
pub const NAP: Duration = Duration::from_micros(500);
/// Short gaps in a row between idle moments that make the traffic steady.
const STEADY: u8 = 2;

#[derive(Debug)]
pub struct Moderation {
    nap: Duration,
    /// When the thread was last idle, or when the nap it took then ended.
    last_idle: Option<Instant>,
    /// Gaps in a row shorter than a nap.
    short_gaps: u8,
    /// Whether a batch of more than one frame or datagram came since the last idle moment.
    batch: bool,
}

impl Moderation {
    /// Moderation with naps of `nap` (zero: never nap).
    pub fn new(nap: Duration) -> Self {
        Moderation {
            nap,
            last_idle: None,
            short_gaps: 0,
            batch: false,
        }
    }

    /// Whether it never naps (`N2N_RS_NAP=0`): the thread may wait without looking first.
    pub fn off(&self) -> bool {
        self.nap.is_zero()
    }

    /// The thread handled work: `batch` if it was bulk (several frames or datagrams at once,
    /// or the ACKs of a bulk flow the edge is sending).
    pub fn worked(&mut self, batch: bool) {
        self.batch |= batch;
    }

    /// Nothing is ready at `now`: how long to nap before waiting (zero: wait at once).
    pub fn idle(&mut self, now: Instant) -> Duration {
        let short = self
            .last_idle
            .is_some_and(|t| now.saturating_duration_since(t) < self.nap);
        self.short_gaps = if short {
            self.short_gaps.saturating_add(1)
        } else {
            0
        };
        let nap = if self.short_gaps >= STEADY && std::mem::take(&mut self.batch) {
            self.nap
        } else {
            Duration::ZERO
        };
        self.batch = false;
        self.last_idle = Some(now + nap);
        nap
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Idle moments `gaps` µs apart (after the previous one or the end of its nap), each
    /// after work in batches of `frames`: the naps taken, in µs.
    fn naps(m: &mut Moderation, frames: usize, gaps: &[u64]) -> Vec<u64> {
        let mut t = Instant::now();
        m.worked(frames > 1);
        let mut out = vec![m.idle(t).as_micros() as u64];
        for &gap in gaps {
            t += Duration::from_micros(out.last().copied().unwrap_or(0) + gap);
            m.worked(frames > 1);
            out.push(m.idle(t).as_micros() as u64);
        }
        out
    }

    const N: u64 = NAP.as_micros() as u64;

    #[test]
    fn steady_batches_nap_and_keep_napping_while_they_come() {
        let mut m = Moderation::new(NAP);
        assert_eq!(naps(&mut m, 45, &[120, 130, 60, 10, 0]), [0, 0, N, N, N, N]);
    }

    #[test]
    fn a_long_wait_ends_the_naps_until_batches_are_steady_again() {
        let mut m = Moderation::new(NAP);
        let gaps = [100, 100, 2_000, 100, 100];
        assert_eq!(naps(&mut m, 2, &gaps), [0, 0, N, 0, 0, N]);
    }

    #[test]
    fn frames_that_come_one_at_a_time_never_wait_behind_a_nap() {
        // A ping flood, or requests and their answers back to back.
        let mut m = Moderation::new(NAP);
        assert!(naps(&mut m, 1, &[10; 50]).iter().all(|&n| n == 0));
        // A batch among them does not make the next single frame wait either.
        let t = Instant::now();
        m.worked(true);
        m.worked(false);
        assert_eq!(
            m.idle(t),
            NAP,
            "steady, and a batch came since the last idle moment"
        );
        m.worked(false);
        assert_eq!(m.idle(t + NAP), Duration::ZERO, "only a single frame since");
    }

    #[test]
    fn a_zero_nap_never_naps() {
        let mut m = Moderation::new(Duration::ZERO);
        assert!(m.off());
        assert!(naps(&mut m, 45, &[0, 1, 2, 3, 4]).iter().all(|&n| n == 0));
    }
}
