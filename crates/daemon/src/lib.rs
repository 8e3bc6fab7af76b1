//! `ferrotun [-f|--foreground] <ifname>`: the daemon, a drop-in for wireguard-go.

// Outside tests an error is reported, never a panic: no unwrap or expect in shipped code.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
// All unsafe code lives in crates/device.
#![forbid(unsafe_code)]

pub(crate) mod apply;
pub(crate) mod confine;
pub mod drop_summary;
pub(crate) mod log_destination;
pub mod metrics;
pub(crate) mod reading;
pub mod server;

use crate::metrics::MetricsOption;
use anyhow::{bail, Context};
use ferrotun_device::inherit::{keep_across_exec, take_inherited};
use ferrotun_device::{install_shutdown_signals, Cancel, Device, DeviceConfig, Tun};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

pub const DEFAULT_MTU: u32 = 1420;
const ENV_TUN_FD: &str = "WG_TUN_FD";
const ENV_UAPI_FD: &str = "WG_UAPI_FD";
const ENV_FOREGROUND: &str = "WG_PROCESS_FOREGROUND";

pub fn usage(program: &str) -> String {
    format!(
        "Usage: {program} [-f/--foreground] [--user NAME] [{}] [{} ADDR:PORT] INTERFACE-NAME",
        confine::OPT_DISABLE,
        metrics::OPT_METRICS
    )
}

/// Interface names the kernel accepts: 1–15 bytes, no '/', no whitespace, not "." or "..".
pub fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace());
    if !ok {
        bail!("invalid interface name {name:?}: 1 to 15 characters, no '/', ':' or spaces");
    }
    Ok(())
}

/// Sets up logging from LOG_LEVEL as wireguard-go reads it (verbose|debug|error|silent, and
/// warn, the background daemon's default); RUST_LOG, if set, takes precedence for finer
/// filters.
pub fn init_logging() {
    let level = match std::env::var("LOG_LEVEL").as_deref() {
        Ok("verbose") | Ok("debug") => "debug",
        Ok("warn") | Ok("warning") => "warn",
        Ok("error") => "error",
        Ok("silent") => "off",
        _ => "info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

// What the daemon is started with: the options of `ferrotun daemon`, which the command line
// (front/) attaches to its command tree; the bare `ferrotun [-f] NAME` form fills the same
// struct by hand. Ids, value names and help texts are the command line's wording, so help,
// completions and man pages read as before. `//` comments, not doc comments: clap would
// make those the command's about and the options' help.
#[derive(Debug, Default, Clone, clap::Args)]
#[group(skip)]
pub struct Args {
    #[arg(
        id = "foreground",
        short = 'f',
        long = "foreground",
        help = "Stay in the foreground instead of detaching (the daemon)"
    )]
    pub foreground: bool,
    // Else FERROTUN_USER; else the default (see confine).
    #[arg(
        id = "user",
        long = "user",
        value_name = "USER",
        help = "Run as USER after start-up (default: the `ferrotun' user if it exists, else `nobody'; env FERROTUN_USER)"
    )]
    pub user: Option<String>,
    // FERROTUN_DISABLE_DROP_PRIVILEGES=1 does the same.
    #[arg(
        id = "disable-drop-privileges",
        long = "disable-drop-privileges",
        help = "Stay root, with no system call filter (env FERROTUN_DISABLE_DROP_PRIVILEGES=1)"
    )]
    pub unconfined: bool,
    // Checked here, not by the parser; it wins over FERROTUN_METRICS.
    #[arg(
        id = "metrics",
        long = "metrics",
        value_name = "ADDR:PORT",
        help = "Serve Prometheus metrics at http://ADDR:PORT/metrics, e.g. 127.0.0.1:9586 or [::1]:9586 (env FERROTUN_METRICS; off by default)"
    )]
    pub metrics: Option<String>,
    // Last, as the usage line and the help list it.
    #[arg(
        id = "interface",
        value_name = "INTERFACE-NAME",
        help = "The interface to create: 1 to 15 characters, no '/', ':' or spaces"
    )]
    pub name: String,
}

