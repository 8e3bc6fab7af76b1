//! `ferrotun demo`: the README's first command. Two peers in fresh network namespaces,
//! brought up from wg-quick files the way a user would, the LAN-behind-a-peer setup on top,
//! pings and a throughput test across the tunnel, a summary, and then everything removed.

// Outside tests an error is reported, never a panic: no unwrap or expect in shipped code.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
// All unsafe code lives in crates/device.
#![forbid(unsafe_code)]

/// `println!` that ignores a closed stdout (`ferrotun demo | head`): a panic there would skip
/// the cleanup, or abort outright in release builds.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `print!` likewise, flushed so a progress line shows before its step's work starts.
macro_rules! say_partial {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout();
        let _ = write!(out, $($arg)*);
        let _ = out.flush();
    }};
}

mod bringup;
mod configs;
mod error;
mod lab;
mod options;
mod ping;
mod report;
mod run;
mod throughput;
mod topology;

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferrotun_device::{install_shutdown_signals, Cancel};

pub use options::Options;

use bringup::Method;
use configs::Keys;
use error::DemoError;
use ferrotun_uapi::Client;
use ferrotun_wg::{run_captured, Env};
use lab::Lab;
use report::{note, Progress, Summary};
use run::{check, in_netns, SHORT};
use topology::{Names, LAN_HOST, TUNNEL_A, TUNNEL_B};

const STEPS: usize = 9;
const PINGS: u32 = 5;
/// The first packet waits for the handshake; a healthy one takes milliseconds.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);
/// Exit status after Ctrl-C, as shells report death by SIGINT.
const EXIT_INTERRUPTED: i32 = 130;

/// Runs the demo with options the command line parsed (see `front::definition`).
pub fn main(options: Options) -> i32 {
    if !is_root() {
        eprintln!("ferrotun demo: needs root: it creates network namespaces and interfaces");
        return 1;
    }
    // Installed before anything is created, so Ctrl-C can never skip the cleanup.
    let cancel = match Cancel::new().and_then(|c| install_shutdown_signals(&c).map(|()| c)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ferrotun demo: cannot watch for Ctrl-C: {e}");
            return 1;
        }
    };
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("ferrotun demo: cannot find my own executable: {e}");
            return 1;
        }
    };
    let mut lab = Lab::new(Names::for_pid(std::process::id()), exe);
    let failed = run_all(&mut lab, &options, &cancel);
    finish(&mut lab, &options, &cancel, failed)
}

fn is_root() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}

/// Runs every step; returns whether any failed.
fn run_all(lab: &mut Lab, options: &Options, cancel: &Cancel) -> bool {
    let mut progress = Progress::new(STEPS);
    let mut summary = Summary::default();
    let b_started = match set_up(lab, options, &mut progress, cancel) {
        Ok(t) => t,
        Err(_) => return true,
    };
    let names = lab.names.clone();
    let handshake = progress.step("handshake: peer B pings peer A until it answers", || {
        let h = handshake(&names, b_started, cancel)?;
        Ok((h, String::new()))
    });
    let mut failed = match handshake {
        Ok(h) => {
            summary.handshake = Some(h);
            false
        }
        Err(DemoError::Interrupted) => return true,
        Err(_) => true,
    };
    if !failed {
        // Independent of each other: each runs even if another failed, for a fuller report.
        let a_b = progress.step(&format!("ping A -> B ({TUNNEL_B}) x{PINGS}"), || {
            ping::ping(&names.ns_a, TUNNEL_B, PINGS, cancel).map(|s| (s.clone(), s.to_string()))
        });
        if matches!(a_b, Err(DemoError::Interrupted)) {
            return true;
        }
        failed |= a_b.is_err();
        summary.ping_a_b = Some(a_b.map_err(|e| e.to_string()));
        let lan_title = format!("ping A -> LAN host behind B ({LAN_HOST}) x{PINGS}");
        let lan = progress.step(&lan_title, || {
            ping::ping(&names.ns_a, LAN_HOST, PINGS, cancel).map(|s| (s.clone(), s.to_string()))
        });
        if matches!(lan, Err(DemoError::Interrupted)) {
            return true;
        }
        failed |= lan.is_err();
        summary.ping_lan = Some(lan.map_err(|e| e.to_string()));
        let secs = options.seconds.as_secs();
        let title = format!("throughput A -> B over TCP for {secs} s");
        let speed = progress.step(&title, || {
            throughput::measure(&names.ns_a, &names.ns_b, TUNNEL_B, options.seconds, cancel)
                .map(|t| (t, t.to_string()))
        });
        if matches!(speed, Err(DemoError::Interrupted)) {
            return true;
        }
        failed |= speed.is_err();
        summary.throughput = Some(speed.map_err(|e| e.to_string()));
    }
    summary.print();
    show_interfaces(&names);
    failed
}

