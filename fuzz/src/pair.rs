//! Two `Interface`s on a virtual clock, wired to each other the way the device layer drives
//! one: transport messages to `receive_transport`, everything else to `handle_handshake`,
//! and whatever an interface answers delivered to the other side at once.
//!
//! Seeds are fixed, so an input replays identically: a crash found by the fuzzer reproduces.
//! Every datagram that crosses the wire is logged, so a fuzz input can replay or mutate
//! genuine messages, not only random bytes.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use ferrotun_proto::interface::{Env, Interface};
use ferrotun_proto::keys::{PresharedKey, PrivateKey};
use ferrotun_proto::peer::Datagram;
use ferrotun_proto::time::{Instant, WallTime};
use ferrotun_proto::wire::{self, Message};
use rand::rngs::StdRng;
use rand::SeedableRng;

const WALL_START: u64 = 1_700_000_000;
/// Rounds of request/answer before `deliver` calls it a storm: a healthy exchange needs a few.
const MAX_ROUNDS: usize = 100;
/// Timer firings in one `advance` before it calls the clock stuck.
const MAX_TIMER_STEPS: usize = 100_000;

pub struct Node {
    pub iface: Interface,
    pub addr: SocketAddr,
    pub inner: Ipv4Addr,
    /// Inner packets that reached this node's TUN, in order.
    pub delivered: Vec<Vec<u8>>,
}

/// A datagram that crossed the wire: who sent it and its bytes.
#[derive(Debug, Clone)]
pub struct Logged {
    pub from: usize,
    pub data: Vec<u8>,
}

pub struct Pair {
    pub nodes: [Node; 2],
    pub now: Instant,
    /// Everything either side sent, in order.
    pub log: Vec<Logged>,
}

fn node(seed: u64, addr: SocketAddr, inner: Ipv4Addr) -> (Node, PrivateKey) {
    let key = PrivateKey::generate(&mut StdRng::seed_from_u64(seed));
    let iface = Interface::new(Box::new(StdRng::seed_from_u64(seed + 100)));
    iface.set_private_key(Some(key.clone()));
    let node = Node {
        iface,
        addr,
        inner,
        delivered: Vec::new(),
    };
    (node, key)
}

impl Pair {
    /// Two peers that know each other, with no session yet. `a` knows `b`'s endpoint.
    pub fn new(psk: bool) -> Pair {
        let addr = |port| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
        let (a, ka) = node(1, addr(10001), Ipv4Addr::new(10, 0, 0, 1));
        let (b, kb) = node(2, addr(10002), Ipv4Addr::new(10, 0, 0, 2));
        let pa = a.iface.add_peer(kb.public_key()).expect("fresh interface");
        let pb = b.iface.add_peer(ka.public_key()).expect("fresh interface");
        a.iface.add_allowed_ip(&pa, IpAddr::V4(b.inner), 32);
        b.iface.add_allowed_ip(&pb, IpAddr::V4(a.inner), 32);
        pa.lock().set_endpoint(b.addr);
        if psk {
            let psk = PresharedKey::generate(&mut StdRng::seed_from_u64(3));
            pa.lock().set_preshared_key(psk.clone());
            pb.lock().set_preshared_key(psk);
        }
        Pair {
            nodes: [a, b],
            now: Instant::ZERO,
            log: Vec::new(),
        }
    }

    /// Two peers with a confirmed session both ways (a handshake and one packet each way).
    pub fn established(psk: bool) -> Pair {
        let mut pair = Pair::new(psk);
        assert!(pair.send(0, b"setup a->b"), "handshake did not complete");
        assert!(
            pair.send(1, b"setup b->a"),
            "session is not usable both ways"
        );
        pair
    }

    pub fn env(&self) -> Env {
        let since = Duration::from_nanos(self.now.as_nanos());
        Env {
            now: self.now,
            wall: WallTime::new(WALL_START + since.as_secs(), since.subsec_nanos()),
        }
    }

