//! When and how far the daemon confines itself (the calls are in ferrotun_device::confine).
//!
//! By default, once the TUN, the UDP sockets and the configuration socket exist and before
//! any thread starts, the daemon:
//! - becomes an unprivileged user (`--user NAME`, `FERROTUN_USER`; default the system user
//!   `ferrotun` if there is one, else `nobody`),
//! - keeps only CAP_NET_ADMIN (SO_MARK for `wg set fwmark`, large socket buffers on
//!   rebinding) and, when some UDP port needs privilege in its network namespace
//!   (net.ipv4.ip_unprivileged_port_start > 1), CAP_NET_BIND_SERVICE (`wg set
//!   listen-port` below that port); the bounding set holds the same and nothing else,
//! - sets no_new_privs and installs the seccomp allow-list.
//!
//! `--disable-drop-privileges` (`FERROTUN_DISABLE_DROP_PRIVILEGES=1`) runs it unconfined,
//! as root with every capability. When confinement is wanted but cannot be had, the daemon
//! does not start: nobody should believe it confined when it is not.

use anyhow::{anyhow, bail};
use ferrotun_device::confine::{
    self, drop_privileges, lookup_user, refused, Capability, Identity, Janitor, LinkedPath,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const ENV_USER: &str = "FERROTUN_USER";
pub const ENV_DISABLE: &str = "FERROTUN_DISABLE_DROP_PRIVILEGES";
pub const OPT_DISABLE: &str = "--disable-drop-privileges";
/// The dedicated user packagers create; `nobody` when it does not exist.
pub const DEFAULT_USER: &str = "ferrotun";
const FALLBACK_USER: &str = "nobody";

/// What the command line and environment asked for.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub user: Option<String>,
    pub disabled: bool,
}

impl Options {
    pub fn from_env() -> Options {
        Options {
            user: std::env::var(ENV_USER).ok().filter(|u| !u.is_empty()),
            disabled: std::env::var(ENV_DISABLE).is_ok_and(|v| v == "1" || v == "yes"),
        }
    }

    /// Passes the choice on to the re-executed background daemon.
    pub fn to_env(&self) -> Vec<(&'static str, String)> {
        let mut env = Vec::new();
        if let Some(user) = &self.user {
            env.push((ENV_USER, user.clone()));
        }
        if self.disabled {
            env.push((ENV_DISABLE, "1".to_string()));
        }
        env
    }
}

/// Confinement as it will be applied (`plan` returns None when it is disabled).
pub struct Plan {
    pub user: Identity,
    pub keep: Vec<Capability>,
}

fn refusal(why: impl std::fmt::Display) -> anyhow::Error {
    anyhow!(
        "cannot confine the daemon: {why}; to run it unconfined (as root, no system call \
         filter) pass {OPT_DISABLE} or set {ENV_DISABLE}=1"
    )
}

/// Resolves the options into a plan, or refuses (naming the opt-out) when confinement is
/// wanted but impossible here.
pub fn plan(options: &Options) -> anyhow::Result<Option<Plan>> {
    if options.disabled {
        return Ok(None);
    }
    if confine::peer::own_uid() != 0 {
        return Err(refusal("it was not started as root"));
    }
    if !confine::seccomp_available() {
        return Err(refusal("this kernel has no seccomp filtering"));
    }
    let user = match &options.user {
        Some(name) => lookup_user(name).map_err(refusal)?,
        None => match lookup_user(DEFAULT_USER) {
            Ok(user) => user,
            Err(_) => lookup_user(FALLBACK_USER).map_err(|e| {
                refusal(format!(
                    "neither user {DEFAULT_USER:?} nor {FALLBACK_USER:?} is usable ({e})"
                ))
            })?,
        },
    };
    Ok(Some(Plan {
        user,
        keep: kept_capabilities(),
    }))
}

/// CAP_NET_ADMIN always; CAP_NET_BIND_SERVICE only if some port is privileged in this
/// network namespace (otherwise `wg set listen-port` can bind any port without it). Where
/// the sysctl cannot be read (no IPv4), it is kept: better one capability more than a
/// `wg set listen-port` that fails.
fn kept_capabilities() -> Vec<Capability> {
    let start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok());
    let mut keep = vec![Capability::CAP_NET_ADMIN];
    if !matches!(start, Some(port) if port <= 1) {
        keep.push(Capability::CAP_NET_BIND_SERVICE);
    }
    keep
}

/// The configuration socket's file, and how to remove it at exit.
pub struct SocketFile {
    path: PathBuf,
    linked: Option<LinkedPath>,
    janitor: Option<Janitor>,
}

impl SocketFile {
    pub fn new(path: &Path) -> SocketFile {
        SocketFile {
            path: path.to_path_buf(),
            linked: LinkedPath::open(path).ok(),
            janitor: None,
        }
    }

    /// False once someone removed (or replaced) the file: wireguard-go exits then too.
    pub fn still_there(&self) -> bool {
        match &self.linked {
            Some(l) => l.still_linked(),
            None => self.path.exists(),
        }
    }

    /// Removes the file, unless it is no longer ours.
    pub fn remove(self) {
        if let Some(janitor) = self.janitor {
            if let Err(e) = janitor.remove_now(Duration::from_secs(5)) {
                tracing::warn!("cannot remove {}: {e}", self.path.display());
            }
        } else if self.still_there() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Confines the process; must run before the first thread starts. On error the process
/// may be half confined: the caller stops.
pub fn apply(plan: &Plan, socket: &mut SocketFile) -> anyhow::Result<()> {
    let id = socket
        .linked
        .as_ref()
        .map(LinkedPath::id)
        .ok_or_else(|| refusal(format!("cannot open {}", socket.path.display())))?;
    socket.janitor = Some(Janitor::spawn(&socket.path, id).map_err(refusal)?);
    drop_privileges(&plan.user, &plan.keep).map_err(refusal)?;
    confine::seccomp::install().map_err(refusal)?;
    let kept: Vec<String> = plan.keep.iter().map(|c| c.to_string()).collect();
    tracing::info!(
        "confined: user {} (uid {}, gid {}), capabilities {}, no_new_privs, seccomp allow-list",
        plan.user.name,
        plan.user.uid,
        plan.user.gid,
        kept.join(" ")
    );
    Ok(())
}

/// Logs system calls the filter refused since the last call (they returned EPERM).
pub fn report_refused() {
    if let Some((count, first)) = refused::take_new() {
        let names: Vec<String> = first.iter().map(|n| n.to_string()).collect();
        tracing::warn!(
            "seccomp refused {count} system call(s) ({} refused so far); first refusals of \
             system call number(s) [{}] on {}: the allow-list is in \
             crates/device/src/confine/syscalls.rs",
            refused::total(),
            names.join(", "),
            std::env::consts::ARCH
        );
    }
}

/// Refuses contradictory options: a user to switch to, and no switch at all.
pub fn check_args(options: &Options) -> anyhow::Result<()> {
    if options.disabled && options.user.is_some() {
        bail!("{OPT_DISABLE} and --user/{ENV_USER} exclude each other");
    }
    Ok(())
}
