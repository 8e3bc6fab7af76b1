//! How the daemon starts and stops: SIGTERM and a deleted interface both end it with status
//! 0, its socket and interface gone; it holds a bounded number of threads and descriptors
//! and leaks none per configuration connection; a second daemon for a served interface
//! refuses to start; background mode returns only once `wg` can talk to it.
//! Needs root, `wg` and `ip`.

mod common;

use common::netns::socket_path;
use common::process::{eventually, open_fds, thread_count, wait_exit, wait_gone};
use common::tunnel::{Impl, Side, Tunnel};
use common::{ferrotun_bin, unique_name, Netns};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const EXIT_WITHIN: Duration = Duration::from_secs(5);

fn link_exists(ns: &Netns, ifname: &str) -> bool {
    Command::new("ip")
        .args(["-n", &ns.name, "link", "show", "dev", ifname])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// A tunnel between two ferrotun daemons that has carried traffic, so sessions, timers and
/// every worker are live when the test looks at side `a`.
fn live_tunnel() -> Tunnel {
    let t = Tunnel::new(Impl::Ferrotun, Impl::Ferrotun);
    t.ping(&t.a, t.b.addrs.inner4, Duration::from_secs(20));
    t.ping(&t.a, t.b.addrs.inner6, Duration::from_secs(10));
    t
}

fn assert_clean_exit(side: &mut Side, after: &str) {
    let ifname = side.ifname().to_string();
    let status = wait_exit(&mut side.daemon.child, EXIT_WITHIN).unwrap_or_else(|| {
        panic!(
            "daemon still running {EXIT_WITHIN:?} after {after}\n{}",
            side.log()
        )
    });
    assert!(
        status.success(),
        "daemon exited with {status} after {after}\n{}",
        side.log()
    );
    assert!(
        !socket_path(&ifname).exists(),
        "{} left behind after {after}",
        socket_path(&ifname).display()
    );
    assert!(
        eventually(Duration::from_secs(2), || !link_exists(&side.ns, &ifname)),
        "interface {ifname} still exists after {after}"
    );
}

#[test]
fn sigterm_stops_the_daemon_cleanly() {
    let mut t = live_tunnel();
    let pid = t.a.daemon.pid().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(
        sent.map(|s| s.success()).unwrap_or(false),
        "kill -TERM {pid} failed"
    );
    assert_clean_exit(&mut t.a, "SIGTERM");
}

#[test]
fn deleting_the_interface_stops_the_daemon_cleanly() {
    let mut t = live_tunnel();
    let ifname = t.a.ifname().to_string();
    t.a.ns.ip(&["link", "del", "dev", &ifname]);
    assert_clean_exit(&mut t.a, "ip link del");
}

/// One `get` over a raw connection, read to the blank line that ends the reply.
fn raw_get(ifname: &str) -> String {
    let mut s = UnixStream::connect(socket_path(ifname)).expect("connect to the socket");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(b"get=1\n\n").expect("send get");
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    while !reply.ends_with(b"\n\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => reply.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&reply).into_owned()
}

#[test]
fn threads_and_descriptors_stay_bounded_across_many_connections() {
    let t = live_tunnel();
    let pid = t.a.daemon.pid();
    let ifname = t.a.ifname().to_string();
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    // main, control, the socket's acceptor, mtu-watch, route-watch, one per worker; one
    // spare for a connection thread that has not ended yet.
    let max_threads = workers + 6;
    assert!(
        eventually(Duration::from_secs(5), || thread_count(pid) <= max_threads),
        "{} threads with {workers} workers (at most {max_threads} expected)",
        thread_count(pid)
    );
    let threads = thread_count(pid);
    // stdio, the configuration socket (and the O_PATH handle that notices its file going),
    // the MTU watch's netlink socket, the route watch's two (notifications, lookups) and
    // its epoll, the janitor's pipe, the cancel and stop events, and per worker a TUN
    // queue, a socket per family, an epoll and its wake-ups.
    let max_fds = 14 + 6 * workers;
    let fds = open_fds(pid);
    assert!(
        fds.len() <= max_fds,
        "{} descriptors open (at most {max_fds} expected):\n{}",
        fds.len(),
        fds.join("\n")
    );

    let started = Instant::now();
    for _ in 0..100 {
        t.a.show("peers");
    }
    // Clients that vanish mid-conversation must not leak either.
    for i in 0..100 {
        let mut s = UnixStream::connect(socket_path(&ifname)).expect("connect to the socket");
        if i % 2 == 0 {
            let _ = s.write_all(b"get=1\n");
        } else {
            let _ = s.write_all(b"set=1\nlisten_po");
        }
    }
    assert!(
        raw_get(&ifname).contains("errno=0"),
        "the daemon stopped answering after 200 connections"
    );
    eprintln!(
        "{threads} threads, {} descriptors; 200 connections in {:?}",
        fds.len(),
        started.elapsed()
    );

    let settled = eventually(Duration::from_secs(5), || {
        open_fds(pid).len() <= fds.len() && thread_count(pid) <= threads
    });
    assert!(
        settled,
        "descriptors {} -> {}, threads {threads} -> {} after 200 connections\nbefore:\n{}\nafter:\n{}",
        fds.len(),
        open_fds(pid).len(),
        thread_count(pid),
        fds.join("\n"),
        open_fds(pid).join("\n")
    );
    // Still a working tunnel.
    t.ping(&t.a, t.b.addrs.inner4, Duration::from_secs(10));
}

#[test]
fn a_second_daemon_for_a_served_interface_refuses_to_start() {
    let mut t = live_tunnel();
    let ifname = t.a.ifname().to_string();
    for args in [vec!["-f", ifname.as_str()], vec![ifname.as_str()]] {
        let out =
            t.a.ns
                .command("timeout")
                .arg("10")
                .arg(ferrotun_bin())
                .args(&args)
                .stdin(Stdio::null())
                .output()
                .expect("run a second ferrotun");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "second `ferrotun {args:?}`: {}; stderr: {stderr}",
            out.status
        );
        assert!(
            stderr.contains(&ifname) && stderr.contains("already"),
            "second `ferrotun {args:?}` gave no clear reason: {stderr}"
        );
    }
    assert!(
        matches!(t.a.daemon.child.try_wait(), Ok(None)),
        "the first daemon died\n{}",
        t.a.log()
    );
    assert!(
        socket_path(&ifname).exists(),
        "the first daemon's socket is gone"
    );
    assert!(t.a.show("public-key").contains(&t.a.keys.public));
    t.ping(&t.a, t.b.addrs.inner4, Duration::from_secs(10));
    t.ping(&t.b, t.a.addrs.inner6, Duration::from_secs(10));
}

/// `wg-quick down` deletes the link and returns a few milliseconds before that daemon has
/// exited; an `up` of the same name right then must wait for it rather than fail. A daemon
/// that keeps its socket (one serving the name in another namespace: the socket directory
/// is shared) is still refused, after that wait.
#[test]
fn a_daemon_on_its_way_out_gives_way_to_a_new_one() {
    let ns = Netns::new("ftout");
    let ifname = unique_name("ftout");
    let path = socket_path(&ifname);
    let start = || {
        ns.command("timeout")
            .args(["20", ferrotun_bin(), &ifname])
            .stdin(Stdio::null())
            .output()
            .expect("run ferrotun")
    };

    // The old daemon: its socket answers; its interface is gone; it exits 300 ms later.
    let holder = std::os::unix::net::UnixListener::bind(&path).expect("hold the socket");
    let out = std::thread::scope(|s| {
        let new = s.spawn(start);
        std::thread::sleep(Duration::from_millis(300));
        drop(holder);
        std::fs::remove_file(&path).expect("the old daemon removes its socket");
        new.join().expect("join")
    });
    assert!(
        out.status.success(),
        "the new daemon did not wait for the old one: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let show = ns.try_exec("wg", &["show", &ifname]);
    assert!(
        show.status.success(),
        "the new daemon does not serve {ifname}"
    );
    ns.ip(&["link", "delete", "dev", &ifname]);
    assert!(
        eventually(Duration::from_secs(5), || !path.exists()),
        "the new daemon did not exit"
    );

    // A daemon that stays: refused, its socket left alone.
    let holder = std::os::unix::net::UnixListener::bind(&path).expect("hold the socket");
    let started = Instant::now();
    let out = start();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("already serves"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(path.exists(), "the live daemon's socket was taken");
    drop(holder);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn background_mode_returns_once_wg_can_talk_to_it() {
    let ns = Netns::new("ftbg");
    let ifname = unique_name("ftbg");
    let log = std::env::temp_dir().join(format!("{ifname}.log"));
    let file = std::fs::File::create(&log).expect("create log");
    let started = Instant::now();
    let mut child = ns
        .command(ferrotun_bin())
        .arg(&ifname)
        .env("LOG_LEVEL", "debug")
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("clone log"))
        .stderr(file)
        .spawn()
        .expect("start ferrotun in the background");
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let status = wait_exit(&mut child, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("`ferrotun {ifname}` did not return\n{}", read_log()));
    let took = started.elapsed();
    assert!(
        status.success(),
        "`ferrotun {ifname}`: {status}\n{}",
        read_log()
    );
    assert!(took < Duration::from_secs(5), "returning took {took:?}");

    // Right away, no retry: wg-quick runs `wg setconf` on the next line.
    UnixStream::connect(socket_path(&ifname))
        .unwrap_or_else(|e| panic!("socket not listening when the parent returned: {e}"));
    let show = ns.try_exec("wg", &["show", &ifname]);
    assert!(
        show.status.success() && String::from_utf8_lossy(&show.stdout).contains(&ifname),
        "wg show right after start: {}{}",
        String::from_utf8_lossy(&show.stdout),
        String::from_utf8_lossy(&show.stderr)
    );
    ns.exec("wg", &["set", &ifname, "listen-port", "51999"]);
    assert_eq!(
        ns.exec_stdout("wg", &["show", &ifname, "listen-port"])
            .trim(),
        "51999"
    );
    assert!(link_exists(&ns, &ifname), "no interface {ifname}");

    // The daemon left behind is the only process in the namespace; it stops on SIGTERM
    // and cleans up like a foreground one.
    let pids = String::from_utf8_lossy(
        &Command::new("ip")
            .args(["netns", "pids", &ns.name])
            .output()
            .expect("ip netns pids")
            .stdout,
    )
    .split_whitespace()
    .map(str::to_string)
    .collect::<Vec<_>>();
    assert_eq!(pids.len(), 1, "processes in the namespace: {pids:?}");
    let pid: u32 = pids[0].parse().expect("pid");
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert!(
        cmdline.contains(&ifname),
        "unexpected process {pid}: {cmdline:?}"
    );
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(
        wait_gone(pid, EXIT_WITHIN),
        "background daemon still running after SIGTERM\n{}",
        read_log()
    );
    assert!(!socket_path(&ifname).exists(), "socket left behind");
    assert!(
        eventually(Duration::from_secs(2), || !link_exists(&ns, &ifname)),
        "interface left behind"
    );
    let _ = std::fs::remove_file(&log);
}
