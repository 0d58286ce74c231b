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

/// The µs some task waited for a CPU, from /proc/pressure/cpu's `some ... total=N` line.
pub fn cpu_pressure_us(pressure: &str) -> Option<u64> {
    let line = pressure.lines().find(|l| l.starts_with("some "))?;
    line.split_ascii_whitespace()
        .find_map(|f| f.strip_prefix("total="))?
        .parse()
        .ok()
}

/// Cores the helper may use: the idle ones, and its own busy time if it takes that from no
/// one, which CPU pressure tells (time others waited for a CPU is taken off). Without a
/// pressure reading the helper's time is not counted.
pub fn spare(idle_cores: f64, helper_cores: f64, pressure_share: Option<f64>) -> f64 {
    match pressure_share {
        Some(waited) => idle_cores + (helper_cores - waited).max(0.0),
        None => idle_cores,
    }
}

/// One reading: /proc/stat's jiffies, the CPU pressure total, the helper's busy ns.
type Reading = ((u64, u64), Option<u64>, u64);

/// Spare cores as last measured, re-read at most once a second.
#[derive(Debug)]
pub struct IdleWatch {
    cores: usize,
    checked: Option<Instant>,
    last: Option<Reading>,
    spare: f64,
}

impl IdleWatch {
    pub fn new(cores: usize) -> Self {
        IdleWatch {
            cores,
            checked: None,
            last: None,
            spare: 0.0,
        }
    }

    /// Cores left to the helper over the last second ([`spare`]); `helper_busy_ns` is its
    /// busy time so far. 0 until two readings, and when /proc/stat cannot be read.
    pub fn spare_cores(&mut self, now: Instant, helper_busy_ns: u64) -> f64 {
        let since = self.checked.map(|at| now.duration_since(at));
        if since.is_some_and(|d| d < EVERY) {
            return self.spare;
        }
        self.checked = Some(now);
        let Some(jiffies) = read_first_line("/proc/stat").and_then(|t| cpu_jiffies(&t)) else {
            self.last = None;
            self.spare = 0.0;
            return 0.0;
        };
        let pressure = read_first_line("/proc/pressure/cpu").and_then(|t| cpu_pressure_us(&t));
        let reading = (jiffies, pressure, helper_busy_ns);
        if let (Some((before, p_before, busy_before)), Some(wall)) = (self.last, since) {
            let wall_ns = wall.as_nanos().max(1) as f64;
            let helper = helper_busy_ns.saturating_sub(busy_before) as f64 / wall_ns;
            let waited = p_before
                .zip(pressure)
                .map(|(a, b)| b.saturating_sub(a) as f64 * 1e3 / wall_ns);
            self.spare = spare(idle_cores(before, jiffies, self.cores), helper, waited);
        }
        self.last = Some(reading);
        self.spare
    }
}

/// The first line of a /proc file, read into a stack buffer (both lines wanted are short).
fn read_first_line(path: &str) -> Option<Line> {
    let mut buf = [0u8; 256];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut buf))
        .ok()?;
    Some(Line { buf, n })
}

/// Bytes read by [`read_first_line`].
struct Line {
    buf: [u8; 256],
    n: usize,
}

impl std::ops::Deref for Line {
    type Target = str;
    fn deref(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.n]).unwrap_or_default()
    }
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
    fn cpu_pressure_is_the_some_total() {
        let p = "some avg10=0.12 avg60=2.26 avg300=4.74 total=3047064475\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
        assert_eq!(cpu_pressure_us(p), Some(3_047_064_475));
        assert_eq!(cpu_pressure_us("full total=5\n"), None);
    }

    #[test]
    fn the_helpers_time_counts_as_spare_only_when_no_one_waited_for_it() {
        // An idle machine: the helper's time was nobody else's.
        assert!((spare(0.2, 0.7, Some(0.0)) - 0.9).abs() < 1e-9);
        // Others waited as long as the helper ran: it took their time.
        assert_eq!(spare(0.2, 0.7, Some(0.7)), 0.2);
        assert_eq!(spare(0.2, 0.7, Some(1.5)), 0.2);
        // No pressure figures: only what is idle.
        assert_eq!(spare(0.2, 0.7, None), 0.2);
    }

    #[test]
    fn readings_are_taken_once_a_second() {
        let mut w = IdleWatch::new(2);
        let t0 = Instant::now();
        assert_eq!(w.spare_cores(t0, 0), 0.0, "nothing to compare with yet");
        let first = w.last;
        assert_eq!(w.spare_cores(t0 + Duration::from_millis(10), 0), 0.0);
        assert_eq!(w.last, first, "not read again within the second");
        w.spare_cores(t0 + EVERY, 7);
        let helper_seen = w.last.map(|(_, _, busy)| busy);
        assert_eq!(helper_seen, first.map(|_| 7), "read again after it");
    }
}
