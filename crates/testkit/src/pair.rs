//! Two `Interface`s on a virtual clock, wired to each other the way the device layer drives
//! one: transport messages to `receive_transport`, everything else to `handle_handshake`,
//! and whatever an interface answers delivered to the other side at once (or dropped while
//! a side is "down"). Time moves only when a test advances it, jumping from one timer
//! deadline to the next. Shared by the protocol core's tests and the fuzz harness.
//!
//! Seeds are fixed, so a run replays identically: a crash found by the fuzzer reproduces.
//! Every datagram that crosses the wire is logged, so a fuzz input can replay or mutate
//! genuine messages, not only random bytes.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use ferrotun_proto::interface::{Env, Interface};
use ferrotun_proto::keys::{PresharedKey, PrivateKey};
use ferrotun_proto::peer::Datagram;
use ferrotun_proto::send::Planned;
use ferrotun_proto::time::{Instant, WallTime};
use ferrotun_proto::wire::{self, Message};
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::packet;

/// Unix time the virtual wall clock starts at.
pub const WALL_START: u64 = 1_700_000_000;
/// Rounds of request/answer before `deliver` calls it a storm: a healthy exchange needs a few.
const MAX_ROUNDS: usize = 1000;
/// Timer firings in one `advance` before it calls the clock stuck.
const MAX_TIMER_STEPS: usize = 100_000;
/// IP protocol number the inner test packets carry (UDP; no UDP header follows).
const INNER_PROTO: u8 = 17;

pub struct Node {
    pub iface: Interface,
    pub addr: SocketAddr,
    pub inner: Ipv4Addr,
    /// Inner packets that reached this node's TUN, in order.
    pub delivered: Vec<Vec<u8>>,
    /// Every datagram this node sent, with the time it was sent.
    pub sent: Vec<(Instant, Vec<u8>)>,
    /// A down node neither sends, receives nor runs timers.
    pub down: bool,
}

/// A datagram that crossed the wire: who sent it and its bytes.
#[derive(Debug, Clone)]
pub struct Logged {
    pub from: usize,
    pub data: Vec<u8>,
}

/// Packets from the TUN through `iface`'s send path, the way the device drives it: planned
/// in order, sealed (here in reverse order, as the device's crew may), finished, and then
/// what the batch asked for done as the control thread does it.
pub fn send_path(iface: &Interface, packets: &[Vec<u8>], env: Env) -> Vec<Datagram> {
    let mut batch = iface.send_batch(env);
    let planned: Vec<Planned> = packets.iter().map(|p| batch.plan(p)).collect();
    let actions = batch.finish();
    let mut sealed: Vec<Option<Datagram>> = Vec::new();
    for (packet, plan) in packets.iter().zip(planned).rev() {
        let Planned::Send { dst, src, sealing } = plan else {
            continue;
        };
        let mut buf = vec![0u8; wire::TRANSPORT_HEADER_LEN + packet.len() + 64];
        buf[wire::TRANSPORT_HEADER_LEN..][..packet.len()].copy_from_slice(packet);
        let data = sealing.seal(&mut buf).expect("planned buffer").to_vec();
        sealed.push(Some(Datagram { dst, src, data }));
    }
    let mut out: Vec<Datagram> = sealed.into_iter().rev().flatten().collect();
    for peer in &actions.send_staged {
        out.extend(iface.send_staged(peer, env));
    }
    for peer in &actions.initiate {
        out.extend(iface.initiate(peer, env));
    }
    out
}

pub struct Pair {
    pub nodes: [Node; 2],
    pub now: Instant,
    /// Everything either side sent, in order.
    pub log: Vec<Logged>,
}

fn node(seed: u64, port: u16, inner: Ipv4Addr) -> (Node, PrivateKey) {
    let key = PrivateKey::generate(&mut StdRng::seed_from_u64(seed));
    let iface = Interface::new(Box::new(StdRng::seed_from_u64(seed + 100)));
    iface.set_private_key(Some(key.clone()));
    let node = Node {
        iface,
        addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
        inner,
        delivered: Vec::new(),
        sent: Vec::new(),
        down: false,
    };
    (node, key)
}

/// The preshared key a pair uses when asked for one (fixed, so runs replay).
pub fn test_psk() -> PresharedKey {
    PresharedKey::generate(&mut StdRng::seed_from_u64(3))
}

impl Pair {
    /// Two peers that know each other, with no session yet. `a` knows `b`'s endpoint; `b`
    /// learns `a`'s by roaming.
    pub fn new(psk: Option<PresharedKey>) -> Pair {
        let (a, ka) = node(1, 10001, Ipv4Addr::new(10, 0, 0, 1));
        let (b, kb) = node(2, 10002, Ipv4Addr::new(10, 0, 0, 2));
        let pa = a.iface.add_peer(kb.public_key()).expect("fresh interface");
        let pb = b.iface.add_peer(ka.public_key()).expect("fresh interface");
        a.iface.add_allowed_ip(&pa, IpAddr::V4(b.inner), 32);
        b.iface.add_allowed_ip(&pb, IpAddr::V4(a.inner), 32);
        a.iface.set_endpoint(&pa, b.addr);
        if let Some(psk) = psk {
            a.iface.set_preshared_key(&pa, psk.clone());
            b.iface.set_preshared_key(&pb, psk);
        }
        Pair {
            nodes: [a, b],
            now: Instant::ZERO,
            log: Vec::new(),
        }
    }

