//! A server with several addresses answers each client from the address that client
//! contacted (IP_PKTINFO / IPV6_PKTINFO), falls back to the kernel's choice when that
//! address goes away, and when a route through another interface takes over (as the
//! kernel's WireGuard does: the source must belong to the link the datagrams leave by).
//!
//! Every client is a ferrotun daemon, and WireGuard clients roam to the source of the
//! server's authenticated replies: the client's `wg show endpoints` therefore shows the
//! address the server's replies came from. Needs root, `wg`, `ping`, `nc`, `sha256sum`
//! and `nft`.

mod common;

use common::transfer::tcp_transfer;
use common::tunnel::Keypair;
use common::{ferrotun_bin, unique_name, Daemon, Netns};
use std::time::{Duration, Instant};

const SERVER_PORT: u16 = 51820;
const MB: u64 = 1 << 20;

/// One ferrotun daemon: a client, or the server.
struct Node {
    daemon: Daemon,
    keys: Keypair,
}

impl Node {
    fn start(ns: &Netns, tag: &str) -> Node {
        let ifname = unique_name(tag);
        Node {
            daemon: Daemon::start(ns, ferrotun_bin(), &["-f"], &ifname),
            keys: Keypair::generate(),
        }
    }

    fn ifname(&self) -> &str {
        &self.daemon.ifname
    }
}

/// A client and what it was told: the server's address it talks to.
struct Client {
    node: Node,
    /// The endpoint configured for the server, as `wg show` prints it.
    endpoint: String,
    /// The server's inner address on this client's tunnel.
    server_inner: String,
    subnet: u8,
}

/// A server namespace `s` and a client namespace `c`, joined by a veth pair, with one
/// server daemon and any number of client daemons. Fields drop in order: daemons first.
struct Setup {
    clients: Vec<Client>,
    server: Node,
    c: Netns,
    s: Netns,
    /// The server's end and the client's end of the veth pair.
    s_veth: String,
    c_veth: String,
}

fn endpoint(addr: &str, port: u16) -> String {
    if addr.contains(':') {
        format!("[{addr}]:{port}")
    } else {
        format!("{addr}:{port}")
    }
}

impl Setup {
    /// The server at 192.168.50.1 and fd50::1, the client at .2 / ::2, on one veth.
    fn new() -> Setup {
        let s = Netns::new("mhs");
        let c = Netns::new("mhc");
        let (s_veth, c_veth) = s.connect(&c, "192.168.50.1/24", "192.168.50.2/24");
        s.ip(&["addr", "add", "fd50::1/64", "dev", &s_veth, "nodad"]);
        c.ip(&["addr", "add", "fd50::2/64", "dev", &c_veth, "nodad"]);
        let server = Node::start(&s, "mhsrv");
        let port = SERVER_PORT.to_string();
        s.wg_ok(&[
            "set",
            server.ifname(),
            "listen-port",
            &port,
            "private-key",
            server.keys.path(),
        ]);
        s.ip(&["link", "set", server.ifname(), "mtu", "1420", "up"]);
        Setup {
            clients: Vec::new(),
            server,
            c,
            s,
            s_veth,
            c_veth,
        }
    }

    /// A client daemon whose only peer is the server at `server_addr`, on its own inner
    /// subnet 10.(70+i).0.0/24. Returns its index.
    fn add_client(&mut self, server_addr: &str) -> usize {
        let i = self.clients.len();
        let subnet = 70 + i as u8;
        let node = Node::start(&self.c, "mhcli");
        let endpoint = endpoint(server_addr, SERVER_PORT);
        let server_inner = format!("10.{subnet}.0.1");
        let client_inner = format!("10.{subnet}.0.2");
        self.c.wg_ok(&[
            "set",
            node.ifname(),
            "private-key",
            node.keys.path(),
            "peer",
            &self.server.keys.public,
            "allowed-ips",
            &format!("10.{subnet}.0.0/24"),
            "endpoint",
            &endpoint,
        ]);
        self.s.wg_ok(&[
            "set",
            self.server.ifname(),
            "peer",
            &node.keys.public,
            "allowed-ips",
            &format!("{client_inner}/32"),
        ]);
        self.c.ip(&[
            "addr",
            "add",
            &format!("{client_inner}/24"),
            "dev",
            node.ifname(),
        ]);
        self.c
            .ip(&["link", "set", node.ifname(), "mtu", "1420", "up"]);
        self.s.ip(&[
            "addr",
            "add",
            &format!("{server_inner}/24"),
            "dev",
            self.server.ifname(),
        ]);
        self.clients.push(Client {
            node,
            endpoint,
            server_inner,
            subnet,
        });
        i
    }

