//! split ∘ coalesce: whatever the coalescer merges, splitting gives back the
//! packets it was given, per flow, in order, byte for byte.

use super::coalesce::{drain_all, Flow};
use super::util::*;
use ferrotun_device::offload::Coalescer;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Event {
    /// A data segment of `len` bytes with ACK (and PSH if set).
    Data { flow: usize, len: usize, psh: bool },
    /// A pure ACK.
    Ack { flow: usize },
    /// Bytes that never arrive (a loss), so the next segment leaves a gap.
    Gap { flow: usize, len: usize },
    /// A data segment damaged in transit after its checksum was computed.
    Corrupt { flow: usize, len: usize },
    /// A FIN with data.
    Fin { flow: usize, len: usize },
    /// Unrelated UDP.
    Udp { len: usize },
}

fn event() -> impl Strategy<Value = Event> {
    let flow = 0usize..4;
    // Mostly full-size segments, so that merging actually happens.
    let len = prop_oneof![4 => Just(1200usize), 1 => 1usize..1400];
    prop_oneof![
        12 => (flow.clone(), len.clone(), prop::bool::weighted(0.1))
            .prop_map(|(flow, len, psh)| Event::Data { flow, len, psh }),
        1 => flow.clone().prop_map(|flow| Event::Ack { flow }),
        1 => (flow.clone(), 1usize..3000).prop_map(|(flow, len)| Event::Gap { flow, len }),
        1 => (flow.clone(), len.clone()).prop_map(|(flow, len)| Event::Corrupt { flow, len }),
        1 => (flow, len).prop_map(|(flow, len)| Event::Fin { flow, len }),
        1 => (0usize..100).prop_map(|len| Event::Udp { len }),
    ]
}

/// The key an output packet is compared under: its flow, or "other".
fn key_of(pkt: &[u8]) -> (u8, u8, u16) {
    let (l, proto) = l4_of(pkt);
    let sport = u16::from_be_bytes([pkt[l], pkt[l + 1]]);
    (pkt[0] >> 4, proto, sport)
}

fn run(events: &[Event], capacity: usize) -> Result<(), TestCaseError> {
    let mut flows: Vec<Flow> = (0..4)
        .map(|i| Flow::new(i % 2 == 1, 100 + i as u16))
        .collect();
    let mut sent = Vec::new();
    for e in events {
        match *e {
            Event::Data { flow, len, psh } => {
                sent.push(flows[flow].seg(len, if psh { ACK | PSH } else { ACK }))
            }
            Event::Ack { flow } => sent.push(flows[flow].seg(0, ACK)),
            Event::Gap { flow, len } => {
                let f = &mut flows[flow];
                f.tcp.seq = f.tcp.seq.wrapping_add(len as u32);
            }
            Event::Corrupt { flow, len } => {
                let mut p = flows[flow].seg(len, ACK);
                let last = p.len() - 1;
                p[last] ^= 0x5a;
                sent.push(p);
            }
            Event::Fin { flow, len } => sent.push(flows[flow].seg(len, ACK | FIN)),
            Event::Udp { len } => sent.push(udp_packet(&Ip::v4(), 7, 8, &payload(len, 1))),
        }
    }

    let mut c = Coalescer::new(capacity);
    let mut outs = Vec::new();
    for p in &sent {
        if c.push(p).is_err() {
            outs.extend(drain_all(&mut c));
            c.push(p).map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
    }
    outs.extend(drain_all(&mut c));
    prop_assert!(outs.len() <= sent.len());

    let mut back = Vec::new();
    for o in &outs {
        prop_assert!(o.len() <= 10 + 65535);
        back.extend(split_all(o).map_err(|e| TestCaseError::fail(e.to_string()))?);
    }
    prop_assert_eq!(back.len(), sent.len());
    // Per flow: the same packets in the same order.
    let mut keys: Vec<_> = sent.iter().map(|p| key_of(p)).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        let want: Vec<&Vec<u8>> = sent.iter().filter(|p| key_of(p) == k).collect();
        let got: Vec<&Vec<u8>> = back.iter().filter(|p| key_of(p) == k).collect();
        prop_assert_eq!(got, want, "flow {:?}", k);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn split_of_coalesce_preserves_each_flow(
        events in proptest::collection::vec(event(), 0..64),
    ) {
        run(&events, 64)?;
    }

    #[test]
    fn preserved_with_small_capacity(
        events in proptest::collection::vec(event(), 0..64),
        capacity in 1usize..6,
    ) {
        run(&events, capacity)?;
    }
}

#[test]
fn bulk_transfer_merges_into_few_packets() {
    // 64 full segments of two flows: 2 flows × ceil(32 / 46) = 2 packets.
    let events: Vec<Event> = (0..64)
        .map(|i| Event::Data {
            flow: i % 2,
            len: 1200,
            psh: false,
        })
        .collect();
    run(&events, 64).unwrap();
    let mut flows = [Flow::new(false, 1), Flow::new(true, 2)];
    let mut c = Coalescer::new(64);
    for i in 0..64 {
        c.push(&flows[i % 2].seg(1200, ACK)).unwrap();
    }
    assert_eq!(c.len(), 2);
}
