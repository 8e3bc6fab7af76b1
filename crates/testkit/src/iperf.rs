//! A TCP throughput measurement of fixed duration with iperf3, read from its JSON report.

use crate::{require_tool, Netns};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Kills the server when the measurement ends, however it ends.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether something in `ns` listens on TCP `port` (a server started in the background
/// is ready).
pub fn listening(ns: &Netns, port: u16) -> bool {
    let filter = format!("sport = :{port}");
    let out = ns.try_exec("ss", &["-H", "-l", "-t", "-n", &filter]);
    !String::from_utf8_lossy(&out.stdout).trim().is_empty()
}

/// Runs iperf3 for `secs` seconds from `client` to a one-off server started here in
/// `server` on `addr:port`; returns the receiver's throughput in bit/s.
pub fn tcp_throughput(
    client: &Netns,
    server: &Netns,
    addr: &str,
    port: u16,
    secs: u32,
) -> Result<f64, String> {
    let iperf = require_tool("iperf3");
    let port_s = port.to_string();
    let child = server
        .command(&iperf)
        .args(["-s", "-1", "-B", addr, "-p", &port_s])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start iperf3 -s: {e}"))?;
    let _server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !listening(server, port) {
        if Instant::now() > deadline {
            return Err(format!("iperf3 never listened on {addr}:{port}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // iperf3 can hang on a dead path; `timeout` bounds it.
    let limit = (secs + 20).to_string();
    let secs_s = secs.to_string();
    let out = client.try_exec(
        "timeout",
        &[
            &limit, &iperf, "-c", addr, "-p", &port_s, "-t", &secs_s, "-J",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        format!(
            "iperf3 printed no JSON ({e}), status {}: {text}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    if let Some(err) = json.get("error") {
        return Err(format!("iperf3 failed: {err}"));
    }
    json.pointer("/end/sum_received/bits_per_second")
        .and_then(|v| v.as_f64())
        .ok_or_else(|| format!("no end.sum_received.bits_per_second in {text}"))
}