    /// The server's endpoint as client `i` sees it now.
    fn seen_by(&self, i: usize) -> String {
        let text = self
            .c
            .wg_ok(&["show", self.clients[i].node.ifname(), "endpoints"]);
        text.split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string()
    }

    fn logs(&self) -> String {
        let mut out = format!(
            "--- server {} ---\n{}\nserver endpoints: {}\n",
            self.server.ifname(),
            tail(&self.server.daemon.log_text()),
            self.s.wg_ok(&["show", self.server.ifname(), "endpoints"])
        );
        for (i, c) in self.clients.iter().enumerate() {
            out += &format!(
                "--- client {i} ({}) sees {} ---\n{}\n",
                c.endpoint,
                self.seen_by(i),
                tail(&c.node.daemon.log_text())
            );
        }
        out
    }

    /// Pings the server through client `i`'s tunnel until it answers (at most `timeout`).
    fn ping_server(&self, i: usize, timeout: Duration) {
        let to = &self.clients[i].server_inner;
        assert!(
            self.c.ping_until(to, timeout),
            "client {i}: no answer from {to}\n{}",
            self.logs()
        );
    }

    /// Pings client `i` from the server (the server sends first).
    fn ping_client(&self, i: usize, timeout: Duration) {
        let to = format!("10.{}.0.2", self.clients[i].subnet);
        assert!(
            self.s.ping_until(&to, timeout),
            "server: no answer from client {i} at {to}\n{}",
            self.logs()
        );
    }

    /// Asserts that client `i` still sees the server at `want`, after a few more pings
    /// (each reply would move it if it left from another address).
    fn assert_seen_at(&self, i: usize, want: &str) {
        let to = self.clients[i].server_inner.clone();
        self.c
            .exec("ping", &["-c", "3", "-i", "0.2", "-W", "2", &to]);
        let seen = self.seen_by(i);
        assert_eq!(
            seen,
            want,
            "client {i} configured {} but the server's replies come from {seen}\n{}",
            self.clients[i].endpoint,
            self.logs()
        );
    }

