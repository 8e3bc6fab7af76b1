//! The one definition of ferrotun's commands. The grouped help, `help CMD`, `CMD --help`,
//! the near-miss hints, the shell completions and the man pages are all made from it, so
//! they cannot drift apart.
//!
//! One style: every command's options are a typed `#[derive(clap::Args)]` struct (in
//! [`super::options`] or in the crate that implements the command), and this file only
//! assembles commands: names, descriptions, usage lines, groups. [`super::main`] reads a
//! command's matches back into the same struct with `FromArgMatches`. The mesh, whose
//! commands nest, is one derived parser of its own ([`ferrotun_mesh::command`]).
//!
//! The `wg' commands keep wg's own grammar (`set wg0 peer KEY allowed-ips ...` is not a
//! shape an argument parser models well): clap describes them and takes their words as
//! they come, and the wg implementation in [`ferrotun_wg`] parses them as wg does.

use clap::{Args, Command};

use ferrotun_wg::{set::SET_USAGE, show::FIELDS};

use super::options::{
    CompletionsOptions, HelpOptions, ManOptions, NoOptions, QuickOptions, TopLevel, WgWords,
};

/// The program name the definition is written for.
pub const NAME: &str = "ferrotun";

/// Commands as the top-level help shows them: a heading, then one line per command.
pub struct Group {
    pub heading: &'static str,
    pub commands: Vec<(Kind, Command)>,
}

fn of(kind: Kind, commands: Vec<Command>) -> Vec<(Kind, Command)> {
    commands.into_iter().map(|c| (kind, c)).collect()
}

/// Every command, grouped.
pub fn groups() -> Vec<Group> {
    vec![
        Group {
            heading: "Keys and configuration (as wg(8))",
            commands: of(Kind::Wg, wg_commands()),
        },
        Group {
            heading: "Interfaces from configuration files (as wg-quick(8))",
            commands: of(Kind::Quick, quick_commands()),
        },
        Group {
            heading: "The daemon (as wireguard-go)",
            commands: vec![(Kind::Daemon, daemon())],
        },
        Group {
            heading: "Inside a running ferrotun interface",
            commands: vec![(Kind::Stats, stats()), (Kind::Top, top())],
        },
        Group {
            heading: "A mesh across hosts, its state in etcd",
            commands: vec![(Kind::Mesh, ferrotun_mesh::command())],
        },
        Group {
            heading: "Trying it out",
            commands: vec![(Kind::Demo, demo())],
        },
        Group {
            heading: "This program",
            commands: vec![
                (Kind::Completions, completions()),
                (Kind::Man, man()),
                (Kind::Help, help()),
                (Kind::Version, version()),
            ],
        },
    ]
}

/// The whole command line as one clap command (for completions, man pages and `help CMD`).
pub fn command() -> Command {
    let mut root = TopLevel::augment_args(Command::new(NAME))
        .about("Userspace WireGuard for Linux, with wg and wg-quick built in")
        .long_about(
            "Userspace WireGuard for Linux, with wg and wg-quick built in.\n\n\
             `ferrotun INTERFACE-NAME' starts the daemon for that interface, as wireguard-go \
             does (wg-quick runs it so through WG_QUICK_USERSPACE_IMPLEMENTATION). Called \
             as `wg' or `wg-quick' (through a link of that name), the binary is that tool, \
             with its usage texts and behaviour.",
        )
        .version(env!("CARGO_PKG_VERSION"))
        .override_usage(format!(
            "{NAME} <COMMAND> [ARGS]...\n       {NAME} [-f|--foreground] INTERFACE-NAME"
        ))
        .disable_help_subcommand(true)
        .disable_version_flag(true);
    for group in groups() {
        for (_, cmd) in group.commands {
            root = root.subcommand(cmd);
        }
    }
    root
}

/// Every command name, in the order the help lists them.
pub fn command_names() -> Vec<String> {
    groups()
        .into_iter()
        .flat_map(|g| g.commands)
        .map(|(_, c)| c.get_name().to_string())
        .collect()
}

/// Which implementation takes a command's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Wg,
    Quick,
    Daemon,
    Stats,
    Top,
    Mesh,
    Demo,
    Completions,
    Man,
    Help,
    Version,
}

/// Which implementation handles the command `name`, if it is one.
pub fn kind(name: &str) -> Option<Kind> {
    groups()
        .into_iter()
        .flat_map(|g| g.commands)
        .find(|(_, c)| c.get_name() == name)
        .map(|(kind, _)| kind)
}

/// A wg command: its words are passed through untouched, `--help` alone shows this help.
fn wg_command(name: &'static str, about: &'static str, usage: &str) -> Command {
    WgWords::augment_args(Command::new(name))
        .about(about)
        .override_usage(format!("{NAME} {name} {usage}"))
}

fn wg_commands() -> Vec<Command> {
    let show_usage = format!("{{ <interface> | all | interfaces }} [{FIELDS}]");
    vec![
        wg_command(
            "show",
            "Shows the current configuration and device information",
            &show_usage,
        )
        .long_about(
            "Shows the current configuration and device information. Without arguments, \
             every interface; `interfaces' lists their names; a field name prints only that \
             field; `dump' prints tab-separated values for scripts.",
        ),
        wg_command(
            "showconf",
            "Shows the current configuration of a given WireGuard interface, for use with `setconf'",
            "<interface>",
        ),
        wg_command(
            "set",
            "Change the current configuration, add peers, remove peers, or change peers",
            SET_USAGE,
        ),
        wg_command(
            "setconf",
            "Applies a configuration file to a WireGuard interface",
            "<interface> <configuration filename>",
        ),
        wg_command(
            "addconf",
            "Appends a configuration file to a WireGuard interface",
            "<interface> <configuration filename>",
        ),
        wg_command(
            "syncconf",
            "Synchronizes a configuration file to a WireGuard interface",
            "<interface> <configuration filename>",
        ),
        wg_command(
            "genkey",
            "Generates a new private key and writes it to stdout",
            "",
        ),
        wg_command(
            "genpsk",
            "Generates a new preshared key and writes it to stdout",
            "",
        ),
        wg_command(
            "pubkey",
            "Reads a private key from stdin and writes a public key to stdout",
            "< private.key",
        ),
    ]
}

