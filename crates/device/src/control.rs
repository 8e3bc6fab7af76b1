//! The control thread: handshakes and timers, off the packet path.
//!
//! Workers hand it handshake messages and "this peer needs a handshake" requests through a
//! bounded queue and never wait for it, so a flood of initiations (each an X25519
//! operation) cannot stall established sessions. The queue's depth is the load signal: past
//! [`UNDER_LOAD_QUEUE`] the interface demands cookies for [`UNDER_LOAD_HOLD`].

use crate::clock::Clock;
use crate::netset::NetSet;
use crate::Cancel;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use ferrotun_proto::interface::{Interface, PeerRef};
use ferrotun_proto::time::Instant;
use parking_lot::RwLock;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Queue capacity; beyond it, handshake messages are dropped (workers never block).
pub const QUEUE_CAPACITY: usize = 4096;
/// Queue depth that means "under load" (wireguard-go: 1024 / 8).
pub const UNDER_LOAD_QUEUE: usize = 128;
pub const UNDER_LOAD_HOLD: Duration = Duration::from_secs(1);
/// Timer resolution: well under the 333 ms jitter the protocol adds anyway.
const TICK: Duration = Duration::from_millis(100);

pub enum Job {
    /// An initiation, response or cookie reply from the network.
    Handshake { data: Vec<u8>, src: SocketAddr },
    /// The peer has staged packets: send them, or start a handshake.
    SendStaged(PeerRef),
    /// The data path asks for a new handshake (key getting old).
    Initiate(PeerRef),
}

pub fn channel() -> (Sender<Job>, Receiver<Job>) {
    crossbeam_channel::bounded(QUEUE_CAPACITY)
}

pub struct Control {
    pub iface: Arc<Interface>,
    pub net: Arc<RwLock<Arc<NetSet>>>,
    pub clock: Clock,
    pub cancel: Cancel,
    pub jobs: Receiver<Job>,
}

impl Control {
    pub fn run(self) {
        let mut under_load_until: Option<Instant> = None;
        let mut next_tick = self.clock.now() + TICK;
        while !self.cancel.is_triggered() {
            let wait = next_tick.saturating_duration_since(self.clock.now());
            let job = match self.jobs.recv_timeout(wait) {
                Ok(job) => Some(job),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            let env = self.clock.env();
            if self.jobs.len() >= UNDER_LOAD_QUEUE {
                under_load_until = Some(env.now + UNDER_LOAD_HOLD);
            }
            let under_load = under_load_until.is_some_and(|t| env.now < t);
            let out = match job {
                Some(Job::Handshake { data, src }) => {
                    self.iface.handle_handshake(&data, src, under_load, env)
                }
                Some(Job::SendStaged(peer)) => self.iface.send_staged(&peer, env),
                Some(Job::Initiate(peer)) => self.iface.initiate(&peer, env),
                None => Vec::new(),
            };
            self.net.read().send(&out);
            if env.now >= next_tick {
                let out = self.iface.tick(env);
                self.net.read().send(&out);
                next_tick = env.now + TICK;
            }
        }
    }
}
