//! Bringing a peer up from its wg-quick file, and taking it down again.
//!
//! The real way is `ferrotun up FILE` run inside the peer's namespace, exactly what a user
//! types. A build without `up` gets the same result by hand: start the daemon, send the
//! file's wg part over the configuration socket (which lives in /var/run/wireguard, shared by
//! every namespace, so this process reaches it from where it is), and do the addresses, link,
//! routes and PostUp hooks with `ip` in the namespace, as wg-quick would.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferrotun_device::Cancel;

use super::error::DemoError;
use super::run::{check, in_netns, ip, run, SHORT};
use ferrotun_daemon::DEFAULT_MTU;
use ferrotun_uapi::config::QuickConfig;
use ferrotun_uapi::Client;

/// `up` starts a daemon and runs hooks; generous, yet bounded.
const UP_LIMIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `ferrotun up FILE`.
    Up,
    /// Daemon + configuration socket + `ip`, for builds without `up`.
    Manual,
}

/// How to undo one peer; recorded before the peer is started, so a half-done start is
/// undone too.
#[derive(Debug, Clone)]
pub enum Teardown {
    Down {
        ns: String,
        conf: PathBuf,
    },
    Manual {
        ns: String,
        iface: String,
        post_down: Vec<String>,
    },
}

/// Whether this build has `up`. Without it, `up` falls through to the bare daemon, whose
/// answer to `--help` is its own usage line; anything else is taken as `up` being there.
pub fn detect(exe: &Path, cancel: &Cancel) -> Result<Method, DemoError> {
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["up", "--help"]);
    let done = run(&mut cmd, SHORT, Some(cancel))?;
    let daemon_usage = ferrotun_daemon::usage("");
    let signature = daemon_usage.trim_start_matches("Usage: ").trim();
    if done.output.contains(signature) {
        Ok(Method::Manual)
    } else {
        Ok(Method::Up)
    }
}

/// Brings up the peer described by `conf` inside `ns`. `undo` receives the teardown first.
pub fn bring_up(
    method: Method,
    exe: &Path,
    ns: &str,
    conf: &Path,
    undo: &mut Vec<Teardown>,
    cancel: &Cancel,
) -> Result<(), DemoError> {
    match method {
        Method::Up => {
            undo.push(Teardown::Down {
                ns: ns.to_string(),
                conf: conf.to_path_buf(),
            });
            check(
                &mut in_netns(ns, exe.as_os_str(), &[OsStr::new("up"), conf.as_os_str()]),
                UP_LIMIT,
                Some(cancel),
            )?;
            Ok(())
        }
        Method::Manual => bring_up_by_hand(exe, ns, conf, undo, cancel),
    }
}

fn bring_up_by_hand(
    exe: &Path,
    ns: &str,
    conf: &Path,
    undo: &mut Vec<Teardown>,
    cancel: &Cancel,
) -> Result<(), DemoError> {
    let file = conf.display().to_string();
    let text = std::fs::read_to_string(conf)
        .map_err(|e| DemoError::io(format!("cannot read {file}"), e))?;
    let config = QuickConfig::parse(&text, &file)?;
    let iface = conf
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or_else(|| {
            DemoError::io(
                format!("{file}: no interface name"),
                std::io::ErrorKind::InvalidInput.into(),
            )
        })?
        .to_string();
    let hook = |line: &str| line.replace("%i", &iface);
    undo.push(Teardown::Manual {
        ns: ns.to_string(),
        iface: iface.clone(),
        post_down: config.post_down.iter().map(|l| hook(l)).collect(),
    });
    for line in &config.pre_up {
        check(
            &mut in_netns(ns, "sh", &["-c", &hook(line)]),
            SHORT,
            Some(cancel),
        )?;
    }
    // The daemon puts itself in the background once its socket listens.
    check(
        &mut in_netns(ns, exe.as_os_str(), &[iface.as_str()]),
        SHORT,
        Some(cancel),
    )?;
    Client::new()
        .set(&iface, &config.wg.to_set_request(true))
        .map_err(|source| DemoError::Uapi {
            iface: iface.clone(),
            source,
        })?;
    for address in &config.addresses {
        let address = address.to_string();
        check(
            &mut ip(&["-n", ns, "address", "add", &address, "dev", &iface]),
            SHORT,
            Some(cancel),
        )?;
    }
    let mtu = config.mtu.unwrap_or(DEFAULT_MTU).to_string();
    check(
        &mut ip(&["-n", ns, "link", "set", "dev", &iface, "mtu", &mtu, "up"]),
        SHORT,
        Some(cancel),
    )?;
    for peer in &config.wg.peers {
        for prefix in &peer.allowed_ips {
            let prefix = prefix.masked().to_string();
            check(
                &mut ip(&["-n", ns, "route", "replace", &prefix, "dev", &iface]),
                SHORT,
                Some(cancel),
            )?;
        }
    }
    for line in &config.post_up {
        check(
            &mut in_netns(ns, "sh", &["-c", &hook(line)]),
            SHORT,
            Some(cancel),
        )?;
    }
    Ok(())
}

/// Undoes one peer the way it was brought up. Runs during cleanup, so it ignores Ctrl-C;
/// failures are returned for the report, and the caller's forced cleanup follows anyway.
pub fn tear_down(exe: &Path, undo: &Teardown) -> Vec<String> {
    let mut problems = Vec::new();
    let mut attempt = |mut cmd: std::process::Command| {
        if let Err(e) = check(&mut cmd, SHORT, None) {
            problems.push(e.to_string());
        }
    };
    match undo {
        Teardown::Down { ns, conf } => {
            attempt(in_netns(
                ns,
                exe.as_os_str(),
                &[OsStr::new("down"), conf.as_os_str()],
            ));
        }
        Teardown::Manual {
            ns,
            iface,
            post_down,
        } => {
            for line in post_down {
                attempt(in_netns(ns, "sh", &["-c", line]));
            }
            // The daemon notices its interface is gone and exits, removing its socket.
            attempt(ip(&["-n", ns, "link", "del", "dev", iface]));
        }
    }
    problems
}