fn quick_command(name: &'static str, about: &'static str) -> Command {
    QuickOptions::augment_args(Command::new(name)).about(about)
}

fn quick_commands() -> Vec<Command> {
    vec![
        quick_command(
            "up",
            "Creates the interface from a wg-quick file: daemon, keys, peers, addresses, routes, DNS",
        ),
        quick_command(
            "down",
            "Removes an interface brought up with `up', undoing routes, rules and DNS",
        ),
        quick_command(
            "save",
            "Writes the running interface's configuration back to its wg-quick file",
        ),
        quick_command(
            "strip",
            "Prints the wg-quick file without the wg-quick-only keys, for `setconf'",
        ),
    ]
    .into_iter()
    .map(|c| {
        c.after_help(
            "The file's [Interface] may also hold Address, DNS, MTU, Table, PreUp, PostUp, \
             PreDown, PostDown and SaveConfig, as wg-quick(8) reads them.",
        )
    })
    .collect()
}

fn daemon() -> Command {
    ferrotun_daemon::Args::augment_args(Command::new("daemon"))
        .about("Runs the daemon for INTERFACE-NAME; `ferrotun [-f] INTERFACE-NAME' is the same")
        .long_about(
            "Creates the TUN interface INTERFACE-NAME and its configuration socket \
             /var/run/wireguard/INTERFACE-NAME.sock, then serves it in the background (or in \
             the foreground with -f), as wireguard-go does. `ferrotun INTERFACE-NAME' is the \
             same; this longer form also accepts a name that looks like a command.",
        )
        .override_usage(format!(
            "{NAME} daemon [-f|--foreground] [--user USER] [--disable-drop-privileges] [--metrics ADDR:PORT] INTERFACE-NAME"
        ))
        .after_help(
            "Environment: LOG_LEVEL=verbose|debug|error|silent; RUST_LOG for finer filters; \
             FERROTUN_NO_OFFLOAD=1 turns TUN segmentation offload off.",
        )
}

fn demo() -> Command {
    ferrotun_demo::Options::augment_args(Command::new("demo"))
        .about("Two peers in fresh namespaces: ping, throughput, then everything removed")
        .long_about(
            "Builds two WireGuard peers in fresh network namespaces from wg-quick files (peer \
             A 10.0.0.1, peer B 10.0.0.2, B dialing A), plus a LAN host 192.168.100.2 behind B \
             that A reaches through the tunnel (B forwards and masquerades). Then it pings \
             across the tunnel, measures TCP throughput, shows both interfaces, and removes \
             everything again, also on errors and on Ctrl-C. Needs root, iproute2, iptables \
             and ping.",
        )
}

fn completions() -> Command {
    CompletionsOptions::augment_args(Command::new("completions"))
        .about("Writes the shell completion script for bash, zsh or fish to stdout")
}

fn man() -> Command {
    ManOptions::augment_args(Command::new("man"))
        .about("Writes the man page ferrotun(1) to stdout, or every page into DIR")
}

fn help() -> Command {
    HelpOptions::augment_args(Command::new("help"))
        .about("Lists the commands, or shows one command's usage and options")
}

fn version() -> Command {
    NoOptions::augment_args(Command::new("version")).about("Prints the version")
}

fn stats() -> Command {
    ferrotun_top::StatsOptions::augment_args(Command::new("stats"))
        .about("Prints an interface's counters: transfer, packets, handshakes, drops by reason")
        .long_about(
            "Prints what a running ferrotun interface counts: its listen port, packets each \
             way, handshakes, and every kind of dropped packet that happened, by reason; then \
             per peer its endpoint, allowed IPs, transfer, latest handshake, packets and \
             drops. Without INTERFACE, every interface, as `show' lists them. The counters \
             come from the daemon's configuration socket; a daemon that keeps none \
             (wireguard-go) is reported as such, with status 1.",
        )
        .override_usage(format!("{NAME} stats [INTERFACE] [--json]"))
        .after_help(
            "JSON: {\"interface\", \"listen_port\", \"counters\": {KEY: N}, \"peers\": \
             [{\"public_key\", \"endpoint\", \"allowed_ips\", \"rx_bytes\", \"tx_bytes\", \
             \"last_handshake\" (Unix seconds or null), \"counters\"}]}. Counter keys are \
             `family' or `family.label', e.g. received_packets, \
             received_dropped.decrypt_failed.",
        )
}

fn top() -> Command {
    ferrotun_top::TopOptions::augment_args(Command::new("top"))
        .about("A live per-peer view of an interface: rates each way, handshake age, drops")
        .long_about(
            "Shows a running ferrotun interface's peers, redrawn every second: endpoint, \
             bytes and packets per second each way, the latest handshake's age and the \
             drops by reason, under a line with the interface's totals. A narrow terminal \
             (80 columns) gets short forms and loses the port and the packet rates first \
             and the endpoint last, never the handshakes or the drops. Without INTERFACE, \
             the only one running (with several, name one). Needs a terminal; for scripts \
             use `stats --json'.",
        )
        .override_usage(format!("{NAME} top [INTERFACE]"))
        .after_help(
            "Keys: q, Esc or Ctrl-C quit. Exit status 0 when quit, 1 when the daemon went \
             away or could not be read.",
        )
}
