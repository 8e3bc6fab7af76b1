//! A mesh lab: a hub namespace with a bridge, a 3-member etcd cluster on the bridge (one
//! process per member, each on its own address), and node namespaces plugged into the
//! bridge, each running `ferrotun mesh up` in the foreground. Everything goes on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{ferrotun_bin, require_tool, unique_name, Netns};

pub const MEMBERS: usize = 3;

pub fn member_ip(i: usize) -> String {
    format!("10.99.0.{}", i + 1)
}

pub struct Etcd {
    pub hub: Netns,
    pub bridge: String,
    pub dir: PathBuf,
    token: String,
    members: Vec<Option<Child>>,
    /// With TLS: the directory holding ca.pem, server.pem/-key.pem, client.pem/-key.pem.
    pub tls: Option<PathBuf>,
}

impl Etcd {
    /// Starts the three members and waits (bounded) until the cluster answers.
    pub fn start() -> Etcd {
        Etcd::start_with(false)
    }

    /// As [`Etcd::start`]; with `tls`, clients must use TLS and present a certificate.
    pub fn start_with(tls: bool) -> Etcd {
        require_tool("etcd");
        require_tool("etcdctl");
        let hub = Netns::new("mh");
        let bridge = unique_name("br");
        hub.ip(&["link", "add", &bridge, "type", "bridge"]);
        hub.ip(&["link", "set", &bridge, "up"]);
        for i in 0..MEMBERS {
            hub.ip(&[
                "addr",
                "add",
                &format!("{}/16", member_ip(i)),
                "dev",
                &bridge,
            ]);
        }
        let token = unique_name("tok");
        let dir = std::env::temp_dir().join(unique_name("etcd"));
        std::fs::create_dir_all(&dir).unwrap();
        let tls = tls.then(|| {
            let t = dir.join("tls");
            std::fs::create_dir_all(&t).unwrap();
            let ips: Vec<std::net::IpAddr> = (0..MEMBERS)
                .map(|i| member_ip(i).parse().unwrap())
                .collect();
            ferrotun_testkit::certs::make_test_certs(&t, &ips);
            t
        });
        let mut etcd = Etcd {
            hub,
            bridge,
            dir,
            token,
            members: (0..MEMBERS).map(|_| None).collect(),
            tls,
        };
        for i in 0..MEMBERS {
            etcd.start_member(i);
        }
        assert!(
            etcd.wait_healthy(Duration::from_secs(30)),
            "etcd cluster never became healthy: {}",
            etcd.logs()
        );
        etcd
    }

    fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The TLS flags for etcdctl and `ferrotun mesh up` (the same names, bar a prefix).
    pub fn tls_args(&self, prefix: &str) -> Vec<String> {
        let Some(t) = &self.tls else {
            return Vec::new();
        };
        [
            ("cacert", "ca.pem"),
            ("cert", "client.pem"),
            ("key", "client-key.pem"),
        ]
        .iter()
        .map(|(flag, file)| format!("--{prefix}{flag}={}", t.join(file).display()))
        .collect()
    }

