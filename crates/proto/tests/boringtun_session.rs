//! Interop of the whole peer state machine (timers, keypair rotation, staged packets) with
//! boringtun's `Tunn`: sessions in both roles, data both ways, and rekeys started by
//! either side, with every byte checked on arrival.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use boringtun::noise::rate_limiter::RateLimiter;
use boringtun::noise::{Tunn, TunnResult};
use boringtun::x25519;
use ferrotun_proto::interface::{Env, Interface, PeerRef};
use ferrotun_proto::keys::{PresharedKey, PrivateKey, PublicKey};
use ferrotun_proto::peer::Datagram;
use ferrotun_proto::time::{Instant, WallTime};
use ferrotun_proto::wire::{self, Message, TRANSPORT_HEADER_LEN};
use ferrotun_testkit::packet::ipv4;
use rand::rngs::StdRng;
use rand::SeedableRng;

const OUR_ADDR: &str = "192.0.2.1:51820";
const THEIR_ADDR: &str = "192.0.2.2:51820";

struct Pair {
    us: Interface,
    peer: PeerRef,
    them: Tunn,
    /// Virtual seconds since the start, for our side (boringtun keeps its own clock).
    t: u64,
    wall0: u64,
}

/// An experimental protocol number: the inner packets carry no transport header.
const ANY_PROTO: u8 = 253;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

impl Pair {
    fn new(psk: Option<[u8; 32]>) -> Pair {
        let ours = PrivateKey::from_bytes([0x41; 32]);
        let their_secret = x25519::StaticSecret::from([0x42; 32]);
        let their_public = x25519::PublicKey::from(&their_secret);
        let us = Interface::new(Box::new(StdRng::seed_from_u64(5)));
        us.set_private_key(Some(ours.clone()));
        let peer = us
            .add_peer(PublicKey::from_bytes(their_public.to_bytes()))
            .unwrap();
        us.set_endpoint(&peer, addr(THEIR_ADDR));
        if let Some(k) = psk {
            us.set_preshared_key(&peer, PresharedKey::from_bytes(k));
        }
        us.add_allowed_ip(&peer, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 32);
        let limiter = Arc::new(RateLimiter::new(&their_public, 1_000_000));
        let them = Tunn::new(
            their_secret,
            x25519::PublicKey::from(*ours.public_key().as_bytes()),
            psk,
            None,
            9,
            Some(limiter),
        );
        let wall0 = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        Pair {
            us,
            peer,
            them,
            t: 0,
            wall0,
        }
    }

    fn env(&self) -> Env {
        Env {
            now: Instant::ZERO + Duration::from_secs(self.t),
            wall: WallTime::new(self.wall0 + self.t, 0),
        }
    }

    /// Hands our datagrams to boringtun; returns what it delivered to its tunnel and what
    /// it sent back (flushing its queue as its docs require).
    fn deliver_to_them(&mut self, out: Vec<Datagram>) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let mut delivered = vec![];
        let mut replies = vec![];
        let mut buf = vec![0u8; 65536];
        let our_ip = addr(OUR_ADDR).ip();
        for d in out {
            assert_eq!(d.dst, addr(THEIR_ADDR));
            let mut first = true;
            loop {
                let input: &[u8] = if first { &d.data } else { &[] };
                let src = if first { Some(our_ip) } else { None };
                first = false;
                match self.them.decapsulate(src, input, &mut buf) {
                    TunnResult::WriteToNetwork(p) => replies.push(p.to_vec()),
                    TunnResult::WriteToTunnelV4(p, _) => {
                        delivered.push(p.to_vec());
                        break;
                    }
                    TunnResult::Done => break,
                    other => panic!("boringtun rejected our datagram: {other:?}"),
                }
            }
        }
        (delivered, replies)
    }

    /// Hands boringtun's datagrams to us; returns inner packets delivered and our replies.
    fn deliver_to_us(&mut self, datagrams: Vec<Vec<u8>>) -> (Vec<Vec<u8>>, Vec<Datagram>) {
        let mut delivered = vec![];
        let mut replies = vec![];
        let env = self.env();
        for mut d in datagrams {
            match wire::parse(&d) {
                Ok(Message::Transport(_)) => {
                    let rx = self
                        .us
                        .receive_transport(&mut d, addr(THEIR_ADDR), env)
                        .expect("our side rejected boringtun's transport message");
                    if rx.packet_len > 0 {
                        let s = TRANSPORT_HEADER_LEN;
                        delivered.push(d[s..s + rx.packet_len].to_vec());
                    }
                    if rx.outcome.confirmed_session {
                        replies.extend(self.us.send_staged(&rx.peer, env));
                    }
                    if rx.outcome.wants_handshake {
                        replies.extend(self.us.initiate(&rx.peer, env));
                    }
                }
                Ok(_) => replies.extend(self.us.handle_handshake(&d, addr(THEIR_ADDR), false, env)),
                Err(e) => panic!("boringtun sent garbage: {e:?}"),
            }
        }
        (delivered, replies)
    }

    fn their_packet(&mut self, payload: &[u8]) -> Vec<u8> {
        let packet = ipv4([10, 0, 0, 2], [10, 0, 0, 1], ANY_PROTO, payload);
        let mut buf = vec![0u8; 65536];
        match self.them.encapsulate(&packet, &mut buf) {
            TunnResult::WriteToNetwork(d) => d.to_vec(),
            other => panic!("boringtun cannot send: {other:?}"),
        }
    }

    /// One packet each way over the current sessions, checked byte for byte.
    fn exchange(&mut self, tag: &str) {
        let ours = ipv4(
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            ANY_PROTO,
            format!("to them: {tag}").as_bytes(),
        );
        let out = self.us.encapsulate(&ours, self.env());
        let (delivered, replies) = self.deliver_to_them(out);
        assert_eq!(delivered, vec![ours], "{tag}: boringtun got our packet");
        let (_, back) = self.deliver_to_us(replies);
        assert!(back.is_empty() || back.iter().all(|d| d.data.len() >= 32));

        let payload = format!("to us: {tag}");
        let d = self.their_packet(payload.as_bytes());
        let (delivered, _) = self.deliver_to_us(vec![d]);
        assert_eq!(delivered.len(), 1, "{tag}: we got their packet");
        assert!(delivered[0].ends_with(payload.as_bytes()));
    }

    /// The receiver index our sent data carries: it changes when our session changes.
    fn our_sending_index(&mut self) -> u32 {
        let probe = ipv4([10, 0, 0, 1], [10, 0, 0, 2], ANY_PROTO, b"index probe");
        let out = self.us.encapsulate(&probe, self.env());
        let transport = out
            .iter()
            .find(|d| d.data[0] == 4)
            .expect("a transport message");
        let index = u32::from_le_bytes(transport.data[4..8].try_into().unwrap());
        let (delivered, _) = self.deliver_to_them(out);
        assert_eq!(delivered.len(), 1);
        index
    }
}

