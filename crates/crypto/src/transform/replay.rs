//! A sliding replay window over 64-bit packet counters (2048 packets wide).

/// Width of the window in packets.
pub const WINDOW: u64 = 2048;
const WORDS: usize = (WINDOW / 64) as usize;

/// Remembers the highest counter seen and which of the 2048 below it have arrived.
#[derive(Clone, Debug)]
pub struct ReplayWindow {
    /// One more than the highest accepted counter (0 = nothing accepted yet).
    next: u64,
    /// Bit `c % WINDOW` is set when counter `c` (within the window) has been accepted.
    bits: [u64; WORDS],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        ReplayWindow {
            next: 0,
            bits: [0; WORDS],
        }
    }
}

impl ReplayWindow {
    /// Whether `counter` would be accepted; changes nothing (call before authenticating).
    pub fn check(&self, counter: u64) -> bool {
        if counter >= self.next {
            return true;
        }
        if self.next - counter > WINDOW {
            return false;
        }
        self.bits[Self::word(counter)] & Self::bit(counter) == 0
    }

    /// Records `counter` as accepted (call only after the packet authenticated).
    pub fn mark(&mut self, counter: u64) {
        if counter >= self.next {
            let advance = counter - self.next + 1;
            if advance >= WINDOW {
                self.bits = [0; WORDS];
            } else {
                for c in self.next..=counter {
                    self.bits[Self::word(c)] &= !Self::bit(c);
                }
            }
            self.next = counter + 1;
        }
        self.bits[Self::word(counter)] |= Self::bit(counter);
    }

    fn word(c: u64) -> usize {
        ((c % WINDOW) / 64) as usize
    }

    fn bit(c: u64) -> u64 {
        1 << (c % 64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_each_counter_once_within_the_window() {
        let mut w = ReplayWindow::default();
        for c in [5u64, 3, 4, 0, 2100, 2099, 53] {
            assert!(w.check(c), "{c}");
            w.mark(c);
            assert!(!w.check(c), "replay of {c}");
        }
        assert!(!w.check(52), "2100 - 52 = 2048: too old");
        assert!(w.check(54));
        assert!(!w.check(5), "far too old");
        w.mark(10_000);
        assert!(w.check(10_000 - 2047));
        assert!(!w.check(10_000 - 2049));
    }
}
