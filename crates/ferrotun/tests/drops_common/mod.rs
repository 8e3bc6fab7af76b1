//! What the drop-counter tests share: a ferrotun daemon in one namespace and a test-side
//! WireGuard peer (boringtun's `Tunn`, an independent implementation, with keys the test
//! knows) on a UDP socket in another; crafted datagrams; and the one assertion every test
//! makes: after sending N of something, exactly the expected drop counters moved, by
//! exactly the expected amounts, and no other drop counter moved.
//!
//! Counters are read as `ferrotun stats` reads them: `stats=1` on the configuration socket.

#![allow(dead_code)]

use boringtun::noise::{Tunn, TunnResult};
use boringtun::x25519;
use ferrotun_proto::counters::Counter;
use ferrotun_testkit::inside::{join, spawn_in};
use ferrotun_testkit::raw_uapi::{exchange, wire_errno};
use ferrotun_testkit::{ferrotun_bin, unique_name, Daemon, Netns};
use ferrotun_uapi::stats::{fetch, Stats};
use ferrotun_uapi::Client;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

pub const DAEMON_OUTER: &str = "192.168.243.1";
pub const TESTER_OUTER: &str = "192.168.243.2";
pub const OUTER_SUBNET: &str = "192.168.243.0/24";
pub const DAEMON_PORT: u16 = 51820;
pub const TESTER_PORT: u16 = 40000;
/// The daemon's interface address; the /24 is routed into its TUN.
pub const DAEMON_INNER: &str = "10.243.0.1";
/// The test-side peer's inner address, the one address the daemon allows it.
pub const TESTER_INNER: [u8; 4] = [10, 243, 0, 2];
pub const TESTER_INNER_STR: &str = "10.243.0.2";
/// In the daemon's tunnel subnet, allowed to no peer.
pub const NO_PEER: &str = "10.243.0.99";

/// How long a counter may take to reach its expected value (bounded waits only).
const REACH: Duration = Duration::from_secs(15);
/// After the expected values are reached: time for a stray count to show.
const SETTLE: Duration = Duration::from_millis(400);

/// A daemon in namespace `ns`, reachable at [`DAEMON_OUTER`] from the tester's namespace
/// `tns`. Fields drop in order: the daemon before the namespaces.
pub struct Lab {
    pub daemon: Daemon,
    pub ns: Netns,
    pub tns: Netns,
    pub private: [u8; 32],
    pub public: [u8; 32],
}