fn session_with_rekeys(psk: Option<[u8; 32]>) {
    let mut p = Pair::new(psk);
    // We initiate: the first packet is staged, the handshake runs, the packet follows.
    let first = ipv4([10, 0, 0, 1], [10, 0, 0, 2], ANY_PROTO, b"first");
    let out = p.us.encapsulate(&first, p.env());
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].data.len(), wire::INITIATION_LEN);
    let (_, response) = p.deliver_to_them(out);
    let (_, staged) = p.deliver_to_us(response);
    let (delivered, _) = p.deliver_to_them(staged);
    assert_eq!(delivered, vec![first]);
    p.exchange("first session");
    let index_before = p.our_sending_index();

    // Past REKEY_AFTER_TIME our next packet goes out on the old session and starts a
    // rekey, which boringtun answers; our confirmation moves it to the new session.
    p.t += 121;
    let rekey_packet = ipv4([10, 0, 0, 1], [10, 0, 0, 2], ANY_PROTO, b"rekey trigger");
    let out = p.us.encapsulate(&rekey_packet, p.env());
    assert!(
        out.iter().any(|d| d.data.len() == wire::INITIATION_LEN),
        "rekey started"
    );
    let (delivered, response) = p.deliver_to_them(out);
    assert_eq!(
        delivered,
        vec![rekey_packet],
        "old session still carries data during rekey"
    );
    let (_, confirmation) = p.deliver_to_us(response);
    let _ = p.deliver_to_them(confirmation);
    p.exchange("after our rekey");
    let index_after = p.our_sending_index();
    assert_ne!(index_before, index_after, "we now send on the new session");

    // boringtun forces a rekey of its own; we answer as responder and switch once its
    // first packet on the new session confirms it.
    p.t += 10;
    let mut buf = vec![0u8; 256];
    let init = match p.them.format_handshake_initiation(&mut buf, true) {
        TunnResult::WriteToNetwork(d) => d.to_vec(),
        other => panic!("boringtun did not initiate: {other:?}"),
    };
    let (_, response) = p.deliver_to_us(vec![init]);
    assert_eq!(response.len(), 1);
    assert_eq!(response[0].data.len(), wire::RESPONSE_LEN);
    let (_, after_response) = p.deliver_to_them(response);
    let _ = p.deliver_to_us(after_response);
    p.exchange("after their rekey");
    assert_ne!(
        p.our_sending_index(),
        index_after,
        "their rekey moved us too"
    );
    let stats = p.us.snapshot(&p.peer).stats;
    assert!(stats.last_handshake.is_some());
}

#[test]
fn sessions_and_rekeys_without_psk() {
    session_with_rekeys(None);
}

#[test]
fn sessions_and_rekeys_with_psk() {
    session_with_rekeys(Some([0x77; 32]));
}
