//! Which thread receives from the socket once the TAP is up: the thread that reads the TAP
//! (one thread for both directions) or a receive thread of its own (split).
//!
//! One thread saves a wake-up and a sleep per datagram of the light direction (the TCP ACKs
//! of a download). But on an edge that mostly sends, received datagrams would wait behind
//! its sends and one core would carry both: measured in the lab (bench/throughput.sh, "wire"
//! mode), one thread on the sending edge cost 15–30 %, on the receiving edge it gained
//! 7–19 %. So the split follows the share of time the thread spends sending, with
//! hysteresis. Pure: it is told how long each send took and what time it is.

use std::time::{Duration, Instant};

/// How often the choice is revisited.
pub const WINDOW: Duration = Duration::from_millis(100);
/// Sending more than this share of a window moves receiving to its own thread...
const SPLIT_ABOVE: f64 = 0.4;
/// ...and less than this share brings it back.
const JOIN_BELOW: f64 = 0.15;

#[derive(Debug)]
pub struct Roles {
    split: bool,
    window_start: Instant,
    sending: Duration,
}

impl Roles {
    /// Starts with one thread for both directions.
    pub fn new(now: Instant) -> Self {
        Roles {
            split: false,
            window_start: now,
            sending: Duration::ZERO,
        }
    }

    /// Whether a thread of its own receives from the socket.
    pub fn split(&self) -> bool {
        self.split
    }

    /// A send (TAP read, sealing, UDP send) took `took`.
    pub fn sent(&mut self, took: Duration) {
        self.sending += took;
    }

    /// At the end of a window, the new choice if it changed.
    pub fn tick(&mut self, now: Instant) -> Option<bool> {
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed < WINDOW {
            return None;
        }
        let share = self.sending.as_secs_f64() / elapsed.as_secs_f64();
        self.window_start = now;
        self.sending = Duration::ZERO;
        let split = if self.split {
            share >= JOIN_BELOW
        } else {
            share > SPLIT_ABOVE
        };
        (split != self.split).then(|| {
            self.split = split;
            split
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Runs one window in which sending took `share` of the time; returns the change.
    fn window(roles: &mut Roles, now: &mut Instant, share: f64) -> Option<bool> {
        roles.sent(WINDOW.mul_f64(share));
        *now += WINDOW;
        roles.tick(*now)
    }

    #[test]
    fn a_busy_sender_gets_a_receive_thread_and_gives_it_back_when_quiet() {
        let mut now = Instant::now();
        let mut roles = Roles::new(now);
        assert!(!roles.split());
        assert_eq!(window(&mut roles, &mut now, 0.3), None);
        assert_eq!(window(&mut roles, &mut now, 0.7), Some(true));
        assert!(roles.split());
        // Between the two thresholds nothing changes either way (no flapping).
        assert_eq!(window(&mut roles, &mut now, 0.3), None);
        assert_eq!(window(&mut roles, &mut now, 0.05), Some(false));
        assert_eq!(window(&mut roles, &mut now, 0.3), None);
        assert!(!roles.split());
    }

    #[test]
    fn nothing_is_decided_before_a_window_has_passed() {
        let start = Instant::now();
        let mut roles = Roles::new(start);
        roles.sent(WINDOW);
        assert_eq!(roles.tick(start + WINDOW - MS), None);
        assert_eq!(roles.tick(start + WINDOW), Some(true));
    }

    #[test]
    fn a_split_ends_after_a_long_quiet_spell() {
        let mut now = Instant::now();
        let mut roles = Roles::new(now);
        assert_eq!(window(&mut roles, &mut now, 0.9), Some(true));
        // The sender stopped: the TAP thread's poll times out after a window, or much later.
        now += Duration::from_secs(30);
        assert_eq!(roles.tick(now), Some(false));
    }

    #[test]
    fn a_long_quiet_spell_counts_as_quiet() {
        let start = Instant::now();
        let mut roles = Roles::new(start);
        // One busy moment after ten idle seconds is a small share of the time.
        roles.sent(50 * MS);
        assert_eq!(roles.tick(start + Duration::from_secs(10)), None);
        assert!(!roles.split());
    }
}