    /// [`Pair::new`] under the name the protocol core's tests know it by (`Net::pair`).
    #[allow(clippy::self_named_constructors)] // the tests' `Net::pair`, `Net` being this type
    pub fn pair(psk: Option<PresharedKey>) -> Pair {
        Pair::new(psk)
    }

    /// Two peers with a confirmed session both ways (a handshake and one packet each way).
    pub fn established(psk: Option<PresharedKey>) -> Pair {
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

    /// An IPv4 packet from `from`'s inner address to the other's, carrying `payload`.
    pub fn ip_packet(&self, from: usize, payload: &[u8]) -> Vec<u8> {
        let src = self.nodes[from].inner.octets();
        let dst = self.nodes[1 - from].inner.octets();
        packet::ipv4(src, dst, INNER_PROTO, payload)
    }

    /// Sends an inner packet from `from` and delivers everything that follows; true if the
    /// other side's TUN got exactly that packet.
    pub fn send(&mut self, from: usize, payload: &[u8]) -> bool {
        let packet = self.ip_packet(from, payload);
        let out = send_path(
            &self.nodes[from].iface,
            std::slice::from_ref(&packet),
            self.env(),
        );
        self.deliver(from, out);
        self.nodes[1 - from].delivered.last() == Some(&packet)
    }

    /// Sends a whole inner packet (any addresses) from `from` and delivers everything.
    pub fn send_packet(&mut self, from: usize, packet: &[u8]) {
        self.send_packets(from, &[packet.to_vec()]);
    }

    /// Sends inner packets from `from` as one batch from its TUN and delivers everything.
    pub fn send_batch(&mut self, from: usize, payloads: &[&[u8]]) {
        let packets: Vec<Vec<u8>> = payloads.iter().map(|p| self.ip_packet(from, p)).collect();
        self.send_packets(from, &packets);
    }

    /// Sends whole inner packets from `from` as one batch and delivers everything.
    pub fn send_packets(&mut self, from: usize, packets: &[Vec<u8>]) {
        let out = send_path(&self.nodes[from].iface, packets, self.env());
        self.deliver(from, out);
    }

    /// The datagrams `from` would send for an inner packet, without sending them.
    pub fn seal(&mut self, from: usize, payload: &[u8]) -> Vec<Vec<u8>> {
        let packet = self.ip_packet(from, payload);
        let out = send_path(&self.nodes[from].iface, &[packet], self.env());
        out.into_iter()
            .map(|d| {
                self.record(from, &d.data);
                d.data
            })
            .collect()
    }

    fn record(&mut self, from: usize, data: &[u8]) {
        self.nodes[from].sent.push((self.now, data.to_vec()));
        self.log.push(Logged {
            from,
            data: data.to_vec(),
        });
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

    /// Delivers `out` (sent by `from`) and every answer it causes until both sides are
    /// quiet. A datagram reaches the other side if both are up and it is addressed there.
    pub fn deliver(&mut self, from: usize, out: Vec<Datagram>) {
        let mut queue: Vec<(usize, Datagram)> = out.into_iter().map(|d| (from, d)).collect();
        for _ in 0..MAX_ROUNDS {
            if queue.is_empty() {
                return;
            }
            for (sender, d) in std::mem::take(&mut queue) {
                self.record(sender, &d.data);
                let to = 1 - sender;
                if self.nodes[to].down || self.nodes[sender].down || d.dst != self.nodes[to].addr {
                    continue;
                }
                let src = self.nodes[sender].addr;
                let answers = self.receive(to, src, d.data, false);
                queue.extend(answers.into_iter().map(|d| (to, d)));
            }
        }
        panic!("datagram storm: the two sides never went quiet");
    }

    /// Moves the clock to `until`, firing every timer on the way at its exact deadline.
    pub fn advance_to(&mut self, until: Instant) {
        for _ in 0..MAX_TIMER_STEPS {
            let next = self
                .nodes
                .iter()
                .filter(|n| !n.down)
                .filter_map(|n| n.iface.next_deadline())
                .min()
                .filter(|d| *d <= until);
            let Some(deadline) = next else {
                self.now = self.now.max(until);
                return;
            };
            self.now = self.now.max(deadline);
            for i in 0..2 {
                if self.nodes[i].down {
                    // A dead host runs no timers either.
                    continue;
                }
                let out = self.nodes[i].iface.tick(self.env());
                self.deliver(i, out);
            }
        }
        panic!("timers keep firing without the clock moving past them");
    }

    pub fn advance(&mut self, by: Duration) {
        self.advance_to(self.now + by);
    }

    pub fn set_persistent_keepalive(&mut self, i: usize, secs: u16) {
        let peer = self.nodes[i].iface.peer_list()[0].clone();
        let out = self.nodes[i]
            .iface
            .set_persistent_keepalive(&peer, secs, self.env());
        self.deliver(i, out);
    }

    /// Messages of a given wire type sent by node `i`: when, and how long.
    pub fn sent_of_type(&self, i: usize, ty: u8) -> Vec<(Instant, usize)> {
        self.nodes[i]
            .sent
            .iter()
            .filter(|(_, d)| d.first() == Some(&ty))
            .map(|(t, d)| (*t, d.len()))
            .collect()
    }

    /// Handshake initiations sent so far by either side.
    pub fn initiations_sent(&self) -> usize {
        self.log
            .iter()
            .filter(|l| l.data.first_chunk::<4>() == Some(&wire::TYPE_INITIATION.to_le_bytes()))
            .count()
    }
}
