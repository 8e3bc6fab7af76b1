//! Idle workers take crypto work from a busy one.
//!
//! A single heavy flow lands on one worker (the kernel hashes it to one TUN queue and
//! one socket). To use the other cores, the busy worker cuts a batch's AEAD work into
//! chunks and posts it on the [`Crew`] board; workers parked in epoll are woken and
//! claim chunks, while the owner claims chunks too and never sleeps waiting for help:
//! whatever nobody took, it does itself. It only waits for chunks a helper is in the
//! middle of, which are a few microseconds each.
//!
//! A separate thread pool (rayon) was measured first and lost on a busy two-core
//! machine: its caller sleeps until the pool has run every piece, and its extra
//! threads compete with the workers for the same cores. Here there are no extra
//! threads. An idle *worker* is not an idle *core*, though: on a machine whose cores
//! are busy with other programs (the two ends of an iperf3 run, say), a woken helper
//! only takes CPU time from them and adds wake-ups and cache traffic, which measured
//! about 10 % slower than not sharing. So work is offered only while the machine has
//! at least half a core to spare ([`SpareCores`], from /proc/stat), and a per-owner
//! [`ShareGate`] backs off when helpers arrive too late to take a fair share.

use parking_lot::Mutex;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Instant;

use crate::sys::{cvt, owned};

/// The workers of one generation, as seen by each other.
pub struct Crew {
    members: Vec<Member>,
    spare: SpareCores,
}

/// Padded to its own cache lines: the idle flag flips on every wake-up.
#[repr(align(128))]
struct Member {
    idle: AtomicBool,
    wake: OwnedFd,
    posted: Mutex<Option<Arc<Task>>>,
}

/// One batch's work, cut into `total` chunks claimed one at a time.
struct Task {
    next: AtomicUsize,
    /// Helpers between "about to claim" and "done with their chunk".
    active: AtomicUsize,
    /// Chunks helpers finished: feedback for the owner's [`ShareGate`].
    stolen: AtomicUsize,
    total: usize,
    /// The owner's closure with its lifetime erased. Called only for a chunk index below
    /// `total` that the caller claimed, and [`Crew::run`] does not return before every
    /// claimed chunk is finished and no further claim can succeed, so the closure and
    /// everything it borrows outlive every call.
    job: *const (dyn Fn(usize) + Sync + 'static),
}

// SAFETY: `job` points at a `Sync` closure that is only called while the owner keeps it
// alive (see the field's comment); every other field is atomic.
unsafe impl Send for Task {}
// SAFETY: as above.
unsafe impl Sync for Task {}

impl Task {
    /// Claims and runs chunks until none are left; returns how many this caller ran.
    fn work(&self) -> usize {
        let mut ran = 0;
        loop {
            let c = self.next.fetch_add(1, SeqCst);
            if c >= self.total {
                return ran;
            }
            // SAFETY: chunk `c` was claimed below `total`, so the owner is still inside
            // `Crew::run` and the closure is alive (see `Task::job`).
            unsafe { (*self.job)(c) };
            ran += 1;
        }
    }

    /// A helper's turn: counted in `active` so the owner waits for it to finish.
    fn help(&self) {
        struct Leave<'a>(&'a AtomicUsize);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, SeqCst);
            }
        }
        self.active.fetch_add(1, SeqCst);
        let _leave = Leave(&self.active);
        let ran = self.work();
        self.stolen.fetch_add(ran, SeqCst);
    }

    /// Closes the task to new claims and waits for helpers still on a chunk.
    fn close(&self) {
        self.next.fetch_max(self.total, SeqCst);
        let mut spins = 0u32;
        while self.active.load(SeqCst) != 0 {
            if spins < 256 {
                std::hint::spin_loop();
                spins += 1;
            } else {
                std::thread::yield_now();
            }
        }
    }
}