/// Runs the daemon; returns the process exit status.
pub fn main(program: &str, args: &Args) -> i32 {
    let foreground = args.foreground || std::env::var(ENV_FOREGROUND).as_deref() == Ok("1");
    let name = &args.name;
    let mut options = confine::Options::from_env();
    if args.user.is_some() {
        options.user = args.user.clone();
    }
    options.disabled |= args.unconfined;
    let metrics_flag = args.metrics.as_deref();
    init_logging();
    let result = confine::check_args(&options)
        .and_then(|()| MetricsOption::resolve(metrics_flag))
        .and_then(|metrics| {
            if foreground {
                run_foreground(name, &options, &metrics)
            } else {
                spawn_background(name, &options, &metrics)
            }
        });
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{program}: {e:#}");
            1
        }
    }
}

/// Creates the TUN and the socket here, so failures reach the caller's terminal, then
/// re-executes in the foreground with both inherited and returns at once (wg-quick runs
/// `wg setconf` next, and the socket is already listening).
fn spawn_background(
    name: &str,
    options: &confine::Options,
    metrics: &MetricsOption,
) -> anyhow::Result<()> {
    check_name(name)?;
    // Refuse here, where the caller sees it, if the background daemon could not confine
    // itself.
    confine::plan(options)?;
    // First, so a busy port stops us before anything exists that would need removing.
    // Kept open until the child has it.
    let metrics_listener = metrics.listen()?;
    let metrics_env = match &metrics_listener {
        Some(l) => l.to_env()?,
        None => Vec::new(),
    };
    let listener = server::bind(name)?;
    let tun = if offload_wanted() {
        Tun::create_with_offload(name, 1)
    } else {
        Tun::create(name, 1)
    }
    .with_context(|| format!("cannot create TUN device {name}"))?;
    let tun_fd: OwnedFd = match tun.into_queues().into_iter().next() {
        Some(q) => q.into_fd(),
        None => bail!("TUN device {name} has no queue"),
    };
    keep_across_exec(&tun_fd)?;
    keep_across_exec(&listener)?;
    let exe = std::env::current_exe().context("cannot find my own executable")?;
    // The log goes to stderr; nothing is written to stdout, which `$(ferrotun up wg0)`
    // must see closed when `up` returns.
    let stderr = if log_destination::keep_stderr() {
        Stdio::inherit()
    } else {
        Stdio::null()
    };
    let level = std::env::var_os("LOG_LEVEL").unwrap_or(log_destination::BACKGROUND_LEVEL.into());
    // `daemon NAME`: the explicit form, which takes any valid name (`ferrotun NAME` refuses
    // names that look like a mistyped command).
    Command::new(exe)
        .args(["daemon", name])
        .env(ENV_TUN_FD, tun_fd.as_raw_fd().to_string())
        .env(ENV_UAPI_FD, listener.as_raw_fd().to_string())
        .env(ENV_FOREGROUND, "1")
        .envs(options.to_env())
        .envs(metrics_env)
        .env("LOG_LEVEL", level)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .context("cannot start the background daemon")?;
    drop(metrics_listener);
    Ok(())
}

