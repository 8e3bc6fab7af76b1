//! A two-peer network on a virtual clock, shared by the core's integration tests.
//! Datagrams are delivered instantly (or dropped when a side is "down"); time moves only
//! when a test advances it, jumping from one timer deadline to the next.

#![allow(dead_code)]

use ferrotun_proto::interface::{Env, Interface};
use ferrotun_proto::keys::{PresharedKey, PrivateKey};
use ferrotun_proto::peer::Datagram;
use ferrotun_proto::time::{Instant, WallTime};
use ferrotun_proto::wire::{self, Message};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

pub const WALL_START: u64 = 1_700_000_000;

pub struct Node {
    pub iface: Interface,
    pub addr: SocketAddr,
    pub inner: Ipv4Addr,
    /// Inner packets this node's TUN received.
    pub delivered: Vec<Vec<u8>>,
    /// Every datagram this node sent, with the time it was sent.
    pub sent: Vec<(Instant, Vec<u8>)>,
    pub down: bool,
}

pub struct Net {
    pub nodes: [Node; 2],
    pub now: Instant,
    queue: Vec<(usize, SocketAddr, Datagram)>,
}

fn node(seed: u64, port: u16, inner: Ipv4Addr) -> (Node, PrivateKey) {
    let mut rng = StdRng::seed_from_u64(seed);
    let key = PrivateKey::generate(&mut rng);
    let iface = Interface::new(Box::new(StdRng::seed_from_u64(seed + 100)));
    iface.set_private_key(Some(key.clone()));
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    let n = Node {
        iface,
        addr,
        inner,
        delivered: vec![],
        sent: vec![],
        down: false,
    };
    (n, key)
}

impl Net {
    /// Two peers that know each other; `a` has `b`'s endpoint, `b` learns `a`'s by roaming.
    pub fn pair(psk: Option<PresharedKey>) -> Net {
        let (a, ka) = node(1, 10001, Ipv4Addr::new(10, 0, 0, 1));
        let (b, kb) = node(2, 10002, Ipv4Addr::new(10, 0, 0, 2));
        let pa = a.iface.add_peer(kb.public_key()).unwrap();
        let pb = b.iface.add_peer(ka.public_key()).unwrap();
        a.iface.add_allowed_ip(&pa, IpAddr::V4(b.inner), 32);
        b.iface.add_allowed_ip(&pb, IpAddr::V4(a.inner), 32);
        pa.lock().set_endpoint(b.addr);
        if let Some(psk) = psk {
            pa.lock().set_preshared_key(psk.clone());
            pb.lock().set_preshared_key(psk);
        }
        Net {
            nodes: [a, b],
            now: Instant::ZERO,
            queue: vec![],
        }
    }

    pub fn env(&self) -> Env {
        let since = Duration::from_nanos(self.now.as_nanos());
        Env {
            now: self.now,
            wall: WallTime::new(WALL_START + since.as_secs(), since.subsec_nanos()),
        }
    }

    fn emit(&mut self, from: usize, out: Vec<Datagram>) {
        let src = self.nodes[from].addr;
        for d in out {
            self.nodes[from].sent.push((self.now, d.data.clone()));
            self.queue.push((from, src, d));
        }
    }

    /// A minimal IPv4 packet from `from`'s inner address to the other's, with a payload.
    pub fn ip_packet(&self, from: usize, payload: &[u8]) -> Vec<u8> {
        let src = self.nodes[from].inner;
        let dst = self.nodes[1 - from].inner;
        let total = 20 + payload.len();
        let mut p = vec![0u8; 20];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        p[8] = 64;
        p[9] = 17;
        p[12..16].copy_from_slice(&src.octets());
        p[16..20].copy_from_slice(&dst.octets());
        p.extend_from_slice(payload);
        p
    }

    /// Sends an inner packet from node `from` through its interface and delivers everything.
    pub fn send(&mut self, from: usize, payload: &[u8]) {
        let packet = self.ip_packet(from, payload);
        self.send_packet(from, &packet);
    }

    /// Sends a whole inner packet (any addresses) from node `from` and delivers everything.
    pub fn send_packet(&mut self, from: usize, packet: &[u8]) {
        let out = self.nodes[from].iface.encapsulate(packet, self.env());
        self.emit(from, out);
        self.deliver();
    }

    /// Delivers queued datagrams (and whatever they cause) until the network is quiet.
    pub fn deliver(&mut self) {
        let mut rounds = 0;
        while !self.queue.is_empty() {
            rounds += 1;
            assert!(rounds < 1000, "datagram storm");
            let batch = std::mem::take(&mut self.queue);
            for (from, src, d) in batch {
                let to = 1 - from;
                if self.nodes[to].down || self.nodes[from].down || d.dst != self.nodes[to].addr {
                    continue;
                }
                let out = self.receive(to, src, d.data);
                self.emit(to, out);
            }
        }
    }

    fn receive(&mut self, to: usize, src: SocketAddr, mut data: Vec<u8>) -> Vec<Datagram> {
        let env = self.env();
        let node = &mut self.nodes[to];
        match wire::parse(&data) {
            Ok(Message::Transport(_)) => {
                let Ok(rx) = node.iface.receive_transport(&mut data, src, env) else {
                    return vec![];
                };
                if rx.packet_len > 0 {
                    let start = wire::TRANSPORT_HEADER_LEN;
                    node.delivered
                        .push(data[start..start + rx.packet_len].to_vec());
                }
                let mut out = vec![];
                if rx.outcome.confirmed_session {
                    out.extend(node.iface.send_staged(&rx.peer, env));
                }
                if rx.outcome.wants_handshake {
                    out.extend(node.iface.initiate(&rx.peer, env));
                }
                out
            }
            Ok(_) => node.iface.handle_handshake(&data, src, false, env),
            Err(_) => vec![],
        }
    }

    /// Moves the clock to `until`, firing every timer on the way at its exact deadline.
    pub fn advance_to(&mut self, until: Instant) {
        loop {
            let next = self
                .nodes
                .iter()
                .filter(|n| !n.down)
                .filter_map(|n| n.iface.next_deadline())
                .min()
                .filter(|d| *d <= until);
            let Some(deadline) = next else { break };
            self.now = self.now.max(deadline);
            for i in 0..2 {
                if self.nodes[i].down {
                    // A dead host runs no timers either.
                    continue;
                }
                let out = self.nodes[i].iface.tick(self.env());
                self.emit(i, out);
            }
            self.deliver();
        }
        self.now = until;
    }

    pub fn advance(&mut self, by: Duration) {
        self.advance_to(self.now + by);
    }

    pub fn set_persistent_keepalive(&mut self, i: usize, secs: u16) {
        let peer = self.nodes[i].iface.peer_list()[0].clone();
        let out = self.nodes[i]
            .iface
            .set_persistent_keepalive(&peer, secs, self.env());
        self.emit(i, out);
        self.deliver();
    }

    /// Messages of a given wire type sent by node `i`.
    pub fn sent_of_type(&self, i: usize, ty: u8) -> Vec<(Instant, usize)> {
        self.nodes[i]
            .sent
            .iter()
            .filter(|(_, d)| d.first() == Some(&ty))
            .map(|(t, d)| (*t, d.len()))
            .collect()
    }
}