    pub fn endpoints(&self) -> String {
        let scheme = self.scheme();
        (0..MEMBERS)
            .map(|i| format!("{scheme}://{}:2379", member_ip(i)))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// (Re)starts member `i` with its data directory (a restart rejoins the same cluster).
    pub fn start_member(&mut self, i: usize) {
        assert!(self.members[i].is_none(), "member {i} already runs");
        let cluster = (0..MEMBERS)
            .map(|j| format!("m{j}=http://{}:2380", member_ip(j)))
            .collect::<Vec<_>>()
            .join(",");
        let ip = member_ip(i);
        let scheme = self.scheme();
        let mut tls_flags: Vec<String> = Vec::new();
        if let Some(t) = &self.tls {
            tls_flags = vec![
                format!("--cert-file={}", t.join("server.pem").display()),
                format!("--key-file={}", t.join("server-key.pem").display()),
                format!("--trusted-ca-file={}", t.join("ca.pem").display()),
                "--client-cert-auth".to_string(),
            ];
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("m{i}.log")))
            .unwrap();
        let child = self
            .hub
            .command("etcd")
            .args([
                "--name",
                &format!("m{i}"),
                "--data-dir",
                &self.dir.join(format!("m{i}")).to_string_lossy(),
                "--listen-client-urls",
                &format!("{scheme}://{ip}:2379"),
                "--advertise-client-urls",
                &format!("{scheme}://{ip}:2379"),
                "--listen-peer-urls",
                &format!("http://{ip}:2380"),
                "--initial-advertise-peer-urls",
                &format!("http://{ip}:2380"),
                "--initial-cluster",
                &cluster,
                "--initial-cluster-token",
                &self.token,
                "--initial-cluster-state",
                "new",
                "--listen-metrics-urls",
                &format!("http://{ip}:2381"),
            ])
            .args(&tls_flags)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot start etcd");
        self.members[i] = Some(child);
    }

    pub fn kill_member(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops every running member (SIGSTOP) until the guard is dropped (SIGCONT): etcd
    /// answers nobody, as when it is cut off, and its leases run on when it resumes.
    pub fn freeze(&self) -> Frozen<'_> {
        self.signal_members("STOP");
        Frozen(self)
    }

    fn signal_members(&self, signal: &str) {
        for child in self.members.iter().flatten() {
            let _ = Command::new("kill")
                .args([format!("-{signal}"), child.id().to_string()])
                .status();
        }
    }