/// Steps 1–5: files, namespaces, forwarding, both peers. Returns when peer B's start began.
fn set_up(
    lab: &mut Lab,
    options: &Options,
    progress: &mut Progress,
    cancel: &Cancel,
) -> Result<SystemTime, DemoError> {
    let names = lab.names.clone();
    progress.step(
        &format!(
            "generating keys and wg-quick files in {}",
            names.dir.display()
        ),
        || {
            write_configs(lab)?;
            Ok(((), String::new()))
        },
    )?;
    progress.step(
        &format!(
            "creating namespaces {}, {}, {} and veths",
            names.ns_a, names.ns_b, names.ns_lan
        ),
        || {
            for ns in names.namespaces() {
                topology::add_namespace(ns, &mut lab.namespaces, cancel)?;
            }
            topology::wire(&names, cancel)?;
            Ok(((), String::new()))
        },
    )?;
    progress.step("peer B: sysctl net.ipv4.ip_forward=1", || {
        // Written through /proc inside the namespace: `sysctl` (procps) may not be installed.
        let mut cmd = in_netns(
            &names.ns_b,
            "sh",
            &["-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"],
        );
        check(&mut cmd, SHORT, Some(cancel))?;
        Ok(((), String::new()))
    })?;
    let method = if options.no_up {
        note("--no-up: starting the daemons and configuring them with `ip` and the configuration socket");
        Method::Manual
    } else {
        bringup::detect(&lab.exe, cancel)?
    };
    if method == Method::Manual && !options.no_up {
        note("this build has no `ferrotun up`; starting the daemons and configuring them with `ip` and the configuration socket instead");
    }
    let exe = lab.exe.clone();
    let mut b_started = SystemTime::now();
    for (label, ns, iface) in [
        ("A", &names.ns_a, &names.if_a),
        ("B", &names.ns_b, &names.if_b),
    ] {
        let conf = names.config_path(iface);
        let title = match method {
            Method::Up => format!(
                "peer {label}: ip netns exec {ns} ferrotun up {}",
                conf.display()
            ),
            Method::Manual => format!("peer {label}: bringing up {iface} in {ns}"),
        };
        b_started = SystemTime::now();
        progress.step(&title, || {
            bringup::bring_up(method, &exe, ns, &conf, &mut lab.peers, cancel)?;
            Ok(((), String::new()))
        })?;
    }
    Ok(b_started)
}

fn write_configs(lab: &mut Lab) -> Result<(), DemoError> {
    let names = &lab.names;
    let dir = &names.dir;
    DirBuilder::new().mode(0o700).create(dir).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::AlreadyExists {
            " (left over from an earlier run? remove it)"
        } else {
            ""
        };
        DemoError::io(format!("cannot create {}{hint}", dir.display()), e)
    })?;
    lab.dir_created = true;
    let keys = Keys::generate()?;
    write_private(
        &names.config_path(&names.if_a),
        &configs::config_a(&keys, names),
    )?;
    write_private(
        &names.config_path(&names.if_b),
        &configs::config_b(&keys, names),
    )?;
    Ok(())
}

/// Private keys inside: readable by root only, as wg-quick expects of its files.
fn write_private(path: &Path, text: &str) -> Result<(), DemoError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| DemoError::io(format!("cannot write {}", path.display()), e))
}

fn handshake(
    names: &Names,
    b_started: SystemTime,
    cancel: &Cancel,
) -> Result<report::Handshake, DemoError> {
    // B pings first: it has A's endpoint, while A learns B's only from B's handshake.
    let first_reply = ping::first_reply(&names.ns_b, TUNNEL_A, HANDSHAKE_LIMIT, cancel)?;
    let client = Client::new();
    let mut latest = None;
    for iface in [&names.if_a, &names.if_b] {
        let status = client.get(iface).map_err(|source| DemoError::Uapi {
            iface: iface.clone(),
            source,
        })?;
        let at = status
            .peers
            .first()
            .and_then(|p| p.last_handshake)
            .ok_or_else(|| {
                DemoError::Ping(format!(
                    "{iface} answered pings but reports no handshake with its peer"
                ))
            })?;
        latest = latest.max(Some(at));
    }
    let after_up = latest.and_then(|(sec, nsec)| {
        let at = UNIX_EPOCH + Duration::new(sec, nsec);
        at.duration_since(b_started).ok()
    });
    Ok(report::Handshake {
        first_reply,
        after_up,
    })
}

fn show_interfaces(names: &Names) {
    for iface in [&names.if_a, &names.if_b] {
        say!();
        let args = ["show".to_string(), iface.clone()];
        let shown = run_captured("ferrotun", &args, b"", Env::from_process(), Client::new());
        say_partial!("{}{}", shown.stdout, shown.stderr);
    }
}

fn finish(lab: &mut Lab, options: &Options, cancel: &Cancel, failed: bool) -> i32 {
    let interrupted = cancel.is_triggered();
    say!();
    if interrupted {
        say!("interrupted: removing everything");
    }
    if options.keep && !interrupted {
        say!(
            "kept for inspection (configs in {}); to remove it all:",
            lab.names.dir.display()
        );
        for command in lab.keep() {
            say!("  {command}");
        }
    } else {
        let mut progress = Progress::tagged("cleanup");
        let cleaned = progress.step("removing daemons, namespaces, veths and files", || {
            let problems = lab.clean_up();
            if problems.is_empty() {
                Ok(((), String::new()))
            } else {
                Err(DemoError::Cleanup(problems))
            }
        });
        if cleaned.is_err() {
            return 1;
        }
    }
    if interrupted {
        EXIT_INTERRUPTED
    } else {
        i32::from(failed)
    }
}
