//! Interop with an independent implementation, in process: boringtun's `Tunn` and our noise,
//! cookie and session code complete handshakes in both roles and carry IPv4 packets both ways.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use boringtun::noise::rate_limiter::RateLimiter;
use boringtun::noise::{Tunn, TunnResult};
use boringtun::x25519;
use ferrotun_proto::cookie::{check_macs, CookieChecker, MacVerdict};
use ferrotun_proto::keys::{PresharedKey, PrivateKey, PublicKey};
use ferrotun_proto::noise::{open_initiation, Handshake, LocalStatic};
use ferrotun_proto::session::{padded_len, Keypair};
use ferrotun_proto::time::{Instant, WallTime};
use ferrotun_proto::wire::{self, Message};
use ferrotun_testkit::packet::udp4;
use rand::rngs::StdRng;
use rand::SeedableRng;

const OUR_PRIVATE: [u8; 32] = [0x11; 32];
const THEIR_PRIVATE: [u8; 32] = [0x22; 32];
const PSK: [u8; 32] = [0x33; 32];
const THEIR_ADDR: &str = "192.0.2.2:51820";
const MTU: usize = 1420;

struct Sides {
    us: LocalStatic,
    hs: Handshake,
    checker: CookieChecker,
    them: Tunn,
    rng: StdRng,
}

fn sides(psk: Option<[u8; 32]>) -> Sides {
    sides_with_limit(psk, 1_000_000)
}

/// `limit` is how many handshake messages boringtun takes before it acts under load.
fn sides_with_limit(psk: Option<[u8; 32]>, limit: u64) -> Sides {
    let us = LocalStatic::new(PrivateKey::from_bytes(OUR_PRIVATE));
    let their_secret = x25519::StaticSecret::from(THEIR_PRIVATE);
    let their_public = x25519::PublicKey::from(&their_secret);
    let hs = Handshake::new(
        &us,
        PublicKey::from_bytes(their_public.to_bytes()),
        psk.map(PresharedKey::from_bytes)
            .unwrap_or(PresharedKey::ZERO),
    );
    // An explicit limiter: boringtun's default one would demand cookies after ten messages.
    let limiter = Arc::new(RateLimiter::new(&their_public, limit));
    let them = Tunn::new(
        their_secret,
        x25519::PublicKey::from(*us.public_key().as_bytes()),
        psk,
        None,
        7,
        Some(limiter),
    );
    let checker = CookieChecker::new(&us);
    Sides {
        us,
        hs,
        checker,
        them,
        rng: StdRng::seed_from_u64(42),
    }
}

fn their_ip() -> IpAddr {
    THEIR_ADDR.parse::<SocketAddr>().unwrap().ip()
}

fn seal(keypair: &Keypair, packet: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 16 + padded_len(packet.len(), MTU) + 16];
    buf[16..16 + packet.len()].copy_from_slice(packet);
    let counter = keypair.next_send_counter().unwrap();
    let n = keypair.seal(counter, packet.len(), &mut buf).unwrap();
    buf.truncate(n);
    buf
}

/// Our packet to them arrives intact, then theirs to us.
fn exchange_data(s: &mut Sides, keypair: &Keypair) {
    let mut dst = vec![0u8; 2048];
    let ours = udp4(
        [10, 0, 0, 1],
        1234,
        [10, 0, 0, 2],
        5678,
        b"hello from ferrotun, 45 bytes..",
    );
    let datagram = seal(keypair, &ours);
    assert_eq!(datagram.len() % 16, 0, "padded to 16");
    match s.them.decapsulate(Some(their_ip()), &datagram, &mut dst) {
        TunnResult::WriteToTunnelV4(packet, src) => {
            assert_eq!(src, Ipv4Addr::new(10, 0, 0, 1));
            assert_eq!(packet, &ours[..]);
        }
        other => panic!("boringtun did not deliver our packet: {other:?}"),
    }

    let theirs = udp4([10, 0, 0, 2], 1234, [10, 0, 0, 1], 5678, &[0x5a; 1000]);
    let mut datagram = match s.them.encapsulate(&theirs, &mut dst) {
        TunnResult::WriteToNetwork(d) => d.to_vec(),
        other => panic!("boringtun did not encrypt: {other:?}"),
    };
    let plaintext = keypair.open(&mut datagram).unwrap();
    assert_eq!(&plaintext[..theirs.len()], &theirs[..]);
}

