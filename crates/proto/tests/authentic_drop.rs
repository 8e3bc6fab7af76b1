//! A transport message that authenticates but carries an inner packet the peer may not
//! send (a source outside its allowed IPs, or not IP at all) is the peer's all the same:
//! its endpoint, timers, key confirmation and counters follow it, and only the inner
//! packet is dropped, as in the kernel and wireguard-go.

mod common_net;

use common_net::Net;
use ferrotun_proto::counters::Counter;
use ferrotun_proto::interface::RxError;
use ferrotun_proto::wire::{self, Message};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

const INITIATION: u8 = 1;

/// A packet from `a` to `b`'s inner address whose source `b` does not allow for `a`.
fn spoofed(net: &Net) -> Vec<u8> {
    let mut packet = net.ip_packet(0, b"not from an allowed source");
    packet[12..16].copy_from_slice(&Ipv4Addr::new(10, 9, 9, 9).octets());
    packet
}

#[test]
fn the_endpoint_and_counters_follow_an_authentic_packet_whose_inner_source_is_dropped() {
    let mut net = Net::pair(None);
    net.send(0, b"hello");
    assert_eq!(net.nodes[1].delivered.len(), 1, "the tunnel works");
    let peer_a = net.nodes[1].iface.peer_list()[0].clone();
    let before = net.nodes[1].iface.snapshot(&peer_a);
    assert_eq!(before.endpoint, Some(net.nodes[0].addr));

    // `a` moves and sends only packets `b` must not deliver.
    let moved = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 10_099);
    let packet = spoofed(&net);
    let out = net.nodes[0].iface.encapsulate(&packet, net.env());
    assert_eq!(out.len(), 1, "a has a session: one sealed datagram");
    let mut data = out[0].data.clone();
    assert!(matches!(wire::parse(&data), Ok(Message::Transport(_))));
    let wire_len = data.len() as u64;
    let rx = net.nodes[1]
        .iface
        .receive_transport(&mut data, moved, net.env())
        .expect("an authentic datagram is the peer's, whatever its inner packet");
    assert_eq!(rx.peer, peer_a);
    assert_eq!(rx.packet_len, 0, "nothing reaches the TUN");
    assert_eq!(rx.dropped, Some(RxError::SourceNotAllowed));

    let after = net.nodes[1].iface.snapshot(&peer_a);
    assert_eq!(
        after.endpoint,
        Some(moved),
        "the endpoint follows the packet"
    );
    assert_eq!(after.stats.rx_bytes, before.stats.rx_bytes + wire_len);

    // A replay of the same datagram is still refused outright.
    let mut again = out[0].data.clone();
    assert_eq!(
        net.nodes[1]
            .iface
            .receive_transport(&mut again, moved, net.env())
            .err(),
        Some(RxError::Replayed)
    );
    // Both drops are counted in the peer, each under its own reason.
    let counts = net.nodes[1].iface.snapshot(&peer_a).stats.counts;
    assert_eq!(counts.get(Counter::DropSourceNotAllowed), 1);
    assert_eq!(counts.get(Counter::DropReplayedCounter), 1);
    assert_eq!(counts.get(Counter::DropDecrypt), 0);
}

#[test]
fn an_inconsistent_inner_packet_still_counts_for_the_peer() {
    let mut net = Net::pair(None);
    net.send(0, b"hello");
    let peer_a = net.nodes[1].iface.peer_list()[0].clone();
    // Routed by its destination at `a`, but it claims more bytes than it has.
    let mut packet = net.ip_packet(0, b"short");
    packet[2..4].copy_from_slice(&1000u16.to_be_bytes());
    let out = net.nodes[0].iface.encapsulate(&packet, net.env());
    assert_eq!(out.len(), 1);
    let mut data = out[0].data.clone();
    let moved = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 10_098);
    let rx = net.nodes[1]
        .iface
        .receive_transport(&mut data, moved, net.env())
        .expect("authentic");
    assert_eq!(
        (rx.packet_len, rx.dropped),
        (0, Some(RxError::BadInnerPacket))
    );
    assert_eq!(net.nodes[1].iface.snapshot(&peer_a).endpoint, Some(moved));
}

#[test]
fn a_confirming_packet_with_a_disallowed_source_still_confirms_the_session() {
    let mut net = Net::pair(None);
    // `a` has no session: the packet is staged, the handshake runs, and the staged packet
    // is the first transport message `b` sees: the one that confirms `b`'s session.
    let packet = spoofed(&net);
    net.send_packet(0, &packet);
    assert!(
        net.nodes[1].delivered.is_empty(),
        "the inner packet is dropped"
    );
    let peer_a = net.nodes[1].iface.peer_list()[0].clone();
    let stats = net.nodes[1].iface.snapshot(&peer_a).stats;
    assert!(
        stats.last_handshake.is_some(),
        "b confirmed the session it derived as responder"
    );
    // So `b` sends on that session at once instead of starting a handshake of its own.
    net.send(1, b"reply");
    assert!(net.sent_of_type(1, INITIATION).is_empty());
    assert_eq!(net.nodes[0].delivered.len(), 1);
    assert!(net.nodes[0].delivered[0].ends_with(b"reply"));
}
