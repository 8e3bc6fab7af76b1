//! Two namespaces joined by a veth pair, a WireGuard daemon in each, configured with the
//! real `wg` tool: the set-up every interop test starts from.

use crate::{ferrotun_bin, require_tool, unique_name, Daemon, Netns};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Seconds any one `wg` command may take.
pub const WG_TIMEOUT: &str = "20";

/// The WireGuard implementations the daemon is tested against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Impl {
    Ferrotun,
    WireguardGo,
    Boringtun,
}

impl Impl {
    /// A short tag for interface and namespace names.
    pub fn tag(self) -> &'static str {
        match self {
            Impl::Ferrotun => "ft",
            Impl::WireguardGo => "wgo",
            Impl::Boringtun => "bt",
        }
    }

    /// Starts this implementation's daemon for `ifname` in `ns`, in the foreground.
    pub fn start(self, ns: &Netns, ifname: &str) -> Daemon {
        self.start_with(ns, ifname, &[])
    }

    /// [`Impl::start`] with more arguments for ferrotun (`--metrics ADDR:PORT`); the
    /// other implementations take none.
    pub fn start_with(self, ns: &Netns, ifname: &str, extra: &[&str]) -> Daemon {
        match self {
            Impl::Ferrotun => {
                let mut args = vec!["-f"];
                args.extend_from_slice(extra);
                Daemon::start(ns, ferrotun_bin(), &args, ifname)
            }
            Impl::WireguardGo => Daemon::start(ns, &require_tool("wireguard-go"), &["-f"], ifname),
            // Without a terminal boringtun needs both flags, or it exits at once.
            Impl::Boringtun => Daemon::start(
                ns,
                &require_tool("boringtun-cli"),
                &["-f", "--disable-drop-privileges", "-t", "1"],
                ifname,
            ),
        }
    }
}

/// A key pair made by the real `wg`; the private key also sits in a file for
/// `wg set private-key`, removed on drop.
pub struct Keypair {
    pub private: String,
    pub public: String,
    pub file: PathBuf,
}

