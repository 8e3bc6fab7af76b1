//! Scale: ten thousand peers configured in one `set`, daemon memory with them idle, and a
//! thousand peers handshaking at the same moment (which drives the daemon under load, so
//! the cookie mechanism must carry them through).
//!
//! Timings are printed for the record (the README's figures come from the benchmark), not
//! asserted: this machine is shared and noisy.

mod common;

use common::sampler::rss_kib;
use common::{ferrotun_bin, unique_name, Daemon, Netns};
use ferrotun_device::netns::enter_netns;
use ferrotun_proto::interface::{Env, Interface, PeerRef};
use ferrotun_proto::keys::{PrivateKey, PublicKey};
use ferrotun_proto::time::{Instant as CoreInstant, WallTime};
use ferrotun_uapi::{AllowedIpChange, Client, IpPrefix, PeerChange, SetRequest};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const PEERS: usize = 10_000;
const ACTIVE: usize = 1_000;

fn peer_v4(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, (i >> 16) as u8, (i >> 8) as u8, i as u8))
}

fn peer_v6(i: usize) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(
        0xfd00,
        0,
        0,
        0,
        0,
        0,
        (i >> 16) as u16,
        i as u16,
    ))
}

/// One simulated remote peer: its own core, its own socket and source address.
struct Client1 {
    iface: Interface,
    peer: PeerRef,
    sock: UdpSocket,
}

fn env(start: Instant) -> Env {
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Env {
        now: CoreInstant::from_nanos(start.elapsed().as_nanos() as u64),
        wall: WallTime::from_duration_since_epoch(wall),
    }
}

#[test]
fn ten_thousand_peers_and_a_thousand_simultaneous_handshakes() {
    let ns = Netns::new("ftsc");
    let ifname = unique_name("ftsc");
    let daemon = Daemon::start(&ns, ferrotun_bin(), &["-f"], &ifname);
    ns.ip(&["link", "set", &ifname, "up"]);

    let mut rng = StdRng::seed_from_u64(7);
    let server = PrivateKey::generate(&mut rng);
    let clients: Vec<PrivateKey> = (0..ACTIVE)
        .map(|_| PrivateKey::generate(&mut rng))
        .collect();
    let mut keys: Vec<PublicKey> = clients.iter().map(PrivateKey::public_key).collect();
    keys.extend((ACTIVE..PEERS).map(|_| PrivateKey::generate(&mut rng).public_key()));

    let port = 40_000 + (std::process::id() % 20_000) as u16;
    let mut req = SetRequest {
        private_key: Some(Some(server.clone())),
        listen_port: Some(port),
        ..SetRequest::default()
    };
    for (i, key) in keys.iter().enumerate() {
        let mut change = PeerChange::new(*key);
        change.allowed_ips = vec![
            AllowedIpChange::Add(IpPrefix::host(peer_v4(i))),
            AllowedIpChange::Add(IpPrefix::host(peer_v6(i))),
        ];
        req.peers.push(change);
    }
    let uapi = Client::new().with_timeout(Duration::from_secs(60));
    let t = Instant::now();
    uapi.set(&ifname, &req).expect("set 10,000 peers");
    eprintln!("scale: set of {PEERS} peers took {:?}", t.elapsed());

    let t = Instant::now();
    let status = uapi.get(&ifname).expect("get");
    eprintln!("scale: get of {PEERS} peers took {:?}", t.elapsed());
    assert_eq!(status.peers.len(), PEERS);
    assert_eq!(status.listen_port, port);
    let sample = status
        .peers
        .iter()
        .find(|p| p.public_key == keys[4321])
        .expect("peer 4321");
    let mut ips: Vec<String> = sample.allowed_ips.iter().map(|p| p.to_string()).collect();
    ips.sort();
    assert_eq!(
        ips,
        vec![
            format!("{}/32", peer_v4(4321)),
            format!("{}/128", peer_v6(4321))
        ]
    );

    std::thread::sleep(Duration::from_millis(500));
    let rss = rss_kib(daemon.pid()).expect("VmRSS");
    eprintln!("scale: daemon RSS with {PEERS} idle peers: {} KiB", rss);
    assert!(
        rss < 64 * 1024,
        "daemon uses {rss} KiB with {PEERS} idle peers"
    );

    // A thousand clients, each from its own loopback address so the per-source rate
    // limiter treats them as the distinct hosts they stand for.
    let server_pub = server.public_key();
    let netns_path = PathBuf::from("/run/netns").join(&ns.name);
    let established = std::thread::spawn(move || {
        enter_netns(&netns_path).expect("enter netns");
        let start = Instant::now();
        let target = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let mut all: Vec<Client1> = clients
            .into_iter()
            .enumerate()
            .map(|(i, key)| {
                let iface = Interface::new(Box::new(StdRng::seed_from_u64(1000 + i as u64)));
                iface.set_private_key(Some(key));
                let peer = iface.add_peer(server_pub).expect("peer");
                iface.set_endpoint(&peer, target);
                let src = Ipv4Addr::new(127, 1, (i >> 8) as u8, i as u8);
                let sock = UdpSocket::bind((src, 0)).expect("bind client");
                sock.set_nonblocking(true).expect("nonblocking");
                Client1 { iface, peer, sock }
            })
            .collect();
        for c in &all {
            for d in c.iface.initiate(&c.peer, env(start)) {
                let _ = c.sock.send_to(&d.data, d.dst);
            }
        }
        let deadline = start + Duration::from_secs(90);
        let mut buf = vec![0u8; 2048];
        let mut last_tick = Instant::now();
        loop {
            let mut done = 0;
            let e = env(start);
            for c in &mut all {
                while let Ok((n, from)) = c.sock.recv_from(&mut buf) {
                    let out = c.iface.handle_handshake(&buf[..n], from, false, e);
                    for d in out {
                        let _ = c.sock.send_to(&d.data, d.dst);
                    }
                }
                if c.iface.has_session(&c.peer, e.now) {
                    done += 1;
                }
            }
            if done == ACTIVE || Instant::now() > deadline {
                return (done, start.elapsed());
            }
            if last_tick.elapsed() > Duration::from_millis(100) {
                for c in &all {
                    for d in c.iface.tick(e) {
                        let _ = c.sock.send_to(&d.data, d.dst);
                    }
                }
                last_tick = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    let (done, took) = established.join().expect("client thread");
    eprintln!("scale: {done} of {ACTIVE} simultaneous handshakes completed in {took:?}");
    assert_eq!(done, ACTIVE, "every simultaneous handshake completes");

    // The daemon counts a handshake once the client's first keepalive confirms it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut handshaken = 0;
    while Instant::now() < deadline {
        let status = uapi.get(&ifname).expect("get after handshakes");
        handshaken = status
            .peers
            .iter()
            .filter(|p| p.last_handshake.is_some())
            .count();
        if handshaken == ACTIVE {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(handshaken, ACTIVE, "daemon saw every session confirmed");
    let rss = rss_kib(daemon.pid()).expect("VmRSS");
    eprintln!("scale: daemon RSS after {ACTIVE} sessions: {} KiB", rss);
}
