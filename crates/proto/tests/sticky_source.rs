//! The local source of a peer's endpoint: learned with the endpoint from authenticated
//! packets, handed back with every datagram to that peer, cleared by the operator's
//! endpoint and by the device when the address stops working.

use ferrotun_proto::interface::{Env, Interface, PeerRef};
use ferrotun_proto::keys::PrivateKey;
use ferrotun_proto::peer::Datagram;
use ferrotun_proto::source::LocalSource;
use ferrotun_proto::time::{Instant, WallTime};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::net::{IpAddr, SocketAddr};

fn env() -> Env {
    Env {
        now: Instant::ZERO,
        wall: WallTime::new(1_700_000_000, 0),
    }
}

fn at(addr: &str) -> SocketAddr {
    addr.parse().unwrap()
}

fn local(addr: &str, ifindex: u32) -> Option<LocalSource> {
    Some(LocalSource {
        addr: addr.parse().unwrap(),
        ifindex,
    })
}

/// A minimal IPv4 packet (tunnel traffic): a header and 8 bytes, from the shared builder.
fn packet(from: [u8; 4], to: [u8; 4]) -> Vec<u8> {
    ferrotun_testkit::packet::ipv4(from, to, 17, &[0; 8])
}

struct Pair {
    client: Interface,
    server: Interface,
    /// The server's view of the client.
    peer: PeerRef,
}

const CLIENT: &str = "198.51.100.7:40000";
const SERVER_B: &str = "203.0.113.2:51820";

fn pair() -> Pair {
    let mut rng = StdRng::seed_from_u64(7);
    let (kc, ks) = (
        PrivateKey::generate(&mut rng),
        PrivateKey::generate(&mut rng),
    );
    let client = Interface::new(Box::new(StdRng::seed_from_u64(1)));
    let server = Interface::new(Box::new(StdRng::seed_from_u64(2)));
    client.set_private_key(Some(kc.clone()));
    server.set_private_key(Some(ks.clone()));
    let to_server = client.add_peer(ks.public_key()).unwrap();
    let peer = server.add_peer(kc.public_key()).unwrap();
    client.add_allowed_ip(&to_server, IpAddr::from([10, 0, 0, 2]), 32);
    server.add_allowed_ip(&peer, IpAddr::from([10, 0, 0, 1]), 32);
    client.set_endpoint(&to_server, at(SERVER_B));
    Pair {
        client,
        server,
        peer,
    }
}

/// Runs a handshake whose client datagrams reach the server at `server_local`; returns
/// what the server sent.
fn handshake(p: &Pair, server_local: Option<LocalSource>) -> Vec<Datagram> {
    let init = p
        .client
        .encapsulate(&packet([10, 0, 0, 1], [10, 0, 0, 2]), env());
    assert_eq!(init.len(), 1);
    let resp = p
        .server
        .handle_handshake_at(&init[0].data, at(CLIENT), server_local, false, env());
    assert_eq!(resp.len(), 1);
    let after = p.client.handle_handshake_at(
        &resp[0].data,
        at(SERVER_B),
        local("198.51.100.7", 3),
        false,
        env(),
    );
    assert!(!after.is_empty(), "the client sends its staged packet");
    assert!(after.iter().all(|d| d.src == local("198.51.100.7", 3)));
    for mut d in after {
        let rx = p
            .server
            .receive_transport_at(&mut d.data, at(CLIENT), server_local, env())
            .expect("authentic");
        drop(rx);
    }
    resp
}

#[test]
fn the_answer_and_every_later_datagram_leave_from_the_address_the_peer_reached() {
    let p = pair();
    let resp = handshake(&p, local("203.0.113.2", 2));
    assert_eq!(resp[0].src, local("203.0.113.2", 2));
    assert_eq!(p.server.source(&p.peer), local("203.0.113.2", 2));
    let out = p
        .server
        .encapsulate(&packet([10, 0, 0, 2], [10, 0, 0, 1]), env());
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].dst, out[0].src),
        (at(CLIENT), local("203.0.113.2", 2))
    );
}

#[test]
fn a_packet_at_another_address_moves_the_source_and_an_unknown_one_clears_it() {
    let p = pair();
    handshake(&p, local("203.0.113.2", 2));
    let mut d = p
        .client
        .encapsulate(&packet([10, 0, 0, 1], [10, 0, 0, 2]), env())
        .remove(0);
    let mut again = d.clone();
    p.server
        .receive_transport_at(&mut d.data, at(CLIENT), local("2001:db8::2", 5), env())
        .unwrap();
    assert_eq!(p.server.source(&p.peer), local("2001:db8::2", 5));
    // A replayed copy is not authentic news: it changes nothing.
    assert!(p
        .server
        .receive_transport_at(&mut again.data, at(CLIENT), None, env())
        .is_err());
    assert_eq!(p.server.source(&p.peer), local("2001:db8::2", 5));
    let mut d = p
        .client
        .encapsulate(&packet([10, 0, 0, 1], [10, 0, 0, 2]), env())
        .remove(0);
    p.server
        .receive_transport_at(&mut d.data, at(CLIENT), None, env())
        .unwrap();
    assert_eq!(p.server.source(&p.peer), None);
}

#[test]
fn the_operator_and_a_failed_send_clear_it() {
    let p = pair();
    handshake(&p, local("203.0.113.2", 2));
    // Another endpoint or another address: not this peer's source, nothing changes.
    assert_eq!(
        p.server
            .forget_source(at("192.0.2.1:1"), local("203.0.113.2", 2).unwrap()),
        0
    );
    assert_eq!(
        p.server
            .forget_source(at(CLIENT), local("203.0.113.9", 2).unwrap()),
        0
    );
    assert_eq!(p.server.source(&p.peer), local("203.0.113.2", 2));
    assert_eq!(
        p.server
            .forget_source(at(CLIENT), local("203.0.113.2", 2).unwrap()),
        1
    );
    assert_eq!(p.server.source(&p.peer), None);
    let out = p
        .server
        .encapsulate(&packet([10, 0, 0, 2], [10, 0, 0, 1]), env());
    assert_eq!(out[0].src, None);

    let p = pair();
    handshake(&p, local("203.0.113.2", 2));
    p.server.set_endpoint(&p.peer, at(CLIENT));
    assert_eq!(
        p.server.source(&p.peer),
        None,
        "wg set ... endpoint starts afresh"
    );
}
