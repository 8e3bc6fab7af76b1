//! Everything the demo creates, remembered as it is created, so that all of it can be removed
//! at the end, after a failure, after Ctrl-C, and (through `Drop`) after a panic.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::bringup::{tear_down, Teardown};
use super::run::{check, ip, run, SHORT};
use super::topology::Names;

/// How long daemons get to exit after SIGTERM before they get SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(3);

pub struct Lab {
    pub names: Names,
    pub exe: PathBuf,
    pub namespaces: Vec<String>,
    pub peers: Vec<Teardown>,
    pub dir_created: bool,
    /// Cleared once cleaned up, or when the user asked to keep everything.
    armed: bool,
}

impl Lab {
    pub fn new(names: Names, exe: PathBuf) -> Lab {
        Lab {
            names,
            exe,
            namespaces: Vec::new(),
            peers: Vec::new(),
            dir_created: false,
            armed: true,
        }
    }

    /// Leaves everything in place; returns the commands that remove it.
    pub fn keep(&mut self) -> Vec<String> {
        self.armed = false;
        let mut commands = Vec::new();
        for undo in self.peers.iter().rev() {
            match undo {
                Teardown::Down { ns, conf } => commands.push(format!(
                    "ip netns exec {ns} {} down {}",
                    self.exe.display(),
                    conf.display()
                )),
                Teardown::Manual { ns, iface, .. } => {
                    commands.push(format!("ip -n {ns} link del dev {iface}"))
                }
            }
        }
        for ns in &self.namespaces {
            commands.push(format!(
                "ip netns pids {ns} | xargs -r kill; ip netns del {ns}"
            ));
        }
        if self.dir_created {
            commands.push(format!("rm -r {}", self.names.dir.display()));
        }
        commands
    }

    /// Removes everything; returns what could not be removed (empty when all went).
    pub fn clean_up(&mut self) -> Vec<String> {
        self.armed = false;
        let mut problems = Vec::new();
        // Orderly first (runs PostDown, lets daemons remove their sockets), then by force.
        for undo in std::mem::take(&mut self.peers).iter().rev() {
            for problem in tear_down(&self.exe, undo) {
                // Only worth reporting if the forced removal below also fails.
                tracing::debug!("orderly teardown: {problem}");
            }
        }
        for ns in std::mem::take(&mut self.namespaces).iter().rev() {
            if let Err(e) = stop_processes(ns) {
                problems.push(e);
            }
            if let Err(e) = check(&mut ip(&["netns", "del", ns]), SHORT, None) {
                problems.push(e.to_string());
            }
        }
        for iface in [&self.names.if_a, &self.names.if_b] {
            let socket = ferrotun_daemon::server::socket_path(iface);
            match std::fs::remove_file(&socket) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => problems.push(format!("cannot remove {}: {e}", socket.display())),
            }
        }
        if self.dir_created {
            self.dir_created = false;
            if let Err(e) = std::fs::remove_dir_all(&self.names.dir) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    problems.push(format!("cannot remove {}: {e}", self.names.dir.display()));
                }
            }
        }
        problems
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.armed {
            for problem in self.clean_up() {
                // Nowhere left to report a failure to write this.
                let _ = writeln!(std::io::stderr(), "ferrotun demo: cleanup: {problem}");
            }
        }
    }
}

/// The processes in namespace `ns` other than this one (whose threads may have visited it).
fn pids_in(ns: &str) -> Result<Vec<String>, String> {
    let out = check(&mut ip(&["netns", "pids", ns]), SHORT, None).map_err(|e| e.to_string())?;
    let me = std::process::id().to_string();
    Ok(out
        .split_whitespace()
        .filter(|p| p.bytes().all(|b| b.is_ascii_digit()) && *p != me)
        .map(str::to_string)
        .collect())
}

fn signal(sig: &str, pids: &[String]) {
    // The shell's own `kill`: no dependency on procps; a pid that just exited is fine.
    let mut cmd = std::process::Command::new("sh");
    cmd.args([
        "-c",
        &format!("kill -{sig} \"$@\" 2>/dev/null; true"),
        "kill",
    ])
    .args(pids);
    let _ = run(&mut cmd, SHORT, None);
}

/// Daemons survive `ip netns del` (the namespace lives on while a process is in it), so
/// every process in the namespace is stopped first: SIGTERM, then SIGKILL after a grace.
fn stop_processes(ns: &str) -> Result<(), String> {
    let mut pids = pids_in(ns)?;
    if pids.is_empty() {
        return Ok(());
    }
    signal("TERM", &pids);
    let start = Instant::now();
    let mut killed = false;
    while !pids.is_empty() {
        if start.elapsed() > TERM_GRACE && !killed {
            signal("KILL", &pids);
            killed = true;
        }
        if start.elapsed() > TERM_GRACE * 2 {
            return Err(format!(
                "processes {} in namespace {ns} would not exit",
                pids.join(" ")
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
        pids = pids_in(ns)?;
    }
    Ok(())
}
