//! DNS for the interface through what the host has: resolvconf(8), as wg-quick sets it; else
//! systemd-resolved through resolvectl(1), as resolvconf does where it is resolved's shim;
//! else a refusal before anything changes. Never a warning and success: a tunnel that
//! carries the traffic but leaves the names to the old resolver leaks every lookup, and the
//! user would not see it.

use std::net::IpAddr;
use std::process::{Command, Stdio};

use super::{programs, QuickError};
use ferrotun_uapi::config::QuickConfig;

/// The program that hands the servers to the host's resolver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolver {
    Resolvconf,
    Resolvectl,
}

impl Resolver {
    /// resolvconf first, as wg-quick uses nothing else; resolvectl where it is missing.
    pub fn find() -> Option<Resolver> {
        if programs::on_path("resolvconf") {
            Some(Resolver::Resolvconf)
        } else if programs::on_path("resolvectl") {
            Some(Resolver::Resolvectl)
        } else {
            None
        }
    }

    /// What `up` will use for the configuration's DNS: `None` when it has none; an error,
    /// before anything is changed, when the host has no way to apply it.
    pub fn for_config(config: &QuickConfig, ifname: &str) -> Result<Option<Resolver>, QuickError> {
        if config.dns.is_empty() {
            return Ok(None);
        }
        match Resolver::find() {
            Some(resolver) => Ok(Some(resolver)),
            None => {
                let servers: Vec<String> = config.dns.iter().map(IpAddr::to_string).collect();
                Err(QuickError::Refused(format!(
                    "`{ifname}' has DNS = {}, but neither resolvconf(8) nor resolvectl(1) is \
                     on PATH to apply it; bringing the tunnel up without it would send every \
                     name lookup outside. Install resolvconf (or openresolv), or remove the \
                     DNS line",
                    servers.join(", ")
                )))
            }
        }
    }
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

fn run(program: &str, args: &[&str], input: Option<&str>) -> Result<(), QuickError> {
    programs::run(program, args, input, &format!("{program} {}", args[0]))
}

/// Hands the servers and search domains to `resolver` for `ifname`.
pub fn set(resolver: Resolver, config: &QuickConfig, ifname: &str) -> Result<(), QuickError> {
    let servers: Vec<String> = config.dns.iter().map(IpAddr::to_string).collect();
    match resolver {
        Resolver::Resolvconf => {
            let mut input = String::new();
            for server in &servers {
                input.push_str(&format!("nameserver {server}\n"));
            }
            if !config.dns_search.is_empty() {
                input.push_str(&format!("search {}\n", config.dns_search.join(" ")));
            }
            let name = format!("{}{ifname}", iface_prefix());
            run("resolvconf", &["-a", &name, "-m", "0", "-x"], Some(&input))
        }
        Resolver::Resolvectl => {
            let mut dns = vec!["dns", ifname];
            dns.extend(servers.iter().map(String::as_str));
            run("resolvectl", &dns, None)?;
            // `~.` makes the link the route for every name no other link claims: what
            // resolvconf's `-x` (exclusive) asks of resolved's shim, and no leak.
            let mut domain = vec!["domain", ifname];
            domain.extend(config.dns_search.iter().map(String::as_str));
            domain.push("~.");
            run("resolvectl", &domain, None)
        }
    }
}

/// Takes back what [`set`] gave `resolver`. With resolvectl it must run while the link
/// still exists (resolved forgets a vanished link by itself, but `revert` then fails).
pub fn unset(resolver: Resolver, ifname: &str) -> Result<(), QuickError> {
    match resolver {
        Resolver::Resolvconf => {
            let name = format!("{}{ifname}", iface_prefix());
            run("resolvconf", &["-d", &name, "-f"], None)
        }
        Resolver::Resolvectl => run("resolvectl", &["revert", ifname], None),
    }
}

/// The servers the host's resolver holds for the interface, for `save`.
pub fn servers(ifname: &str) -> Vec<String> {
    let found: Vec<String> = match Resolver::find() {
        Some(Resolver::Resolvconf) => {
            let name = format!("{}{ifname}", iface_prefix());
            output("resolvconf", &["-l", &name])
                .or_else(|| {
                    std::fs::read_to_string(format!("/etc/resolvconf/run/interface/{name}")).ok()
                })
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.strip_prefix("nameserver "))
                .map(|s| s.trim().to_string())
                .collect::<Vec<_>>()
        }
        // `Link 7 (wg0): 10.0.0.53 fd00::53`
        Some(Resolver::Resolvectl) => output("resolvectl", &["dns", ifname])
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once("):").map(|(_, rest)| rest))
            .flat_map(|rest| rest.split_whitespace().map(str::to_string))
            .collect(),
        None => Vec::new(),
    };
    found
        .into_iter()
        .filter(|s| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_=+:%.-".contains(&b))
        })
        .collect()
}

fn output(program: &str, args: &[&str]) -> Option<String> {
    Command::new(program)
        .args(args)
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
}
