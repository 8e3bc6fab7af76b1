//! The control thread: handshakes and timers, off the packet path.
//!
//! Workers hand it work through two bounded queues and never wait for it: handshake
//! messages from the network in one, their own requests ("this peer has staged packets",
//! "this peer needs a new handshake") in the other. A flood of initiations (each an X25519
//! operation) therefore cannot stall established sessions, a flood cannot keep a worker's
//! request out, and a burst of requests cannot keep handshake messages out. Only the
//! handshake queue's depth is the load signal: past [`UNDER_LOAD_QUEUE`] the interface
//! demands cookies for [`UNDER_LOAD_HOLD`]. Requests are our own work, not an attack.

use crate::clock::Clock;
use crate::counting::ThreadCounters;
use crate::netset::NetSet;
use crate::route_watch::NewSources;
use crate::Cancel;
use crossbeam_channel::{Receiver, Select, Sender};
use ferrotun_proto::interface::{Interface, PeerRef};
use ferrotun_proto::source::LocalSource;
use ferrotun_proto::time::Instant;
use parking_lot::RwLock;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Capacity of each queue; beyond it, jobs are dropped (workers never block). The
/// handshake queue holds at most this many messages of at most 148 bytes.
pub const QUEUE_CAPACITY: usize = 4096;
/// Handshake queue depth that means "under load" (wireguard-go: 1024 / 8).
pub const UNDER_LOAD_QUEUE: usize = 128;
pub const UNDER_LOAD_HOLD: Duration = Duration::from_secs(1);
/// Timer resolution: well under the 333 ms jitter the protocol adds anyway.
const TICK: Duration = Duration::from_millis(100);

pub enum Job {
    /// An initiation, response or cookie reply from the network, from `src` to our
    /// address `local`.
    Handshake {
        data: Vec<u8>,
        src: SocketAddr,
        local: Option<LocalSource>,
    },
    /// The peer has staged packets: send them, or start a handshake.
    SendStaged(PeerRef),
    /// The data path asks for a new handshake (key getting old).
    Initiate(PeerRef),
}

/// The workers' end of the queues.
#[derive(Clone)]
pub struct Jobs {
    handshakes: Sender<Job>,
    requests: Sender<Job>,
}

impl Jobs {
    /// Queues a job without waiting; gives it back when its queue is full.
    pub fn try_send(&self, job: Job) -> Result<(), Job> {
        let queue = match job {
            Job::Handshake { .. } => &self.handshakes,
            Job::SendStaged(_) | Job::Initiate(_) => &self.requests,
        };
        queue.try_send(job).map_err(|e| e.into_inner())
    }
}

/// The control thread's end of the queues.
pub struct JobQueue {
    handshakes: Receiver<Job>,
    requests: Receiver<Job>,
}

pub fn channel() -> (Jobs, JobQueue) {
    let (handshakes, handshakes_rx) = crossbeam_channel::bounded(QUEUE_CAPACITY);
    let (requests, requests_rx) = crossbeam_channel::bounded(QUEUE_CAPACITY);
    (
        Jobs {
            handshakes,
            requests,
        },
        JobQueue {
            handshakes: handshakes_rx,
            requests: requests_rx,
        },
    )
}

impl JobQueue {
    /// The next job of either queue, waiting at most `wait`: `Ok(None)` on time-out,
    /// `Err` once the workers' end is gone. When both queues hold jobs the pick is random
    /// (crossbeam's select), so each gets its share.
    fn next(&self, wait: Duration) -> Result<Option<Job>, ()> {
        let mut select = Select::new();
        let handshakes = select.recv(&self.handshakes);
        select.recv(&self.requests);
        let Ok(op) = select.select_timeout(wait) else {
            return Ok(None);
        };
        let queue = if op.index() == handshakes {
            &self.handshakes
        } else {
            &self.requests
        };
        op.recv(queue).map(Some).map_err(|_| ())
    }

    /// The load signal: handshake messages from the network waiting.
    fn handshake_backlog(&self) -> usize {
        self.handshakes.len()
    }
}

pub struct Control {
    pub iface: Arc<Interface>,
    pub net: Arc<RwLock<Arc<NetSet>>>,
    pub clock: Clock,
    pub cancel: Cancel,
    pub jobs: JobQueue,
    pub counters: Arc<ThreadCounters>,
    /// Told when a handshake may have changed the address a peer's replies leave from.
    pub new_sources: NewSources,
}

impl Control {
    pub fn run(self) {
        let mut under_load_until: Option<Instant> = None;
        let mut next_tick = self.clock.now() + TICK;
        while !self.cancel.is_triggered() {
            let wait = next_tick.saturating_duration_since(self.clock.now());
            let Ok(job) = self.jobs.next(wait) else {
                return;
            };
            let env = self.clock.env();
            if self.jobs.handshake_backlog() >= UNDER_LOAD_QUEUE {
                under_load_until = Some(env.now + UNDER_LOAD_HOLD);
            }
            let under_load = under_load_until.is_some_and(|t| env.now < t);
            let out = match job {
                Some(Job::Handshake { data, src, local }) => {
                    let out = self
                        .iface
                        .handle_handshake_at(&data, src, local, under_load, env);
                    if local.is_some() {
                        // Rare (a handshake per peer every two minutes): whether it gave
                        // the peer a new source is for the route watch to find out.
                        self.new_sources.store(true, Ordering::Relaxed);
                    }
                    out
                }
                Some(Job::SendStaged(peer)) => self.iface.send_staged(&peer, env),
                Some(Job::Initiate(peer)) => self.iface.initiate(&peer, env),
                None => Vec::new(),
            };
            let counters = self.counters.control();
            self.net.read().send(&out, &self.iface, counters);
            if env.now >= next_tick {
                let out = self.iface.tick(env);
                self.net.read().send(&out, &self.iface, counters);
                next_tick = env.now + TICK;
            }
        }
    }
}
