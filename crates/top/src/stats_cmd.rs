//! `ferrotun stats [INTERFACE] [--json]`: the counters of one interface, or of every
//! interface as `wg show` with no arguments lists them.
//!
//! `--json` prints one JSON document: the [`Stats`] object for `stats INTERFACE`, an array
//! of them (possibly empty) for `stats`. Counter keys are the core's stable keys, so a
//! script can rely on them.

use std::io::{IsTerminal, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use super::render::interface_text;
use ferrotun_uapi::stats::{fetch, FetchError, Stats};
use ferrotun_uapi::Client;
use ferrotun_wg::pretty::strip_ansi;

// The options of `ferrotun stats`, which the command line (front/) attaches to its command
// tree and reads back typed. `//` comments, not doc comments: clap would make those the
// command's about and the options' help.
#[derive(Debug, Clone, Default, clap::Args)]
#[group(skip)]
pub struct StatsOptions {
    #[arg(
        id = "interface",
        value_name = "INTERFACE",
        help = "The interface to read; every interface when left out"
    )]
    pub interface: Option<String>,
    #[arg(
        id = "json",
        long = "json",
        help = "Print JSON instead: one object for INTERFACE, an array of them without \
                (keys: interface, listen_port, counters, peers)"
    )]
    pub json: bool,
}

/// Runs `ferrotun stats`; returns the exit status.
pub fn stats(client: &Client, options: &StatsOptions) -> i32 {
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    let color = color(stdout.is_terminal());
    let code = run(client, options, color, &mut stdout, &mut stderr);
    let _ = stdout.flush();
    code
}

/// Colours as wg decides them: `WG_COLOR_MODE=always|never`, else only on a terminal.
fn color(stdout_is_tty: bool) -> bool {
    match std::env::var("WG_COLOR_MODE").as_deref() {
        Ok("always") => true,
        Ok("never") => false,
        _ => stdout_is_tty,
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The message for a failed fetch: wg's own words when the interface cannot be reached
/// (`Unable to access interface: No such file or directory`), else the fetch error's.
pub fn fetch_message(error: &FetchError, name: Option<&str>) -> String {
    match (error, name) {
        (FetchError::Client(e), None) => format!("Unable to access interface: {e}"),
        (FetchError::Client(e), Some(name)) => format!("Unable to access interface {name}: {e}"),
        (other, _) => other.to_string(),
    }
}

fn run(
    client: &Client,
    options: &StatsOptions,
    color: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let now = now();
    let render = |s: &Stats| {
        let text = interface_text(s, now);
        if color {
            text
        } else {
            strip_ansi(&text)
        }
    };
    let written = match &options.interface {
        Some(name) => {
            let stats = match fetch(client, name) {
                Ok(s) => s,
                Err(e) => {
                    let _ = writeln!(err, "{}", fetch_message(&e, None));
                    return 1;
                }
            };
            if options.json {
                json(out, &stats)
            } else {
                out.write_all(render(&stats).as_bytes())
            }
        }
        None => {
            let names = match client.list_interfaces() {
                Ok(n) => n,
                Err(e) => {
                    let _ = writeln!(err, "Unable to list interfaces: {e}");
                    return 1;
                }
            };
            let mut all = Vec::new();
            for name in &names {
                match fetch(client, name) {
                    Ok(s) => all.push(s),
                    // The others are still shown, as `wg show` goes on past one it cannot
                    // reach (a wireguard-go interface, one that just went away).
                    Err(e) => {
                        let _ = writeln!(err, "{}", fetch_message(&e, Some(name)));
                    }
                }
            }
            let written = if options.json {
                json(out, &all)
            } else {
                let texts: Vec<String> = all.iter().map(render).collect();
                out.write_all(texts.join("\n").as_bytes())
            };
            // wg's status: a failure when there were interfaces and none could be shown.
            if all.is_empty() && !names.is_empty() {
                return 1;
            }
            written
        }
    };
    match written {
        Ok(()) => 0,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            let _ = writeln!(err, "cannot write the counters: {e}");
            1
        }
    }
}

fn json<T: serde::Serialize + ?Sized>(out: &mut dyn Write, value: &T) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    out.write_all(b"\n")
}
