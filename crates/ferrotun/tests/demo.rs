//! `ferrotun demo` as a user runs it: the built binary, real namespaces, real daemons.
//! Each run must report a working tunnel and leave nothing behind, also when interrupted.
//! Needs root (CI runs as root), iproute2, iptables and ping.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ferrotun");
/// A debug build on a busy 2-core machine finishes a 1-second demo in well under this.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// A running demo whose output is collected as it comes, so a test can react to progress
/// lines (which end with a newline only once their step is done).
struct Demo {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

fn collect(mut from: impl Read + Send + 'static, into: Arc<Mutex<String>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            into.lock().expect("lock").push_str(&text);
        }
    })
}

impl Demo {
    fn start(args: &[&str]) -> Demo {
        let mut child = Command::new(BIN)
            .arg("demo")
            .args(args)
            // The daemons' stdio is /dev/null unless LOG_LEVEL asks otherwise; keep it so, or
            // they would hold our pipes open.
            .env_remove("LOG_LEVEL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ferrotun demo");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            collect(child.stdout.take().expect("stdout"), stdout.clone()),
            collect(child.stderr.take().expect("stderr"), stderr.clone()),
        ];
        Demo {
            child,
            stdout,
            stderr,
            readers,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn output(&self) -> String {
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout.lock().expect("lock"),
            self.stderr.lock().expect("lock")
        )
    }

    /// Waits until stdout contains `text`; panics (after killing the demo) if it does not
    /// within `limit` or the demo ends first.
    fn wait_for_output(&mut self, text: &str, limit: Duration) {
        let start = Instant::now();
        loop {
            if self.stdout.lock().expect("lock").contains(text) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "demo ended ({status}) before printing {text:?}\n{}",
                    self.output()
                );
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("no {text:?} within {limit:?}\n{}", self.output());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the demo to exit; returns its status and everything it printed.
    fn finish(mut self, limit: Duration) -> (ExitStatus, String, String) {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("demo still running after {limit:?}\n{}", self.output());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        let stdout = self.stdout.lock().expect("lock").clone();
        let stderr = self.stderr.lock().expect("lock").clone();
        (status, stdout, stderr)
    }
}

/// The summary row starting with `label`, without the label.
fn summary_row<'a>(stdout: &'a str, label: &str) -> &'a str {
    let summary = stdout
        .split_once("\nsummary\n")
        .unwrap_or_else(|| panic!("no summary in:\n{stdout}"))
        .1;
    summary
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .unwrap_or_else(|| panic!("no summary row {label:?} in:\n{stdout}"))
        .trim()
}

/// The number just before `unit` in `text` (`0.412 Gbit/s` → 0.412).
fn number_before(text: &str, unit: &str) -> f64 {
    let before = text
        .split_once(unit)
        .unwrap_or_else(|| panic!("no {unit:?} in {text:?}"))
        .0;
    before
        .split_whitespace()
        .last()
        .and_then(|n| n.trim_start_matches('(').parse().ok())
        .unwrap_or_else(|| panic!("no number before {unit:?} in {text:?}"))
}

/// Replies in a `N/M replies, …` summary value.
fn replies(row: &str) -> (u32, u32) {
    let first = row.split_whitespace().next().unwrap_or("");
    let (got, sent) = first
        .split_once('/')
        .unwrap_or_else(|| panic!("not a ping result: {row:?}"));
    (
        got.parse().expect("received count"),
        sent.parse().expect("transmitted count"),
    )
}

/// Checks that nothing named after the demo process `pid` is left: namespaces (and with
/// them their veths and WireGuard interfaces), host interfaces, control sockets, processes
/// and the directory with the config files.
fn assert_nothing_left(pid: u32) {
    let netns = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    let listed = String::from_utf8_lossy(&netns.stdout);
    let ns_prefix = format!("ftdemo-{pid}-");
    assert!(
        !listed.contains(&ns_prefix),
        "namespaces left behind:\n{listed}"
    );
    for suffix in ["a", "b", "lan"] {
        let path = format!("/run/netns/{ns_prefix}{suffix}");
        assert!(!Path::new(&path).exists(), "{path} left behind");
    }
    // Exact names: `ftdemo1234` is a prefix of another run's `ftdemo12345a`.
    let ifaces = [format!("ftdemo{pid}a"), format!("ftdemo{pid}b")];
    let links = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .expect("ip link");
    let links = String::from_utf8_lossy(&links.stdout);
    for iface in &ifaces {
        assert!(
            !links.contains(&format!(" {iface}:")),
            "interface {iface} left in the host namespace:\n{links}"
        );
        let socket = format!("/var/run/wireguard/{iface}.sock");
        assert!(!Path::new(&socket).exists(), "{socket} left behind");
    }
    let dir = std::env::temp_dir().join(format!("ferrotun-demo-{pid}"));
    assert!(!dir.exists(), "{} left behind", dir.display());
    let mut survivors = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let name = entry.file_name();
        let Some(other) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let ours = args.iter().any(|a| {
            ifaces.contains(a)
                || a.contains(&ns_prefix)
                || ifaces.iter().any(|i| a.contains(&format!("/{i}.conf")))
        });
        if ours {
            let cmdline = args.join(" ");
            survivors.push(format!("{other}: {cmdline}"));
        }
    }
    assert!(
        survivors.is_empty(),
        "processes left behind:\n{}",
        survivors.join("\n")
    );
}

