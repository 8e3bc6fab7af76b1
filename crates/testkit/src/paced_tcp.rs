//! A TCP stream at a fixed rate for a fixed time, checked byte for byte at the receiver.
//!
//! For long runs beside other traffic: unlike a bulk transfer it does not fill every queue
//! on the path, so a datagram lost elsewhere at the same time points at the tunnel, not at
//! congestion. The data is a deterministic function of its offset (no pipe to sha256sum
//! needed): the receiver regenerates it and compares every block, which also pins down
//! *where* a stream went wrong.

use crate::inside::{join, spawn_in};
use crate::Netns;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// The stream is written and checked in blocks of this size.
const BLOCK: usize = 8192;
const TICK: Duration = Duration::from_millis(10);

/// The rate, and optionally a duty cycle: `on` at the rate, then `off` silent, repeated.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    pub bytes_per_s: u64,
    pub on: Duration,
    pub off: Duration,
}

impl Pace {
    pub fn steady(bytes_per_s: u64) -> Pace {
        Pace {
            bytes_per_s,
            on: Duration::from_secs(1),
            off: Duration::ZERO,
        }
    }

    fn sending_at(&self, t: Duration) -> bool {
        let cycle = (self.on + self.off).as_secs_f64();
        self.off.is_zero() || t.as_secs_f64() % cycle < self.on.as_secs_f64()
    }

    /// Bytes it sends in `d`.
    pub fn bytes_in(&self, d: Duration) -> u64 {
        let cycle = (self.on + self.off).as_secs_f64();
        let whole = (d.as_secs_f64() / cycle).floor();
        let rest = d.as_secs_f64() - whole * cycle;
        let on_time = whole * self.on.as_secs_f64() + rest.min(self.on.as_secs_f64());
        (on_time * self.bytes_per_s as f64) as u64
    }
}

#[derive(Clone, Debug, Default)]
pub struct StreamReport {
    pub sent: u64,
    pub received: u64,
    /// Offset of the first block that did not match.
    pub mismatch_at: Option<u64>,
    /// Longest time the receiver waited for the next bytes (pauses of the duty cycle
    /// included).
    pub max_stall: Duration,
    pub elapsed: Duration,
    /// What ended the stream early, on either side.
    pub errors: Vec<String>,
}

impl StreamReport {
    pub fn mbit_per_s(&self) -> f64 {
        self.received as f64 * 8.0 / self.elapsed.as_secs_f64() / 1e6
    }

    /// Everything sent arrived, intact, and nothing failed.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty() && self.mismatch_at.is_none() && self.received == self.sent
    }
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Block number `n` of the stream.
fn block(n: u64, out: &mut [u8; BLOCK]) {
    for (i, word) in out.chunks_exact_mut(8).enumerate() {
        word.copy_from_slice(&splitmix((n << 10) | i as u64).to_le_bytes());
    }
}

/// Streams from `from` to `dst` (a listener started here in `to`) at `pace` for
/// `duration`. Bounded: the receiver gives up `duration + 30 s` after it started.
pub fn run(
    from: &Netns,
    to: &Netns,
    dst: SocketAddr,
    pace: Pace,
    duration: Duration,
) -> StreamReport {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let limit = duration + Duration::from_secs(30);
    let receiver = spawn_in(to, "paced-rx", move || {
        let listener = match TcpListener::bind(dst) {
            Ok(l) => l,
            Err(e) => {
                let _ = ready_tx.send(Err(format!("cannot listen on {dst}: {e}")));
                return (0, None, Duration::ZERO, None);
            }
        };
        let _ = ready_tx.send(Ok(()));
        receive(&listener, limit)
    });
    match ready_rx.recv_timeout(Duration::from_secs(10)) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("{e}"),
        Err(_) => panic!("paced stream receiver did not start"),
    }
    let start = Instant::now();
    let sender = spawn_in(from, "paced-tx", move || send(dst, pace, duration));
    let (sent, send_error) = join(sender);
    let (received, mismatch_at, max_stall, recv_error) = join(receiver);
    StreamReport {
        sent,
        received,
        mismatch_at,
        max_stall,
        elapsed: start.elapsed(),
        errors: [send_error, recv_error].into_iter().flatten().collect(),
    }
}

fn send(dst: SocketAddr, pace: Pace, duration: Duration) -> (u64, Option<String>) {
    let mut stream = match TcpStream::connect_timeout(&dst, Duration::from_secs(10)) {
        Ok(s) => s,
        Err(e) => return (0, Some(format!("cannot connect to {dst}: {e}"))),
    };
    // A stalled tunnel shows up as an error rather than a hang.
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let per_tick = pace.bytes_per_s as f64 * TICK.as_secs_f64();
    let mut buf = Box::new([0u8; BLOCK]);
    let (mut n, mut sent) = (0u64, 0u64);
    let start = Instant::now();
    let mut next = start;
    let mut owed = 0.0;
    while start.elapsed() < duration {
        if pace.sending_at(start.elapsed()) {
            owed += per_tick;
        }
        while owed >= BLOCK as f64 {
            block(n, &mut buf);
            if let Err(e) = stream.write_all(&buf[..]) {
                return (sent, Some(format!("write after {sent} bytes: {e}")));
            }
            n += 1;
            sent += BLOCK as u64;
            owed -= BLOCK as f64;
        }
        next += TICK;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
    }
    let _ = stream.shutdown(Shutdown::Write);
    (sent, None)
}

type Received = (u64, Option<u64>, Duration, Option<String>);

fn receive(listener: &TcpListener, limit: Duration) -> Received {
    let start = Instant::now();
    let _ = listener.set_nonblocking(true);
    let mut stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == ErrorKind::WouldBlock && start.elapsed() < limit => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return (0, None, Duration::ZERO, Some(format!("accept: {e}"))),
        }
    };
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut pending = Vec::with_capacity(4 * BLOCK);
    let mut expected = Box::new([0u8; BLOCK]);
    let mut buf = vec![0u8; 64 * 1024];
    let (mut n, mut received) = (0u64, 0u64);
    let mut mismatch_at = None;
    let mut last = Instant::now();
    let mut max_stall = Duration::ZERO;
    loop {
        if start.elapsed() > limit {
            let e = format!("receiver gave up after {limit:?}");
            return (received, mismatch_at, max_stall, Some(e));
        }
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(len) => {
                max_stall = max_stall.max(last.elapsed());
                last = Instant::now();
                received += len as u64;
                pending.extend_from_slice(&buf[..len]);
                let whole = pending.len() / BLOCK * BLOCK;
                for chunk in pending[..whole].chunks_exact(BLOCK) {
                    block(n, &mut expected);
                    if mismatch_at.is_none() && chunk != &expected[..] {
                        mismatch_at = Some(n * BLOCK as u64);
                    }
                    n += 1;
                }
                pending.drain(..whole);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => {
                let e = format!("read after {received} bytes: {e}");
                return (received, mismatch_at, max_stall, Some(e));
            }
        }
    }
    if !pending.is_empty() && mismatch_at.is_none() {
        mismatch_at = Some(n * BLOCK as u64);
    }
    (received, mismatch_at, max_stall, None)
}