fn wg_stdout(args: &[&str], input: Option<&str>) -> String {
    let mut child = Command::new(require_tool("wg"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wg");
    if let Some(text) = input {
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("wg stdin")
            .write_all(text.as_bytes())
            .expect("write to wg");
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().expect("wait for wg");
    assert!(
        out.status.success(),
        "wg {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Keypair {
    pub fn generate() -> Keypair {
        let private = wg_stdout(&["genkey"], None);
        let public = wg_stdout(&["pubkey"], Some(&format!("{private}\n")));
        let file = std::env::temp_dir().join(format!("{}.key", unique_name("key")));
        std::fs::write(&file, format!("{private}\n")).expect("write private key file");
        Keypair {
            private,
            public,
            file,
        }
    }

    pub fn path(&self) -> &str {
        self.file.to_str().expect("temp paths are UTF-8")
    }
}

impl Drop for Keypair {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
}

/// The addresses of one side. Both namespaces are private to the test, so every test can
/// use the same numbers.
#[derive(Clone, Copy, Debug)]
pub struct Addrs {
    pub outer: &'static str,
    pub inner4: &'static str,
    pub inner6: &'static str,
    pub port: u16,
}

pub const ADDRS_A: Addrs = Addrs {
    outer: "192.168.241.1",
    inner4: "10.241.0.1",
    inner6: "fd00:241::1",
    port: 51820,
};
pub const ADDRS_B: Addrs = Addrs {
    outer: "192.168.241.2",
    inner4: "10.241.0.2",
    inner6: "fd00:241::2",
    port: 51821,
};

/// One end of the tunnel. Fields drop in order: the daemon before its namespace.
pub struct Side {
    pub daemon: Daemon,
    pub ns: Netns,
    pub imp: Impl,
    pub keys: Keypair,
    pub addrs: Addrs,
    /// This side's end of the veth pair.
    pub veth: String,
}

impl Side {
    pub fn ifname(&self) -> &str {
        &self.daemon.ifname
    }

    /// `wg ARGS` in this side's namespace, bounded in time (a hung daemon would block wg
    /// forever); panics with wg's output on failure.
    pub fn wg(&self, args: &[&str]) -> Output {
        let mut full = vec![WG_TIMEOUT, "wg"];
        full.extend_from_slice(args);
        self.ns.exec("timeout", &full)
    }

    /// Points this side's peer `public` at `endpoint` (a relay, a new address).
    pub fn set_peer_endpoint(&self, public: &str, endpoint: std::net::SocketAddr) {
        let ifname = self.ifname().to_string();
        let endpoint = endpoint.to_string();
        self.wg(&["set", &ifname, "peer", public, "endpoint", &endpoint]);
    }

    /// `wg show IF WHAT`, trimmed.
    pub fn show(&self, what: &str) -> String {
        let ifname = self.ifname().to_string();
        let out = self.wg(&["show", &ifname, what]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Bytes (received, sent) from the peer with `public` key, per `wg show transfer`.
    pub fn transfer_with(&self, public: &str) -> (u64, u64) {
        let text = self.show("transfer");
        let line = text
            .lines()
            .find(|l| l.starts_with(public))
            .unwrap_or_else(|| panic!("no peer {public} in wg show transfer: {text}"));
        let mut fields = line.split_whitespace().skip(1).map(|f| {
            f.parse::<u64>()
                .unwrap_or_else(|_| panic!("bad transfer line {line:?}"))
        });
        match (fields.next(), fields.next()) {
            (Some(rx), Some(tx)) => (rx, tx),
            _ => panic!("bad transfer line {line:?}"),
        }
    }

    /// The daemon's log, for failure messages.
    pub fn log(&self) -> String {
        let text = self.daemon.log_text();
        // boringtun logs to its own file, whatever stdout is.
        let tail: String = text
            .lines()
            .rev()
            .take(60)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        format!(
            "--- {:?} {} log (last lines) ---\n{tail}",
            self.imp,
            self.ifname()
        )
    }

    /// Gives the interface its inner addresses and brings it up.
    fn address(&self) {
        let ifname = self.ifname().to_string();
        let v4 = format!("{}/24", self.addrs.inner4);
        let v6 = format!("{}/64", self.addrs.inner6);
        self.ns.ip(&["addr", "add", &v4, "dev", &ifname]);
        self.ns.ip(&["addr", "add", &v6, "dev", &ifname, "nodad"]);
        self.ns.ip(&["link", "set", &ifname, "mtu", "1420", "up"]);
    }
}

/// A configured tunnel between two namespaces. Side `a` knows `b`'s endpoint and `b` does
/// not know `a`'s, so `a` must send first (it initiates) and `b` learns `a`'s endpoint
/// from the handshake.
pub struct Tunnel {
    pub a: Side,
    pub b: Side,
}

fn side(imp: Impl, ns: Netns, veth: String, addrs: Addrs, extra: &[&str]) -> Side {
    let ifname = unique_name(imp.tag());
    let daemon = imp.start_with(&ns, &ifname, extra);
    Side {
        daemon,
        ns,
        imp,
        keys: Keypair::generate(),
        addrs,
        veth,
    }
}

impl Tunnel {
    /// Starts `initiator` in one namespace and `responder` in another and configures both
    /// with `wg set`.
    pub fn new(initiator: Impl, responder: Impl) -> Tunnel {
        Tunnel::with_args(initiator, responder, &[])
    }

    /// [`Tunnel::new`] with more arguments for side `a`'s daemon (see [`Impl::start_with`]).
    pub fn with_args(initiator: Impl, responder: Impl, a_args: &[&str]) -> Tunnel {
        let ns_a = Netns::new("tna");
        let ns_b = Netns::new("tnb");
        let outer_a = format!("{}/24", ADDRS_A.outer);
        let outer_b = format!("{}/24", ADDRS_B.outer);
        let (veth_a, veth_b) = ns_a.connect(&ns_b, &outer_a, &outer_b);
        let a = side(initiator, ns_a, veth_a, ADDRS_A, a_args);
        let b = side(responder, ns_b, veth_b, ADDRS_B, &[]);
        let t = Tunnel { a, b };
        let endpoint_b = format!("{}:{}", ADDRS_B.outer, ADDRS_B.port);
        configure(&t.a, &t.b, Some(&endpoint_b));
        configure(&t.b, &t.a, None);
        t.a.address();
        t.b.address();
        t
    }

    /// Both daemons' logs, for failure messages.
    pub fn logs(&self) -> String {
        format!("{}\n{}", self.a.log(), self.b.log())
    }

    /// Pings `to`'s inner address (v4 or v6) from `from`, for at most `timeout`.
    pub fn ping(&self, from: &Side, addr: &str, timeout: Duration) {
        assert!(
            from.ns.ping_until(addr, timeout),
            "no answer to ping {addr} from {:?} within {timeout:?}\n{}",
            from.imp,
            self.logs()
        );
    }
}

/// `wg set` on `me`: my key and port, and `peer` with its inner addresses.
fn configure(me: &Side, peer: &Side, endpoint: Option<&str>) {
    let port = me.addrs.port.to_string();
    let allowed = format!("{}/32,{}/128", peer.addrs.inner4, peer.addrs.inner6);
    let ifname = me.ifname().to_string();
    let mut args = vec![
        "set",
        &ifname,
        "listen-port",
        &port,
        "private-key",
        me.keys.path(),
        "peer",
        &peer.keys.public,
        "allowed-ips",
        &allowed,
    ];
    if let Some(ep) = endpoint {
        args.extend(["endpoint", ep]);
    }
    me.wg(&args);
}
