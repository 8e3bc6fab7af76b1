//! A bad network between two WireGuard peers: a UDP relay that loses, duplicates, delays
//! and reorders datagrams, the way `tc netem` would on the veth.
//!
//! Why a relay and not netem: the kernels the tests run on do not all have `sch_netem`
//! (this project's own test machine lacks it), and a relay also counts exactly what it did
//! (how many copies it injected, how many datagrams overtook earlier ones), which the
//! assertions need. The relay sits on the path of every outer datagram: side A's endpoint
//! for B is the relay, the relay forwards to B's real endpoint from its own socket, so B
//! learns the relay as A's endpoint and answers through it too.

use crate::inside::spawn_in;
use crate::Netns;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the relay does to each datagram, independently per datagram and per direction.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Impairment {
    /// Probability a datagram is dropped.
    pub loss: f64,
    /// Probability a datagram is sent twice.
    pub duplicate: f64,
    /// Base delay of every datagram (except those `reorder` lets through at once).
    pub delay: Duration,
    /// Uniform extra delay in `[-jitter, +jitter]`; as with netem, jitter reorders.
    pub jitter: Duration,
    /// Probability a datagram skips `delay` and so overtakes the ones queued before it
    /// (netem's `delay D reorder P`).
    pub reorder: f64,
}

impl Impairment {
    pub fn loss(p: f64) -> Impairment {
        Impairment {
            loss: p,
            ..Impairment::default()
        }
    }

    pub fn duplicate(p: f64) -> Impairment {
        Impairment {
            duplicate: p,
            ..Impairment::default()
        }
    }

    pub fn reorder(p: f64, delay: Duration) -> Impairment {
        Impairment {
            reorder: p,
            delay,
            ..Impairment::default()
        }
    }

    pub fn delay(delay: Duration, jitter: Duration) -> Impairment {
        Impairment {
            delay,
            jitter,
            ..Impairment::default()
        }
    }

    /// Every datagram lost: an outage.
    pub fn blackhole() -> Impairment {
        Impairment::loss(1.0)
    }
}

/// What happened to the datagrams of one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirStats {
    /// Datagrams that arrived at the relay.
    pub received: u64,
    /// Dropped on purpose (`loss`).
    pub dropped: u64,
    /// Originals sent on (copies not included) and their bytes.
    pub forwarded: u64,
    pub forwarded_bytes: u64,
    /// Extra copies sent on.
    pub duplicated: u64,
    /// Originals sent on after a datagram that arrived later than them.
    pub overtaken: u64,
    /// Sends the kernel refused (nothing to send to yet, or an error).
    pub send_failed: u64,
}

impl DirStats {
    pub fn minus(&self, before: &DirStats) -> DirStats {
        DirStats {
            received: self.received - before.received,
            dropped: self.dropped - before.dropped,
            forwarded: self.forwarded - before.forwarded,
            forwarded_bytes: self.forwarded_bytes - before.forwarded_bytes,
            duplicated: self.duplicated - before.duplicated,
            overtaken: self.overtaken - before.overtaken,
            send_failed: self.send_failed - before.send_failed,
        }
    }
}

/// Both directions: `to_target` is client (A) to target (B), `to_client` the way back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayStats {
    pub to_target: DirStats,
    pub to_client: DirStats,
}

impl RelayStats {
    pub fn minus(&self, before: &RelayStats) -> RelayStats {
        RelayStats {
            to_target: self.to_target.minus(&before.to_target),
            to_client: self.to_client.minus(&before.to_client),
        }
    }
}

const TO_TARGET: usize = 0;
const TO_CLIENT: usize = 1;

/// A datagram waiting for its release time. Ordered by (time, arrival) only.
struct Held {
    due: Instant,
    arrival: u64,
    dir: usize,
    copy: bool,
    data: Vec<u8>,
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.arrival, self.copy) == (other.due, other.arrival, other.copy)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    // Reversed: BinaryHeap is a max-heap and the earliest release must come out first.
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (other.due, other.arrival, other.copy).cmp(&(self.due, self.arrival, self.copy))
    }
}

struct Shared {
    stop: AtomicBool,
    impairment: Mutex<Impairment>,
    stats: Mutex<RelayStats>,
}

