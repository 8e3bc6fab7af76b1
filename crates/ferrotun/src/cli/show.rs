//! `show [<interface> | all | interfaces] [field]`, output byte-for-byte as wg(8) prints it.

use std::fmt::Write as _;

use ferrotun_proto::keys::PublicKey;

use super::io::{Env, Io};
use super::pretty::{self, BOLD, CYAN, GREEN, RESET, YELLOW};
use crate::uapi::prefix::{fmt_endpoint, fmt_ip};
use crate::uapi::{InterfaceStatus, PeerStatus};

pub(crate) const FIELDS: &str = "public-key | private-key | listen-port | fwmark | peers | preshared-keys | endpoints | allowed-ips | latest-handshakes | transfer | persistent-keepalive | dump";

fn usage(io: &mut Io, cmd: &str) {
    let msg = format!(
        "Usage: {} {cmd} {{ <interface> | all | interfaces }} [{FIELDS}]\n",
        io.prog
    );
    io.err(&msg);
}

pub fn show(io: &mut Io, args: &[String]) -> i32 {
    let cmd = args.first().map_or("show", String::as_str);
    let target = args.get(1).map(String::as_str);
    let field = args.get(2).map(String::as_str);
    if args.len() > 3 {
        usage(io, cmd);
        return 1;
    }
    match target {
        None | Some("all") => show_all(io, cmd, field),
        Some("interfaces") => {
            if field.is_some() {
                usage(io, cmd);
                return 1;
            }
            match io.client.list_interfaces() {
                Ok(names) if names.is_empty() => 0,
                Ok(names) => i32::from(!io.out(&format!("{}\n", names.join(" ")))),
                Err(e) => {
                    io.err(&format!("Unable to list interfaces: {e}\n"));
                    1
                }
            }
        }
        Some("-h" | "--help" | "help") if field.is_none() => {
            usage(io, cmd);
            0
        }
        Some(iface) => {
            let status = match io.client.get(iface) {
                Ok(s) => s,
                Err(e) => {
                    io.err(&format!("Unable to access interface: {e}\n"));
                    return 1;
                }
            };
            let text = match field {
                None => pretty_text(&status, iface, &io.env),
                Some(f) => match field_text(&status, iface, f, false) {
                    Some(t) => t,
                    None => return invalid_field(io, cmd, f),
                },
            };
            i32::from(!io.out(&text))
        }
    }
}

fn invalid_field(io: &mut Io, cmd: &str, field: &str) -> i32 {
    io.err(&format!("Invalid parameter: `{field}'\n"));
    usage(io, cmd);
    1
}

fn show_all(io: &mut Io, cmd: &str, field: Option<&str>) -> i32 {
    let names = match io.client.list_interfaces() {
        Ok(n) => n,
        Err(e) => {
            io.err(&format!("Unable to list interfaces: {e}\n"));
            return 1;
        }
    };
    // wg's status: 1 if there were interfaces but none could be shown.
    let mut status = i32::from(!names.is_empty());
    for (i, name) in names.iter().enumerate() {
        let device = match io.client.get(name) {
            Ok(d) => d,
            Err(e) => {
                io.err(&format!("Unable to access interface {name}: {e}\n"));
                continue;
            }
        };
        let text = match field {
            Some(f) => match field_text(&device, name, f, true) {
                Some(t) => t,
                None => return invalid_field(io, cmd, f),
            },
            None => {
                let mut t = pretty_text(&device, name, &io.env);
                if i + 1 < names.len() {
                    t.push('\n');
                }
                t
            }
        };
        if !io.out(&text) {
            return 1;
        }
        status = 0;
    }
    status
}

/// Peers newest handshake first, never-handshaked last; stable, like glibc's merge-sort qsort.
fn sorted_peers(status: &InterfaceStatus) -> Vec<&PeerStatus> {
    let mut peers: Vec<&PeerStatus> = status.peers.iter().collect();
    peers.sort_by(|a, b| match (a.last_handshake, b.last_handshake) {
        (None, None) => std::cmp::Ordering::Equal,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (Some(_), None) => std::cmp::Ordering::Less,
        (Some(x), Some(y)) => y.cmp(&x),
    });
    peers
}

fn secret(env: &Env, base64: String) -> String {
    if env.hide_keys() {
        "(hidden)".to_string()
    } else {
        base64
    }
}

