//! Network namespaces, veth pairs and daemons, each cleaned up on drop.

use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique to this process and call: `prefix` + pid + counter, at most 15 bytes so it
/// is also a valid interface name.
pub fn unique_name(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id() % 100_000;
    let mut name = format!("{prefix}{pid}x{n}");
    name.truncate(15);
    name
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(prefix: &str) -> Netns {
        let name = unique_name(prefix);
        run(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// A command that runs inside this namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Runs a command in the namespace; panics with its output if it fails.
    pub fn exec(&self, program: &str, args: &[&str]) -> Output {
        run(self.command(program).args(args))
    }

    /// Runs a command in the namespace and returns its output whatever the status.
    pub fn try_exec(&self, program: &str, args: &[&str]) -> Output {
        self.command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
    }

    pub fn exec_stdout(&self, program: &str, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.exec(program, args).stdout).into_owned()
    }

    /// `ip ARGS` in the namespace.
    pub fn ip(&self, args: &[&str]) -> Output {
        run(Command::new("ip").args(["-n", &self.name]).args(args))
    }

    /// Joins two namespaces with a veth pair and gives each end an address (with prefix).
    pub fn connect(&self, other: &Netns, my_addr: &str, other_addr: &str) -> (String, String) {
        let a = unique_name("va");
        let b = unique_name("vb");
        run(Command::new("ip").args([
            "link",
            "add",
            &a,
            "netns",
            &self.name,
            "type",
            "veth",
            "peer",
            "name",
            &b,
            "netns",
            &other.name,
        ]));
        for (ns, dev, addr) in [(self, &a, my_addr), (other, &b, other_addr)] {
            let mut args = vec!["addr", "add", addr, "dev", dev.as_str()];
            if addr.contains(':') {
                args.push("nodad");
            }
            ns.ip(&args);
            ns.ip(&["link", "set", dev, "up"]);
        }
        (a, b)
    }

    /// Pings `addr` from this namespace until it answers, for at most `timeout`.
    pub fn ping_until(&self, addr: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let out = self.try_exec("ping", &["-c", "1", "-W", "1", addr]);
            if out.status.success() {
                return true;
            }
        }
        false
    }

    fn pids(&self) -> Vec<i32> {
        let out = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output();
        out.map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Daemons outlive `ip netns del`; end them first so nothing is left running.
        for pid in self.pids() {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while !self.pids().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        for pid in self.pids() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A WireGuard daemon (`PROGRAM [ARGS] IFNAME`, in the foreground) inside a namespace.
pub struct Daemon {
    pub ifname: String,
    pub child: Child,
    pub log: std::path::PathBuf,
}

pub fn socket_path(ifname: &str) -> std::path::PathBuf {
    std::path::Path::new("/var/run/wireguard").join(format!("{ifname}.sock"))
}

impl Daemon {
    /// Starts `program args... ifname` in `ns` and waits (at most 10 s) for its socket.
    pub fn start(ns: &Netns, program: &str, args: &[&str], ifname: &str) -> Daemon {
        let log = std::env::temp_dir().join(format!("{ifname}.log"));
        let file = std::fs::File::create(&log).expect("create daemon log");
        let child = ns
            .command(program)
            .args(args)
            .arg(ifname)
            .env("LOG_LEVEL", "debug")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone log"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        let mut d = Daemon {
            ifname: ifname.to_string(),
            child,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket_path(ifname).exists() {
            if let Ok(Some(status)) = d.child.try_wait() {
                panic!("{program} exited early ({status}): {}", d.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "{program} never opened its socket: {}",
                d.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(socket_path(&self.ifname));
    }
}

/// Whether namespace tests can run here (they need root); says so when not.
pub fn have_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if !root {
        eprintln!("skipping: needs root for network namespaces");
    }
    root
}

/// Runs a command (`args[0]` the program), panicking with its stderr if it fails.
pub fn sh(args: &[&str]) {
    let [program, rest @ ..] = args else {
        panic!("sh: no command");
    };
    run(Command::new(program).args(rest));
}

impl Netns {
    /// Runs `f` on a thread inside the namespace and returns its result (a panic in `f` is
    /// re-raised here). Only that thread enters the namespace; it ends with `f`.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = std::path::PathBuf::from("/run/netns").join(&self.name);
        std::thread::scope(|s| {
            s.spawn(|| {
                ferrotun_device::netns::enter_netns(&path)
                    .unwrap_or_else(|e| panic!("cannot enter {}: {e}", path.display()));
                f()
            })
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
        })
    }
}

impl Netns {
    /// The real `wg ARGS` in the namespace, bounded by [`crate::tunnel::WG_TIMEOUT`];
    /// returns its output whatever the status.
    pub fn wg<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Output {
        self.command("timeout")
            .arg(crate::tunnel::WG_TIMEOUT)
            .arg("wg")
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run wg: {e}"))
    }

    /// [`Netns::wg`] that must succeed; its stdout, trimmed.
    pub fn wg_ok(&self, args: &[&str]) -> String {
        let out = self.wg(args);
        assert!(
            out.status.success(),
            "wg {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}
