//! `ferrotun up|down|save|strip <if | path.conf>`, also reached as `wg-quick`: the Linux
//! wg-quick(8) sequence, with addresses, routes, rules, MTU and link state set over netlink.
//!
//! Every step that changes the system is printed to stderr as `[#] <command>`, in the form
//! of the command wg-quick runs for it, so logs read the same.

// Outside tests an error is reported, never a panic: no unwrap or expect in shipped code.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
// All unsafe code lives in crates/device.
#![forbid(unsafe_code)]

pub mod daemon;
mod dns;
mod error;
mod firewall;
mod hooks;
mod mtu;
mod options;
mod origin;
mod programs;
mod routes;
mod save;
mod session;
mod src_valid_mark;
mod tables;
mod undo;
mod updown;

pub use error::QuickError;
pub use options::Loaded;

/// Prints a step as wg-quick does (`[#] ...` on stderr).
pub(crate) fn step(text: &str) {
    eprintln!("[#] {text}");
}

pub fn usage(program: &str) -> String {
    format!(
        "Usage: {program} [ up | down | save | strip ] [ CONFIG_FILE | INTERFACE ]

  CONFIG_FILE is a configuration file, whose filename is the interface name
  followed by `.conf'. Otherwise, INTERFACE is an interface name, with
  configuration found at /etc/wireguard/INTERFACE.conf. It is to be readable
  by wg(8)'s `setconf' sub-command, with the exception of the following additions
  to the [Interface] section, which are handled by {program}:

  - Address: may be specified one or more times and contains one or more
    IP addresses (with an optional CIDR mask) to be set for the interface.
  - DNS: an optional DNS server to use while the device is up.
  - MTU: an optional MTU for the interface; if unspecified, auto-calculated.
  - Table: an optional routing table to which routes will be added; if
    unspecified or `auto', the default table is used. If `off', no routes
    are added.
  - PreUp, PostUp, PreDown, PostDown: script snippets which will be executed
    by bash(1) at the corresponding phases of the link, most commonly used
    to configure DNS. The string `%i' is expanded to INTERFACE.
  - SaveConfig: if set to `true', the configuration is saved from the current
    state of the interface upon shutdown.

See wg-quick(8) for more info and examples.
"
    )
}

/// `wg-quick ARGS` (or `ferrotun ARGS` with ARGS starting at up/down/save/strip); returns the
/// exit status.
pub fn main(program: &str, args: &[String]) -> i32 {
    let verb = match args {
        [one] if matches!(one.as_str(), "--help" | "-h" | "help") => {
            eprint!("{}", usage(program));
            return 0;
        }
        [verb, _] if matches!(verb.as_str(), "up" | "down" | "save" | "strip") => verb.as_str(),
        _ => {
            eprint!("{}", usage(program));
            return 1;
        }
    };
    let target = args.get(1).map(String::as_str).unwrap_or_default();
    let result = options::load(target)
        .map_err(|e| origin::explain(e, program, verb, target))
        .and_then(|loaded| match verb {
            "up" => updown::up(&loaded),
            "down" => updown::down(&loaded),
            "save" => updown::save(&loaded),
            "strip" => {
                print!("{}", loaded.config.strip());
                Ok(())
            }
            _ => Err(QuickError::Usage),
        });
    match result {
        Ok(()) => 0,
        Err(QuickError::Usage) => {
            eprint!("{}", usage(program));
            1
        }
        // The config error already names the file and line.
        Err(QuickError::Config(e)) => {
            eprintln!("{e}");
            1
        }
        Err(e) => {
            eprintln!("{program}: {e}");
            1
        }
    }
}
