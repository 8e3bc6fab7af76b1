//! A peer's daemon dies by SIGKILL (no clean shutdown: stale socket file, sessions its peer
//! still believes in) and comes back with the configuration `wg showconf` printed before,
//! applied with `wg setconf`. The tunnel must work again:
//! - when the restarted side sends first: at once (within REKEY_TIMEOUT plus a margin of
//!   the restart), whichever side it was;
//! - when only the surviving side sends: its packets go to a session that no longer exists,
//!   and it must notice on its own, by the protocol's "no answer for KEEPALIVE_TIMEOUT +
//!   REKEY_TIMEOUT" rule, and handshake again.
//!
//! Needs root, `wg` and `ping`.

mod common;

use common::process::wait_exit;
use common::tunnel::{Impl, Side, Tunnel};
use common::unique_name;
use std::process::Command;
use std::time::{Duration, Instant};

/// REKEY_TIMEOUT plus a margin for a loaded machine.
const AT_ONCE: Duration = Duration::from_secs(7);
/// KEEPALIVE_TIMEOUT + REKEY_TIMEOUT before the survivor gives up on the dead session, one
/// more REKEY_TIMEOUT and jitter for a retry, and a margin.
const SURVIVOR_NOTICES: Duration = Duration::from_secs(24);

/// Kills `side`'s daemon with SIGKILL, starts a new one for the same interface and
/// restores the configuration it had; returns the moment it is configured again.
fn kill_and_restart(side: &mut Side) -> (Instant, Duration) {
    let ifname = side.ifname().to_string();
    let conf = side.wg(&["showconf", &ifname]).stdout;
    let conf_file = std::env::temp_dir().join(format!("{}.conf", unique_name("rst")));
    std::fs::write(&conf_file, &conf).expect("write saved configuration");
    let killed_at = Instant::now();
    let pid = side.daemon.pid().to_string();
    let killed = Command::new("kill").args(["-KILL", &pid]).status();
    assert!(
        killed.map(|s| s.success()).unwrap_or(false),
        "kill -KILL {pid} failed"
    );
    assert!(
        wait_exit(&mut side.daemon.child, Duration::from_secs(5)).is_some(),
        "daemon {pid} survived SIGKILL"
    );
    let old_log = side.daemon.log_text();
    // The stale socket file stays: the new daemon must cope with it. The old guard must not
    // run (it would remove the new daemon's socket), and its process is already reaped.
    let fresh = Impl::Ferrotun.start(&side.ns, &ifname);
    std::mem::forget(std::mem::replace(&mut side.daemon, fresh));
    // The stale file made `start` return at once; wait until the new daemon answers.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = side
            .ns
            .try_exec("timeout", &["5", "wg", "show", &ifname, "public-key"]);
        if out.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the restarted daemon never answered `wg show`: {}\n{}\nbefore the kill:\n{old_log}",
            String::from_utf8_lossy(&out.stderr),
            side.daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let path = conf_file
        .to_str()
        .expect("temp paths are UTF-8")
        .to_string();
    side.wg(&["setconf", &ifname, &path]);
    let _ = std::fs::remove_file(&conf_file);
    let v4 = format!("{}/24", side.addrs.inner4);
    let v6 = format!("{}/64", side.addrs.inner6);
    side.ns.ip(&["addr", "add", &v4, "dev", &ifname]);
    side.ns.ip(&["addr", "add", &v6, "dev", &ifname, "nodad"]);
    side.ns.ip(&["link", "set", &ifname, "mtu", "1420", "up"]);
    (Instant::now(), killed_at.elapsed())
}

fn established() -> Tunnel {
    let t = Tunnel::new(Impl::Ferrotun, Impl::Ferrotun);
    t.ping(&t.a, t.b.addrs.inner4, Duration::from_secs(20));
    t.ping(&t.b, t.a.addrs.inner4, Duration::from_secs(5));
    t
}

/// Pings `addr` from `from` until it answers; how long that took, or a failure with logs.
fn ping_time(t: &Tunnel, from: &Side, addr: &str, bound: Duration, what: &str) -> Duration {
    let start = Instant::now();
    assert!(
        from.ns.ping_until(addr, bound),
        "{what}: no answer to ping {addr} within {bound:?}\n{}",
        t.logs()
    );
    start.elapsed()
}

#[test]
fn killed_initiator_comes_back_at_once() {
    let mut t = established();
    let (ready, restart) = kill_and_restart(&mut t.a);
    let first = ping_time(&t, &t.a, t.b.addrs.inner4, AT_ONCE, "restarted initiator");
    assert!(ready.elapsed() <= AT_ONCE + Duration::from_secs(1));
    ping_time(
        &t,
        &t.b,
        t.a.addrs.inner6,
        AT_ONCE,
        "survivor after restart",
    );
    eprintln!(
        "initiator SIGKILLed: back and configured in {restart:?}, first ping answered \
         {first:?} later"
    );
}

#[test]
fn killed_responder_comes_back_at_once() {
    let mut t = established();
    // B never had A's endpoint configured; it learned it, and showconf saved it.
    let (_, restart) = kill_and_restart(&mut t.b);
    let first = ping_time(&t, &t.b, t.a.addrs.inner4, AT_ONCE, "restarted responder");
    ping_time(
        &t,
        &t.a,
        t.b.addrs.inner6,
        AT_ONCE,
        "survivor after restart",
    );
    eprintln!(
        "responder SIGKILLed: back and configured in {restart:?}, first ping answered \
         {first:?} later"
    );
}

#[test]
fn survivor_notices_the_dead_session_alone() {
    let mut t = established();
    let before = t.a.daemon.log_text().matches("handshake completed").count();
    let (_, restart) = kill_and_restart(&mut t.b);
    // Only A sends: its packets use a session B forgot, so B drops them silently.
    let first = ping_time(
        &t,
        &t.a,
        t.b.addrs.inner4,
        SURVIVOR_NOTICES,
        "survivor sending alone",
    );
    let after = t.a.daemon.log_text().matches("handshake completed").count();
    assert!(
        after > before,
        "the tunnel works again without a new handshake by A?\n{}",
        t.logs()
    );
    eprintln!(
        "responder SIGKILLed, only the initiator sends: back and configured in {restart:?}, \
         initiator's ping answered {first:?} later"
    );
}
