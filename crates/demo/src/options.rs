//! What `ferrotun demo` was asked to do: the options of `ferrotun demo`, which the command
//! line (`front::definition`) attaches to its command tree and reads back typed.

use std::time::Duration;

use clap::{builder::TypedValueParser, value_parser};

// `//` comments, not doc comments: clap would make those the command's about and the
// options' help.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
#[group(skip)]
pub struct Options {
    // Whole seconds on the command line, checked there (a zero-length test measures
    // nothing; an hour is plenty).
    #[arg(
        id = "seconds",
        long = "seconds",
        value_name = "N",
        value_parser = value_parser!(u64).range(1..=3600).map(Duration::from_secs),
        default_value = "3",
        help = "Length of the throughput test, 1 to 3600"
    )]
    pub seconds: Duration,
    #[arg(
        id = "keep",
        long = "keep",
        help = "Leave everything up afterwards (also after a failure) and print the \
                commands that remove it; Ctrl-C still cleans up"
    )]
    pub keep: bool,
    #[arg(
        id = "no-up",
        long = "no-up",
        help = "Bring the peers up by hand (daemon, `ip', configuration socket) instead \
                of with `ferrotun up'"
    )]
    pub no_up: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seconds: Duration::from_secs(3),
            keep: false,
            no_up: false,
        }
    }
}
