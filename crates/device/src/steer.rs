//! Which TUN queue (and so which worker) carries each inner flow's outgoing packets.
//!
//! The kernel picks a multi-queue TUN's transmit queue per flow from a table it fills
//! as we write: a flow's packets leave on the queue its last incoming packet was
//! written to (tun's automatic steering, keyed by the symmetric flow hash, entries kept
//! for 3 s). All traffic of one peer arrives on one UDP socket (one outer 4-tuple), so
//! without a choice here every inner flow of that peer would leave through the worker
//! owning that socket: a ping would wait behind a bulk transfer in one queue, and four
//! TCP streams would share one core. So each decrypted packet is written through the
//! queue this table picks for its flow: a new flow stays with the worker receiving it
//! unless that worker is busy (it moved [`BUSY_MARGIN`] more bytes lately than the
//! least busy one), and then goes to the least busy; the flow keeps its queue while
//! packets keep coming. Staying put when nothing is busy matters: handing a packet to
//! another worker means waking a sleeping thread, which costs an idle ping about a
//! tenth of a millisecond here.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Slots of the flow table (a power of two). Colliding flows share a queue, nothing worse.
const SLOTS: usize = 4096;
/// A flow not written for this long may be moved (the kernel forgets it after 3 s).
const STICKY_MS: u64 = 2000;
/// A slot's timestamp is refreshed at most this often, so hot flows do not keep
/// rewriting a shared cache line.
const REFRESH_MS: u64 = 100;
/// Traffic a new flow is expected to bring, counted on its queue at once so flows that
/// start together (before any of them has moved a byte) spread over the queues.
const NEW_FLOW_BYTES: u64 = 64 * 1024;
/// How much more a worker must have moved (over the last one or two windows) than the
/// least busy one before new flows go elsewhere: about 10 Mbit/s.
pub const BUSY_MARGIN: u64 = 128 * 1024;
/// Workers' traffic is compared over windows of this length.
const WINDOW_MS: u64 = 100;

/// Slot layout: tag (16 bits) | last use in ms (40 bits) | queue + 1 (8 bits; 0 = empty).
const QUEUE_BITS: u32 = 8;
const TIME_BITS: u32 = 40;
const TIME_MASK: u64 = (1 << TIME_BITS) - 1;

pub struct Steering {
    slots: Box<[AtomicU64]>,
    load: Box<[QueueLoad]>,
}

/// Bytes one worker moved (read from its TUN queue or received from its sockets), in
/// the current and the previous window. Written by that worker, and by whoever places
/// a new flow there; a race between the two can misplace one window's count, which
/// only makes one placement less even.
#[repr(align(128))]
#[derive(Default)]
struct QueueLoad {
    window_start: AtomicU64,
    current: AtomicU64,
    previous: AtomicU64,
}

impl Steering {
    /// A table for `queues` queues (at most 255).
    pub fn new(queues: usize) -> Steering {
        let queues = queues.clamp(1, 255);
        Steering {
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            load: (0..queues).map(|_| QueueLoad::default()).collect(),
        }
    }

    /// Records `bytes` moved by the worker of queue `queue` at `now_ms`.
    pub fn note_work(&self, queue: usize, bytes: usize, now_ms: u64) {
        let Some(l) = self.load.get(queue) else {
            return;
        };
        let start = l.window_start.load(Relaxed);
        if now_ms.saturating_sub(start) >= WINDOW_MS {
            let fresh = now_ms.saturating_sub(start) < 2 * WINDOW_MS;
            let finished = if fresh { l.current.load(Relaxed) } else { 0 };
            l.previous.store(finished, Relaxed);
            l.current.store(0, Relaxed);
            l.window_start.store(now_ms, Relaxed);
        }
        l.current.fetch_add(bytes as u64, Relaxed);
    }

    /// The queue to write `packet` (an IP packet) through; `own` when it is not a flow
    /// we can name (not IP, truncated) or there is only one queue.
    pub fn queue_for(&self, packet: &[u8], own: usize, now_ms: u64) -> usize {
        if self.load.len() < 2 {
            return own;
        }
        let Some(hash) = flow_hash(packet) else {
            return own;
        };
        let slot = &self.slots[(hash as usize) & (SLOTS - 1)];
        let tag = hash >> 48;
        let seen = slot.load(Relaxed);
        let (seen_tag, seen_ms, seen_queue) = (
            seen >> (QUEUE_BITS + TIME_BITS),
            (seen >> QUEUE_BITS) & TIME_MASK,
            (seen & 0xff) as usize,
        );
        let now = now_ms & TIME_MASK;
        let age = now.wrapping_sub(seen_ms) & TIME_MASK;
        if seen_queue != 0 && seen_tag == tag && age < STICKY_MS {
            if age >= REFRESH_MS {
                slot.store(pack(tag, now, seen_queue - 1), Relaxed);
            }
            return seen_queue - 1;
        }
        let queue = self.least_loaded(hash, own, now_ms);
        slot.store(pack(tag, now, queue), Relaxed);
        self.note_work(queue, NEW_FLOW_BYTES as usize, now_ms);
        queue
    }