fn run_foreground(
    name: &str,
    options: &confine::Options,
    metrics: &MetricsOption,
) -> anyhow::Result<()> {
    check_name(name)?;
    let plan = confine::plan(options)?;
    // Bound now, as root, before the TUN or the socket file exist: a busy port leaves
    // nothing behind, and a port below 1024 needs no capability kept for it.
    let metrics_server = match metrics.listen()? {
        Some(listener) => Some(
            metrics::Server::prepare(listener).context("cannot prepare the metrics endpoint")?,
        ),
        None => None,
    };
    let tun_fd = take_inherited(ENV_TUN_FD)?;
    let listener = match take_inherited(ENV_UAPI_FD)? {
        Some(fd) => UnixListener::from(fd),
        None => server::bind(name)?,
    };
    let mut socket = confine::SocketFile::new(&server::socket_path(name));
    let cancel = Cancel::new()?;
    install_shutdown_signals(&cancel)?;
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let timing = test_timing()?;
    let config = DeviceConfig {
        name: name.to_string(),
        workers,
        tun_fd,
        mtu: DEFAULT_MTU,
        offload: offload_wanted(),
    };
    // Everything that needs root is open now, and no thread runs yet: the moment to give
    // root up (capabilities are per thread; threads started later inherit the confinement).
    let started = Device::open(config, cancel.clone()).and_then(|opened| {
        if let Some(plan) = &plan {
            confine::apply(plan, &mut socket).map_err(std::io::Error::other)?;
        } else {
            tracing::warn!(
                "running unconfined ({}): root, every capability, no system call filter",
                confine::OPT_DISABLE
            );
        }
        opened.start()
    });
    let device = match started {
        Ok(d) => d,
        Err(e) => {
            socket.remove();
            return Err(e).with_context(|| format!("cannot start interface {name}"));
        }
    };
    if let Some(timing) = timing {
        tracing::warn!(
            "FERROTUN_TEST_TIMING is set: protocol timers compressed for testing: {timing:?}"
        );
        device.interface().set_timing(timing);
    }
    if let Some(server) = metrics_server {
        if let Err(e) = server.start(device.clone()) {
            device.shutdown();
            socket.remove();
            return Err(e).context("cannot start the metrics endpoint");
        }
    }
    tracing::info!(
        "interface {} up: {} workers, listening on port {}",
        device.name(),
        workers,
        device.listen_port()
    );
    let serving = device.clone();
    std::thread::Builder::new()
        .name("uapi".into())
        .spawn(move || server::serve(listener, serving))?;
    let reason = watch(&device, name, &socket);
    tracing::info!("shutting down: {reason}");
    // Close the sockets first: whoever waits for the socket file to vanish (wg-quick down,
    // then up again) must find the listen port free by then.
    device.shutdown();
    confine::report_refused();
    socket.remove();
    Ok(())
}

/// `FERROTUN_TEST_TIMING=FACTOR,REKEY_AFTER_MESSAGES,REJECT_AFTER_MESSAGES` compresses the
/// protocol's timers by FACTOR and lowers the message limits, so a soak test can rekey every
/// few seconds. Never for production: peers would see sessions end early.
fn test_timing() -> anyhow::Result<Option<ferrotun_proto::constants::Timing>> {
    let Ok(text) = std::env::var("FERROTUN_TEST_TIMING") else {
        return Ok(None);
    };
    let parts: Vec<u64> = text
        .split(',')
        .map(|p| p.trim().parse::<u64>())
        .collect::<Result<_, _>>()
        .with_context(|| format!("FERROTUN_TEST_TIMING={text}: expected three numbers"))?;
    let [factor, rekey, reject] = parts[..] else {
        bail!("FERROTUN_TEST_TIMING={text}: expected FACTOR,REKEY_AFTER_MESSAGES,REJECT_AFTER_MESSAGES");
    };
    if factor == 0 || factor > 1000 || rekey >= reject {
        bail!("FERROTUN_TEST_TIMING={text}: need 1 <= FACTOR <= 1000 and REKEY < REJECT");
    }
    Ok(Some(ferrotun_proto::constants::Timing::compressed(
        factor as u32,
        rekey,
        reject,
    )))
}

/// TUN segmentation offload is on unless `FERROTUN_NO_OFFLOAD=1` (for comparison runs and
/// for kernels whose TUN misbehaves with it).
fn offload_wanted() -> bool {
    std::env::var("FERROTUN_NO_OFFLOAD").as_deref() != Ok("1")
}

/// Waits for the one cancel; also turns "interface deleted" and "socket file deleted"
/// (wireguard-go watches both) into it. Reports refused system calls as they happen.
fn watch(device: &Arc<Device>, name: &str, socket: &confine::SocketFile) -> &'static str {
    let mut drops = drop_summary::DropSummary::new(device);
    loop {
        confine::report_refused();
        drops.poll(device);
        if device.cancel().wait(Some(Duration::from_millis(500))) {
            if !ferrotun_device::interface_exists(name) {
                return "interface removed";
            }
            return "signal or fatal error";
        }
        if !ferrotun_device::interface_exists(name) {
            device.cancel().trigger();
            return "interface removed";
        }
        if !socket.still_there() {
            device.cancel().trigger();
            return "configuration socket removed";
        }
    }
}
