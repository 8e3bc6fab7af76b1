//! A numbered UDP stream through the tunnel, counted datagram by datagram at the receiver:
//! what arrived, what arrived twice, what arrived after a later one, what never came.
//!
//! Sender and receiver are threads inside the two namespaces, so the counts are exact (no
//! tool in between that could merge or split datagrams).

use crate::inside::{join, spawn_in};
use crate::Netns;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MAGIC: &[u8; 8] = b"ftprobe1";
const HEADER: usize = 24;

/// How to send: `count` datagrams of `size` bytes (at least 24), one every `interval`.
#[derive(Clone, Copy, Debug)]
pub struct Probe {
    pub count: u64,
    pub interval: Duration,
    pub size: usize,
    /// How long the receiver keeps listening after the last datagram went out.
    pub drain: Duration,
}

/// What the receiver saw.
#[derive(Clone, Debug, Default)]
pub struct ProbeReport {
    /// Datagrams the sender's kernel accepted.
    pub sent: u64,
    /// Sends refused locally (e.g. no route while a link is down).
    pub send_errors: u64,
    /// Distinct sequence numbers that arrived.
    pub received: u64,
    /// Arrivals of a sequence number already seen.
    pub duplicates: u64,
    /// Arrivals after a higher sequence number had arrived (reordered).
    pub late: u64,
    /// The first few sequence numbers that never arrived.
    pub missing: Vec<u64>,
    /// Datagrams of this probe's format that did not belong to it (a stale run, corruption).
    pub foreign: u64,
    /// Arrival time of each received sequence number, relative to the start of sending
    /// (`None` if it never came): lets a test see *when* datagrams went missing.
    pub arrival: Vec<Option<Duration>>,
    /// When the first datagram went out; datagram `i` was due at `start + i * interval`.
    pub start: Option<Instant>,
    /// Datagrams the receiver's kernel dropped because the receiving socket's buffer was
    /// full (the receiving thread did not get the CPU in time): lost after the tunnel
    /// delivered them.
    pub socket_drops: u64,
}

impl ProbeReport {
    pub fn lost(&self) -> u64 {
        self.sent.saturating_sub(self.received)
    }
}

/// Sends the probe from `from` (bound to `src`) to `dst` in `to`, and counts. Bounded by
/// `count * interval + drain` plus set-up time.
pub fn run(from: &Netns, src: SocketAddr, to: &Netns, dst: SocketAddr, p: Probe) -> ProbeReport {
    run_via(from, src, to, dst, dst, p)
}

/// As [`run`], but the sender sends to `via` (a relay that passes the datagrams on to
/// `dst`, where the receiver listens).
pub fn run_via(
    from: &Netns,
    src: SocketAddr,
    to: &Netns,
    dst: SocketAddr,
    via: SocketAddr,
    p: Probe,
) -> ProbeReport {
    assert!(p.size >= HEADER, "probe datagrams need {HEADER} bytes");
    let run_id: u64 = rand::random();
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (start_tx, start_rx) = std::sync::mpsc::channel::<Instant>();
    let receiver_stop = stop.clone();
    let receiver = spawn_in(to, "probe-rx", move || {
        let sock = UdpSocket::bind(dst).unwrap_or_else(|e| panic!("probe cannot bind {dst}: {e}"));
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .expect("read timeout");
        ready_tx.send(()).expect("probe ready");
        let start = start_rx.recv().expect("probe start");
        let mut report = receive(&sock, run_id, p.count, start, &receiver_stop);
        report.start = Some(start);
        report.socket_drops = socket_drops(dst.port());
        report
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("probe receiver did not start");
    let sender = spawn_in(from, "probe-tx", move || {
        let sock = UdpSocket::bind(src).unwrap_or_else(|e| panic!("probe cannot bind {src}: {e}"));
        let start = Instant::now();
        start_tx.send(start).expect("probe start");
        let mut buf = vec![0u8; p.size];
        buf[..8].copy_from_slice(MAGIC);
        buf[8..16].copy_from_slice(&run_id.to_le_bytes());
        let (mut sent, mut errors) = (0u64, 0u64);
        for seq in 0..p.count {
            let due = start + p.interval * seq as u32;
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            buf[16..24].copy_from_slice(&seq.to_le_bytes());
            match sock.send_to(&buf, via) {
                Ok(_) => sent += 1,
                Err(_) => errors += 1,
            }
        }
        (sent, errors)
    });
    let (sent, send_errors) = join(sender);
    std::thread::sleep(p.drain);
    stop.store(true, Ordering::Relaxed);
    let mut report = join(receiver);
    report.sent = sent;
    report.send_errors = send_errors;
    report
}

fn receive(
    sock: &UdpSocket,
    run_id: u64,
    count: u64,
    start: Instant,
    stop: &AtomicBool,
) -> ProbeReport {
    let mut report = ProbeReport {
        arrival: vec![None; count as usize],
        ..ProbeReport::default()
    };
    let mut highest: Option<u64> = None;
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::Relaxed) {
        let Ok(n) = sock.recv(&mut buf) else {
            continue;
        };
        let Some(seq) = parse(&buf[..n], run_id).filter(|&s| s < count) else {
            report.foreign += 1;
            continue;
        };
        let slot = &mut report.arrival[seq as usize];
        if slot.is_some() {
            report.duplicates += 1;
            continue;
        }
        *slot = Some(start.elapsed());
        report.received += 1;
        match highest {
            Some(h) if h > seq => report.late += 1,
            _ => highest = Some(seq),
        }
    }
    report.missing = report
        .arrival
        .iter()
        .enumerate()
        .filter(|(_, a)| a.is_none())
        .map(|(i, _)| i as u64)
        .take(20)
        .collect();
    report
}

/// The kernel's drop count of the UDP socket bound to `port` in the calling thread's
/// namespace (the last column of /proc/net/udp{,6}).
fn socket_drops(port: u16) -> u64 {
    let port_hex = format!(":{port:04X}");
    ["udp", "udp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(format!("/proc/thread-self/net/{f}")).ok())
        .flat_map(|text| {
            text.lines()
                .skip(1)
                .filter(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .is_some_and(|local| local.ends_with(&port_hex))
                })
                .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}

fn parse(datagram: &[u8], run_id: u64) -> Option<u64> {
    let header = datagram.get(..HEADER)?;
    if &header[..8] != MAGIC || header[8..16] != run_id.to_le_bytes() {
        return None;
    }
    Some(u64::from_le_bytes(header[16..24].try_into().ok()?))
}
