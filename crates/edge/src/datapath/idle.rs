//! How much CPU the machine leaves idle. The sealing helper only pays when it runs on a core
//! that would otherwise idle: on a machine whose cores are busy (the lab's two cores carry
//! both edges, iperf3 and the kernel) its wake-ups and polling take time from the rest.

use std::io::Read;
use std::time::{Duration, Instant};

/// How often /proc/stat is read again.
const EVERY: Duration = Duration::from_secs(1);

/// `(idle, total)` jiffies of all CPUs from /proc/stat's first line
/// (`cpu  user nice system idle iowait irq softirq steal ...`); iowait counts as idle.
pub fn cpu_jiffies(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().next()?;
    let mut fields = line.split_ascii_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let mut idle = 0u64;
    let mut total = 0u64;
    for (i, f) in fields.take(8).enumerate() {
        let v: u64 = f.parse().ok()?;
        total = total.checked_add(v)?;
        if i == 3 || i == 4 {
            idle += v;
        }
    }
    Some((idle, total))
}

/// Idle cores between two readings of `cores` CPUs.
pub fn idle_cores(before: (u64, u64), after: (u64, u64), cores: usize) -> f64 {
    let total = after.1.saturating_sub(before.1);
    if total == 0 {
        return 0.0;
    }
    after.0.saturating_sub(before.0) as f64 / total as f64 * cores as f64
}

/// Spare cores as last measured, re-read at most once a second.
#[derive(Debug)]
pub struct IdleWatch {
    cores: usize,
    last: Option<((u64, u64), Instant, u64)>,
    spare: f64,
}

impl IdleWatch {
    pub fn new(cores: usize) -> Self {
        IdleWatch {
            cores,
            last: None,
            spare: 0.0,
        }
    }

    /// Cores left idle over the last second, counting the helper's own busy time as idle (it
    /// would be without the helper). `helper_busy_ns` is its busy time so far. 0 when
    /// /proc/stat cannot be read.
    pub fn spare_cores(&mut self, now: Instant, helper_busy_ns: u64) -> f64 {
        if let Some((_, at, _)) = self.last
            && now.duration_since(at) < EVERY
        {
            return self.spare;
        }
        let Some(jiffies) = read_proc_stat() else {
            return 0.0;
        };
        if let Some((before, at, busy_before)) = self.last {
            let wall = now.duration_since(at).as_nanos().max(1) as f64;
            let helper = helper_busy_ns.saturating_sub(busy_before) as f64 / wall;
            self.spare = idle_cores(before, jiffies, self.cores) + helper;
        }
        self.last = Some((jiffies, now, helper_busy_ns));
        self.spare
    }
}

/// [`cpu_jiffies`] of /proc/stat, read into a stack buffer (its first line is short).
fn read_proc_stat() -> Option<(u64, u64)> {
    let mut buf = [0u8; 256];
    let n = std::fs::File::open("/proc/stat")
        .and_then(|mut f| f.read(&mut buf))
        .ok()?;
    cpu_jiffies(std::str::from_utf8(&buf[..n]).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_time_is_read_from_the_first_line() {
        let stat = "cpu  100 5 50 800 20 0 25 0 0 0\ncpu0 50 2 25 400 10 0 12 0 0 0\n";
        assert_eq!(cpu_jiffies(stat), Some((820, 1000)));
        assert_eq!(cpu_jiffies("cpu0 1 2 3 4\n"), None);
        assert_eq!(cpu_jiffies("cpu  1 2 x 4\n"), None);
        assert_eq!(cpu_jiffies(""), None);
    }

    #[test]
    fn idle_cores_are_the_idle_share_of_all_cores() {
        // 2 cores, 200 jiffies passed, 50 of them idle: a quarter of two cores.
        assert_eq!(idle_cores((800, 1000), (850, 1200), 2), 0.5);
        assert_eq!(idle_cores((800, 1000), (800, 1000), 2), 0.0);
    }

    #[test]
    fn this_machine_can_be_watched() {
        let mut w = IdleWatch::new(2);
        let t0 = Instant::now();
        assert_eq!(w.spare_cores(t0, 0), 0.0, "nothing to compare with yet");
        // Within the second the last figure stands; after it, a new one (the helper busy
        // for the whole second counts as a full spare core).
        assert_eq!(w.spare_cores(t0 + Duration::from_millis(10), 0), 0.0);
        let spare = w.spare_cores(t0 + EVERY, 1_000_000_000);
        assert!((1.0..=3.0).contains(&spare), "{spare}");
    }
}
