//! A daemon started the way the systemd unit starts it (`ferrotun up NAME`, no LOG_LEVEL)
//! writes its warnings where the operator reads them: into the journal (here a stream
//! socket standing in for journald's, named in JOURNAL_STREAM as systemd names it), or the
//! file a supervisor without systemd captures stderr to. Warnings yes, routine steps no.
//! Needs root and iproute2.

mod common;

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::process::{eventually, wait_exit};
use common::scratch::TempDir;
use common::{ferrotun_bin, require_tool, unique_name, Netns};

const PRIVATE: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";

/// `ferrotun up PATH` in `ns` with `stderr` and the environment a unit gives it.
fn up(ns: &Netns, path: &str, stderr: Stdio, journal_stream: Option<String>) {
    let mut cmd = ns.command(ferrotun_bin());
    cmd.args(["up", path])
        .env_remove("LOG_LEVEL")
        .env_remove("RUST_LOG")
        .env_remove("JOURNAL_STREAM")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    if let Some(value) = journal_stream {
        cmd.env("JOURNAL_STREAM", value);
    }
    let mut child = cmd.spawn().expect("run ferrotun up");
    let Some(status) = wait_exit(&mut child, Duration::from_secs(20)) else {
        let _ = child.kill();
        panic!("ferrotun up did not return");
    };
    assert!(status.success(), "ferrotun up failed");
}

/// Something the daemon warns about: a configuration request it cannot accept.
fn provoke_warning(ifname: &str) {
    let mut sock = UnixStream::connect(format!("/var/run/wireguard/{ifname}.sock"))
        .expect("connect to the configuration socket");
    sock.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    sock.write_all(b"set=1\nlisten_port=not-a-port\n\n")
        .expect("send");
    let mut reply = String::new();
    let _ = sock.read_to_string(&mut reply);
    assert!(
        reply.contains("errno=") && !reply.contains("errno=0"),
        "{reply}"
    );
}

fn down(ns: &Netns, path: &str) {
    let out = ns.try_exec(ferrotun_bin(), &["down", path]);
    assert!(out.status.success(), "{}", common::text(&out));
}

/// Reads `read` until `want` shows up or 10 s pass; returns everything read.
fn read_until(mut read: impl FnMut(&mut Vec<u8>), want: &str) -> String {
    let mut seen = Vec::new();
    eventually(Duration::from_secs(10), || {
        read(&mut seen);
        String::from_utf8_lossy(&seen).contains(want)
    });
    String::from_utf8_lossy(&seen).into_owned()
}

fn config(dir: &TempDir, ifname: &str) -> String {
    let text = format!("[Interface]\nPrivateKey = {PRIVATE}\nAddress = 10.70.0.1/24\n");
    dir.write(ifname, &text)
        .to_str()
        .expect("utf-8")
        .to_string()
}

#[test]
fn under_the_unit_warnings_reach_the_journal() {
    require_tool("ip");
    let ns = Netns::new("lgj");
    let dir = TempDir::new("ftlg");
    let ifname = unique_name("lj");
    let path = config(&dir, &ifname);
    let journal = UnixListener::bind(dir.path().join("journal")).expect("bind");
    let unit_side = UnixStream::connect(dir.path().join("journal")).expect("connect");
    let (mut journal_side, _) = journal.accept().expect("accept");
    journal_side.set_nonblocking(true).expect("nonblocking");
    let meta = std::fs::File::from(OwnedFd::from(unit_side.try_clone().expect("dup")))
        .metadata()
        .expect("fstat");
    let stream = format!("{}:{}", meta.dev(), meta.ino());
    up(
        &ns,
        &path,
        Stdio::from(OwnedFd::from(unit_side)),
        Some(stream),
    );
    provoke_warning(&ifname);
    let log = read_until(
        |seen| {
            let mut buf = [0u8; 4096];
            if let Ok(n) = journal_side.read(&mut buf) {
                seen.extend_from_slice(&buf[..n]);
            }
        },
        "configuration rejected",
    );
    down(&ns, &path);
    assert!(log.contains("configuration rejected"), "journal:\n{log}");
    assert!(log.contains("WARN"), "journal:\n{log}");
    assert!(
        !log.contains("INFO"),
        "routine steps at the default level:\n{log}"
    );
}

#[test]
fn without_systemd_warnings_reach_the_captured_stderr() {
    require_tool("ip");
    let ns = Netns::new("lgf");
    let dir = TempDir::new("ftlf");
    let ifname = unique_name("lf");
    let path = config(&dir, &ifname);
    let captured = dir.path().join("stderr.log");
    let file = std::fs::File::create(&captured).expect("create");
    // A stale JOURNAL_STREAM (inherited from a login session) must not matter.
    up(&ns, &path, Stdio::from(file), Some("1:1".into()));
    provoke_warning(&ifname);
    let log = read_until(
        |seen| *seen = std::fs::read(&captured).unwrap_or_default(),
        "configuration rejected",
    );
    down(&ns, &path);
    assert!(log.contains("configuration rejected"), "captured:\n{log}");
}

#[test]
fn a_pipe_is_not_held_open_after_up_returns() {
    require_tool("ip");
    let ns = Netns::new("lgp");
    let dir = TempDir::new("ftlp");
    let ifname = unique_name("lp");
    let path = config(&dir, &ifname);
    // `.output()` reads both pipes to their end: it returns only once every holder of
    // them, the daemon included, has closed them.
    let started = Instant::now();
    let mut cmd = Command::new("timeout");
    cmd.args([
        "20",
        "ip",
        "netns",
        "exec",
        &ns.name,
        ferrotun_bin(),
        "up",
        &path,
    ])
    .env_remove("LOG_LEVEL");
    let out = cmd.output().expect("run ferrotun up");
    let took = started.elapsed();
    down(&ns, &path);
    assert!(out.status.success(), "{}", common::text(&out));
    assert!(
        took < Duration::from_secs(15),
        "up held its pipes for {took:?}"
    );
}
