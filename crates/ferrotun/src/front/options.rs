//! The options of the commands whose code lives in this crate or takes plain words: the
//! wg-quick commands' target, `completions`, `man`, `help` and the top-level flags. The
//! daemon's, `stats`', `top`'s and `demo`'s options live with their crates; the mesh's
//! whole grammar lives in ferrotun-mesh.
//!
//! Ids, value names and help texts are the command line's wording: help, completions and
//! man pages are generated from them. The structs carry `//` comments, not doc comments,
//! because clap would make those the command's about and the options' help.

use clap::{ArgAction, ValueHint};

// `up`, `down`, `save` and `strip`: one configuration file or interface name, which
// ferrotun-quick resolves as wg-quick does.
#[derive(Debug, Clone, clap::Args)]
#[group(skip)]
pub struct QuickOptions {
    #[arg(
        id = "target",
        value_name = "CONFIG_FILE|INTERFACE",
        value_hint = ValueHint::FilePath,
        help = "A configuration file named INTERFACE.conf, or an interface name whose \
                configuration is /etc/wireguard/INTERFACE.conf"
    )]
    pub target: String,
}

// A shell name as text, not clap_complete's `Shell`: that would offer (and accept) shells
// whose scripts are not part of the promise.
#[derive(Debug, Clone, clap::Args)]
#[group(skip)]
pub struct CompletionsOptions {
    #[arg(
        id = "shell",
        value_name = "SHELL",
        value_parser = ["bash", "zsh", "fish"],
        help = "The shell to complete for"
    )]
    pub shell: String,
}

// DIR stays text (clap's path parser would refuse an empty one with its own message; the
// file system's answer is reported instead).
#[derive(Debug, Clone, clap::Args)]
#[group(skip)]
pub struct ManOptions {
    #[arg(
        id = "dir",
        value_name = "DIR",
        value_hint = ValueHint::DirPath,
        help = "Write ferrotun.1 and one ferrotun-COMMAND.1 per command into DIR"
    )]
    pub dir: Option<String>,
}

// Only describes `help`: its words are read by hand (front::help_command), whose messages
// name the near miss.
#[derive(Debug, Clone, clap::Args)]
#[group(skip)]
pub struct HelpOptions {
    #[arg(
        id = "command",
        value_name = "COMMAND",
        help = "The command to describe"
    )]
    pub command: Option<String>,
}

// A wg command's words, passed to ferrotun-wg untouched: wg's grammar (`set wg0 peer KEY
// allowed-ips ...`) is not a shape an argument parser models well. Only describes them.
#[derive(Debug, Clone, clap::Args)]
#[group(skip)]
pub struct WgWords {
    #[arg(
        id = "args",
        num_args = 0..,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS",
        help = "The command's words, as wg(8) takes them (see Usage)"
    )]
    pub args: Vec<String>,
}

// `version`: none, but its extra words get clap's error as any command's do.
#[derive(Debug, Clone, clap::Args)]
#[group(skip)]
pub struct NoOptions {}

// `ferrotun [-f] INTERFACE-NAME` and `-v`. Only describes them: the top level is dispatched
// by hand (front::main), so that an interface name is never taken for a mistyped command.
#[derive(Debug, Clone, clap::Args)]
#[group(skip)]
pub struct TopLevel {
    #[arg(
        id = "foreground",
        short = 'f',
        long = "foreground",
        help = "Stay in the foreground instead of detaching (the daemon)"
    )]
    pub foreground: bool,
    #[arg(
        id = "version",
        short = 'v',
        long = "version",
        action = ArgAction::Version,
        help = "Print the version"
    )]
    pub version: Option<bool>,
}
