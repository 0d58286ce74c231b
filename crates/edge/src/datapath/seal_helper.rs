//! Both cores for one edge: when a TAP read brings many frames (a TSO super-frame), a helper
//! thread seals the second half of them while the send thread seals the first. Sealing is
//! the send thread's biggest own cost under the ciphers; the two halves share the Tunnel's
//! sending session, each with the nonces reserved for it. Slots move between the threads by
//! swapping their boxes: no copy and no allocation per batch.
//!
//! Splitting pays only when the other core is free: waking the helper, waiting for it and
//! moving the sealed bytes between caches cost more than AES-GCM saves on a machine whose
//! cores are busy with the rest of the traffic. So the helper is used only while the machine
//! leaves a core idle ([`IdleWatch`]), and then [`SplitChoice`] measures the send thread's
//! time per frame both ways and keeps the faster one, trying the other now and then.

use std::mem::swap;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvError, SyncSender, TryRecvError, sync_channel};
use std::time::{Duration, Instant};

use n2n_crypto::compress::Codec;
use n2n_crypto::{OsRandom, RandomSource};
use tracing::debug;

use super::Shared;
use super::idle::IdleWatch;
use super::offload::MAX_SEGMENTS;
use crate::tunnel::{Batch, Encap, Nonces, Now, Sealer, Slot, Tunnel};

/// A read brings at least this many frames before half of them go to the helper: below it
/// waking the helper costs more than the sealing it takes over.
pub const SPLIT_AT: usize = 8;

/// One batch in this many is sealed the way that is not the faster one now, to notice when
/// the other becomes the faster (a core freed or taken).
const EXPLORE: u64 = 32;

/// Whether to split the next batch, from the time per frame each way took (moving averages).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SplitChoice {
    /// Nanoseconds per frame sealed here alone \[0] and with the helper \[1]; 0 until tried.
    avg_ns: [u64; 2],
    batches: u64,
}

impl SplitChoice {
    /// Whether to split the next batch: the faster way, or the other one every `EXPLORE`
    /// batches (it starts alone; a way not tried yet counts as the faster once the other
    /// has been measured).
    pub fn split(&mut self) -> bool {
        self.batches = self.batches.wrapping_add(1);
        let faster = self.avg_ns[1] < self.avg_ns[0];
        faster != self.batches.is_multiple_of(EXPLORE)
    }

    /// Records what a batch of `frames` took, `ns` in all.
    pub fn record(&mut self, split: bool, frames: usize, ns: u64) {
        let per_frame = (ns / frames.max(1) as u64).max(1);
        let avg = &mut self.avg_ns[usize::from(split)];
        *avg = if *avg == 0 {
            per_frame
        } else {
            (*avg * 7 + per_frame) / 8
        };
    }
}

/// The helper's half of one batch; its buffers go back and forth, so nothing is allocated.
struct SealJob {
    slots: Vec<Slot>,
    lens: Vec<usize>,
    out: Vec<Range<usize>>,
    count: usize,
    batch: Option<Batch>,
    nonces: Nonces,
    sealed: u64,
}

/// The send thread's end of the helper thread.
pub struct SealHelper {
    jobs: SyncSender<SealJob>,
    done: Receiver<SealJob>,
    /// The job's buffers while the helper is idle; `None` once the helper is gone.
    spare: Option<SealJob>,
    choice: SplitChoice,
    /// The helper's busy time (sealing and polling), ns.
    busy: Arc<AtomicU64>,
    idle: IdleWatch,
}

impl std::fmt::Debug for SealHelper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealHelper")
    }
}

impl SealHelper {
    /// Starts the helper thread (`None` if it cannot start: the send thread then seals alone).
    pub fn start(shared: &Arc<Shared>) -> Option<Self> {
        let codec = Codec::new(shared.tunnel.config().compression).ok()?;
        let sealer = shared.tunnel.twin_sealer(codec, OsRandom.next_u64())?;
        let (jobs, job_rx) = sync_channel::<SealJob>(1);
        let (done_tx, done) = sync_channel::<SealJob>(1);
        let half = MAX_SEGMENTS - MAX_SEGMENTS / 2;
        let spare = SealJob {
            slots: (0..half).map(|_| Slot::default()).collect(),
            lens: vec![0; half],
            out: vec![0..0; half],
            count: 0,
            batch: None,
            nonces: Nonces::default(),
            sealed: 0,
        };
        let shared = Arc::clone(shared);
        let busy = Arc::new(AtomicU64::new(0));
        let busy_helper = Arc::clone(&busy);
        std::thread::Builder::new()
            .name("n2n-seal".into())
            .spawn(move || run_helper(&shared.tunnel, sealer, &job_rx, &done_tx, &busy_helper))
            .inspect_err(|e| debug!(error = %e, "no sealing helper thread"))
            .ok()?;
        Some(SealHelper {
            jobs,
            done,
            spare: Some(spare),
            choice: SplitChoice::default(),
            busy,
            idle: IdleWatch::new(std::thread::available_parallelism().map_or(1, usize::from)),
        })
    }

