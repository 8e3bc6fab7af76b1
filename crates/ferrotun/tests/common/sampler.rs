//! Samples a process's memory, descriptors and threads from /proc at a fixed period in the
//! background, so a test can show they stay flat while something hostile runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Since the sampler started.
    pub at: Duration,
    pub rss_kib: u64,
    pub fds: usize,
    pub threads: usize,
}

/// Resident set size of `pid` in KiB (`VmRSS`), or None once the process is gone.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

fn count_dir(path: String) -> Option<usize> {
    Some(std::fs::read_dir(path).ok()?.count())
}

pub fn sample(pid: u32, at: Duration) -> Option<Sample> {
    Some(Sample {
        at,
        rss_kib: rss_kib(pid)?,
        fds: count_dir(format!("/proc/{pid}/fd"))?,
        threads: count_dir(format!("/proc/{pid}/task"))?,
    })
}

pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<Sample>>>,
}

impl Sampler {
    pub fn start(pid: u32, every: Duration) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let start = Instant::now();
            let mut out = Vec::new();
            while !s.load(Ordering::Relaxed) {
                match sample(pid, start.elapsed()) {
                    Some(x) => out.push(x),
                    None => break,
                }
                // Short naps so stop() returns promptly even with a long period.
                let due = Instant::now() + every;
                while Instant::now() < due && !s.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(20).min(every));
                }
            }
            out
        });
        Sampler {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops and returns every sample taken.
    pub fn stop(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Largest RSS among samples taken in `[from, to)`, in KiB.
pub fn max_rss(samples: &[Sample], from: Duration, to: Duration) -> Option<u64> {
    samples
        .iter()
        .filter(|s| s.at >= from && s.at < to)
        .map(|s| s.rss_kib)
        .max()
}
