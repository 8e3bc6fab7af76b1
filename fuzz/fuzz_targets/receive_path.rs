//! Hostile datagrams against two peers with a live session: random bytes, and genuine
//! messages replayed, reflected or mutated, sent from the peer's address or a stranger's,
//! interleaved with real traffic and the passing of time. Nothing may panic, and afterwards
//! the session must still carry traffic both ways: without a new handshake while it is
//! young, and through whatever rekeying the protocol calls for once it is old.

#![no_main]

use std::net::SocketAddr;
use std::time::Duration;

use arbitrary::Arbitrary;
use ferrotun_fuzz::pair::{test_psk, Logged, Pair};
use ferrotun_proto::constants::REKEY_AFTER_TIME;
use libfuzzer_sys::fuzz_target;

/// Hostile steps per input: enough to build up state, few enough to stay fast.
const MAX_STEPS: usize = 48;
/// How long the final check waits for a session that has to be renegotiated.
const RECOVERY: Duration = Duration::from_secs(30);

#[derive(Arbitrary, Debug)]
struct Input {
    psk: bool,
    steps: Vec<Step>,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Source {
    /// The sending peer's own address (as a spoofer or a replaying middlebox would use).
    Peer,
    StrangerV4,
    StrangerV6,
}

#[derive(Arbitrary, Debug)]
enum Step {
    /// Arbitrary bytes to one side.
    Raw {
        to_b: bool,
        src: Source,
        under_load: bool,
        data: Vec<u8>,
    },
    /// A datagram that crossed the wire earlier, edited, sent again to its receiver (or
    /// reflected back to its sender).
    Replay {
        pick: u16,
        reflect: bool,
        src: Source,
        under_load: bool,
        edits: Vec<Edit>,
    },
    /// Genuine traffic, so hostile input meets sessions in every state.
    Traffic { from_b: bool, len: u8 },
    /// Time passes and timers fire (keepalives, rekeys).
    Advance { millis: u16, minutes: u8 },
}

#[derive(Arbitrary, Debug)]
enum Edit {
    Xor {
        at: u16,
        mask: u8,
    },
    Set {
        at: u16,
        byte: u8,
    },
    /// Overwrites a little-endian word: an index or the low half of a counter.
    Word {
        at: u8,
        value: u32,
    },
    Truncate {
        len: u16,
    },
    Append {
        bytes: Vec<u8>,
    },
}

impl Edit {
    fn apply(&self, data: &mut Vec<u8>) {
        let len = data.len();
        match self {
            Edit::Xor { at, mask } if len > 0 => data[usize::from(*at) % len] ^= mask,
            Edit::Set { at, byte } if len > 0 => data[usize::from(*at) % len] = *byte,
            Edit::Word { at, value } if len >= 4 => {
                let at = usize::from(*at) % (len - 3);
                data[at..at + 4].copy_from_slice(&value.to_le_bytes());
            }
            Edit::Truncate { len: keep } => data.truncate(usize::from(*keep)),
            Edit::Append { bytes } => data.extend_from_slice(bytes),
            _ => {}
        }
    }
}

fn address(pair: &Pair, to: usize, src: Source) -> SocketAddr {
    match src {
        Source::Peer => pair.nodes[1 - to].addr,
        Source::StrangerV4 => "192.0.2.66:6666".parse().unwrap(),
        Source::StrangerV6 => "[2001:db8::66]:6666".parse().unwrap(),
    }
}

/// Gives one hostile datagram to node `to`; what it answers goes to the other side.
fn inject(pair: &mut Pair, to: usize, src: Source, under_load: bool, data: Vec<u8>) {
    let src = address(pair, to, src);
    let answers = pair.receive(to, src, data, under_load);
    pair.deliver(to, answers);
}

/// Sends a packet from `from` and waits (in virtual time) until it arrives.
/// True when `side` no longer sends to its peer's real address.
fn endpoint_moved(pair: &Pair, side: usize) -> bool {
    let iface = &pair.nodes[side].iface;
    let real = pair.nodes[1 - side].addr;
    iface
        .peer_list()
        .iter()
        .any(|p| iface.snapshot(p).endpoint != Some(real))
}

fn delivered_within(pair: &mut Pair, from: usize, payload: &[u8], limit: Duration) -> bool {
    if pair.send(from, payload) {
        return true;
    }
    let packet = pair.ip_packet(from, payload);
    let step = Duration::from_millis(500);
    let mut waited = Duration::ZERO;
    while waited < limit {
        pair.advance(step);
        waited += step;
        if pair.nodes[1 - from].delivered.contains(&packet) {
            return true;
        }
    }
    false
}

fuzz_target!(|input: Input| {
    let mut pair = Pair::established(input.psk.then(test_psk));
    // Genuine datagrams sealed but never delivered: the fuzzer may deliver them from anywhere.
    // Traffic both ways afterwards, so neither side is left waiting for an answer to them
    // (which would rightly start a new handshake 15 s later).
    pair.seal(0, b"undelivered a->b");
    pair.seal(1, b"undelivered b->a");
    assert!(pair.send(0, b"answered a->b") && pair.send(1, b"answered b->a"));
    let a_initiation = pair
        .log
        .iter()
        .find(|l| l.from == 0 && l.data.first() == Some(&1))
        .map(|l| l.data.clone())
        .expect("setup sent an initiation");
    // The cookie reply b sends when under load, so replies can be replayed and mutated too.
    let a_addr = pair.nodes[0].addr;
    let cookie = pair.receive(1, a_addr, a_initiation, true);
    for d in cookie {
        pair.log.push(Logged {
            from: 1,
            data: d.data,
        });
    }

    let initiations_before = pair.initiations_sent();
    for step in input.steps.iter().take(MAX_STEPS) {
        match step {
            Step::Raw {
                to_b,
                src,
                under_load,
                data,
            } => inject(
                &mut pair,
                usize::from(*to_b),
                *src,
                *under_load,
                data.clone(),
            ),
            Step::Replay {
                pick,
                reflect,
                src,
                under_load,
                edits,
            } => {
                let logged = &pair.log[usize::from(*pick) % pair.log.len()];
                let to = if *reflect {
                    logged.from
                } else {
                    1 - logged.from
                };
                let mut data = logged.data.clone();
                for edit in edits.iter().take(8) {
                    edit.apply(&mut data);
                }
                inject(&mut pair, to, *src, *under_load, data);
            }
            Step::Traffic { from_b, len } => {
                let payload = vec![0x5a; usize::from(*len)];
                pair.send(usize::from(*from_b), &payload);
            }
            Step::Advance { millis, minutes } => {
                let by = Duration::from_millis(u64::from(*millis))
                    + Duration::from_secs(60 * u64::from(*minutes % 4));
                pair.advance(by);
            }
        }
    }

    // A young session must survive anything a stranger or a replay can do: packets still
    // go straight through and nobody has needed a new handshake. An old one may have to be
    // renegotiated, which must then succeed.
    let young =
        pair.now.as_nanos() < (REKEY_AFTER_TIME - Duration::from_secs(20)).as_nanos() as u64;
    if young {
        // Roaming follows every authenticated packet (in the kernel too), so a genuine
        // datagram the fuzzer withheld and then delivered from a stranger's address moves
        // the receiver's endpoint there, and the real peer's next packet moves it back. The
        // side whose endpoint moved therefore hears from its peer first; if both moved,
        // neither can reach the other until the operator names an endpoint again.
        let moved = [endpoint_moved(&pair, 0), endpoint_moved(&pair, 1)];
        if moved[0] && moved[1] {
            let b_addr = pair.nodes[1].addr;
            let a = &pair.nodes[0].iface;
            for peer in a.peer_list() {
                a.set_endpoint(&peer, b_addr);
            }
        }
        let first = if moved[0] && !moved[1] { 1 } else { 0 };
        for from in [first, 1 - first] {
            let payload = [b"after hostile input a->b", b"after hostile input b->a"][from];
            assert!(
                pair.send(from, payload),
                "{} broken",
                ["a->b", "b->a"][from]
            );
        }
        assert_eq!(
            pair.initiations_sent(),
            initiations_before,
            "hostile input caused a new handshake"
        );
    } else {
        assert!(
            delivered_within(&mut pair, 0, b"after hostile input a->b", RECOVERY),
            "a->b never recovered"
        );
        assert!(
            delivered_within(&mut pair, 1, b"after hostile input b->a", RECOVERY),
            "b->a never recovered"
        );
    }
    // Indices are per handshake and keypair: a bounded number per peer, never a leak.
    for node in &pair.nodes {
        assert!(
            node.iface.index_count() <= 4,
            "{} session indices in use for one peer",
            node.iface.index_count()
        );
    }
});