    /// [`Tunnel::encapsulate`], with the second half of the frames sealed on the helper when
    /// a core is spare and that has been the faster way.
    pub fn encapsulate(
        &mut self,
        now: Now,
        tunnel: &Tunnel,
        slots: &mut [Slot],
        lens: &[usize],
        out: &mut [Range<usize>],
    ) -> Encap {
        let started = Instant::now();
        let spare = self
            .idle
            .spare_cores(started, self.busy.load(Ordering::Relaxed));
        if spare < SPARE_CORES {
            return self.encapsulate_as(false, now, tunnel, slots, lens, out);
        }
        let split = self.choice.split();
        let encap = self.encapsulate_as(split, now, tunnel, slots, lens, out);
        let took = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.choice.record(split, lens.len(), took);
        encap
    }

    /// [`Tunnel::encapsulate`] on both threads (`split`) or on this one alone.
    pub fn encapsulate_as(
        &mut self,
        split: bool,
        now: Now,
        tunnel: &Tunnel,
        slots: &mut [Slot],
        lens: &[usize],
        out: &mut [Range<usize>],
    ) -> Encap {
        if !split {
            return tunnel.encapsulate(now, slots, lens, out);
        }
        tunnel.encapsulate_by(now, slots, lens, out, |batch, nonces, slots, lens, out| {
            self.seal(tunnel, batch, nonces, slots, lens, out)
        })
    }

    fn seal(
        &mut self,
        tunnel: &Tunnel,
        batch: &Batch,
        mut nonces: Nonces,
        slots: &mut [Slot],
        lens: &[usize],
        out: &mut [Range<usize>],
    ) -> u64 {
        let count = lens.len();
        let front = count / 2;
        let back = count - front;
        let fits = self.spare.as_ref().is_some_and(|j| j.slots.len() >= back);
        let Some(mut job) = self.spare.take_if(|_| fits) else {
            return tunnel.seal_batch(batch, &mut nonces, slots, lens, out);
        };
        let mut front_nonces = nonces.split_off_front(front as u64);
        swap_slots(&mut slots[front..count], &mut job.slots[..back]);
        job.lens[..back].copy_from_slice(&lens[front..]);
        job.count = back;
        job.batch = Some(*batch);
        job.nonces = nonces;
        if let Err(refused) = self.jobs.send(job) {
            // The helper ended: seal everything here from now on.
            let mut job = refused.0;
            swap_slots(&mut slots[front..count], &mut job.slots[..back]);
            let mut rest = std::mem::take(&mut job.nonces);
            let sealed = tunnel.seal_batch(batch, &mut front_nonces, slots, &lens[..front], out);
            return sealed
                + tunnel.seal_batch(
                    batch,
                    &mut rest,
                    &mut slots[front..count],
                    &lens[front..],
                    &mut out[front..count],
                );
        }
        let mut sealed = tunnel.seal_batch(
            batch,
            &mut front_nonces,
            &mut slots[..front],
            &lens[..front],
            &mut out[..front],
        );
        match spin_recv(&self.done, SPIN).0 {
            Ok(mut job) => {
                swap_slots(&mut slots[front..count], &mut job.slots[..back]);
                out[front..count].clone_from_slice(&job.out[..back]);
                sealed += job.sealed;
                self.spare = Some(job);
            }
            // The helper ended with the job: its frames are lost (counted as not sealed).
            Err(_) => out[front..count].fill(0..0),
        }
        sealed
    }
}

/// How long a thread polls for the other's message before it sleeps: waking a sleeping
/// thread (a halted vCPU) costs tens of µs, more than sealing a super-frame with AES-GCM.
const SPIN: Duration = Duration::from_micros(50);
/// Idle cores the machine must leave (the helper's own time counted as idle) for batches
/// to be split at all.
const SPARE_CORES: f64 = 0.6;

/// Receives, polling for up to `spin` before blocking; also says how long it polled.
fn spin_recv<T>(rx: &Receiver<T>, spin: Duration) -> (Result<T, RecvError>, Duration) {
    let started = Instant::now();
    loop {
        let polled = started.elapsed();
        match rx.try_recv() {
            Ok(v) => return (Ok(v), polled),
            Err(TryRecvError::Disconnected) => return (Err(RecvError), polled),
            Err(TryRecvError::Empty) if polled < spin => std::hint::spin_loop(),
            Err(TryRecvError::Empty) => return (rx.recv(), polled),
        }
    }
}

/// Exchanges the boxes of two runs of slots (the frames travel with their boxes).
fn swap_slots(a: &mut [Slot], b: &mut [Slot]) {
    for (x, y) in a.iter_mut().zip(b) {
        swap(x, y);
    }
}

