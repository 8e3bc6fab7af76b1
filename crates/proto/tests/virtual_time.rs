//! The protocol's timers under virtual time: rekeying, keepalives, giving up, zeroing keys.

use ferrotun_proto::keys::PresharedKey;
use ferrotun_proto::time::Instant;
use ferrotun_testkit::pair::Pair as Net;
use std::time::Duration;

const INITIATION: u8 = 1;
const RESPONSE: u8 = 2;
const TRANSPORT: u8 = 4;
const KEEPALIVE_LEN: usize = 32;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn handshake_then_data_both_ways_with_and_without_psk() {
    for psk in [None, Some(PresharedKey::from_bytes([9; 32]))] {
        let mut net = Net::new(psk);
        net.send(0, b"hello from a");
        assert_eq!(net.sent_of_type(0, INITIATION).len(), 1);
        assert_eq!(net.sent_of_type(1, RESPONSE).len(), 1);
        assert_eq!(
            net.nodes[1].delivered.len(),
            1,
            "staged packet arrives after handshake"
        );
        assert!(net.nodes[1].delivered[0].ends_with(b"hello from a"));
        net.send(1, b"hello from b");
        assert!(net.nodes[0].delivered[0].ends_with(b"hello from b"));
        let stats = net.nodes[0]
            .iface
            .snapshot(&net.nodes[0].iface.peer_list()[0])
            .stats;
        assert!(stats.last_handshake.is_some() && stats.tx_bytes > 0 && stats.rx_bytes > 0);
    }
}

#[test]
fn a_day_of_traffic_rekeys_on_schedule_and_loses_nothing() {
    let mut net = Net::new(None);
    let day = 24 * 3600;
    let mut sent = [0usize; 2];
    for t in 0..day / 7 {
        // Both directions, every 7 s, so neither side's keepalive timer ever fires.
        net.advance_to(Instant::ZERO + secs(t * 7));
        net.send(0, &t.to_le_bytes());
        net.send(1, &t.to_le_bytes());
        sent[0] += 1;
        sent[1] += 1;
    }
    assert_eq!(net.nodes[1].delivered.len(), sent[0], "a→b lost packets");
    assert_eq!(net.nodes[0].delivered.len(), sent[1], "b→a lost packets");
    let handshakes = net.sent_of_type(0, INITIATION).len() + net.sent_of_type(1, INITIATION).len();
    // One new session every REKEY_AFTER_TIME (120 s) plus the few seconds until the next
    // packet triggers it: about 86400 / 127.
    assert!(
        (600..=725).contains(&handshakes),
        "{handshakes} handshakes in a day"
    );
    // Rekeys are spaced at least REKEY_AFTER_TIME apart per initiator.
    for i in 0..2 {
        let times = net.sent_of_type(i, INITIATION);
        for w in times.windows(2) {
            assert!(w[1].0.saturating_duration_since(w[0].0) >= secs(120));
        }
    }
}

#[test]
fn idle_responder_sends_exactly_one_keepalive_then_stays_quiet() {
    let mut net = Net::new(None);
    net.send(0, b"one packet");
    let before = net.sent_of_type(1, TRANSPORT).len();
    net.advance(secs(600));
    let keepalives: Vec<_> = net
        .sent_of_type(1, TRANSPORT)
        .into_iter()
        .skip(before)
        .collect();
    assert_eq!(keepalives.len(), 1, "one keepalive after KEEPALIVE_TIMEOUT");
    assert_eq!(keepalives[0].1, KEEPALIVE_LEN);
    // Sent at 10 s after the data arrived.
    assert_eq!(keepalives[0].0, Instant::ZERO + secs(10));
    // The initiator got the keepalive, so it never started a new handshake.
    assert_eq!(net.sent_of_type(0, INITIATION).len(), 1);
}