    /// `own` (the worker receiving the flow) unless it is busy; then the queue whose
    /// worker moved the least lately, ties going by the flow's hash.
    fn least_loaded(&self, hash: u64, own: usize, now_ms: u64) -> usize {
        let recent = |l: &QueueLoad| {
            let age = now_ms.saturating_sub(l.window_start.load(Relaxed));
            match age {
                a if a < WINDOW_MS => l.current.load(Relaxed) + l.previous.load(Relaxed),
                a if a < 2 * WINDOW_MS => l.current.load(Relaxed),
                _ => 0,
            }
        };
        let n = self.load.len();
        let first = (hash % n as u64) as usize;
        let least = (0..n)
            .map(|i| (first + i) % n)
            .min_by_key(|&q| recent(&self.load[q]))
            .unwrap_or(first);
        let own_load = self.load.get(own).map_or(u64::MAX, recent);
        if own_load <= recent(&self.load[least]).saturating_add(BUSY_MARGIN) {
            own
        } else {
            least
        }
    }
}

fn pack(tag: u64, now: u64, queue: usize) -> u64 {
    (tag << (QUEUE_BITS + TIME_BITS)) | (now << QUEUE_BITS) | (queue as u64 + 1)
}

/// A hash of the packet's flow that is the same in both directions: addresses, and
/// for TCP/UDP the ports, each endpoint's pair put in a fixed order. ICMP and other
/// protocols hash by addresses alone, as the kernel's symmetric flow hash does.
pub fn flow_hash(packet: &[u8]) -> Option<u64> {
    let version = packet.first()? >> 4;
    let (src, dst, proto, l4): (&[u8], &[u8], u8, Option<&[u8]>) = match version {
        4 => {
            let ihl = usize::from(packet.first()? & 0x0f) * 4;
            let fragment = u16::from_be_bytes([*packet.get(6)?, *packet.get(7)?]) & 0x1fff != 0;
            let proto = *packet.get(9)?;
            let l4 = (!fragment).then(|| packet.get(ihl..)).flatten();
            (packet.get(12..16)?, packet.get(16..20)?, proto, l4)
        }
        6 => (
            packet.get(8..24)?,
            packet.get(24..40)?,
            *packet.get(6)?,
            packet.get(40..),
        ),
        _ => return None,
    };
    let ports = match (proto, l4) {
        (6 | 17, Some(l4)) => l4.get(..4).map(|p| {
            (
                u16::from_be_bytes([p[0], p[1]]),
                u16::from_be_bytes([p[2], p[3]]),
            )
        }),
        _ => None,
    };
    let (sport, dport) = ports.unwrap_or((0, 0));
    let (a, b) = if (src, sport) <= (dst, dport) {
        ((src, sport), (dst, dport))
    } else {
        ((dst, dport), (src, sport))
    };
    let mut h = Mix::new(u64::from(proto));
    h.bytes(a.0);
    h.word(u64::from(a.1));
    h.bytes(b.0);
    h.word(u64::from(b.1));
    Some(h.finish())
}

/// A small multiply-rotate mixer: spreading flows over queues needs speed, not
/// resistance to chosen inputs (a collision only shares a queue).
struct Mix(u64);

