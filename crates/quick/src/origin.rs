//! Which file an interface was brought up from, so that `down NAME` for an interface brought
//! up from `./elsewhere/NAME.conf` can say how to take it down, where wg-quick only says
//! that `/etc/wireguard/NAME.conf` does not exist.
//!
//! `up` leaves one small record per interface under [`DIR`] (in /run: gone at reboot with
//! the interface) and `down` removes it. A record is believed only for the interface it was
//! written for: same network namespace, same link index. A record outliving its interface
//! (deleted with `ip link`) is never taken for a new one of the same name.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::QuickError;
use ferrotun_netlink::Netlink;
use ferrotun_uapi::config::quick::is_interface_name;
use ferrotun_uapi::Client;

/// Where the records live; the systemd unit may write under /run.
pub const DIR: &str = "/run/ferrotun/quick";

/// The network namespace's identity: the inode of its nsfs file.
fn netns() -> Option<u64> {
    std::fs::metadata("/proc/self/ns/net").ok().map(|m| m.ino())
}

fn record_path(ifname: &str) -> PathBuf {
    Path::new(DIR).join(ifname)
}

/// Notes that `ifname` (link `index`) was brought up from `config`. Failing to is no reason
/// to fail `up`: only a later hint is lost, so it is reported and `up` goes on.
pub fn record(ifname: &str, index: u32, config: &Path) {
    let Some(netns) = netns() else { return };
    let text = format!(
        "netns={netns}\nifindex={index}\nconfig={}\n",
        config.display()
    );
    let written =
        std::fs::create_dir_all(DIR).and_then(|()| std::fs::write(record_path(ifname), text));
    if let Err(e) = written {
        eprintln!(
            "[!] cannot note where {ifname} came from in {DIR} ({e}); \
             `down {ifname}' will not be able to say"
        );
    }
}

/// Forgets `ifname`'s record once the interface is gone.
pub fn forget(ifname: &str) {
    let _ = std::fs::remove_file(record_path(ifname));
}

/// The file `ifname` was brought up from, if its record is for the link of that name here.
fn recorded(ifname: &str, index: u32) -> Option<PathBuf> {
    let text = std::fs::read_to_string(record_path(ifname)).ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
    };
    let same_netns = field("netns")?.parse::<u64>().ok()? == netns()?;
    let same_link = field("ifindex")?.parse::<u32>().ok()? == index;
    let config = field("config")?;
    (same_netns && same_link).then(|| PathBuf::from(config))
}

/// For `down NAME` or `save NAME` whose /etc/wireguard/NAME.conf does not exist: what to add
/// to wg-quick's "does not exist", when NAME is running. `None` when there is nothing to
/// add (a path was given, or no such interface runs).
pub fn hint(program: &str, verb: &str, target: &str) -> Option<String> {
    if !matches!(verb, "down" | "save") || !is_interface_name(target) {
        return None;
    }
    let ifname = target;
    let link = Netlink::open().ok()?.link_by_name(ifname).ok()??;
    let doing = if verb == "down" {
        "take it down"
    } else {
        "save it"
    };
    if let Some(config) = recorded(ifname, link.index) {
        if config.exists() {
            return Some(format!(
                "{ifname} was brought up from `{}': {doing} with `{program} {verb} {}'",
                config.display(),
                shell_word(&config.to_string_lossy())
            ));
        }
        return Some(format!(
            "{ifname} was brought up from `{}', which no longer exists; \
             `ip link delete dev {ifname}' removes the interface (without its PreDown and \
             PostDown)",
            config.display()
        ));
    }
    let running = Client::new()
        .list_interfaces()
        .is_ok_and(|names| names.iter().any(|n| n == ifname));
    running.then(|| {
        format!(
            "{ifname} is running, brought up from a file elsewhere: {doing} with \
             `{program} {verb} /path/to/{ifname}.conf'"
        )
    })
}

/// `path` as one shell word: as it is when it needs no quoting, else in single quotes.
fn shell_word(path: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+:@%,=".contains(c);
    if !path.is_empty() && path.chars().all(plain) {
        path.to_string()
    } else {
        format!("'{}'", path.replace('\'', r"'\''"))
    }
}

/// Adds [`hint`] to a "does not exist" refusal of `load`.
pub fn explain(error: QuickError, program: &str, verb: &str, target: &str) -> QuickError {
    match error {
        QuickError::Refused(message) if message.ends_with("' does not exist") => {
            match hint(program, verb, target) {
                Some(hint) => QuickError::Refused(format!("{message}\n{hint}")),
                None => QuickError::Refused(message),
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_one_shell_word() {
        assert_eq!(shell_word("/tmp/x/wg0.conf"), "/tmp/x/wg0.conf");
        assert_eq!(shell_word("/tmp/my dir/wg0.conf"), "'/tmp/my dir/wg0.conf'");
        assert_eq!(shell_word("/tmp/it's/wg0.conf"), r"'/tmp/it'\''s/wg0.conf'");
    }

    #[test]
    fn no_hint_for_paths_other_verbs_or_absent_interfaces() {
        assert_eq!(hint("ferrotun", "down", "./wg0.conf"), None);
        assert_eq!(hint("ferrotun", "up", "wg0"), None);
        assert_eq!(hint("ferrotun", "strip", "wg0"), None);
        assert_eq!(hint("ferrotun", "down", "nosuchif9q"), None);
    }
}