fn ferrotun_initiates(psk: Option<[u8; 32]>) {
    let mut s = sides(psk);
    let now = Instant::from_nanos(5_000_000_000);
    let wall = WallTime::new(1_700_000_000, 0);
    let init =
        s.hs.create_initiation(&s.us, 0x00ab_cdef, now, wall, &mut s.rng)
            .unwrap();

    let mut dst = vec![0u8; 2048];
    let response = match s.them.decapsulate(Some(their_ip()), &init, &mut dst) {
        TunnResult::WriteToNetwork(r) => r.to_vec(),
        other => panic!("boringtun did not answer: {other:?}"),
    };
    let src: SocketAddr = THEIR_ADDR.parse().unwrap();
    assert_eq!(
        check_macs(&mut s.checker, &response, src, false, now),
        MacVerdict::Accept
    );
    let Ok(Message::Response(view)) = wire::parse(&response) else {
        panic!("not a response")
    };
    assert_eq!(view.receiver_index(), 0x00ab_cdef);
    let keys = s.hs.consume_response(&s.us, &view, now).unwrap();
    let keypair = Keypair::new(keys, now);
    exchange_data(&mut s, &keypair);
}

fn boringtun_initiates(psk: Option<[u8; 32]>) {
    let mut s = sides(psk);
    let now = Instant::from_nanos(5_000_000_000);
    let src: SocketAddr = THEIR_ADDR.parse().unwrap();
    let mut dst = vec![0u8; 2048];
    let init = match s.them.format_handshake_initiation(&mut dst, false) {
        TunnResult::WriteToNetwork(i) => i.to_vec(),
        other => panic!("boringtun did not initiate: {other:?}"),
    };
    assert_eq!(
        check_macs(&mut s.checker, &init, src, false, now),
        MacVerdict::Accept
    );
    let Ok(Message::Initiation(view)) = wire::parse(&init) else {
        panic!("not an initiation")
    };
    let opened = open_initiation(&s.us, &view).unwrap();
    assert_eq!(opened.remote_static(), s.hs.remote_static());
    let accepted = s.hs.accept_initiation(&s.us, opened, now).unwrap();
    let (response, keys) =
        s.hs.create_response(&s.us, accepted, 0x0012_3456, now, &mut s.rng)
            .unwrap();
    let keypair = Keypair::new(keys, now);

    // boringtun confirms the session with a keepalive, which must open to nothing.
    let mut keepalive = match s.them.decapsulate(Some(their_ip()), &response, &mut dst) {
        TunnResult::WriteToNetwork(k) => k.to_vec(),
        other => panic!("boringtun refused our response: {other:?}"),
    };
    assert_eq!(keepalive.len(), 32);
    assert_eq!(keypair.open(&mut keepalive).unwrap().len(), 0);
    exchange_data(&mut s, &keypair);
}

#[test]
fn ferrotun_initiates_without_psk() {
    ferrotun_initiates(None);
}

#[test]
fn ferrotun_initiates_with_psk() {
    ferrotun_initiates(Some(PSK));
}

#[test]
fn boringtun_initiates_without_psk() {
    boringtun_initiates(None);
}

#[test]
fn boringtun_initiates_with_psk() {
    boringtun_initiates(Some(PSK));
}