impl Mix {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    fn new(seed: u64) -> Mix {
        Mix(seed.wrapping_mul(Self::K))
    }
    fn word(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(23) ^ w).wrapping_mul(Self::K);
    }
    fn bytes(&mut self, b: &[u8]) {
        for chunk in b.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.word(u64::from_le_bytes(w));
        }
    }
    fn finish(self) -> u64 {
        let x = self.0 ^ (self.0 >> 31);
        x.wrapping_mul(Self::K) ^ (x >> 29)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(proto: u8, src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
        let mut p = vec![0u8; 40];
        p[0] = 0x45;
        p[9] = proto;
        p[12..16].copy_from_slice(&src);
        p[16..20].copy_from_slice(&dst);
        p[20..22].copy_from_slice(&sport.to_be_bytes());
        p[22..24].copy_from_slice(&dport.to_be_bytes());
        p
    }

    fn v6(proto: u8, src: u8, sport: u16, dst: u8, dport: u16) -> Vec<u8> {
        let mut p = vec![0u8; 60];
        p[0] = 0x60;
        p[6] = proto;
        p[23] = src;
        p[39] = dst;
        p[40..42].copy_from_slice(&sport.to_be_bytes());
        p[42..44].copy_from_slice(&dport.to_be_bytes());
        p
    }

    #[test]
    fn both_directions_of_a_flow_hash_alike_and_flows_differ() {
        let there = v4(6, [10, 0, 0, 1], 40000, [10, 0, 0, 2], 5201);
        let back = v4(6, [10, 0, 0, 2], 5201, [10, 0, 0, 1], 40000);
        let other = v4(6, [10, 0, 0, 1], 40001, [10, 0, 0, 2], 5201);
        assert_eq!(flow_hash(&there), flow_hash(&back));
        assert_ne!(flow_hash(&there), flow_hash(&other));
        assert_eq!(
            flow_hash(&v6(17, 1, 53, 2, 999)),
            flow_hash(&v6(17, 2, 999, 1, 53))
        );
        assert_ne!(
            flow_hash(&v6(17, 1, 53, 2, 999)),
            flow_hash(&v6(6, 1, 53, 2, 999))
        );
        // ICMP: addresses only, whatever follows the header.
        let mut ping = v4(1, [10, 0, 0, 1], 0x0800, [10, 0, 0, 2], 7);
        let h = flow_hash(&ping);
        ping[20..24].copy_from_slice(&[0, 0, 1, 2]);
        assert_eq!(flow_hash(&ping), h);
    }

    #[test]
    fn garbage_is_not_a_flow() {
        assert_eq!(flow_hash(&[]), None);
        assert_eq!(flow_hash(&[0x45, 0, 0]), None);
        assert_eq!(flow_hash(&[0x10; 64]), None);
        assert_eq!(flow_hash(&[0x60; 20]), None);
        let s = Steering::new(2);
        assert_eq!(s.queue_for(&[0x45, 1], 1, 5), 1);
    }

    #[test]
    fn a_new_flow_avoids_the_busy_queue_and_keeps_its_queue() {
        let s = Steering::new(2);
        let bulk = v4(6, [10, 0, 0, 1], 40000, [10, 0, 0, 2], 5201);
        let ping = v4(1, [10, 0, 0, 1], 0, [10, 0, 0, 2], 0);
        let bulk_q = s.queue_for(&bulk, 0, 1000);
        for t in 1000..1050 {
            s.note_work(bulk_q, 64 * 1024, t);
        }
        let ping_q = s.queue_for(&ping, bulk_q, 1050);
        assert_ne!(ping_q, bulk_q, "a new flow goes to the idle queue");
        // Now the other queue is the busy one; the bulk flow still keeps its queue.
        for t in 1050..1100 {
            s.note_work(ping_q, 1 << 20, t);
        }
        assert_eq!(s.queue_for(&bulk, 0, 1100), bulk_q);
        assert_eq!(s.queue_for(&ping, 0, 1100), ping_q);
    }

    #[test]
    fn a_quiet_flow_may_move_and_old_load_fades() {
        let s = Steering::new(2);
        let flow = v6(17, 1, 5000, 2, 6000);
        let q = s.queue_for(&flow, 0, 10_000);
        s.note_work(q, 1 << 30, 10_000);
        // Still sticky 1.9 s later, even though its queue is the loaded one.
        assert_eq!(s.queue_for(&flow, 0, 11_900), q);
        // After 2 s of silence from 11.9 s it is placed afresh, on the less loaded queue;
        // the old load is long gone, so ties go by hash: the same queue again.
        assert_eq!(s.queue_for(&flow, 0, 14_000), q);
        s.note_work(q, 1 << 20, 18_050);
        assert_ne!(
            s.queue_for(&flow, 0, 18_100),
            q,
            "moved away from the busy queue"
        );
    }

    #[test]
    fn flows_that_start_together_spread_over_queues() {
        let s = Steering::new(4);
        let mut per_queue = [0; 4];
        for i in 0..16 {
            let flow = v4(6, [10, 0, 0, 1], 40000 + i, [10, 0, 0, 2], 5201);
            per_queue[s.queue_for(&flow, 0, 500)] += 1;
        }
        // Each new flow counts 64 KiB where it goes; the receiving worker keeps new
        // flows until it is 128 KiB ahead of the others.
        assert!(
            per_queue.iter().all(|&c| (3..=6).contains(&c)),
            "{per_queue:?}"
        );
    }

    #[test]
    fn light_flows_stay_with_the_receiving_worker() {
        let s = Steering::new(2);
        for i in 0..2 {
            let flow = v4(17, [10, 0, 0, 1], 53 + i, [10, 0, 0, 2], 5353);
            assert_eq!(s.queue_for(&flow, 1, 500), 1);
        }
    }
}