    pub fn etcdctl(&self, args: &[&str]) -> std::process::Output {
        self.hub
            .command("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &self.endpoints(), "--command-timeout=5s"])
            .args(self.tls_args(""))
            .args(args)
            .output()
            .expect("cannot run etcdctl")
    }

    pub fn wait_healthy(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self
                .etcdctl(&["put", "/health-probe", "1"])
                .status
                .success()
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        false
    }

    pub fn logs(&self) -> String {
        (0..MEMBERS)
            .map(|i| {
                let t =
                    std::fs::read_to_string(self.dir.join(format!("m{i}.log"))).unwrap_or_default();
                let tail: Vec<&str> = t.lines().rev().take(15).collect();
                format!(
                    "--- m{i}\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// A counter from member `i`'s metrics endpoint (summed over labels).
    pub fn metric(&self, i: usize, name: &str) -> f64 {
        let out = self.hub.try_exec(
            "curl",
            &["-s", &format!("http://{}:2381/metrics", member_ip(i))],
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| {
                l.starts_with(name)
                    && (l[name.len()..].starts_with(' ') || l[name.len()..].starts_with('{'))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for i in 0..MEMBERS {
            self.kill_member(i);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Members stopped by [`Etcd::freeze`]; they continue when this goes, also on a panic.
pub struct Frozen<'a>(&'a Etcd);

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        self.0.signal_members("CONT");
    }
}

/// One node: a namespace on the hub's bridge (underlay address 10.99.1.N) and its agent.
pub struct Node {
    pub ns: Netns,
    pub ifname: String,
    pub state: PathBuf,
    pub log: PathBuf,
    pub agent: Option<Child>,
    pub args: Vec<String>,
}

impl Node {
    /// Plugs a new namespace into the bridge; `n` (1..) picks its underlay address.
    pub fn new(etcd: &Etcd, n: u32, ifname: &str) -> Node {
        let ns = Netns::new("mn");
        let outer = unique_name("vh");
        let inner = unique_name("vn");
        etcd.hub.ip(&[
            "link", "add", &outer, "type", "veth", "peer", "name", &inner, "netns", &ns.name,
        ]);
        etcd.hub
            .ip(&["link", "set", &outer, "master", &etcd.bridge, "up"]);
        ns.ip(&[
            "addr",
            "add",
            &format!("10.99.{}.{}/16", 1 + n / 250, n % 250 + 1),
            "dev",
            &inner,
        ]);
        ns.ip(&["link", "set", &inner, "up"]);
        let state = std::env::temp_dir().join(unique_name("mst"));
        let log = std::env::temp_dir().join(format!("{}.log", unique_name("mlog")));
        Node {
            ns,
            ifname: ifname.to_string(),
            state,
            log,
            agent: None,
            args: Vec::new(),
        }
    }

    /// Starts `ferrotun mesh up MESH --interface IFNAME ... extra`.
    pub fn up(&mut self, mesh: &str, etcd: &Etcd, extra: &[&str]) {
        let mut args: Vec<String> = [
            "mesh",
            "up",
            mesh,
            "--interface",
            &self.ifname,
            "--state-dir",
            &self.state.to_string_lossy(),
            "--etcd",
            &etcd.endpoints(),
            "--cidr",
            "10.77.0.0/16",
            "--cidr6",
            "fd77::/64",
            "--ttl",
            "3",
            "--grace",
            "60",
            "--keepalive",
            "0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        self.args = args;
        self.start();
    }

    /// Starts (or restarts) the agent with the same arguments.
    pub fn start(&mut self) {
        assert!(self.agent.is_none());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = self
            .ns
            .command(ferrotun_bin())
            .args(&self.args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot start ferrotun mesh up");
        self.agent = Some(child);
    }

    pub fn kill_agent(&mut self) {
        if let Some(mut c) = self.agent.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The agent's process (not the `ip netns exec` wrapper, which execs it: same pid).
    pub fn agent_pid(&self) -> u32 {
        self.agent.as_ref().expect("agent runs").id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The agent's status file, once it has one.
    pub fn status(&self) -> Option<serde_json::Value> {
        let text = std::fs::read(self.state.join("status.json")).ok()?;
        serde_json::from_slice(&text).ok()
    }

    pub fn address(&self) -> Option<String> {
        let s = self.status()?;
        let a = s["address"].as_str()?;
        (!a.is_empty()).then(|| a.to_string())
    }

    pub fn address6(&self) -> Option<String> {
        Some(self.status()?["address6"].as_str()?.to_string())
    }

    pub fn wait_address(&self, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(a) = self.address() {
                return a;
            }
            assert!(
                Instant::now() < deadline,
                "no address in time: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn public_key(&self) -> String {
        // The agent writes its key first thing; a just-started one may not have yet.
        let path = self.state.join("private.key");
        assert!(
            within(Duration::from_secs(10), || path.exists()).is_some(),
            "no key: {}",
            self.log_text()
        );
        let key = std::fs::read_to_string(&path).unwrap();
        let out = self
            .ns
            .command(ferrotun_bin())
            .arg("pubkey")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(key.as_bytes())?;
                c.wait_with_output()
            })
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Public keys of the peers on the interface, from `wg show IF peers`.
    pub fn peers(&self) -> Vec<String> {
        let out = self
            .ns
            .try_exec(ferrotun_bin(), &["show", &self.ifname, "peers"]);
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }

    /// One ping with a 1 s wait.
    pub fn ping_once(&self, addr: &str) -> bool {
        self.ns
            .try_exec("ping", &["-c", "1", "-W", "1", addr])
            .status
            .success()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill_agent();
        let _ = std::fs::remove_dir_all(&self.state);
        let _ = std::fs::remove_file(&self.log);
        // The daemon and the namespace go with `self.ns`.
    }
}

/// Waits (bounded) until `cond` holds, polling every 100 ms; returns the time it took.
pub fn within(timeout: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if cond() {
            return Some(start.elapsed());
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn ferrotun_mesh_ifname() -> String {
    unique_name("fm")
}

pub fn run(cmd: &mut Command) -> std::process::Output {
    cmd.output().expect("cannot run")
}