#[test]
fn persistent_keepalive_sends_one_per_interval() {
    let mut net = Net::new(None);
    // Turning it on sends a keepalive at once: here, the handshake that must precede it.
    net.set_persistent_keepalive(0, 25);
    assert_eq!(net.sent_of_type(0, INITIATION).len(), 1);
    assert_eq!(
        net.sent_of_type(0, TRANSPORT),
        vec![(net.now, KEEPALIVE_LEN)]
    );
    let start = net.now;
    net.advance(secs(1000));
    let keepalive_times: Vec<Instant> = net
        .sent_of_type(0, TRANSPORT)
        .into_iter()
        .filter(|(t, len)| *len == KEEPALIVE_LEN && *t > start)
        .map(|(t, _)| t)
        .collect();
    let mut distinct = keepalive_times.clone();
    distinct.dedup();
    // Exactly one every 25 s: 1000 s / 25 s.
    assert_eq!(distinct.len(), 40);
    for w in distinct.windows(2) {
        assert_eq!(w[1].saturating_duration_since(w[0]), secs(25));
    }
    // The only other keepalives are key confirmations, one per rekey, sent at the same
    // instant as the keepalive that found the key old enough to replace.
    let rekeys = net
        .sent_of_type(0, INITIATION)
        .iter()
        .filter(|(t, _)| *t > start)
        .count();
    assert!(rekeys >= 7, "{rekeys} rekeys in 1000 s");
    assert_eq!(keepalive_times.len(), distinct.len() + rekeys);
}

#[test]
fn dead_peer_retries_stop_after_rekey_attempt_time_and_keys_are_zeroed() {
    let mut net = Net::new(None);
    net.send(0, b"establish");
    let peer = net.nodes[0].iface.peer_list()[0].clone();
    assert!(net.nodes[0].iface.has_session(&peer, net.now));
    net.nodes[1].down = true;
    let outage = net.now;
    // Data into the void: after 15 s without an answer a handshake starts, then retries.
    net.advance(secs(1));
    net.send(0, b"anyone there?");
    net.advance(secs(400));
    let retries: Vec<_> = net
        .sent_of_type(0, INITIATION)
        .into_iter()
        .filter(|(t, _)| *t > outage)
        .collect();
    assert_eq!(retries.len(), 20, "1 initiation + 19 retransmissions");
    let span = retries[19].0.saturating_duration_since(retries[0].0);
    assert!(
        span >= secs(19 * 5) && span <= secs(19 * 5 + 19),
        "retries spanned {span:?}"
    );
    // Keys are erased 3 × REJECT_AFTER_TIME after the session was made.
    net.advance_to(Instant::ZERO + secs(539));
    assert!(net.nodes[0].iface.index_count() > 0);
    net.advance_to(Instant::ZERO + secs(700));
    assert_eq!(net.nodes[0].iface.index_count(), 0, "keys zeroed");
    assert!(!net.nodes[0].iface.has_session(&peer, net.now));
}

#[test]
fn tunnel_recovers_after_an_outage() {
    let mut net = Net::new(None);
    net.send(0, b"before");
    net.nodes[1].down = true;
    net.advance(secs(30));
    net.send(0, b"lost");
    net.advance(secs(30));
    net.nodes[1].down = false;
    net.advance(secs(20));
    net.send(0, b"after");
    assert!(net.nodes[1].delivered.last().unwrap().ends_with(b"after"));
}

#[test]
fn a_batch_without_a_session_waits_for_one_handshake_and_arrives_in_order() {
    let mut net = Net::pair(None);
    let payloads: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 40 + usize::from(i)]).collect();
    let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
    net.send_batch(0, &refs);
    assert_eq!(net.sent_of_type(0, INITIATION).len(), 1);
    assert_eq!(net.nodes[1].delivered.len(), 20);
    // With the session up, a batch goes out sealed straight away, still in order.
    net.send_batch(0, &refs);
    assert_eq!(net.sent_of_type(0, INITIATION).len(), 1);
    for (i, got) in net.nodes[1].delivered.iter().enumerate() {
        assert!(got.ends_with(&payloads[i % 20]), "packet {i} out of order");
    }
}

#[test]
fn padding_follows_an_mtu_change_and_never_passes_it() {
    let mut net = Net::pair(None);
    net.send(0, b"establish");
    for mtu in [1280usize, 1300, 1420, 9000] {
        net.nodes[0].iface.set_mtu(mtu);
        let before = net.sent_of_type(0, TRANSPORT).len();
        // Inner packets of MTU-16 ..= MTU bytes (20 of them are the IPv4 header).
        let payloads: Vec<Vec<u8>> = (0..=16).map(|k| vec![0x5a; mtu - 20 - k]).collect();
        let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
        net.send_batch(0, &refs);
        let sent = net.sent_of_type(0, TRANSPORT);
        assert_eq!(sent.len() - before, 17);
        for (_, len) in &sent[before..] {
            assert!(*len <= mtu + 32, "{len}-byte datagram at MTU {mtu}");
        }
    }
}