#[test]
fn mismatched_psk_fails() {
    let mut s = sides(Some(PSK));
    s.hs.set_preshared_key(PresharedKey::from_bytes([0x44; 32]));
    let now = Instant::from_nanos(5_000_000_000);
    let init =
        s.hs.create_initiation(&s.us, 1, now, WallTime::new(1_700_000_000, 0), &mut s.rng)
            .unwrap();
    let mut dst = vec![0u8; 2048];
    let response = match s.them.decapsulate(Some(their_ip()), &init, &mut dst) {
        TunnResult::WriteToNetwork(r) => r.to_vec(),
        other => panic!("boringtun did not answer: {other:?}"),
    };
    let view = wire::Response::new(&response).unwrap();
    assert!(s.hs.consume_response(&s.us, &view, now).is_err());
}

/// boringtun under load answers with a cookie reply; the cookie we take from it makes our
/// next initiation's mac2 acceptable to it (16-byte-key MAC and XChaCha20 AD interop).
#[test]
fn we_take_boringtuns_cookie() {
    let mut s = sides_with_limit(None, 0);
    let now = Instant::from_nanos(5_000_000_000);
    let wall = WallTime::new(1_700_000_000, 0);
    let mut dst = vec![0u8; 2048];
    let init =
        s.hs.create_initiation(&s.us, 1, now, wall, &mut s.rng)
            .unwrap();
    let reply = match s.them.decapsulate(Some(their_ip()), &init, &mut dst) {
        TunnResult::WriteToNetwork(r) => r.to_vec(),
        other => panic!("boringtun did not answer: {other:?}"),
    };
    let Ok(Message::CookieReply(view)) = wire::parse(&reply) else {
        panic!("expected a cookie reply, got {} bytes", reply.len())
    };
    assert_eq!(view.receiver_index(), 1);
    s.hs.consume_cookie_reply(&view, now).unwrap();

    let later = now + std::time::Duration::from_secs(1);
    let wall = WallTime::new(1_700_000_001, 0);
    let init =
        s.hs.create_initiation(&s.us, 2, later, wall, &mut s.rng)
            .unwrap();
    let response = match s.them.decapsulate(Some(their_ip()), &init, &mut dst) {
        TunnResult::WriteToNetwork(r) => r.to_vec(),
        other => panic!("boringtun refused our mac2: {other:?}"),
    };
    let view = wire::Response::new(&response).expect("a handshake response");
    let keys = s.hs.consume_response(&s.us, &view, later).unwrap();
    exchange_data(&mut s, &Keypair::new(keys, later));
}

/// The reverse: we are under load, boringtun takes our cookie and its retry passes mac2.
#[test]
fn boringtun_takes_our_cookie() {
    let mut s = sides(None);
    let now = Instant::from_nanos(5_000_000_000);
    let src: SocketAddr = THEIR_ADDR.parse().unwrap();
    let mut dst = vec![0u8; 2048];
    let init = match s.them.format_handshake_initiation(&mut dst, false) {
        TunnResult::WriteToNetwork(i) => i.to_vec(),
        other => panic!("boringtun did not initiate: {other:?}"),
    };
    assert_eq!(
        check_macs(&mut s.checker, &init, src, true, now),
        MacVerdict::SendCookie
    );
    let sender_index = wire::Initiation::new(&init).unwrap().sender_index();
    let reply = s
        .checker
        .create_reply(&init, sender_index, src, now, &mut s.rng);
    match s.them.decapsulate(Some(their_ip()), &reply, &mut dst) {
        TunnResult::Done => {}
        other => panic!("boringtun refused our cookie reply: {other:?}"),
    }
    let retry = match s.them.format_handshake_initiation(&mut dst, true) {
        TunnResult::WriteToNetwork(i) => i.to_vec(),
        other => panic!("boringtun did not retry: {other:?}"),
    };
    assert_eq!(
        check_macs(&mut s.checker, &retry, src, true, now),
        MacVerdict::Accept
    );
}
