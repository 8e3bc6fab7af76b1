//! `ferrotun demo [--seconds N] [--keep]`

use std::time::Duration;

pub const USAGE: &str = "\
Usage: ferrotun demo [--seconds N] [--keep] [--no-up]

Builds two WireGuard peers in fresh network namespaces from wg-quick files (peer A
10.0.0.1, peer B 10.0.0.2, B dialing A), plus a LAN host 192.168.100.2 behind B that
A reaches through the tunnel (B forwards and masquerades). Then it pings across the
tunnel, measures TCP throughput, shows both interfaces, and removes everything again,
also on errors and on Ctrl-C. Needs root, iproute2, iptables and ping.

Options:
  --seconds N   length of the throughput test (default 3)
  --keep        leave everything up afterwards (also after a failure) and print the
                commands that remove it; Ctrl-C still cleans up
  --no-up       bring the peers up by hand (daemon, `ip`, configuration socket)
                instead of with `ferrotun up`
  -h, --help    show this help
";

const MAX_SECONDS: u64 = 3600;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub seconds: Duration,
    pub keep: bool,
    pub no_up: bool,
    pub help: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seconds: Duration::from_secs(3),
            keep: false,
            no_up: false,
            help: false,
        }
    }
}

impl Options {
    /// Parses the arguments after `demo`.
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options::default();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
                _ => (arg.as_str(), None),
            };
            match name {
                "--seconds" => {
                    let value = inline
                        .or_else(|| args.next().cloned())
                        .ok_or("--seconds needs a number")?;
                    let secs = value
                        .parse::<u64>()
                        .ok()
                        .filter(|s| (1..=MAX_SECONDS).contains(s))
                        .ok_or_else(|| {
                            format!("--seconds: `{value}' is not a number 1-{MAX_SECONDS}")
                        })?;
                    options.seconds = Duration::from_secs(secs);
                }
                "--keep" if inline.is_none() => options.keep = true,
                "--no-up" if inline.is_none() => options.no_up = true,
                "-h" | "--help" | "help" if inline.is_none() => options.help = true,
                _ => return Err(format!("unknown argument `{arg}'")),
            }
        }
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        Options::parse(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn defaults() {
        assert_eq!(parse(&[]), Ok(Options::default()));
        assert_eq!(Options::default().seconds, Duration::from_secs(3));
    }

    #[test]
    fn seconds_and_keep() {
        let o = parse(&["--seconds", "7", "--keep"]).expect("valid");
        assert_eq!(o.seconds, Duration::from_secs(7));
        assert!(o.keep);
        assert!(!o.no_up);
        assert!(parse(&["--no-up"]).expect("valid").no_up);
        assert_eq!(
            parse(&["--seconds=2"]).expect("valid").seconds,
            Duration::from_secs(2)
        );
    }

    #[test]
    fn rejects_bad_input() {
        assert!(parse(&["--seconds"]).is_err());
        assert!(parse(&["--seconds", "0"]).is_err());
        assert!(parse(&["--seconds", "-1"]).is_err());
        assert!(parse(&["--seconds", "x"]).is_err());
        assert!(parse(&["--keep=yes"]).is_err());
        assert!(parse(&["--frobnicate"]).is_err());
    }

    #[test]
    fn help() {
        assert!(parse(&["--help"]).expect("valid").help);
        assert!(parse(&["-h"]).expect("valid").help);
    }
}
