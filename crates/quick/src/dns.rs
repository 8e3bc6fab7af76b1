//! DNS through resolvconf(8), as wg-quick sets it; without resolvconf, a clear notice instead.

use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};

use super::{step, QuickError};
use ferrotun_uapi::config::QuickConfig;

pub fn have_resolvconf() -> bool {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .any(|dir| std::path::Path::new(dir).join("resolvconf").is_file())
}

/// The interface-order prefix some resolvconf setups want (`tun*` → `tun.`).
fn iface_prefix() -> String {
    let Ok(text) = std::fs::read_to_string("/etc/resolvconf/interface-order") else {
        return String::new();
    };
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_suffix('*') {
            if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return format!("{name}.");
            }
        }
    }
    String::new()
}

/// Hands the servers and search domains to resolvconf. Returns whether DNS was set (and so
/// needs undoing).
pub fn set(config: &QuickConfig, ifname: &str) -> Result<bool, QuickError> {
    if config.dns.is_empty() {
        return Ok(false);
    }
    if !have_resolvconf() {
        let servers: Vec<String> = config.dns.iter().map(IpAddr::to_string).collect();
        eprintln!(
            "[!] DNS not configured: resolvconf(8) is not installed, so DNS = {} was not applied",
            servers.join(", ")
        );
        return Ok(false);
    }
    let mut input = String::new();
    for server in &config.dns {
        input.push_str(&format!("nameserver {server}\n"));
    }
    if !config.dns_search.is_empty() {
        input.push_str(&format!("search {}\n", config.dns_search.join(" ")));
    }
    let name = format!("{}{ifname}", iface_prefix());
    step(&format!("resolvconf -a {name} -m 0 -x"));
    let mut child = Command::new("resolvconf")
        .args(["-a", &name, "-m", "0", "-x"])
        .stdin(Stdio::piped())
        .spawn()
        .map_err(QuickError::io("cannot run resolvconf"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(QuickError::io("cannot write to resolvconf"))?;
    }
    let status = child
        .wait()
        .map_err(QuickError::io("cannot run resolvconf"))?;
    if !status.success() {
        return Err(QuickError::Command {
            what: "resolvconf".into(),
            status,
        });
    }
    Ok(true)
}

pub fn unset(ifname: &str) -> Result<(), QuickError> {
    if !have_resolvconf() {
        return Ok(());
    }
    let name = format!("{}{ifname}", iface_prefix());
    step(&format!("resolvconf -d {name} -f"));
    let status = Command::new("resolvconf")
        .args(["-d", &name, "-f"])
        .status()
        .map_err(QuickError::io("cannot run resolvconf"))?;
    if !status.success() {
        return Err(QuickError::Command {
            what: "resolvconf -d".into(),
            status,
        });
    }
    Ok(())
}

/// The servers resolvconf holds for the interface, for `save`.
pub fn servers(ifname: &str) -> Vec<String> {
    let name = format!("{}{ifname}", iface_prefix());
    let text = Command::new("resolvconf")
        .args(["-l", &name])
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .or_else(|| std::fs::read_to_string(format!("/etc/resolvconf/run/interface/{name}")).ok())
        .unwrap_or_default();
    text.lines()
        .filter_map(|l| l.strip_prefix("nameserver "))
        .map(str::trim)
        .filter(|s| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_=+:%.-".contains(&b))
        })
        .map(str::to_string)
        .collect()
}
