//! The `ferrotun` command line: which implementation a command line goes to, help that
//! lists every command, and refusing a mistyped command instead of starting a daemon for an
//! interface named after it. Called as `wg` or `wg-quick` the binary never comes here.

pub mod definition;
pub mod generate;
pub mod help;
pub mod options;
pub mod suggest;

use std::io::Write;
use std::path::Path;

use clap::FromArgMatches;
use definition::{kind, Kind, NAME};
use options::{CompletionsOptions, ManOptions, NoOptions, QuickOptions};

/// Runs `ferrotun ARGS`; returns the exit status.
pub fn main(args: &[String]) -> i32 {
    let Some(first) = args.first() else {
        // Nothing asked: the list of commands, but a failure status, so a script that lost
        // its interface name notices (as wireguard-go and git do).
        out(&help::overview());
        return 1;
    };
    match first.as_str() {
        "-h" | "--help" => {
            out(&help::overview());
            return 0;
        }
        "-v" | "--version" => return version(),
        _ => {}
    }
    let rest = &args[1..];
    match kind(first) {
        Some(Kind::Help) => help_command(rest),
        Some(Kind::Version) => match rest {
            [] => version(),
            // No options: only clap's error for the extra words.
            _ => parse::<NoOptions>(first, rest).map_or_else(|code| code, |_| 0),
        },
        Some(Kind::Wg) => {
            if matches!(rest, [one] if one == "--help" || one == "-h") {
                return show_help(first);
            }
            ferrotun_wg::wg_main(args)
        }
        Some(Kind::Quick) => match parse::<QuickOptions>(first, rest) {
            Ok(o) => ferrotun_quick::main(NAME, &[first.clone(), o.target]),
            Err(code) => code,
        },
        Some(Kind::Daemon) => match parse::<ferrotun_daemon::Args>(first, rest) {
            Ok(o) => ferrotun_daemon::main(NAME, &o),
            Err(code) => code,
        },
        Some(Kind::Stats) => match parse::<ferrotun_top::StatsOptions>(first, rest) {
            Ok(o) => ferrotun_top::stats(&ferrotun_uapi::Client::new(), &o),
            Err(code) => code,
        },
        Some(Kind::Top) => match parse::<ferrotun_top::TopOptions>(first, rest) {
            Ok(o) => ferrotun_top::top(&ferrotun_uapi::Client::new(), o.interface.as_deref()),
            Err(code) => code,
        },
        // The mesh parses its own words with its own definition (crates/mesh/src/options.rs).
        Some(Kind::Mesh) => ferrotun_mesh::main(rest),
        Some(Kind::Demo) => match parse::<ferrotun_demo::Options>(first, rest) {
            Ok(o) => ferrotun_demo::main(o),
            Err(code) => code,
        },
        Some(Kind::Completions) => match parse::<CompletionsOptions>(first, rest) {
            Ok(o) => {
                // Made whole first, then written as help is: a reader that stops early
                // (`| head`) is no error.
                let mut script = Vec::new();
                match generate::completions(&o.shell, &mut script) {
                    Ok(()) => {
                        out_bytes(&script);
                        0
                    }
                    Err(e) => fail(&e),
                }
            }
            Err(code) => code,
        },
        Some(Kind::Man) => match parse::<ManOptions>(first, rest) {
            Ok(o) => man(o.dir.as_deref().map(Path::new)),
            Err(code) => code,
        },
        None => bare_daemon(args),
    }
}

/// `ferrotun [-f|--foreground] INTERFACE-NAME`, the form wg-quick runs. The name must not
/// be a command or look like a mistyped one. Parsed by hand, not by clap: its messages
/// (which name the near miss) are its own, but it fills the same typed daemon options as
/// `daemon`.
fn bare_daemon(args: &[String]) -> i32 {
    let mut options = ferrotun_daemon::Args::default();
    let mut names = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-f" | "--foreground" => options.foreground = true,
            "--disable-drop-privileges" => options.unconfined = true,
            "--user" => match args.next() {
                Some(user) => options.user = Some(user.clone()),
                None => {
                    return fail(&format!(
                        "`--user' needs a user name\nSee `{NAME} help daemon'."
                    ))
                }
            },
            "--metrics" => match args.next() {
                Some(addr) => options.metrics = Some(addr.clone()),
                None => {
                    return fail(&format!(
                    "`--metrics' needs ADDR:PORT (e.g. 127.0.0.1:9586)\nSee `{NAME} help daemon'."
                ))
                }
            },
            other if other.starts_with("--metrics=") => {
                options.metrics = Some(other["--metrics=".len()..].to_string())
            }
            "-h" | "--help" => {
                out(&help::overview());
                return 0;
            }
            other if other.starts_with('-') => {
                return fail(&format!(
                    "unknown option `{other}'\nSee `{NAME} help' for every command."
                ))
            }
            other => names.push(other),
        }
    }
    let [name] = names[..] else {
        return fail(&format!(
            "expected one interface name, got {}\nUsage: {NAME} [-f|--foreground] INTERFACE-NAME\n\
             See `{NAME} help' for every command.",
            names.len()
        ));
    };
    if kind(name).is_some() {
        return fail(&format!(
            "`{name}' is a command, not an interface name here.\n\
             To start the daemon for an interface named `{name}', run `{NAME} daemon {name}'."
        ));
    }
    if let Some(meant) = suggest::near_miss(name) {
        return fail(&format!(
            "`{name}' is not a command; did you mean `{meant}'?\n\
             To start the daemon for an interface named `{name}', run `{NAME} daemon {name}'.\n\
             See `{NAME} help' for every command."
        ));
    }
    options.name = name.to_string();
    ferrotun_daemon::main(NAME, &options)
}

