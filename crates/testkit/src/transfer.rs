//! A bulk TCP transfer between two namespaces with `nc`, checked end to end by SHA-256.
//!
//! The data is made here (deterministic pseudo-random, so it does not compress and a
//! failure can be reproduced) and streamed through pipes: nothing touches the disk.

use crate::Netns;
use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one transfer did.
#[derive(Debug)]
pub struct Transfer {
    pub bytes: u64,
    pub sent_sha256: String,
    pub received_sha256: String,
    pub elapsed: Duration,
}

impl Transfer {
    pub fn mbit_per_s(&self) -> f64 {
        self.bytes as f64 * 8.0 / self.elapsed.as_secs_f64() / 1e6
    }
}

/// xorshift64*: fast, deterministic, and good enough that TCP and the tunnel see
/// incompressible data.
struct Stream(u64);

impl Stream {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let v = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

fn sha256sum() -> Child {
    Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sha256sum")
}

/// The hash a finished sha256sum printed (its input must be closed already).
fn digest(child: &mut Child) -> String {
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut out);
    }
    let _ = child.wait();
    out.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Kills the child processes it holds when dropped: when a transfer or a test ends, on
/// success or failure.
pub struct Reaper(pub Vec<Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits until something in `ns` listens on TCP `port`.
fn wait_listening(ns: &Netns, port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let filter = format!("sport = :{port}");
    while Instant::now() < deadline {
        let out = ns.try_exec("ss", &["-H", "-l", "-t", "-n", &filter]);
        if !String::from_utf8_lossy(&out.stdout).trim().is_empty() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn write_all_to(sinks: &mut [ChildStdin], bytes: u64, seed: u64) -> std::io::Result<()> {
    let mut stream = Stream(seed | 1);
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        stream.fill(&mut buf[..n]);
        for sink in sinks.iter_mut() {
            sink.write_all(&buf[..n])?;
        }
        left -= n as u64;
    }
    Ok(())
}

/// Sends `bytes` bytes from `sender` to `addr:port` (a listener started here in
/// `receiver`), for at most `timeout`. Errors describe how far it got.
pub fn tcp_transfer(
    sender: &Netns,
    receiver: &Netns,
    addr: &str,
    port: u16,
    bytes: u64,
    timeout: Duration,
) -> Result<Transfer, String> {
    let family = if addr.contains(':') { "-6" } else { "-4" };
    let port_s = port.to_string();
    let start = Instant::now();
    let deadline = start + timeout;

    // Receiver: nc's output is counted here, then hashed by sha256sum.
    let mut listener = receiver
        .command("nc")
        .args([family, "-d", "-l", &port_s])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start nc -l: {e}"))?;
    let mut net_out = listener.stdout.take().expect("nc stdout");
    // [receiver's, sender's]
    let mut hashers = Reaper(vec![sha256sum(), sha256sum()]);
    let mut recv_hash_in = hashers.0[0].stdin.take().expect("sha256sum stdin");
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    let pump = std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match net_out.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    counter.fetch_add(n as u64, Ordering::Relaxed);
                    if recv_hash_in.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let mut reaper = Reaper(vec![listener]);
    if !wait_listening(receiver, port, Duration::from_secs(10)) {
        return Err(format!("nc never listened on port {port}"));
    }

    // Sender: the same bytes go to nc and to a local sha256sum.
    let mut talker = sender
        .command("nc")
        .args([family, "-N", addr, &port_s])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start nc: {e}"))?;
    let sinks = vec![
        talker.stdin.take().expect("nc stdin"),
        hashers.0[1].stdin.take().expect("sha256sum stdin"),
    ];
    reaper.0.push(talker);
    let writer = std::thread::spawn(move || {
        let mut sinks = sinks;
        write_all_to(&mut sinks, bytes, 0x5eed_f00d_dead_beef)
    });

    // Done when the pump has seen EOF (the receiving nc exited) or time runs out.
    while !pump.is_finished() {
        if Instant::now() > deadline {
            let got = received.load(Ordering::Relaxed);
            // Killing the nc processes unblocks the writer and the pump.
            drop(reaper);
            let _ = writer.join();
            let _ = pump.join();
            return Err(format!(
                "transfer timed out after {timeout:?}: {got} of {bytes} bytes arrived"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let elapsed = start.elapsed();
    let _ = pump.join();
    // Both nc processes end on their own once the connection closes; a bounded wait, then
    // they are killed so nothing below can block.
    let settle = Instant::now() + Duration::from_secs(5);
    while Instant::now() < settle
        && !(writer.is_finished()
            && reaper
                .0
                .iter_mut()
                .all(|c| matches!(c.try_wait(), Ok(Some(_)))))
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut stderr = String::new();
    let mut children = std::mem::take(&mut reaper.0);
    for child in &mut children {
        let _ = child.kill();
        let _ = child.wait();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut stderr);
        }
    }
    let written = writer.join().expect("writer thread");
    let got = received.load(Ordering::Relaxed);
    let received_sha256 = digest(&mut hashers.0[0]);
    let sent_sha256 = digest(&mut hashers.0[1]);
    if let Err(e) = written {
        return Err(format!(
            "sending failed after {got} bytes arrived: {e}; nc said: {stderr}"
        ));
    }
    if got != bytes {
        return Err(format!("{got} of {bytes} bytes arrived; nc said: {stderr}"));
    }
    Ok(Transfer {
        bytes,
        sent_sha256,
        received_sha256,
        elapsed,
    })
}