pub fn hex(bytes: &[u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn static_key(seed: u8) -> (x25519::StaticSecret, [u8; 32]) {
    let mut bytes = [0u8; 32];
    StdRng::seed_from_u64(u64::from(seed) + 1000).fill_bytes(&mut bytes);
    let secret = x25519::StaticSecret::from(bytes);
    let public = x25519::PublicKey::from(&secret).to_bytes();
    (secret, public)
}

impl Lab {
    /// A daemon with `env` (e.g. `FERROTUN_TEST_TIMING=...`) in its environment, its
    /// interface addressed and up (IPv6 off on it, so the kernel's own router
    /// solicitations do not show up as packets for no peer), and not yet configured.
    pub fn start(tag: &str, env: &[&str]) -> Lab {
        let ns = Netns::new(&format!("{tag}d"));
        let tns = Netns::new(&format!("{tag}t"));
        ns.connect(
            &tns,
            &format!("{DAEMON_OUTER}/24"),
            &format!("{TESTER_OUTER}/24"),
        );
        let ifname = unique_name(tag);
        let mut args: Vec<&str> = env.to_vec();
        args.extend([ferrotun_bin(), "-f"]);
        let daemon = Daemon::start(&ns, "env", &args, &ifname);
        let sysctl = format!("net.ipv6.conf.{ifname}.disable_ipv6=1");
        ns.exec("sysctl", &["-q", "-w", &sysctl]);
        ns.ip(&["addr", "add", &format!("{DAEMON_INNER}/24"), "dev", &ifname]);
        ns.ip(&["link", "set", &ifname, "mtu", "1420", "up"]);
        // Key number 0 is the daemon's; testers take 1 and up.
        let (secret, public) = static_key(0);
        Lab {
            daemon,
            ns,
            tns,
            private: secret.to_bytes(),
            public,
        }
    }

    pub fn ifname(&self) -> &str {
        &self.daemon.ifname
    }

    /// `set=1` on the configuration socket; panics on an error reply.
    pub fn set(&self, body: &str) {
        let reply = exchange(self.ifname(), &format!("set=1\n{body}\n"));
        assert_eq!(wire_errno(&reply), Some(0), "set {body:?}: {reply:?}");
    }

    /// Gives the daemon its private key and listen port.
    pub fn key_and_port(&self) {
        self.set(&format!(
            "private_key={}\nlisten_port={DAEMON_PORT}\n",
            hex(&self.private)
        ));
    }

    /// The daemon's counters now.
    pub fn stats(&self) -> Stats {
        fetch(&Client::new(), self.ifname())
            .unwrap_or_else(|e| panic!("stats=1 failed: {e}\n{}", self.log()))
    }

    pub fn log(&self) -> String {
        format!("--- daemon log ---\n{}", self.daemon.log_text())
    }

    /// A socket in the tester's namespace on [`TESTER_OUTER`]:`port`.
    pub fn tester_socket(&self, port: u16) -> UdpSocket {
        let sock = join(spawn_in(&self.tns, "bind", move || {
            UdpSocket::bind((TESTER_OUTER, port)).expect("bind the tester's socket")
        }));
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("read timeout");
        sock
    }

    /// Sends `count` UDP datagrams of `len` bytes from the daemon's namespace to `to`
    /// (`addr:port`), so they enter the daemon through its TUN. Each has its own length
    /// (`len + i`), so no two merge into one offloaded send.
    pub fn send_into_tun(&self, to: &str, count: usize, len: usize) {
        let to = to.to_string();
        join(spawn_in(&self.ns, "into-tun", move || {
            let sock = UdpSocket::bind("0.0.0.0:0").expect("bind");
            for i in 0..count {
                sock.send_to(&vec![0x5a; len + i], &to)
                    .expect("send into the tunnel");
                // One at a time: each datagram its own batch in the daemon.
                std::thread::sleep(Duration::from_millis(5));
            }
        }));
    }

    /// Adds the test-side peer `tester` (allowed [`TESTER_INNER`]), with the tester's
    /// address as its endpoint when `endpoint`.
    pub fn add_peer(&self, tester: &Tester, endpoint: bool) {
        let mut body = format!(
            "public_key={}\nallowed_ip={TESTER_INNER_STR}/32\n",
            hex(&tester.public)
        );
        if endpoint {
            body.push_str(&format!("endpoint={}\n", tester.addr));
        }
        self.set(&body);
    }
}

/// The test's own WireGuard peer: boringtun's state machine over a socket in the tester's
/// namespace.
pub struct Tester {
    pub tunn: Tunn,
    pub sock: UdpSocket,
    pub public: [u8; 32],
    pub addr: SocketAddr,
    pub daemon: SocketAddr,
}

impl Tester {
    /// A peer with key number `seed` (distinct seeds, distinct keys) on `port`.
    pub fn new(lab: &Lab, seed: u8, port: u16) -> Tester {
        let (secret, public) = static_key(seed);
        let tunn = Tunn::new(
            secret,
            x25519::PublicKey::from(lab.public),
            None,
            None,
            u32::from(seed),
            None,
        );
        Tester {
            tunn,
            sock: lab.tester_socket(port),
            public,
            addr: format!("{TESTER_OUTER}:{port}").parse().expect("address"),
            daemon: format!("{DAEMON_OUTER}:{DAEMON_PORT}")
                .parse()
                .expect("address"),
        }
    }

    pub fn send(&self, datagram: &[u8]) {
        self.sock
            .send_to(datagram, self.daemon)
            .expect("send to the daemon");
    }

    /// The next datagram from the daemon, if one comes within 200 ms.
    pub fn recv(&self) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 2048];
        match self.sock.recv_from(&mut buf) {
            Ok((n, _)) => Some(buf[..n].to_vec()),
            Err(_) => None,
        }
    }

    /// A handshake initiation (a new one each call).
    pub fn initiation(&mut self) -> Vec<u8> {
        let mut buf = vec![0u8; 2048];
        match self.tunn.format_handshake_initiation(&mut buf, true) {
            TunnResult::WriteToNetwork(d) => d.to_vec(),
            _ => panic!("boringtun made no initiation"),
        }
    }

    /// Hands a datagram from the daemon to boringtun and sends whatever it answers;
    /// returns how many datagrams that was.
    pub fn handle(&mut self, datagram: &[u8]) -> usize {
        let mut buf = vec![0u8; 2048];
        let mut input = datagram.to_vec();
        let mut sent = 0;
        while let TunnResult::WriteToNetwork(d) = self.tunn.decapsulate(None, &input, &mut buf) {
            let d = d.to_vec();
            self.send(&d);
            sent += 1;
            input.clear();
        }
        sent
    }

    /// Completes a handshake (the tester initiates) and confirms the session to the daemon
    /// with a keepalive; panics if the daemon does not answer within 10 s.
    pub fn handshake(&mut self, lab: &Lab) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let init = self.initiation();
        self.send(&init);
        while Instant::now() < deadline {
            if let Some(d) = self.recv() {
                if d.first() == Some(&2) {
                    // boringtun confirms the session with a keepalive of its own.
                    assert_eq!(self.handle(&d), 1, "boringtun sent no keepalive");
                    return;
                }
            }
        }
        panic!("no handshake response from the daemon\n{}", lab.log());
    }

    /// A transport datagram carrying `packet` on the current session.
    pub fn seal(&mut self, packet: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; packet.len() + 64 + 148];
        match self.tunn.encapsulate(packet, &mut buf) {
            TunnResult::WriteToNetwork(d) if d.first() == Some(&4) => d.to_vec(),
            _ => panic!("boringtun has no session to seal with"),
        }
    }

    /// Reads and answers (handshake messages) or discards what the daemon sent.
    pub fn drain(&mut self) {
        while let Some(d) = self.recv() {
            self.handle(&d);
        }
    }
}