/// Closes the task even if the owner's own chunk panics, so no helper is ever left
/// running on the owner's buffers after `run` is gone.
struct CloseOnDrop<'a>(&'a Task);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Per-owner backoff: after a batch nobody helped with, post half as often (down to
/// once in [`ShareGate::MAX_INTERVAL`] batches); after one that was helped, every batch.
#[derive(Debug, Clone, Copy)]
pub struct ShareGate {
    interval: u32,
    skipped: u32,
}

impl Default for ShareGate {
    fn default() -> Self {
        ShareGate {
            interval: 1,
            skipped: 0,
        }
    }
}

impl ShareGate {
    pub const MAX_INTERVAL: u32 = 64;

    fn open(&mut self) -> bool {
        self.skipped += 1;
        if self.skipped >= self.interval {
            self.skipped = 0;
            true
        } else {
            false
        }
    }

    /// `helped`: whether helpers took at least a quarter of the batch, enough to beat
    /// the cost of waking them.
    fn record(&mut self, helped: bool) {
        self.interval = if helped {
            1
        } else {
            (self.interval * 2).min(Self::MAX_INTERVAL)
        };
    }

    /// Batches between two offers right now (1 = every batch); only the tests look.
    #[cfg(test)]
    fn interval(&self) -> u32 {
        self.interval
    }
}

impl Crew {
    pub fn new(workers: usize) -> io::Result<Crew> {
        let members = (0..workers)
            .map(|_| {
                // SAFETY: plain syscall; the result is checked and wrapped.
                let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
                Ok(Member {
                    idle: AtomicBool::new(false),
                    wake: owned(fd),
                    posted: Mutex::new(None),
                })
            })
            .collect::<io::Result<_>>()?;
        Ok(Crew {
            members,
            spare: SpareCores::new(),
        })
    }

    /// The eventfd that tells worker `me` there is work to take (register READABLE).
    pub fn wake_fd(&self, me: usize) -> BorrowedFd<'_> {
        self.members[me].wake.as_fd()
    }

    /// Marks worker `me` as parked in epoll (true) or busy (false).
    pub fn set_idle(&self, me: usize, idle: bool) {
        self.members[me].idle.store(idle, SeqCst);
    }

    /// Runs `job(0..chunks)`. When the gate is open and another worker is idle, the
    /// chunks are offered to idle workers too; the owner takes whatever is left.
    pub fn run(
        &self,
        me: usize,
        chunks: usize,
        gate: &mut ShareGate,
        job: &(dyn Fn(usize) + Sync),
    ) {
        let idle = self.idle_others(me);
        if chunks < 2 || idle == 0 || !self.spare.available() || !gate.open() {
            (0..chunks).for_each(job);
            return;
        }
        let job: *const (dyn Fn(usize) + Sync + '_) = job;
        // SAFETY: only the lifetime is erased; `Task::job` explains why the closure
        // outlives every call (enforced by `CloseOnDrop` below).
        let job: *const (dyn Fn(usize) + Sync + 'static) = unsafe { std::mem::transmute(job) };
        let task = Arc::new(Task {
            next: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
            stolen: AtomicUsize::new(0),
            total: chunks,
            job,
        });
        *self.members[me].posted.lock() = Some(task.clone());
        self.wake_idle(me);
        {
            let _close = CloseOnDrop(&task);
            task.work();
        }
        *self.members[me].posted.lock() = None;
        gate.record(task.stolen.load(SeqCst) * 4 >= chunks);
    }

    /// Runs `job` over `a` and `b` cut alike into pieces of `chunk` elements, through
    /// [`Crew::run`]: each piece goes to exactly one thread.
    pub fn run_zipped<A: Send, B: Send>(
        &self,
        me: usize,
        gate: &mut ShareGate,
        chunk: usize,
        a: &mut [A],
        b: &mut [B],
        job: impl Fn(&mut [A], &mut [B]) + Sync,
    ) {
        let pieces: Vec<Mutex<(&mut [A], &mut [B])>> = a
            .chunks_mut(chunk.max(1))
            .zip(b.chunks_mut(chunk.max(1)))
            .map(Mutex::new)
            .collect();
        self.run(me, pieces.len(), gate, &|c| {
            let (a, b) = &mut *pieces[c].lock();
            job(a, b);
        });
    }

    /// Called by worker `me` when its wake fd fires: takes chunks of whatever the
    /// others have posted.
    pub fn help(&self, me: usize) {
        let mut count = 0u64;
        // SAFETY: reads 8 bytes into a live u64 from our own non-blocking eventfd; an
        // error (EAGAIN: already reset) is harmless.
        let _ = unsafe {
            libc::read(
                self.members[me].wake.as_raw_fd(),
                (&mut count as *mut u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
        for (j, m) in self.members.iter().enumerate() {
            if j == me {
                continue;
            }
            let task = m.posted.lock().clone();
            if let Some(task) = task {
                let start = Instant::now();
                task.help();
                self.spare.note_helping(start.elapsed());
            }
        }
    }

    fn idle_others(&self, me: usize) -> usize {
        self.members
            .iter()
            .enumerate()
            .filter(|&(j, m)| j != me && m.idle.load(SeqCst))
            .count()
    }

    fn wake_idle(&self, me: usize) {
        let one: u64 = 1;
        for (j, m) in self.members.iter().enumerate() {
            if j != me && m.idle.load(SeqCst) {
                // SAFETY: writes 8 bytes from a live u64 to our eventfd; EAGAIN (counter
                // full) still leaves it readable, which is all we need.
                let _ = unsafe {
                    libc::write(
                        m.wake.as_raw_fd(),
                        (&one as *const u64).cast(),
                        std::mem::size_of::<u64>(),
                    )
                };
            }
        }
    }
}

/// Whether the machine has CPU time to spare: idle time from /proc/stat over the last
/// interval, plus the time our own helpers spent helping (which they took from idle
/// cores, and would otherwise show as idle). Re-read at most every [`Self::EVERY`] by
/// whichever worker asks first; unreadable /proc counts as spare.
struct SpareCores {
    origin: Instant,
    /// When the last sample was taken (ns since `origin`) and what it saw.
    sampled_at: AtomicU64,
    idle_ns: AtomicU64,
    helping_ns: AtomicU64,
    helped_at_sample: AtomicU64,
    available: AtomicBool,
    sampling: AtomicBool,
}

impl SpareCores {
    const EVERY: std::time::Duration = std::time::Duration::from_millis(200);
    /// Offer work while at least this much of a core sits idle.
    const MIN_SPARE: f64 = 0.5;

    fn new() -> SpareCores {
        SpareCores {
            origin: Instant::now(),
            sampled_at: AtomicU64::new(0),
            idle_ns: AtomicU64::new(idle_ns().unwrap_or(0)),
            helping_ns: AtomicU64::new(0),
            helped_at_sample: AtomicU64::new(0),
            available: AtomicBool::new(true),
            sampling: AtomicBool::new(false),
        }
    }

    #[cfg(test)]
    fn force_available(&self) {
        self.sampled_at.store(u64::MAX, Relaxed);
        self.available.store(true, Relaxed);
    }

    fn note_helping(&self, d: std::time::Duration) {
        self.helping_ns
            .fetch_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX), Relaxed);
    }

    fn available(&self) -> bool {
        let now = u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let last = self.sampled_at.load(Relaxed);
        let due = now.saturating_sub(last) >= Self::EVERY.as_nanos() as u64;
        if due && !self.sampling.swap(true, SeqCst) {
            if let Some(idle) = idle_ns() {
                let helped = self.helping_ns.load(Relaxed);
                let spare = idle.saturating_sub(self.idle_ns.swap(idle, Relaxed))
                    + helped.saturating_sub(self.helped_at_sample.swap(helped, Relaxed));
                let cores = spare as f64 / now.saturating_sub(last).max(1) as f64;
                self.available.store(cores >= Self::MIN_SPARE, Relaxed);
            }
            self.sampled_at.store(now, Relaxed);
            self.sampling.store(false, SeqCst);
        }
        self.available.load(Relaxed)
    }
}

/// Idle time of all CPUs together since boot (idle + iowait), in nanoseconds.
fn idle_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().next()?.strip_prefix("cpu ")?;
    let ticks: Vec<u64> = cpu
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    let idle = ticks.get(3)? + ticks.get(4).copied().unwrap_or(0);
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = u64::try_from(hz).ok().filter(|&h| h > 0)?;
    Some(idle.saturating_mul(1_000_000_000 / hz))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::epoll::{Epoll, Event, Interest};
    use std::sync::atomic::AtomicU64;
    use std::time::{Duration, Instant};

    /// A helper thread that behaves like an idle worker: parks in epoll on its wake
    /// fd and helps whenever woken, until `stop`.
    fn spawn_helper(
        crew: Arc<Crew>,
        me: usize,
        stop: Arc<AtomicBool>,
    ) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            let ep = Epoll::new().unwrap();
            ep.add(&crew.wake_fd(me), 0, Interest::READABLE).unwrap();
            let mut ev = [Event::EMPTY; 1];
            while !stop.load(SeqCst) {
                crew.set_idle(me, true);
                let n = ep.wait(&mut ev, Some(Duration::from_millis(20))).unwrap();
                crew.set_idle(me, false);
                if n > 0 {
                    crew.help(me);
                }
            }
        })
    }

    #[test]
    fn every_chunk_runs_exactly_once_alone() {
        let crew = Crew::new(2).unwrap();
        let hits: Vec<AtomicU64> = (0..10).map(|_| AtomicU64::new(0)).collect();
        let mut gate = ShareGate::default();
        crew.run(0, hits.len(), &mut gate, &|c| {
            hits[c].fetch_add(1, SeqCst);
        });
        assert!(hits.iter().all(|h| h.load(SeqCst) == 1));
    }

    #[test]
    fn idle_workers_take_chunks_and_each_runs_once() {
        let crew = Arc::new(Crew::new(3).unwrap());
        // This test is about the hand-over, not about whether the test machine has a
        // core to spare right now.
        crew.spare.force_available();
        let stop = Arc::new(AtomicBool::new(false));
        let helpers: Vec<_> = (1..3)
            .map(|i| spawn_helper(crew.clone(), i, stop.clone()))
            .collect();
        let owner = std::thread::current().id();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut stolen_seen = false;
        let mut gate = ShareGate::default();
        // Slow chunks so the helpers get there before the owner finishes.
        while !stolen_seen && Instant::now() < deadline {
            let mut data = vec![0u64; 64];
            let cells: Vec<Mutex<&mut u64>> = data.iter_mut().map(Mutex::new).collect();
            let by_helper = AtomicUsize::new(0);
            crew.run(0, cells.len(), &mut gate, &|c| {
                std::thread::sleep(Duration::from_micros(200));
                if std::thread::current().id() != owner {
                    by_helper.fetch_add(1, SeqCst);
                }
                **cells[c].lock() += c as u64 + 1;
            });
            drop(cells);
            assert_eq!(
                data,
                (1..=64).collect::<Vec<u64>>(),
                "each chunk exactly once"
            );
            // A fair share: what keeps the gate open.
            stolen_seen = by_helper.load(SeqCst) * 4 >= 64;
        }
        stop.store(true, SeqCst);
        helpers.into_iter().for_each(|h| h.join().unwrap());
        assert!(
            stolen_seen,
            "idle helpers never took a quarter of a batch in 20 s"
        );
        assert_eq!(gate.interval(), 1, "a helped batch keeps sharing on");
    }

    #[test]
    fn idle_time_is_read_and_grows() {
        let a = idle_ns().expect("/proc/stat readable");
        std::thread::sleep(Duration::from_millis(100));
        let b = idle_ns().unwrap();
        assert!(b >= a);
    }

    #[test]
    fn gate_backs_off_when_nobody_helps_and_reopens_when_helped() {
        let mut gate = ShareGate::default();
        for _ in 0..20 {
            gate.record(false);
        }
        assert_eq!(gate.interval(), ShareGate::MAX_INTERVAL);
        let offers = (0..ShareGate::MAX_INTERVAL * 4)
            .filter(|_| gate.open())
            .count();
        assert_eq!(offers, 4);
        gate.record(true);
        assert_eq!(gate.interval(), 1);
        assert!((0..5).all(|_| gate.open()));
    }

    #[test]
    fn no_offer_without_an_idle_worker() {
        // Worker 1 exists but never parks: the owner runs everything inline and the
        // task is never posted.
        let crew = Crew::new(2).unwrap();
        let mut gate = ShareGate::default();
        let owner = std::thread::current().id();
        let elsewhere = AtomicUsize::new(0);
        crew.run(0, 16, &mut gate, &|_| {
            if std::thread::current().id() != owner {
                elsewhere.fetch_add(1, SeqCst);
            }
        });
        assert_eq!(elsewhere.load(SeqCst), 0);
        assert!(crew.members[0].posted.lock().is_none());
    }
}
