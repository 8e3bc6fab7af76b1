//! The daemon against every WireGuard it must talk to, in both roles: two namespaces, one
//! daemon each, configured with the real `wg`; then pings over the inner IPv4 and IPv6
//! addresses and a bulk TCP transfer that must arrive with the SHA-256 it was sent with.
//! Needs root, `wg`, `wireguard-go`, `boringtun-cli`, `nc` and `sha256sum`.

mod common;

use common::transfer::tcp_transfer;
use common::tunnel::{Impl, Tunnel};
use std::time::{Duration, Instant};

const MB: u64 = 1 << 20;
/// A first handshake includes starting the daemons' timers; generous for a loaded machine.
const FIRST_PING: Duration = Duration::from_secs(20);
const PING: Duration = Duration::from_secs(10);

/// Pings in the order the roles need: the initiator first (the responder has no endpoint
/// for it yet), then the responder back, then IPv6 both ways; then `megabytes` of TCP from
/// the initiator to the responder.
fn interop(initiator: Impl, responder: Impl, megabytes: u64) {
    let t = Tunnel::new(initiator, responder);
    let started = Instant::now();
    t.ping(&t.a, t.b.addrs.inner4, FIRST_PING);
    t.ping(&t.b, t.a.addrs.inner4, PING);
    t.ping(&t.a, t.b.addrs.inner6, PING);
    t.ping(&t.b, t.a.addrs.inner6, PING);
    // The responder learned the initiator's endpoint from the handshake alone.
    let endpoints = t.b.show("endpoints");
    assert!(
        endpoints.contains(&format!("{}:{}", t.a.addrs.outer, t.a.addrs.port)),
        "responder's endpoints: {endpoints}"
    );
    eprintln!(
        "{initiator:?} -> {responder:?}: pings took {:?}",
        started.elapsed()
    );

    let bytes = megabytes * MB;
    // At 10 Mbit/s, the floor a debug build must clear on a busy two-core machine.
    let timeout = Duration::from_secs(30 + megabytes * 8 / 10);
    let done = tcp_transfer(&t.a.ns, &t.b.ns, t.b.addrs.inner4, 5001, bytes, timeout)
        .unwrap_or_else(|e| panic!("{initiator:?} -> {responder:?}: {e}\n{}", t.logs()));
    assert_eq!(
        done.sent_sha256, done.received_sha256,
        "{initiator:?} -> {responder:?}: data corrupted in the tunnel"
    );
    // The bytes went through the tunnel, not around it: both daemons counted them (each
    // counts whole datagrams, so at least the payload).
    let (_, a_sent) = t.a.transfer_with(&t.b.keys.public);
    let (b_received, _) = t.b.transfer_with(&t.a.keys.public);
    assert!(
        a_sent >= bytes && b_received >= bytes,
        "counters do not show {bytes} bytes through the tunnel: sent {a_sent}, received {b_received}"
    );
    eprintln!(
        "{initiator:?} -> {responder:?}: {} MB in {:?} ({:.0} Mbit/s)",
        megabytes,
        done.elapsed,
        done.mbit_per_s()
    );
}

#[test]
fn ferrotun_to_ferrotun() {
    interop(Impl::Ferrotun, Impl::Ferrotun, 200);
}

#[test]
fn ferrotun_initiates_to_wireguard_go() {
    interop(Impl::Ferrotun, Impl::WireguardGo, 200);
}

#[test]
fn wireguard_go_initiates_to_ferrotun() {
    interop(Impl::WireguardGo, Impl::Ferrotun, 200);
}

#[test]
fn ferrotun_initiates_to_boringtun() {
    interop(Impl::Ferrotun, Impl::Boringtun, 200);
}

#[test]
fn boringtun_initiates_to_ferrotun() {
    interop(Impl::Boringtun, Impl::Ferrotun, 200);
}
