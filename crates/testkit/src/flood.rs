//! A handshake flood from an attacker's namespace: initiations that pass the responder's
//! first check (a correct mac1 for its public key, so each one would cost it a
//! Diffie-Hellman if it did not defend itself) mixed with plain garbage, sent from many
//! source addresses. Every cookie reply that reaches the flood's sockets is decrypted with
//! the responder's cookie key and checked against the initiation it answers, so "the cookie
//! mechanism engaged" is seen on the wire.

use crate::forge::{initiation_index_and_mac1, initiation_with_mac1, open_cookie_reply};
use crate::inside::spawn_in;
use crate::Netns;
use ferrotun_proto::wire::{COOKIE_REPLY_LEN, INITIATION_LEN};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Distinct initiations in the pool (each with its own sender index).
const POOL: usize = 4096;
/// One datagram in this many is garbage rather than a valid-looking initiation.
const GARBAGE_EVERY: u64 = 4;
const TICK: Duration = Duration::from_millis(1);
/// Ticks in which every socket's replies are read once.
const DRAIN_ROUND: usize = 250;

/// What the attacker sent and what came back.
#[derive(Clone, Debug, Default)]
pub struct FloodReport {
    pub valid_sent: u64,
    pub garbage_sent: u64,
    /// Sends the attacker's own kernel refused.
    pub send_errors: u64,
    /// Type-3 replies that decrypted with the responder's cookie key, bound to the mac1 of
    /// the initiation they answer.
    pub cookies_verified: u64,
    /// Type-3 replies that did not (wrong index, wrong key, wrong binding).
    pub cookies_bad: u64,
    /// Anything else that came back (a handshake response would mean the flood's garbage
    /// was taken for a real peer: impossible without its key).
    pub other_replies: u64,
    /// Time spent sending (pauses not included).
    pub elapsed: Duration,
}

impl FloodReport {
    pub fn rate(&self) -> f64 {
        (self.valid_sent + self.garbage_sent) as f64 / self.elapsed.as_secs_f64()
    }
}

pub struct Flood {
    stop: Arc<AtomicBool>,
    paused: Arc<AtomicBool>,
    /// Verified cookie replies so far, for watching the flood while it runs.
    pub cookies: Arc<AtomicU64>,
    /// Datagrams sent so far.
    pub sent: Arc<AtomicU64>,
    thread: Option<JoinHandle<FloodReport>>,
}

impl Flood {
    /// Readies a flood of `target` from `sources` (addresses of `ns`, one socket each) at
    /// up to `per_second` datagrams; `responder` is the attacked daemon's public key. It
    /// starts paused: [`Flood::resume`] lets it go.
    pub fn start(
        ns: &Netns,
        sources: Vec<IpAddr>,
        target: SocketAddr,
        responder: [u8; 32],
        per_second: u64,
    ) -> Flood {
        let stop = Arc::new(AtomicBool::new(false));
        let paused = Arc::new(AtomicBool::new(true));
        let cookies = Arc::new(AtomicU64::new(0));
        let sent = Arc::new(AtomicU64::new(0));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (s, p, c, n) = (stop.clone(), paused.clone(), cookies.clone(), sent.clone());
        let thread = spawn_in(ns, "flood", move || {
            let socks: Vec<UdpSocket> = sources
                .iter()
                .map(|ip| {
                    let sock = UdpSocket::bind(SocketAddr::new(*ip, 0))
                        .unwrap_or_else(|e| panic!("flood cannot bind {ip}: {e}"));
                    sock.set_nonblocking(true).expect("nonblocking");
                    sock
                })
                .collect();
            ready_tx.send(()).expect("flood ready");
            let control = Control {
                stop: &s,
                paused: &p,
                cookies: &c,
                sent: &n,
            };
            run(&socks, target, &responder, per_second, control)
        });
        ready_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("flood sockets not ready");
        Flood {
            stop,
            paused,
            cookies,
            sent,
            thread: Some(thread),
        }
    }

    /// Stops sending (replies are still read) until [`Flood::resume`].
    pub fn pause(&self) {
        self.paused.store(true, Ordering::Relaxed);
    }

    pub fn resume(&self) {
        self.paused.store(false, Ordering::Relaxed);
    }

