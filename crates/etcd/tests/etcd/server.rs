//! A real etcd for a test: its own process on loopback with free ports and a temporary data
//! directory, killed (by its PID) and cleaned up on drop, also when the test fails.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ferrotun_etcd::{Client, ConnectOptions};

/// How long a member may take to answer after it starts.
const START_WAIT: Duration = Duration::from_secs(15);

/// A directory under the system's temporary one, unique to this test process and call,
/// removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(what: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("ferrotun-etcd-{what}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("cannot create a temporary directory");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `n` distinct free loopback ports (held together while picked, so they differ).
pub fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("cannot bind loopback"))
        .collect();
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// What to start: one member, or one of several (`cluster` names all of them).
pub struct Member {
    pub name: String,
    pub client_port: u16,
    pub peer_port: u16,
}

impl Member {
    pub fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }
}

/// One etcd process.
pub struct Etcd {
    child: Option<Child>,
    pub endpoint: String,
    /// The member's data directory and log, removed on drop (after the process).
    _dir: TempDir,
    log: PathBuf,
}

impl Etcd {
    /// A single-member cluster on plain HTTP, answering once this returns.
    /// A client of this member with default options (bounded: the test fails rather than
    /// hang when the member does not answer).
    pub async fn client(&self) -> Client {
        crate::within(
            "connect",
            Client::connect(&self.endpoint, ConnectOptions::new()),
        )
        .await
        .expect("connect")
    }

    pub async fn start() -> Etcd {
        Etcd::start_with(&[]).await
    }

    /// A single-member cluster with extra flags; https if `--cert-file` is among them
    /// (then the caller waits for it to answer).
    pub async fn start_with(extra: &[String]) -> Etcd {
        let ports = free_ports(2);
        let member = Member {
            name: "solo".into(),
            client_port: ports[0],
            peer_port: ports[1],
        };
        let cluster = format!("solo={}", member.peer_url());
        let etcd = Etcd::spawn(&member, &cluster, extra);
        if !extra.iter().any(|f| f.starts_with("--cert-file")) {
            etcd.wait_ready().await;
        }
        etcd
    }

    /// Starts one member of the cluster `cluster` ("name=peer-url,..."), without waiting.
    pub fn spawn(member: &Member, cluster: &str, extra: &[String]) -> Etcd {
        require_etcd();
        let dir = TempDir::new(&member.name);
        let scheme = if extra.iter().any(|f| f.starts_with("--cert-file")) {
            "https"
        } else {
            "http"
        };
        let endpoint = format!("{scheme}://127.0.0.1:{}", member.client_port);
        let log = dir.0.join("etcd.log");
        let out = std::fs::File::create(&log).expect("cannot create the etcd log");
        let child = Command::new("etcd")
            .arg("--name")
            .arg(&member.name)
            .arg("--data-dir")
            .arg(dir.0.join("data"))
            .args(["--listen-client-urls", &endpoint])
            .args(["--advertise-client-urls", &endpoint])
            .args(["--listen-peer-urls", &member.peer_url()])
            .args(["--initial-advertise-peer-urls", &member.peer_url()])
            .args(["--initial-cluster", cluster])
            .args(["--initial-cluster-state", "new"])
            // The same for every member of one cluster, and unique to it.
            .args(["--initial-cluster-token", cluster])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("cannot start etcd");
        Etcd {
            child: Some(child),
            endpoint,
            _dir: dir,
            log,
        }
    }

    /// Waits (bounded) until a plain-HTTP member answers a read.
    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + START_WAIT;
        loop {
            let attempt = tokio::time::timeout(Duration::from_secs(1), async {
                let options = ConnectOptions::new().with_connect_timeout(Duration::from_secs(1));
                let client = Client::connect(&self.endpoint, options).await?;
                client.get("probe").await
            })
            .await;
            if let Ok(Ok(_)) = attempt {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "etcd {} never answered: {attempt:?}\n{}",
                self.endpoint,
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// etcdctl against this member (plain HTTP), bounded.
    pub fn etcdctl(&self, args: &[&str]) -> Output {
        Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &self.endpoint, "--command-timeout=5s"])
            .args(args)
            .output()
            .expect("cannot run etcdctl")
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the member now (SIGKILL to its PID).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}

fn require_etcd() {
    let found = |tool: &str| {
        std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false)
    };
    assert!(
        found("etcd") && found("etcdctl"),
        "these tests need etcd and etcdctl (Debian: apt-get install etcd-server etcd-client)"
    );
}

/// Asserts etcdctl succeeded, showing its output when not.
pub fn ok(out: Output) -> String {
    assert!(out.status.success(), "etcdctl failed: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}