/// An IPv4 packet from `src` to the daemon's address (protocol 253, for experiments).
pub fn inner_packet(src: [u8; 4], len: usize) -> Vec<u8> {
    ferrotun_testkit::packet::ipv4(src, [10, 243, 0, 1], 253, &vec![0x42; len])
}

/// An ICMP echo request from the tester to the daemon's address.
pub fn echo_request(seq: u16) -> Vec<u8> {
    let mut icmp = vec![8u8, 0, 0, 0, 0, 1, (seq >> 8) as u8, seq as u8];
    icmp.extend_from_slice(&[0x61; 32]);
    let sum = ferrotun_testkit::packet::csum_fold(ferrotun_testkit::packet::csum_add(0, &icmp));
    icmp[2..4].copy_from_slice(&(!sum).to_be_bytes());
    ferrotun_testkit::packet::ipv4(TESTER_INNER, [10, 243, 0, 1], 1, &icmp)
}

/// A transport message to `receiver_index` with `len` bytes of random ciphertext.
pub fn transport_to(receiver_index: u32, len: usize, rng: &mut StdRng) -> Vec<u8> {
    let mut msg = vec![0u8; 16 + len];
    msg[0] = 4;
    msg[4..8].copy_from_slice(&receiver_index.to_le_bytes());
    rng.fill_bytes(&mut msg[8..]);
    msg
}

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

pub fn random_index(rng: &mut StdRng) -> u32 {
    rng.gen()
}

/// How much each drop counter (`Counter::is_drop`) moved from `before` to `after`; only
/// those that moved.
pub fn drop_delta(before: &Stats, after: &Stats) -> BTreeMap<String, u64> {
    Counter::ALL
        .iter()
        .filter(|c| c.is_drop())
        .map(|c| {
            let key = c.key();
            let moved = after.counter(key).wrapping_sub(before.counter(key));
            (key.to_string(), moved)
        })
        .filter(|(_, moved)| *moved != 0)
        .collect()
}

/// How much counter `key` (any counter) moved.
pub fn moved(before: &Stats, after: &Stats, key: &str) -> u64 {
    after.counter(key).wrapping_sub(before.counter(key))
}

/// Waits (at most [`REACH`]) until every drop counter in `expected` has moved by its
/// amount since `before`, gives stray counts [`SETTLE`] to show, then asserts that the
/// drop counters moved by exactly `expected` and nothing else. Returns the last reading.
pub fn assert_drops(lab: &Lab, before: &Stats, expected: &[(&str, u64)]) -> Stats {
    for (key, _) in expected {
        let c = Counter::from_key(key).unwrap_or_else(|| panic!("no counter {key}"));
        assert!(c.is_drop(), "{key} is not a drop counter");
    }
    let want: BTreeMap<String, u64> = expected
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| (k.to_string(), *n))
        .collect();
    let deadline = Instant::now() + REACH;
    loop {
        let now = lab.stats();
        let delta = drop_delta(before, &now);
        if want
            .iter()
            .all(|(k, n)| delta.get(k).is_some_and(|d| d >= n))
        {
            break;
        }
        if Instant::now() > deadline {
            panic!(
                "drop counters moved by {delta:?}, expected {want:?} (waited {REACH:?})\n{}",
                lab.log()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(SETTLE);
    let after = lab.stats();
    let delta = drop_delta(before, &after);
    assert_eq!(
        delta,
        want,
        "drop counters moved by {delta:?}, expected exactly {want:?}\n{}",
        lab.log()
    );
    after
}

/// Waits (at most [`REACH`]) until counter `key` has moved by at least `n` since `before`.
pub fn wait_moved(lab: &Lab, before: &Stats, key: &str, n: u64) -> Stats {
    let deadline = Instant::now() + REACH;
    loop {
        let now = lab.stats();
        if moved(before, &now, key) >= n {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "{key} moved by {} within {REACH:?}, expected {n}\n{}",
            moved(before, &now, key),
            lab.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