/// Seals the jobs it is given until the send thread goes away; adds its busy time (polling
/// and sealing) to `busy`.
fn run_helper(
    tunnel: &Tunnel,
    mut sealer: Sealer,
    jobs: &Receiver<SealJob>,
    done: &SyncSender<SealJob>,
    busy: &AtomicU64,
) {
    loop {
        let (job, polled) = spin_recv(jobs, SPIN);
        let Ok(mut job) = job else { return };
        let started = Instant::now();
        let n = job.count;
        job.sealed = match &job.batch {
            Some(batch) => tunnel.seal_batch_with(
                &mut sealer,
                batch,
                &mut job.nonces,
                &mut job.slots[..n],
                &job.lens[..n],
                &mut job.out[..n],
            ),
            None => {
                job.out[..n].fill(0..0);
                0
            }
        };
        let took = polled + started.elapsed();
        busy.fetch_add(
            u64::try_from(took.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        if done.send(job).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;
    use std::sync::atomic::AtomicBool;

    use super::*;
    use crate::tunnel::tests::{A, B, S, T0, frame, receive, registered, sock, tunnel};
    use crate::tunnel::{FRAME_AT, Path};

    /// One batch's choice and cost: `single` and `split` ns per frame.
    fn run(choice: &mut SplitChoice, batches: usize, single: u64, split: u64) -> usize {
        let mut splits = 0;
        for _ in 0..batches {
            let s = choice.split();
            splits += usize::from(s);
            choice.record(s, 10, 10 * if s { split } else { single });
        }
        splits
    }

    #[test]
    fn the_faster_way_is_kept_and_the_other_tried_now_and_then() {
        let mut choice = SplitChoice::default();
        // A free core: splitting halves the time; after trying both, nearly every batch splits.
        run(&mut choice, 4 * EXPLORE as usize, 100, 50);
        let splits = run(&mut choice, 10 * EXPLORE as usize, 100, 50);
        assert_eq!(splits, 10 * EXPLORE as usize - 10, "all but the tries");
        // The core gets busy: splitting now takes longer; the choice follows within a few
        // tries, then only the tries split.
        run(&mut choice, 40 * EXPLORE as usize, 100, 400);
        let splits = run(&mut choice, 10 * EXPLORE as usize, 100, 400);
        assert_eq!(splits, 10);
    }

    /// A 1304-byte frame from A to B whose payload says `n`.
    fn numbered(n: usize) -> Vec<u8> {
        let mut f = frame(A, B);
        f.resize(1304, 0);
        f[40..48].copy_from_slice(&(n as u64).to_be_bytes());
        f
    }

    #[test]
    fn a_batch_sealed_on_two_threads_arrives_whole_and_in_order() {
        let (a, b) = (tunnel(A, true, false), tunnel(B, true, false));
        a.set_view(registered(vec![(B, sock(0xb), T0)]));
        b.set_view(registered(vec![(A, sock(0xa), T0)]));
        let shared = Arc::new(Shared {
            tunnel: a,
            gso: AtomicBool::new(false),
            gro: false,
            parallel: true,
            duplex_wanted: false,
            duplex: AtomicBool::new(false),
            rx_thread: OnceLock::new(),
            rx_parked: false.into(),
            tcp: None,
            tap: OnceLock::new(),
        });
        let mut helper = SealHelper::start(&shared).expect("helper thread");
        let mut slots: Vec<Slot> = (0..MAX_SEGMENTS).map(|_| Slot::default()).collect();
        let mut out = vec![0..0; MAX_SEGMENTS];
        let now = Now::at(T0 + S);
        let mut n = 0;
        // Split and not, odd and even counts, the most a read brings.
        for (split, count) in [(true, 45), (false, 8), (true, 9), (true, MAX_SEGMENTS)] {
            let lens = vec![1304; count];
            for slot in &mut slots[..count] {
                slot.0[FRAME_AT..FRAME_AT + 1304].copy_from_slice(&numbered(n));
                n += 1;
            }
            let encap =
                helper.encapsulate_as(split, now, &shared.tunnel, &mut slots, &lens, &mut out);
            assert!(
                matches!(encap, Encap::Send { to, path: Path::Direct, .. } if to == sock(0xb)),
                "{encap:?}"
            );
            for (i, (slot, r)) in slots.iter().zip(&out).take(count).enumerate() {
                let (got, _) = receive(&b, now, sock(0xa), &slot.0[r.clone()]);
                let want = numbered(n - count + i);
                assert_eq!(got.as_deref(), Some(&want[..]), "frame {i} of {count}");
            }
        }
        let sent = shared.tunnel.counters().p2p_tx.load(Ordering::Relaxed);
        assert_eq!(sent, n as u64);
        assert_eq!(b.counters().dropped_total(), 0, "no nonce used twice");
        assert!(helper.busy.load(Ordering::Relaxed) > 0, "the helper sealed");
    }
}
