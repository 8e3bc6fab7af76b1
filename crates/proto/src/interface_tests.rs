//! No X25519 under a peer's lock: the data path takes that lock for every batch, so a
//! handshake's key agreement there would stall the peer's traffic. Every X25519 operation
//! of these handshakes is audited (a test hook in `crypto`), in one thread, so a peer lock
//! found held is held by the operation's own caller.

use super::*;
use crate::crypto::x25519_audit;
use crate::time::WallTime;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::cell::Cell;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::rc::Rc;
use std::time::Duration;

struct Side {
    iface: Interface,
    addr: SocketAddr,
    key: PrivateKey,
}

fn side(seed: u64, port: u16) -> Side {
    let mut rng = StdRng::seed_from_u64(seed);
    let key = PrivateKey::generate(&mut rng);
    let iface = Interface::new(Box::new(StdRng::seed_from_u64(seed + 100)));
    iface.set_private_key(Some(key.clone()));
    Side {
        iface,
        addr: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)),
        key,
    }
}

fn env(secs: u64) -> Env {
    Env {
        now: Instant::ZERO + Duration::from_secs(secs),
        wall: WallTime::new(1_700_000_000 + secs, 0),
    }
}

/// A minimal IPv4 packet (tunnel traffic): a header and 8 bytes, from the shared builder.
fn packet(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    ferrotun_testkit::packet::ipv4(src, dst, 17, &[0; 8])
}

/// Counts this thread's X25519 operations, and those run while one of `peers`' locks
/// was held, until dropped.
struct Audit {
    total: Rc<Cell<usize>>,
    under_lock: Rc<Cell<usize>>,
}

impl Audit {
    fn start(peers: Vec<PeerRef>) -> Audit {
        let (total, under_lock) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
        let (t, u) = (total.clone(), under_lock.clone());
        x25519_audit::set(move || {
            t.set(t.get() + 1);
            if peers.iter().any(|p| p.0.state.is_locked()) {
                u.set(u.get() + 1);
            }
        });
        Audit { total, under_lock }
    }
}

impl Drop for Audit {
    fn drop(&mut self) {
        x25519_audit::clear();
    }
}

#[test]
fn no_x25519_runs_under_a_peer_lock() {
    let (a, b) = (side(1, 10_001), side(2, 10_002));
    let pa = a.iface.add_peer(b.key.public_key()).unwrap();
    let pb = b.iface.add_peer(a.key.public_key()).unwrap();
    a.iface
        .add_allowed_ip(&pa, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 32);
    b.iface
        .add_allowed_ip(&pb, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 32);
    pa.lock().set_endpoint(b.addr);
    let audit = Audit::start(vec![pa.clone(), pb.clone()]);

    // A full handshake started by a packet, and the packet's delivery.
    let out = a
        .iface
        .encapsulate(&packet([10, 0, 0, 1], [10, 0, 0, 2]), env(1));
    assert_eq!(out.len(), 1, "an initiation");
    let initiation = out[0].data.clone();
    let out = b.iface.handle_handshake(&initiation, a.addr, false, env(1));
    assert_eq!(out.len(), 1, "a response");
    let out = a
        .iface
        .handle_handshake(&out[0].data, b.addr, false, env(1));
    assert_eq!(out.len(), 1, "the staged packet");
    let mut data = out[0].data.clone();
    let rx = b
        .iface
        .receive_transport(&mut data, a.addr, env(1))
        .unwrap();
    assert!(rx.outcome.confirmed_session && rx.packet_len > 0);
    assert!(
        audit.total.get() >= 8,
        "{} X25519 operations",
        audit.total.get()
    );

    // A replayed initiation costs the one X25519 that identifies its sender, no more.
    let before = audit.total.get();
    assert!(b
        .iface
        .handle_handshake(&initiation, a.addr, false, env(2))
        .is_empty());
    assert_eq!(audit.total.get(), before + 1);

    // Initiations from the timers: a rekey by age, then its retransmission.
    let rekey = env(125);
    let out = a
        .iface
        .encapsulate(&packet([10, 0, 0, 1], [10, 0, 0, 2]), rekey);
    assert!(
        out.iter().any(|d| d.data[0] == 1),
        "an old session starts a new handshake"
    );
    let before = audit.total.get();
    let retry = a.iface.tick(env(131));
    assert!(retry.iter().any(|d| d.data[0] == 1), "a retransmission");
    assert!(audit.total.get() > before);

    // A new private key: every peer's static-static agreement is computed again.
    let before = audit.total.get();
    a.iface
        .set_private_key(Some(PrivateKey::generate(&mut StdRng::seed_from_u64(7))));
    assert!(audit.total.get() > before);

    assert_eq!(
        audit.under_lock.get(),
        0,
        "{} of {} X25519 operations ran under a peer's lock",
        audit.under_lock.get(),
        audit.total.get()
    );
}