fn assert_tunnel_worked(stdout: &str) {
    let handshake = summary_row(stdout, "handshake");
    assert!(handshake.starts_with("completed"), "handshake: {handshake}");
    let first = summary_row(stdout, "first reply through tunnel");
    assert!(first.contains("after both peers were up"), "{first}");
    let (got, sent) = replies(summary_row(stdout, "ping A -> B (10.0.0.2)"));
    assert!(got > 0 && sent == 5, "A -> B: {got}/{sent}");
    let (got, sent) = replies(summary_row(stdout, "ping A -> LAN (192.168.100.2)"));
    assert!(got > 0 && sent == 5, "A -> LAN host: {got}/{sent}");
    let speed = summary_row(stdout, "throughput A -> B (TCP)");
    assert!(number_before(speed, "Gbit/s") > 0.0, "throughput: {speed}");
    assert!(number_before(speed, "MB in") > 0.0, "throughput: {speed}");
    for iface_line in ["interface: ftdemo", "latest handshake:", "transfer:"] {
        assert!(
            stdout.matches(iface_line).count() >= 2,
            "no {iface_line:?} for both interfaces in the show output:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("[cleanup] removing daemons, namespaces, veths and files ... ok"),
        "{stdout}"
    );
}

#[test]
fn demo_builds_a_working_tunnel_and_removes_it() {
    let demo = Demo::start(&["--seconds", "1"]);
    let pid = demo.pid();
    let (status, stdout, stderr) = demo.finish(RUN_LIMIT);
    assert!(
        status.success(),
        "demo failed ({status})\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("[9/9] throughput"), "{stdout}");
    assert!(!stdout.contains("FAILED"), "{stdout}");
    assert_tunnel_worked(&stdout);
    assert_nothing_left(pid);
}

#[test]
fn demo_without_up_configures_by_hand_with_the_same_result() {
    let demo = Demo::start(&["--seconds", "1", "--no-up"]);
    let pid = demo.pid();
    let (status, stdout, stderr) = demo.finish(RUN_LIMIT);
    assert!(
        status.success(),
        "demo failed ({status})\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("note: --no-up"), "{stdout}");
    assert!(!stdout.contains("ferrotun up"), "{stdout}");
    assert_tunnel_worked(&stdout);
    assert_nothing_left(pid);
}

#[test]
fn demo_interrupted_mid_transfer_still_removes_everything() {
    let mut demo = Demo::start(&["--seconds", "60"]);
    let pid = demo.pid();
    // Daemons, namespaces and the transfer threads all exist at this point.
    demo.wait_for_output("[9/9] throughput", RUN_LIMIT);
    std::thread::sleep(Duration::from_millis(500));
    let sent = Command::new("sh")
        .args(["-c", &format!("kill -INT {pid}")])
        .status()
        .expect("send SIGINT");
    assert!(sent.success());
    let interrupted_at = Instant::now();
    let (status, stdout, stderr) = demo.finish(Duration::from_secs(30));
    // Far less than the 60 s asked for: the transfer stopped when told.
    assert!(
        interrupted_at.elapsed() < Duration::from_secs(20),
        "took {:?} to stop",
        interrupted_at.elapsed()
    );
    assert_eq!(status.code(), Some(130), "{status}\n{stdout}\n{stderr}");
    assert!(stdout.contains("interrupted"), "{stdout}");
    assert!(
        stdout.contains("[cleanup] removing daemons, namespaces, veths and files ... ok"),
        "{stdout}\n{stderr}"
    );
    assert_nothing_left(pid);
}

#[test]
fn demo_help_and_bad_arguments() {
    let help = Command::new(BIN)
        .args(["demo", "--help"])
        .output()
        .expect("run");
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        text.contains("--seconds <N>") && text.contains("--keep") && text.contains("--no-up"),
        "{text}"
    );
    let bad = Command::new(BIN)
        .args(["demo", "--seconds", "zero"])
        .output()
        .expect("run");
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("invalid value 'zero' for '--seconds <N>'"),
        "{err}"
    );
}
