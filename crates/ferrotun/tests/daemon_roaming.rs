//! Roaming: the initiator's outer address changes in the middle of a TCP transfer; the
//! transfer completes intact and the other side's `wg show` reports the new endpoint.
//! Needs root, `wg`, `wireguard-go`, `nc` and `sha256sum`.

mod common;

use common::transfer::tcp_transfer;
use common::tunnel::{Impl, Tunnel};
use std::time::{Duration, Instant};

const NEW_OUTER: &str = "192.168.241.11";
const MB: u64 = 1 << 20;

/// Gives side `a` a second address on its veth, then removes the first one, so every
/// packet it sends from then on leaves from the new address (the kernel promotes the
/// secondary address instead of deleting it with the primary).
fn move_a(t: &Tunnel) {
    let veth = t.a.veth.clone();
    let sysctl = format!("net.ipv4.conf.{veth}.promote_secondaries=1");
    t.a.ns.exec("sysctl", &["-q", "-w", &sysctl]);
    let new = format!("{NEW_OUTER}/24");
    let old = format!("{}/24", t.a.addrs.outer);
    t.a.ns.ip(&["addr", "add", &new, "dev", &veth]);
    t.a.ns.ip(&["addr", "del", &old, "dev", &veth]);
}

fn roam(initiator: Impl, responder: Impl) {
    let t = Tunnel::new(initiator, responder);
    t.ping(&t.a, t.b.addrs.inner4, Duration::from_secs(20));
    let old_endpoint = format!("{}:{}", t.a.addrs.outer, t.a.addrs.port);
    let new_endpoint = format!("{NEW_OUTER}:{}", t.a.addrs.port);
    assert!(t.b.show("endpoints").contains(&old_endpoint));

    let bytes = 200 * MB;
    let started = Instant::now();
    let (done, moved_at) = std::thread::scope(|s| {
        let transfer = s.spawn(|| {
            tcp_transfer(
                &t.a.ns,
                &t.b.ns,
                t.b.addrs.inner4,
                5002,
                bytes,
                Duration::from_secs(300),
            )
        });
        std::thread::sleep(Duration::from_secs(1));
        let moved_at = started.elapsed();
        move_a(&t);
        (transfer.join().expect("transfer thread"), moved_at)
    });
    let done = done.unwrap_or_else(|e| panic!("{initiator:?} -> {responder:?}: {e}\n{}", t.logs()));
    assert_eq!(done.sent_sha256, done.received_sha256, "data corrupted");
    assert!(
        done.elapsed > moved_at,
        "the transfer ended ({:?}) before the address moved ({moved_at:?}): nothing roamed",
        done.elapsed
    );
    let endpoints = t.b.show("endpoints");
    assert!(
        endpoints.contains(&new_endpoint),
        "{responder:?} still reports {endpoints:?}, not {new_endpoint}\n{}",
        t.logs()
    );
    // And the tunnel keeps working both ways from the new address.
    t.ping(&t.b, t.a.addrs.inner6, Duration::from_secs(10));
    eprintln!(
        "{initiator:?} roaming -> {responder:?}: moved at {moved_at:?}, 200 MB in {:?}",
        done.elapsed
    );
}

#[test]
fn ferrotun_roams_between_ferrotuns() {
    roam(Impl::Ferrotun, Impl::Ferrotun);
}

#[test]
fn wireguard_go_roams_and_ferrotun_follows() {
    roam(Impl::WireguardGo, Impl::Ferrotun);
}

#[test]
fn ferrotun_roams_and_wireguard_go_follows() {
    roam(Impl::Ferrotun, Impl::WireguardGo);
}
