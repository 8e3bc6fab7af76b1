//! The `wg` commands: `show`, `showconf`, `set`, `setconf`, `addconf`, `syncconf`, `genkey`,
//! `genpsk`, `pubkey`. Each takes its arguments (the subcommand name first, as wg's
//! subcommands receive them) and an [`Io`], and returns the exit status.

// Outside tests an error is reported, never a panic: no unwrap or expect in shipped code.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
// All unsafe code lives in crates/device.
#![forbid(unsafe_code)]

pub(crate) mod io;
pub(crate) mod keys;
pub mod pretty;
pub mod set;
pub mod show;

pub use io::{Env, Io};

use ferrotun_uapi::config::endpoint;
use ferrotun_uapi::Client;

type Command = fn(&mut Io, &[String]) -> i32;

const SUBCOMMANDS: [(&str, Command, &str); 9] = [
    (
        "show",
        show::show,
        "Shows the current configuration and device information",
    ),
    (
        "showconf",
        set::showconf,
        "Shows the current configuration of a given WireGuard interface, for use with `setconf'",
    ),
    (
        "set",
        set::set,
        "Change the current configuration, add peers, remove peers, or change peers",
    ),
    (
        "setconf",
        set::setconf,
        "Applies a configuration file to a WireGuard interface",
    ),
    (
        "addconf",
        set::setconf,
        "Appends a configuration file to a WireGuard interface",
    ),
    (
        "syncconf",
        set::setconf,
        "Synchronizes a configuration file to a WireGuard interface",
    ),
    (
        "genkey",
        keys::genkey,
        "Generates a new private key and writes it to stdout",
    ),
    (
        "genpsk",
        keys::genkey,
        "Generates a new preshared key and writes it to stdout",
    ),
    (
        "pubkey",
        keys::pubkey,
        "Reads a private key from stdin and writes a public key to stdout",
    ),
];

/// Whether `name` is one of wg's subcommands (for a dispatcher deciding who handles argv).
pub fn is_subcommand(name: &str) -> bool {
    SUBCOMMANDS.iter().any(|(n, _, _)| *n == name)
}

fn usage(prog: &str) -> String {
    let mut text = format!("Usage: {prog} <cmd> [<args>]\n\nAvailable subcommands:\n");
    for (name, _, description) in SUBCOMMANDS {
        text.push_str(&format!("  {name}: {description}\n"));
    }
    text.push_str("You may pass `--help' to any of these subcommands to view usage.\n");
    text
}

/// Runs one `wg` invocation with the process's streams and environment; `args` are the
/// arguments after the program name. Messages name the program as it was invoked.
pub fn wg_main(args: &[String]) -> i32 {
    let prog = std::env::args()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "wg".to_string());
    wg_main_as(&prog, args)
}

/// As [`wg_main`], naming the program `prog` in messages.
pub fn wg_main_as(prog: &str, args: &[String]) -> i32 {
    let stdin = std::io::stdin();
    let mut stdin = stdin.lock();
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    let mut io = Io {
        prog: prog.to_string(),
        stdin: &mut stdin,
        stdout: &mut stdout,
        stderr: &mut stderr,
        env: Env::from_process(),
        client: Client::new(),
        resolve: &endpoint::resolve,
    };
    let code = run(&mut io, args);
    let _ = io.stdout.flush();
    code
}

/// Dispatches on the subcommand, as wg's `main` does.
pub fn run(io: &mut Io, args: &[String]) -> i32 {
    match args {
        [] => show::show(io, &["show".to_string()]),
        [one] if matches!(one.as_str(), "-v" | "--version" | "version") => {
            let text = format!(
                "ferrotun v{} - wg-compatible tools\n",
                env!("CARGO_PKG_VERSION")
            );
            i32::from(!io.out(&text))
        }
        [one] if matches!(one.as_str(), "-h" | "--help" | "help") => {
            let text = usage(&io.prog);
            i32::from(!io.out(&text))
        }
        [cmd, ..] => match SUBCOMMANDS.iter().find(|(n, _, _)| n == cmd) {
            Some((_, command, _)) => command(io, args),
            None => {
                let text = format!("Invalid subcommand: `{cmd}'\n{}", usage(&io.prog));
                io.err(&text);
                1
            }
        },
    }
}

/// What a command run with in-memory streams produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a command with the given standard input and environment, capturing its output (for
/// tests, and for callers such as wg-quick that need a command's output as text). Endpoint
/// names are resolved with the system resolver.
pub fn run_captured(
    prog: &str,
    args: &[String],
    stdin: &[u8],
    env: Env,
    client: Client,
) -> Captured {
    let mut input = stdin;
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let mut io = Io {
        prog: prog.to_string(),
        stdin: &mut input,
        stdout: &mut stdout,
        stderr: &mut stderr,
        env,
        client,
        resolve: &endpoint::resolve,
    };
    let code = run(&mut io, args);
    Captured {
        code,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}