    pub fn stop(mut self) -> FloodReport {
        self.stop.store(true, Ordering::Relaxed);
        let t = self.thread.take().expect("flood thread");
        crate::inside::join(t)
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Initiations with random ephemeral, static and timestamp fields and a correct mac1; the
/// map gives each one's mac1 by sender index, to check the cookie replies against.
fn valid_pool(responder: &[u8; 32], rng: &mut StdRng) -> (Vec<Vec<u8>>, HashMap<u32, [u8; 16]>) {
    let mut pool = Vec::with_capacity(POOL);
    let mut macs = HashMap::with_capacity(POOL);
    while pool.len() < POOL {
        // mac2 stays zero: the attacker has no cookie.
        let msg = initiation_with_mac1(responder, rng);
        let (index, mac1) = initiation_index_and_mac1(&msg);
        if macs.contains_key(&index) {
            continue;
        }
        macs.insert(index, mac1);
        pool.push(msg);
    }
    (pool, macs)
}

/// Garbage of every shape the receive path must sort out: random bytes of any length, and
/// each message type with the right length but nonsense inside.
fn garbage_pool(rng: &mut StdRng) -> Vec<Vec<u8>> {
    (0..512)
        .map(|i| {
            let (kind, len) = match i % 5 {
                0 => (None, rng.gen_range(1..=1400)),
                1 => (Some(1u8), INITIATION_LEN),
                2 => (Some(2), 92),
                3 => (Some(3), COOKIE_REPLY_LEN),
                _ => (Some(4), rng.gen_range(32..=1200)),
            };
            let mut msg = vec![0u8; len];
            rng.fill_bytes(&mut msg);
            if let Some(kind) = kind {
                msg[..4].copy_from_slice(&[kind, 0, 0, 0]);
            }
            msg
        })
        .collect()
}

/// How the test steers the flood thread.
struct Control<'a> {
    stop: &'a AtomicBool,
    paused: &'a AtomicBool,
    cookies: &'a AtomicU64,
    sent: &'a AtomicU64,
}

fn run(
    socks: &[UdpSocket],
    target: SocketAddr,
    responder: &[u8; 32],
    per_second: u64,
    control: Control,
) -> FloodReport {
    let Control {
        stop,
        paused,
        cookies,
        sent,
    } = control;
    let mut rng = StdRng::seed_from_u64(0xf100d);
    let (valid, macs) = valid_pool(responder, &mut rng);
    let garbage = garbage_pool(&mut rng);
    let mut report = FloodReport::default();
    let per_tick = (per_second / 1000).max(1);
    let start = Instant::now();
    let mut next_tick = start;
    let (mut n, mut drain_at) = (0u64, 0usize);
    let mut buf = [0u8; 2048];
    // Wall time spent not paused, for the rate.
    let mut sending = Duration::ZERO;
    let (mut last, mut was_sending) = (start, false);
    while !stop.load(Ordering::Relaxed) {
        let quiet = paused.load(Ordering::Relaxed);
        let now = Instant::now();
        if was_sending {
            sending += now - last;
        }
        (last, was_sending) = (now, !quiet);
        for _ in 0..if quiet { 0 } else { per_tick } {
            let sock = &socks[(n % socks.len() as u64) as usize];
            let garbage_turn = n % GARBAGE_EVERY == GARBAGE_EVERY - 1;
            let msg = if garbage_turn {
                &garbage[(n / GARBAGE_EVERY) as usize % garbage.len()]
            } else {
                &valid[n as usize % valid.len()]
            };
            match sock.send_to(msg, target) {
                Ok(_) if garbage_turn => report.garbage_sent += 1,
                Ok(_) => report.valid_sent += 1,
                Err(_) => report.send_errors += 1,
            }
            n += 1;
        }
        // Each socket's replies are read every DRAIN_ROUND ticks: it gets a few dozen in
        // that time, its receive buffer holds hundreds.
        for _ in 0..socks.len().div_ceil(DRAIN_ROUND) {
            drain(&socks[drain_at], &mut buf, &macs, responder, &mut report);
            drain_at = (drain_at + 1) % socks.len();
        }
        cookies.store(report.cookies_verified, Ordering::Relaxed);
        sent.store(report.valid_sent + report.garbage_sent, Ordering::Relaxed);
        next_tick += TICK;
        let now = Instant::now();
        if next_tick > now {
            std::thread::sleep(next_tick - now);
        } else if now - next_tick > Duration::from_millis(50) {
            // Behind by more than a moment: the sender runs flat out instead of catching up.
            next_tick = now;
        }
    }
    if was_sending {
        sending += last.elapsed();
    }
    report.elapsed = sending;
    // Replies still in flight or queued.
    std::thread::sleep(Duration::from_millis(200));
    for sock in socks {
        drain(sock, &mut buf, &macs, responder, &mut report);
    }
    cookies.store(report.cookies_verified, Ordering::Relaxed);
    report
}

fn drain(
    sock: &UdpSocket,
    buf: &mut [u8],
    macs: &HashMap<u32, [u8; 16]>,
    responder: &[u8; 32],
    report: &mut FloodReport,
) {
    loop {
        match sock.recv(buf) {
            Ok(len) => classify(&buf[..len], macs, responder, report),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            // ICMP errors reported on the socket; nothing to count.
            Err(_) => return,
        }
    }
}

fn classify(
    reply: &[u8],
    macs: &HashMap<u32, [u8; 16]>,
    responder: &[u8; 32],
    report: &mut FloodReport,
) {
    if reply.len() != COOKIE_REPLY_LEN || reply[..4] != [3, 0, 0, 0] {
        report.other_replies += 1;
        return;
    }
    let index = u32::from_le_bytes([reply[4], reply[5], reply[6], reply[7]]);
    let ok = macs
        .get(&index)
        .is_some_and(|mac1| open_cookie_reply(responder, reply, mac1).is_some());
    if ok {
        report.cookies_verified += 1;
    } else {
        report.cookies_bad += 1;
    }
}