    /// A short TCP transfer from client `i` to the server through the tunnel.
    fn transfer(&self, i: usize, port: u16) {
        let to = self.clients[i].server_inner.clone();
        let done = tcp_transfer(&self.c, &self.s, &to, port, MB, Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("client {i}: transfer failed: {e}\n{}", self.logs()));
        assert_eq!(
            done.sent_sha256, done.received_sha256,
            "client {i}: corrupted"
        );
    }
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Waits (bounded) until client `i` sees the server at something other than `old`.
fn wait_moved(t: &Setup, i: usize, old: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let seen = t.seen_by(i);
        if seen != old || Instant::now() >= deadline {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn each_client_is_answered_from_the_address_it_contacted() {
    let mut t = Setup::new();
    t.s.ip(&["addr", "add", "192.168.50.11/24", "dev", &t.s_veth]);
    t.s.ip(&["addr", "add", "fd50::11/64", "dev", &t.s_veth, "nodad"]);
    // The kernel's own choice for replies to the client is the first address of each
    // family; one client per address, so at least one per family is not that choice.
    for addr in ["192.168.50.1", "192.168.50.11", "fd50::1", "fd50::11"] {
        t.add_client(addr);
    }
    for i in 0..t.clients.len() {
        t.ping_server(i, Duration::from_secs(20));
    }
    for i in 0..t.clients.len() {
        t.transfer(i, 5301 + i as u16);
        let want = t.clients[i].endpoint.clone();
        t.assert_seen_at(i, &want);
    }
}

#[test]
fn a_removed_address_falls_back_to_one_that_works() {
    let mut t = Setup::new();
    t.s.ip(&["addr", "add", "192.168.50.11/24", "dev", &t.s_veth]);
    t.s.ip(&["addr", "add", "fd50::11/64", "dev", &t.s_veth, "nodad"]);
    let v4 = t.add_client("192.168.50.11");
    let v6 = t.add_client("fd50::11");
    for i in [v4, v6] {
        t.ping_server(i, Duration::from_secs(20));
        let want = t.clients[i].endpoint.clone();
        t.assert_seen_at(i, &want);
    }
    t.s.ip(&["addr", "del", "192.168.50.11/24", "dev", &t.s_veth]);
    t.s.ip(&["addr", "del", "fd50::11/64", "dev", &t.s_veth]);
    // The clients still send to the removed address, so only the server can restore the
    // tunnel: it must stop sending from the address it no longer has.
    for (i, fallback) in [(v4, "192.168.50.1:51820"), (v6, "[fd50::1]:51820")] {
        t.ping_client(i, Duration::from_secs(20));
        let old = t.clients[i].endpoint.clone();
        let seen = wait_moved(&t, i, &old, Duration::from_secs(10));
        assert_eq!(seen, fallback, "client {i}\n{}", t.logs());
        t.ping_server(i, Duration::from_secs(10));
        t.transfer(i, 5311 + i as u16);
    }
}

#[test]
fn an_address_on_another_interface_is_answered_from() {
    let mut t = Setup::new();
    // The addresses live on another link of the server (to a host of no interest);
    // packets to them arrive, and replies leave, on the veth to the client.
    let aside = Netns::new("mha");
    let (other, _) = t.s.connect(&aside, "192.168.77.1/24", "192.168.77.2/24");
    t.s.ip(&["addr", "add", "fd77::1/64", "dev", &other, "nodad"]);
    t.c.ip(&["route", "add", "192.168.77.1/32", "via", "192.168.50.1"]);
    t.c.ip(&["route", "add", "fd77::1/128", "via", "fd50::1"]);
    let v4 = t.add_client("192.168.77.1");
    let v6 = t.add_client("fd77::1");
    for i in [v4, v6] {
        t.ping_server(i, Duration::from_secs(20));
        t.transfer(i, 5321 + i as u16);
        let want = t.clients[i].endpoint.clone();
        t.assert_seen_at(i, &want);
        t.ping_client(i, Duration::from_secs(10));
    }
}

/// A more specific route to the clients through a second link: the server's datagrams
/// follow it and leave from that link's address (the kernel's WireGuard forgets the source
/// when the route's device changes), since a router there checking source addresses would
/// drop datagrams from the first link's. Nothing of the tunnel may leave by the first link
/// any more, so the tunnel lives only if they do.
#[test]
fn a_better_route_through_another_link_moves_the_source_to_that_link() {
    let mut t = Setup::new();
    // A second link between the two hosts, on other subnets.
    let (s2, c2) = t.s.connect(&t.c, "192.168.51.1/24", "192.168.51.2/24");
    t.s.ip(&["addr", "add", "fd51::1/64", "dev", &s2, "nodad"]);
    t.c.ip(&["addr", "add", "fd51::2/64", "dev", &c2, "nodad"]);
    // Datagrams to the client's first-link address will arrive by the second link.
    for conf in ["all", "default", c2.as_str(), t.c_veth.as_str()] {
        let key = format!("net.ipv4.conf.{conf}.rp_filter=0");
        t.c.exec("sysctl", &["-q", "-w", &key]);
    }
    let v4 = t.add_client("192.168.50.1");
    let v6 = t.add_client("fd50::1");
    for i in [v4, v6] {
        t.ping_server(i, Duration::from_secs(20));
        let want = t.clients[i].endpoint.clone();
        t.assert_seen_at(i, &want);
    }
    t.s.ip(&[
        "route",
        "add",
        "192.168.50.2/32",
        "via",
        "192.168.51.2",
        "dev",
        &s2,
    ]);
    t.s.ip(&["route", "add", "fd50::2/128", "via", "fd51::2", "dev", &s2]);
    t.s.exec("nft", &["add", "table", "inet", "multihome"]);
    t.s.exec(
        "nft",
        &[
            "add",
            "chain",
            "inet",
            "multihome",
            "out",
            "{ type filter hook output priority 0 ; }",
        ],
    );
    let port = SERVER_PORT.to_string();
    t.s.exec(
        "nft",
        &[
            "add",
            "rule",
            "inet",
            "multihome",
            "out",
            "oifname",
            &t.s_veth,
            "udp",
            "sport",
            &port,
            "drop",
        ],
    );
    for (i, moved) in [(v4, "192.168.51.1:51820"), (v6, "[fd51::1]:51820")] {
        t.ping_client(i, Duration::from_secs(10));
        let old = t.clients[i].endpoint.clone();
        let seen = wait_moved(&t, i, &old, Duration::from_secs(10));
        assert_eq!(seen, moved, "client {i}\n{}", t.logs());
        t.transfer(i, 5331 + i as u16);
        t.assert_seen_at(i, moved);
    }
}

/// netns.sh, "another interface route takes precedence over an ongoing one": host 1 has
/// two links to host 2, and its peer's replies arrive on the first. A route through the
/// second link with a better metric appears; host 1's next datagram leaves by the second
/// link from that link's address (the kernel picks it), so host 2 sees host 1 there.
#[test]
fn a_route_through_another_interface_takes_over_the_source() {
    let n1 = Netns::new("rt1");
    let n2 = Netns::new("rt2");
    let (veth1, _veth2) = n1.connect(&n2, "10.0.0.1/24", "10.0.0.2/24");
    let (veth3, veth4) = n1.connect(&n2, "10.0.0.3/24", "10.0.9.4/24");
    // Host 2's end of the second link has no address of its own, as in netns.sh.
    n2.ip(&["addr", "flush", "dev", &veth4]);
    n1.ip(&["route", "flush", "dev", &veth1]);
    n1.ip(&["route", "flush", "dev", &veth3]);
    n1.ip(&[
        "route",
        "add",
        "10.0.0.0/24",
        "dev",
        &veth1,
        "src",
        "10.0.0.1",
        "metric",
        "2",
    ]);
    let (w1, w2) = (Node::start(&n1, "rt1w"), Node::start(&n2, "rt2w"));
    n1.wg_ok(&[
        "set",
        w1.ifname(),
        "listen-port",
        "51821",
        "private-key",
        w1.keys.path(),
        "peer",
        &w2.keys.public,
        "allowed-ips",
        "192.168.241.2/32",
        "endpoint",
        "10.0.0.2:51822",
    ]);
    n2.wg_ok(&[
        "set",
        w2.ifname(),
        "listen-port",
        "51822",
        "private-key",
        w2.keys.path(),
        "peer",
        &w1.keys.public,
        "allowed-ips",
        "192.168.241.1/32",
    ]);
    for (ns, node, addr) in [
        (&n1, &w1, "192.168.241.1/24"),
        (&n2, &w2, "192.168.241.2/24"),
    ] {
        ns.ip(&["addr", "add", addr, "dev", node.ifname()]);
        ns.ip(&["link", "set", node.ifname(), "mtu", "1420", "up"]);
    }
    let seen_by_2 = || {
        let text = n2.wg_ok(&["show", w2.ifname(), "endpoints"]);
        text.split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string()
    };
    let logs = || {
        format!(
            "--- host 1 ---\n{}\n--- host 2 ---\n{}",
            tail(&w1.daemon.log_text()),
            tail(&w2.daemon.log_text())
        )
    };
    assert!(
        n1.ping_until("192.168.241.2", Duration::from_secs(20)),
        "{}",
        logs()
    );
    assert_eq!(seen_by_2(), "10.0.0.1:51821", "{}", logs());

    n1.ip(&[
        "route",
        "add",
        "10.0.0.0/24",
        "dev",
        &veth3,
        "src",
        "10.0.0.3",
        "metric",
        "1",
    ]);
    for (ns, dev) in [(&n1, veth1.as_str()), (&n2, veth4.as_str())] {
        for conf in ["all", dev] {
            let key = format!("net.ipv4.conf.{conf}.rp_filter=0");
            ns.exec("sysctl", &["-q", "-w", &key]);
        }
    }
    assert!(
        n1.ping_until("192.168.241.2", Duration::from_secs(10)),
        "{}",
        logs()
    );
    // Each ping is a chance for the source to move; a few more, bounded.
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen_by_2() != "10.0.0.3:51821" && Instant::now() < deadline {
        n1.try_exec("ping", &["-c", "1", "-W", "1", "192.168.241.2"]);
    }
    assert_eq!(
        seen_by_2(),
        "10.0.0.3:51821",
        "host 1 still sends from the first link's address\n{}",
        logs()
    );
}
