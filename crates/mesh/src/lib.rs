//! `ferrotun mesh`: a WireGuard mesh whose membership lives in etcd. Each node keeps its
//! private key, claims an overlay address by compare-and-swap, registers its public key and
//! endpoints under a lease, watches the other registrations and applies only the changes to
//! its interface through the configuration socket.

// Outside tests an error is reported, never a panic: no unwrap or expect in shipped code.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
// All unsafe code lives in crates/device.
#![forbid(unsafe_code)]

mod agent;
mod alloc;
mod diff;
mod iface;
mod keyfile;
mod layout;
mod options;
mod registry;
mod status;
mod view;

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;

use options::{Cli, Command, NameOptions, UpOptions};

/// `ferrotun mesh` as the command line's one definition lists it (help, completions, man).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command().name("mesh")
}

/// Runs `ferrotun mesh ARGS...` (`args` are the words after `mesh`); returns the exit status.
pub fn main(args: &[String]) -> i32 {
    // `mesh help [up]` is `mesh [up] --help`: the same words as clap's own help subcommand
    // would take, but the one layout `help mesh` and `mesh --help` print (options.rs).
    let args: Vec<String> = match args.split_first() {
        Some((first, rest)) if first == "help" => rest
            .iter()
            .cloned()
            .chain(std::iter::once("--help".to_string()))
            .collect(),
        _ => args.to_vec(),
    };
    let argv = std::iter::once("ferrotun mesh".to_string()).chain(args);
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 1 } else { 0 };
        }
    };
    let result = match cli.command {
        Command::Up(opts) => up(*opts),
        Command::Down(opts) => down(&opts),
        Command::Status(opts) => show_status(&opts),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("ferrotun mesh: {e:#}");
            1
        }
    }
}

fn check_name(name: &NameOptions) -> Result<()> {
    if !layout::valid_mesh_name(&name.name) {
        bail!(
            "`{}' is not a usable mesh name (1-15 of letters, digits, '-', '_', '.'; it names the interface)",
            name.name
        );
    }
    Ok(())
}

fn up(opts: UpOptions) -> Result<()> {
    check_name(&opts.name)?;
    if let Some(i) = &opts.interface {
        if !layout::valid_mesh_name(i) {
            bail!("--interface {i:?} is not a usable interface name");
        }
    }
    let pool = alloc::Pool::new(opts.cidr, opts.cidr6).map_err(anyhow::Error::msg)?;
    if let Some(e) = &opts.endpoint {
        if layout::parse_endpoint(e).is_none() {
            bail!("--endpoint {e:?}: HOST:PORT or IP:PORT expected");
        }
    }
    if opts.etcd.user.is_some() {
        opts.etcd.password()?;
    }
    let dir = opts.name.state_dir();
    let key = keyfile::load_or_create(&dir)?;
    if let Some(pid) = status::running_agent(&dir) {
        bail!(
            "an agent for mesh {} already runs (pid {pid})",
            opts.name.name
        );
    }
    std::fs::write(status::pid_path(&dir), format!("{}\n", std::process::id()))
        .with_context(|| format!("cannot write {}", status::pid_path(&dir).display()))?;
    // The daemon's logging: LOG_LEVEL as wireguard-go reads it, RUST_LOG for finer filters.
    ferrotun_daemon::init_logging();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move { agent::Agent::new(opts, key, pool)?.run().await })
}

/// Stops the agent (SIGTERM: it deregisters and deletes the interface); without an agent,
/// deletes the interface itself.
fn down(opts: &NameOptions) -> Result<()> {
    check_name(opts)?;
    let dir = opts.state_dir();
    let ifname = status::read(&dir).map_or_else(|| opts.name.clone(), |s| s.interface);
    if let Some(pid) = status::running_agent(&dir) {
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            bail!("cannot signal the agent (pid {pid})");
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive(pid) {
            if Instant::now() > deadline {
                bail!("the agent (pid {pid}) did not stop within 10 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let mut nl = ferrotun_netlink::Netlink::open()?;
    if let Some(link) = nl.link_by_name(&ifname)? {
        nl.delete_link(&link)?;
    }
    Ok(())
}

/// Whether `pid` still runs (an exited process its parent has not reaped yet does not).
fn alive(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !stat.is_empty()
        && !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
}

fn show_status(opts: &NameOptions) -> Result<()> {
    check_name(opts)?;
    let dir = opts.state_dir();
    let agent = status::running_agent(&dir);
    let Some(s) = status::read(&dir) else {
        bail!("mesh {} is not up on this node", opts.name);
    };
    println!("mesh: {} (interface {})", s.mesh, s.interface);
    match agent {
        Some(pid) => println!("agent: running (pid {pid})"),
        None => println!("agent: not running"),
    }
    println!("node: {} {}", s.node_name, s.public_key);
    match &s.address6 {
        Some(a6) => println!("address: {} {a6}", s.address),
        None => println!("address: {}", s.address),
    }
    println!("etcd: {}", s.etcd);
    println!("peers: {}", s.peers.len());
    for p in &s.peers {
        println!(
            "  {} {} {} endpoint {}",
            p.address,
            p.name,
            p.public_key,
            p.endpoint.as_deref().unwrap_or("(none)")
        );
    }
    Ok(())
}
