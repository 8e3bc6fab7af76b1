//! The daemon's system-call filter itself: a child process installs exactly the filter the
//! daemon installs (`confine::seccomp::install`), then tries calls the filter must refuse
//! (execve, ptrace, an AF_PACKET socket) and calls the daemon needs (threads, UDP). The
//! refused ones must fail with EPERM and be counted; the others must work.
//!
//! The child is this test binary again (filters cannot be removed, so the test harness's
//! own process is never filtered). Runs as any user; as root the refused calls would
//! otherwise succeed, which makes the test stronger.

use ferrotun_device::confine::{refused, seccomp};
use std::process::Command;

const CHILD: &str = "FERROTUN_SECCOMP_CHILD";
const DONE: &str = "filter child: every check held";

fn errno_of<T: std::fmt::Debug>(r: Result<T, nix::errno::Errno>) -> nix::errno::Errno {
    match r {
        Ok(v) => panic!("call succeeded under the filter: {v:?}"),
        Err(e) => e,
    }
}

/// Runs in the child, with the filter installed on this (test) thread.
fn child() {
    seccomp::install().expect("install the daemon's filter");
    assert_eq!(refused::total(), 0);

    let e = errno_of(nix::unistd::execv(c"/bin/true", &[c"/bin/true"]));
    assert_eq!(e, nix::errno::Errno::EPERM, "execve");
    assert!(
        refused::was_refused(libc::SYS_execve),
        "execve not recorded"
    );
    assert_eq!(refused::total(), 1);

    let e = errno_of(nix::sys::ptrace::traceme());
    assert_eq!(e, nix::errno::Errno::EPERM, "ptrace");
    assert!(
        refused::was_refused(libc::SYS_ptrace),
        "ptrace not recorded"
    );

    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    let e = errno_of(socket(
        AddressFamily::Packet,
        SockType::Raw,
        SockFlag::empty(),
        None,
    ));
    assert_eq!(e, nix::errno::Errno::EPERM, "AF_PACKET socket");
    assert_eq!(refused::total(), 3);
    let (count, first) = refused::take_new().expect("refusals reported");
    assert_eq!(count, 3);
    for nr in [libc::SYS_execve, libc::SYS_ptrace, libc::SYS_socket] {
        assert!(
            first.contains(&(nr as usize)),
            "{nr} missing from {first:?}"
        );
    }
    assert!(refused::take_new().is_none(), "reported twice");

    // What the daemon does keeps working: threads, UDP sockets, reading /proc.
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("UDP bind under the filter");
    let addr = sock.local_addr().unwrap();
    let sender = std::thread::spawn(move || {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.send_to(b"ping", addr).unwrap();
    });
    sender.join().expect("thread under the filter");
    let mut buf = [0u8; 8];
    let (n, _) = sock.recv_from(&mut buf).expect("receive under the filter");
    assert_eq!(&buf[..n], b"ping");
    std::fs::read_to_string("/proc/stat").expect("read-only open");
    assert_eq!(refused::total(), 3, "an allowed call was refused");

    // Writing a file is refused (read-only opens only).
    let e = std::fs::File::create("/tmp/ferrotun-seccomp-test-should-not-exist")
        .expect_err("create under the filter");
    assert_eq!(e.raw_os_error(), Some(libc::EPERM));
    println!("{DONE}");
}

#[test]
fn the_daemon_filter_refuses_forbidden_calls_and_counts_them() {
    if std::env::var_os(CHILD).is_some() {
        child();
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "the_daemon_filter_refuses_forbidden_calls_and_counts_them",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .expect("run the child");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "child failed: {}\n{text}", out.status);
    assert!(text.contains(DONE), "child did not finish: {text}");
}