    /// A minimal IPv4/UDP-protocol packet from `from`'s inner address to the other's.
    pub fn ip_packet(&self, from: usize, payload: &[u8]) -> Vec<u8> {
        let total = 20 + payload.len();
        let mut p = vec![0u8; 20];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        p[8] = 64;
        p[9] = 17;
        p[12..16].copy_from_slice(&self.nodes[from].inner.octets());
        p[16..20].copy_from_slice(&self.nodes[1 - from].inner.octets());
        p.extend_from_slice(payload);
        p
    }

    /// Sends an inner packet from `from` and delivers everything that follows; true if the
    /// other side's TUN got exactly that packet.
    pub fn send(&mut self, from: usize, payload: &[u8]) -> bool {
        let packet = self.ip_packet(from, payload);
        let out = self.nodes[from].iface.encapsulate(&packet, self.env());
        self.deliver(from, out);
        self.nodes[1 - from].delivered.last() == Some(&packet)
    }

    /// The datagrams `from` would send for an inner packet, without sending them.
    pub fn seal(&mut self, from: usize, payload: &[u8]) -> Vec<Vec<u8>> {
        let packet = self.ip_packet(from, payload);
        let out = self.nodes[from].iface.encapsulate(&packet, self.env());
        out.into_iter()
            .map(|d| {
                self.log.push(Logged {
                    from,
                    data: d.data.clone(),
                });
                d.data
            })
            .collect()
    }

    /// Hands one datagram to node `to`, as its device would; returns what `to` sends back.
    pub fn receive(
        &mut self,
        to: usize,
        src: SocketAddr,
        mut data: Vec<u8>,
        under_load: bool,
    ) -> Vec<Datagram> {
        let env = self.env();
        let node = &mut self.nodes[to];
        match wire::parse(&data) {
            Ok(Message::Transport(_)) => {
                let Ok(rx) = node.iface.receive_transport(&mut data, src, env) else {
                    return Vec::new();
                };
                if rx.packet_len > 0 {
                    let start = wire::TRANSPORT_HEADER_LEN;
                    let packet = data
                        .get(start..start + rx.packet_len)
                        .expect("receive_transport reported a packet longer than the datagram");
                    node.delivered.push(packet.to_vec());
                }
                let mut out = Vec::new();
                if rx.outcome.confirmed_session {
                    out.extend(node.iface.send_staged(&rx.peer, env));
                }
                if rx.outcome.wants_handshake {
                    out.extend(node.iface.initiate(&rx.peer, env));
                }
                out
            }
            Ok(_) => node.iface.handle_handshake(&data, src, under_load, env),
            Err(_) => Vec::new(),
        }
    }

    /// Delivers `out` (sent by `from`) and every answer it causes until both sides are quiet.
    /// The wire is a perfect relay: whatever one side sends, the other receives.
    pub fn deliver(&mut self, from: usize, out: Vec<Datagram>) {
        let mut queue: Vec<(usize, Datagram)> = out.into_iter().map(|d| (from, d)).collect();
        for _ in 0..MAX_ROUNDS {
            if queue.is_empty() {
                return;
            }
            for (sender, d) in std::mem::take(&mut queue) {
                self.log.push(Logged {
                    from: sender,
                    data: d.data.clone(),
                });
                let src = self.nodes[sender].addr;
                let to = 1 - sender;
                let answers = self.receive(to, src, d.data, false);
                queue.extend(answers.into_iter().map(|d| (to, d)));
            }
        }
        panic!("datagram storm: the two sides never went quiet");
    }

    /// Moves the clock forward by `by`, firing every timer at its deadline on the way.
    pub fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        for _ in 0..MAX_TIMER_STEPS {
            let next = self
                .nodes
                .iter()
                .filter_map(|n| n.iface.next_deadline())
                .min()
                .filter(|d| *d <= until);
            let Some(deadline) = next else {
                self.now = until;
                return;
            };
            self.now = self.now.max(deadline);
            for i in 0..2 {
                let out = self.nodes[i].iface.tick(self.env());
                self.deliver(i, out);
            }
        }
        panic!("timers keep firing without the clock moving past them");
    }

    /// Handshake initiations sent so far by either side.
    pub fn initiations_sent(&self) -> usize {
        self.log
            .iter()
            .filter(|l| l.data.first_chunk::<4>() == Some(&wire::TYPE_INITIATION.to_le_bytes()))
            .count()
    }
}