/// The running relay; stops (and its thread ends) on drop.
pub struct Relay {
    /// Where the client must send: its endpoint for the target.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    /// Starts a relay in `ns` listening on `listen` and forwarding to `target`; `seed`
    /// makes the impairment decisions reproducible.
    pub fn start(
        ns: &Netns,
        listen: SocketAddr,
        target: SocketAddr,
        impairment: Impairment,
        seed: u64,
    ) -> Relay {
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            impairment: Mutex::new(impairment),
            stats: Mutex::new(RelayStats::default()),
        });
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let worker = shared.clone();
        let thread = spawn_in(ns, "relay", move || {
            let sock = match UdpSocket::bind(listen) {
                Ok(s) => s,
                Err(e) => {
                    let _ = ready_tx.send(Err(format!("relay cannot bind {listen}: {e}")));
                    return;
                }
            };
            // The loop also releases held datagrams, so it must wake up even when idle.
            let _ = sock.set_read_timeout(Some(Duration::from_millis(1)));
            let _ = ready_tx.send(Ok(()));
            run(&sock, target, &worker, seed);
        });
        match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("{e}"),
            Err(_) => panic!("relay thread did not start"),
        }
        Relay {
            addr: listen,
            shared,
            thread: Some(thread),
        }
    }

    /// Changes what the relay does from the next datagram on.
    pub fn set(&self, impairment: Impairment) {
        *self.shared.impairment.lock().expect("relay lock") = impairment;
    }

    pub fn stats(&self) -> RelayStats {
        *self.shared.stats.lock().expect("relay lock")
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(sock: &UdpSocket, target: SocketAddr, shared: &Shared, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut held = BinaryHeap::new();
    let mut client: Option<SocketAddr> = None;
    let mut buf = vec![0u8; 65536];
    let mut arrivals = 0u64;
    // Per direction: the latest arrival number already sent on, to spot overtaken ones.
    let mut newest_sent = [None::<u64>; 2];
    while !shared.stop.load(Ordering::Relaxed) {
        if let Ok((n, src)) = sock.recv_from(&mut buf) {
            let dir = if src == target {
                TO_CLIENT
            } else {
                // The client may roam; the relay follows it like a NAT would.
                client = Some(src);
                TO_TARGET
            };
            arrivals += 1;
            let imp = *shared.impairment.lock().expect("relay lock");
            let mut stats = shared.stats.lock().expect("relay lock");
            let d = dir_stats(&mut stats, dir);
            d.received += 1;
            if imp.loss > 0.0 && rng.gen_bool(imp.loss.min(1.0)) {
                d.dropped += 1;
            } else {
                let due = Instant::now() + hold_time(&imp, &mut rng);
                let copies = if imp.duplicate > 0.0 && rng.gen_bool(imp.duplicate.min(1.0)) {
                    2
                } else {
                    1
                };
                for c in 0..copies {
                    held.push(Held {
                        due,
                        arrival: arrivals,
                        dir,
                        copy: c == 1,
                        data: buf[..n].to_vec(),
                    });
                }
            }
        }
        let now = Instant::now();
        while held.peek().is_some_and(|h| h.due <= now) {
            let Some(h) = held.pop() else { break };
            let dst = if h.dir == TO_TARGET {
                Some(target)
            } else {
                client
            };
            let sent = dst.is_some_and(|dst| sock.send_to(&h.data, dst).is_ok());
            let mut stats = shared.stats.lock().expect("relay lock");
            let d = dir_stats(&mut stats, h.dir);
            if !sent {
                d.send_failed += 1;
            } else if h.copy {
                d.duplicated += 1;
            } else {
                d.forwarded += 1;
                d.forwarded_bytes += h.data.len() as u64;
                match newest_sent[h.dir] {
                    Some(newest) if newest > h.arrival => d.overtaken += 1,
                    _ => newest_sent[h.dir] = Some(h.arrival),
                }
            }
        }
    }
}

fn dir_stats(stats: &mut RelayStats, dir: usize) -> &mut DirStats {
    if dir == TO_TARGET {
        &mut stats.to_target
    } else {
        &mut stats.to_client
    }
}

fn hold_time(imp: &Impairment, rng: &mut StdRng) -> Duration {
    if imp.reorder > 0.0 && rng.gen_bool(imp.reorder.min(1.0)) {
        return Duration::ZERO;
    }
    if imp.jitter.is_zero() {
        return imp.delay;
    }
    let j = imp.jitter.as_secs_f64();
    let d = imp.delay.as_secs_f64() + rng.gen_range(-j..=j);
    Duration::from_secs_f64(d.max(0.0))
}