/// `help [COMMAND]`.
fn help_command(rest: &[String]) -> i32 {
    match rest {
        [] => {
            out(&help::overview());
            0
        }
        [flag] if flag == "--help" || flag == "-h" => show_help("help"),
        [name] => {
            if help::of_command(name).is_some() {
                return show_help(name);
            }
            let hint = suggest::near_miss(name)
                .map(|m| format!("; did you mean `{m}'?"))
                .unwrap_or_default();
            fail(&format!(
                "no command `{name}'{hint}\nSee `{NAME} help' for every command."
            ))
        }
        _ => fail(&format!("Usage: {NAME} help [COMMAND]")),
    }
}

fn show_help(name: &str) -> i32 {
    if help::print(name) {
        0
    } else {
        fail(&format!("no command `{name}'"))
    }
}

fn version() -> i32 {
    out(&format!(
        "{NAME} v{} (userspace WireGuard)\n",
        env!("CARGO_PKG_VERSION")
    ));
    0
}

fn man(dir: Option<&Path>) -> i32 {
    let Some(dir) = dir else {
        // Rendered whole, then written as help is: `ferrotun man | head` is no error.
        let mut page = Vec::new();
        return match generate::man_page(&mut page) {
            Ok(()) => {
                out_bytes(&page);
                0
            }
            Err(e) => fail(&format!("cannot render the man page: {e}")),
        };
    };
    match generate::man_pages(dir) {
        Ok(files) => {
            for f in files {
                out(&format!("{}\n", f.display()));
            }
            0
        }
        Err(e) => fail(&format!(
            "cannot write man pages into {}: {e}",
            dir.display()
        )),
    }
}

/// Parses one command's words with its definition into its options. On `--help` or an
/// error clap prints what fits, and the exit status comes back as the error.
fn parse<T: FromArgMatches>(name: &str, rest: &[String]) -> Result<T, i32> {
    let Some(sub) = help::subcommand(name) else {
        return Err(fail(&format!("no command `{name}'")));
    };
    let words = std::iter::once(name.to_string()).chain(rest.iter().cloned());
    sub.try_get_matches_from(words)
        .and_then(|m| T::from_arg_matches(&m))
        .map_err(|e| {
            let _ = e.print();
            e.exit_code()
        })
}

/// Writes to stdout; a closed pipe (`ferrotun help | head`) is not an error worth a panic.
fn out(text: &str) {
    out_bytes(text.as_bytes());
}

fn out_bytes(bytes: &[u8]) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(bytes);
    let _ = stdout.flush();
}

fn fail(message: &str) -> i32 {
    eprintln!("{NAME}: {message}");
    1
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    // The typed read-back: each command's words land in its crate's options struct.
    #[test]
    fn daemon_words_fill_the_daemon_args() {
        let a: ferrotun_daemon::Args = parse(
            "daemon",
            &words(&[
                "-f",
                "--user",
                "bob",
                "--disable-drop-privileges",
                "--metrics=127.0.0.1:9586",
                "wg0",
            ]),
        )
        .unwrap();
        assert_eq!(a.name, "wg0");
        assert!(a.foreground && a.unconfined);
        assert_eq!(a.user.as_deref(), Some("bob"));
        assert_eq!(a.metrics.as_deref(), Some("127.0.0.1:9586"));
        let a: ferrotun_daemon::Args = parse("daemon", &words(&["wg1"])).unwrap();
        assert_eq!(a.name, "wg1");
        assert!(!a.foreground && !a.unconfined && a.user.is_none() && a.metrics.is_none());
    }

    #[test]
    fn demo_seconds_become_a_duration_with_the_default_of_three() {
        let o: ferrotun_demo::Options = parse("demo", &[]).unwrap();
        assert_eq!(o, ferrotun_demo::Options::default());
        let o: ferrotun_demo::Options =
            parse("demo", &words(&["--seconds", "7", "--keep", "--no-up"])).unwrap();
        assert_eq!(o.seconds, Duration::from_secs(7));
        assert!(o.keep && o.no_up);
        assert_eq!(
            parse::<ferrotun_demo::Options>("demo", &words(&["--seconds", "0"])).err(),
            Some(2)
        );
    }

    #[test]
    fn stats_top_quick_completions_and_man_read_back_typed() {
        let s: ferrotun_top::StatsOptions = parse("stats", &words(&["wg0", "--json"])).unwrap();
        assert_eq!(s.interface.as_deref(), Some("wg0"));
        assert!(s.json);
        let s: ferrotun_top::StatsOptions = parse("stats", &[]).unwrap();
        assert!(s.interface.is_none() && !s.json);
        let t: ferrotun_top::TopOptions = parse("top", &words(&["wg0"])).unwrap();
        assert_eq!(t.interface.as_deref(), Some("wg0"));
        let q: QuickOptions = parse("up", &words(&["/etc/wireguard/wg0.conf"])).unwrap();
        assert_eq!(q.target, "/etc/wireguard/wg0.conf");
        let c: CompletionsOptions = parse("completions", &words(&["zsh"])).unwrap();
        assert_eq!(c.shell, "zsh");
        let m: ManOptions = parse("man", &[]).unwrap();
        assert!(m.dir.is_none());
        let m: ManOptions = parse("man", &words(&["out"])).unwrap();
        assert_eq!(m.dir.as_deref(), Some("out"));
    }
}
