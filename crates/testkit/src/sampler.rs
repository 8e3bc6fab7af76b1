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

/// CPU time (user + system, in clock ticks) of each thread of `pid`, by thread name; the
/// threads of one name are summed.
pub fn thread_cpu(pid: u32) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = Vec::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in dir.filter_map(|e| e.ok()) {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // "tid (comm) state ..." where comm may hold spaces: split at the last ')'.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let name = head
            .split_once('(')
            .map(|(_, n)| n)
            .unwrap_or("?")
            .to_string();
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the line; `rest` starts at field 3.
        let ticks = fields
            .get(11..13)
            .map(|f| f.iter().filter_map(|x| x.parse::<u64>().ok()).sum())
            .unwrap_or(0);
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 += ticks,
            None => out.push((name, ticks)),
        }
    }
    out.sort();
    out
}

/// Per-thread-name CPU ticks spent between two [`thread_cpu`] readings.
pub fn cpu_delta(before: &[(String, u64)], after: &[(String, u64)]) -> Vec<(String, u64)> {
    after
        .iter()
        .map(|(name, t)| {
            let was = before
                .iter()
                .find(|(n, _)| n == name)
                .map_or(0, |(_, t)| *t);
            (name.clone(), t.saturating_sub(was))
        })
        .collect()
}