/// The pretty view of one interface (`wg show IF`).
pub fn pretty_text(status: &InterfaceStatus, name: &str, env: &Env) -> String {
    let mut o = String::from(RESET);
    // Writing to a String cannot fail.
    let _ = writeln!(o, "{GREEN}{BOLD}interface{RESET}: {GREEN}{name}{RESET}");
    if let Some(key) = &status.private_key {
        let _ = writeln!(o, "  {BOLD}public key{RESET}: {}", key.public_key());
        let _ = writeln!(
            o,
            "  {BOLD}private key{RESET}: {}",
            secret(env, key.to_base64())
        );
    }
    if status.listen_port != 0 {
        let _ = writeln!(o, "  {BOLD}listening port{RESET}: {}", status.listen_port);
    }
    if status.fwmark != 0 {
        let _ = writeln!(o, "  {BOLD}fwmark{RESET}: 0x{:x}", status.fwmark);
    }
    let peers = sorted_peers(status);
    if !peers.is_empty() {
        o.push('\n');
    }
    let now = env.now();
    for (i, peer) in peers.iter().enumerate() {
        let _ = writeln!(
            o,
            "{YELLOW}{BOLD}peer{RESET}: {YELLOW}{}{RESET}",
            peer.public_key
        );
        if let Some(psk) = &peer.preshared_key {
            let _ = writeln!(
                o,
                "  {BOLD}preshared key{RESET}: {}",
                secret(env, psk.to_base64())
            );
        }
        if let Some(ep) = &peer.endpoint {
            let _ = writeln!(o, "  {BOLD}endpoint{RESET}: {}", fmt_endpoint(ep));
        }
        let ips: Vec<String> = peer
            .allowed_ips
            .iter()
            .map(|p| format!("{}{CYAN}/{RESET}{}", fmt_ip(&p.addr), p.cidr))
            .collect();
        let ips = if ips.is_empty() {
            "(none)".to_string()
        } else {
            ips.join(", ")
        };
        let _ = writeln!(o, "  {BOLD}allowed ips{RESET}: {ips}");
        if let Some((sec, _)) = peer.last_handshake.filter(|(s, _)| *s != 0) {
            let _ = writeln!(
                o,
                "  {BOLD}latest handshake{RESET}: {}",
                pretty::ago(sec, now)
            );
        }
        if peer.rx_bytes != 0 || peer.tx_bytes != 0 {
            let _ = writeln!(
                o,
                "  {BOLD}transfer{RESET}: {} received, {} sent",
                pretty::bytes(peer.rx_bytes),
                pretty::bytes(peer.tx_bytes)
            );
        }
        if peer.persistent_keepalive != 0 {
            let every = pretty::duration(u64::from(peer.persistent_keepalive));
            let _ = writeln!(o, "  {BOLD}persistent keepalive{RESET}: every {every}");
        }
        if i + 1 < peers.len() {
            o.push('\n');
        }
    }
    if env.color() {
        o
    } else {
        pretty::strip_ansi(&o)
    }
}

fn maybe_key(key: Option<String>) -> String {
    key.unwrap_or_else(|| "(none)".to_string())
}

fn endpoint_or_none(peer: &PeerStatus) -> String {
    peer.endpoint
        .as_ref()
        .map_or_else(|| "(none)".to_string(), fmt_endpoint)
}

fn ips_joined(peer: &PeerStatus, sep: &str) -> String {
    if peer.allowed_ips.is_empty() {
        return "(none)".to_string();
    }
    let ips: Vec<String> = peer.allowed_ips.iter().map(|p| p.to_string()).collect();
    ips.join(sep)
}

fn off_or<T: std::fmt::Display + PartialEq + Default>(v: T) -> String {
    if v == T::default() {
        "off".to_string()
    } else {
        v.to_string()
    }
}

fn handshake_sec(peer: &PeerStatus) -> u64 {
    peer.last_handshake.map_or(0, |(s, _)| s)
}

/// One `wg show IF FIELD` output; `None` for an unknown field. With `with_interface` (the
/// `all` form) every line starts with the interface name and a tab.
pub fn field_text(
    status: &InterfaceStatus,
    name: &str,
    field: &str,
    with_interface: bool,
) -> Option<String> {
    let prefix = if with_interface {
        format!("{name}\t")
    } else {
        String::new()
    };
    let public = status.public_key().map(|k: PublicKey| k.to_base64());
    let private = status.private_key.as_ref().map(|k| k.to_base64());
    let fwmark = if status.fwmark != 0 {
        format!("0x{:x}", status.fwmark)
    } else {
        "off".into()
    };
    let per_peer = |f: &dyn Fn(&PeerStatus) -> String| -> String {
        status
            .peers
            .iter()
            .map(|p| format!("{prefix}{}\n", f(p)))
            .collect()
    };
    let text = match field {
        "public-key" => format!("{prefix}{}\n", maybe_key(public)),
        "private-key" => format!("{prefix}{}\n", maybe_key(private)),
        "listen-port" => format!("{prefix}{}\n", status.listen_port),
        "fwmark" => format!("{prefix}{fwmark}\n"),
        "peers" => per_peer(&|p| p.public_key.to_base64()),
        "preshared-keys" => per_peer(&|p| {
            let psk = p.preshared_key.as_ref().map(|k| k.to_base64());
            format!("{}\t{}", p.public_key, maybe_key(psk))
        }),
        "endpoints" => per_peer(&|p| format!("{}\t{}", p.public_key, endpoint_or_none(p))),
        "allowed-ips" => per_peer(&|p| format!("{}\t{}", p.public_key, ips_joined(p, " "))),
        "latest-handshakes" => per_peer(&|p| format!("{}\t{}", p.public_key, handshake_sec(p))),
        "transfer" => per_peer(&|p| format!("{}\t{}\t{}", p.public_key, p.rx_bytes, p.tx_bytes)),
        "persistent-keepalive" => {
            per_peer(&|p| format!("{}\t{}", p.public_key, off_or(p.persistent_keepalive)))
        }
        "dump" => {
            let mut out = format!(
                "{prefix}{}\t{}\t{}\t{fwmark}\n",
                maybe_key(private),
                maybe_key(public),
                status.listen_port
            );
            out.push_str(&per_peer(&|p| {
                let psk = p.preshared_key.as_ref().map(|k| k.to_base64());
                format!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    p.public_key,
                    maybe_key(psk),
                    endpoint_or_none(p),
                    ips_joined(p, ","),
                    handshake_sec(p),
                    p.rx_bytes,
                    p.tx_bytes,
                    off_or(p.persistent_keepalive)
                )
            }));
            out
        }
        _ => return None,
    };
    Some(text)
}

#[cfg(test)]
#[path = "show_tests.rs"]
mod tests;
