//! `show [<interface> | all | interfaces] [field]`, output byte-for-byte as wg(8) prints it.

use std::fmt::Write as _;

use ferrotun_proto::keys::PublicKey;

use super::io::{Env, Io};
use super::pretty::{self, BOLD, CYAN, GREEN, RESET, YELLOW};
use ferrotun_uapi::prefix::{fmt_endpoint, fmt_ip};
use ferrotun_uapi::{InterfaceStatus, PeerStatus};

pub const FIELDS: &str = "public-key | private-key | listen-port | fwmark | peers | preshared-keys | endpoints | allowed-ips | latest-handshakes | transfer | persistent-keepalive | dump";

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
mod tests {
    use super::*;
    use ferrotun_proto::keys::{PresharedKey, PrivateKey};
    use ferrotun_uapi::IpPrefix;

    fn env(hide: bool, color: bool) -> Env {
        let mut e = Env {
            now: Some(1_000_066),
            ..Env::default()
        };
        if !hide {
            e.vars.insert("WG_HIDE_KEYS".into(), "never".into());
        }
        e.vars.insert(
            "WG_COLOR_MODE".into(),
            if color { "always" } else { "never" }.into(),
        );
        e
    }

    fn device() -> InterfaceStatus {
        let mut a = PeerStatus::new(PublicKey::from_bytes([2; 32]));
        a.preshared_key = Some(PresharedKey::from_bytes([3; 32]));
        a.endpoint = Some("127.0.0.1:51902".parse().unwrap());
        a.allowed_ips = vec![
            IpPrefix::parse("10.99.0.2/32").unwrap(),
            IpPrefix::parse("fd00::2/128").unwrap(),
        ];
        a.last_handshake = Some((1_000_000, 5));
        a.rx_bytes = 92;
        a.tx_bytes = 328;
        a.persistent_keepalive = 25;
        let b = PeerStatus::new(PublicKey::from_bytes([4; 32]));
        InterfaceStatus {
            private_key: Some(PrivateKey::from_bytes([1; 32])),
            listen_port: 51901,
            fwmark: 42,
            // The never-handshaked peer first, to check the sort.
            peers: vec![b, a],
        }
    }

    #[test]
    fn pretty_plain() {
        let d = device();
        let pk = d.public_key().unwrap();
        let p2 = PublicKey::from_bytes([2; 32]);
        let p4 = PublicKey::from_bytes([4; 32]);
        let want = format!(
        "interface: wga\n  public key: {pk}\n  private key: (hidden)\n  listening port: 51901\n  fwmark: 0x2a\n\n\
         peer: {p2}\n  preshared key: (hidden)\n  endpoint: 127.0.0.1:51902\n  allowed ips: 10.99.0.2/32, fd00::2/128\n\
         \x20 latest handshake: 1 minute, 6 seconds ago\n  transfer: 92 B received, 328 B sent\n\
         \x20 persistent keepalive: every 25 seconds\n\npeer: {p4}\n  allowed ips: (none)\n"
    );
        assert_eq!(pretty_text(&d, "wga", &env(true, false)), want);
        let shown = pretty_text(&d, "wga", &env(false, false));
        assert!(shown.contains(&format!(
            "private key: {}\n",
            PrivateKey::from_bytes([1; 32]).to_base64()
        )));
    }

    #[test]
    fn pretty_colour_sequences() {
        let d = InterfaceStatus {
            peers: vec![device().peers[1].clone()],
            ..Default::default()
        };
        let text = pretty_text(&d, "wga", &env(true, true));
        let p2 = PublicKey::from_bytes([2; 32]);
        assert!(text.starts_with("\x1b[0m\x1b[32m\x1b[1minterface\x1b[0m: \x1b[32mwga\x1b[0m\n\n"));
        assert!(text.contains(&format!(
            "\x1b[33m\x1b[1mpeer\x1b[0m: \x1b[33m{p2}\x1b[0m\n"
        )));
        assert!(text.contains(
        "  \x1b[1mallowed ips\x1b[0m: 10.99.0.2\x1b[36m/\x1b[0m32, fd00::2\x1b[36m/\x1b[0m128\n"
    ));
        assert!(text.contains("every 25 \x1b[36mseconds\x1b[0m\n"));
    }

    #[test]
    fn dump_and_fields() {
        let d = device();
        let pk = d.public_key().unwrap();
        let sk = d.private_key.as_ref().unwrap().to_base64();
        let p2 = PublicKey::from_bytes([2; 32]);
        let p4 = PublicKey::from_bytes([4; 32]);
        let psk = PresharedKey::from_bytes([3; 32]).to_base64();
        assert_eq!(
            field_text(&d, "wga", "dump", false).unwrap(),
            format!(
                "{sk}\t{pk}\t51901\t0x2a\n{p4}\t(none)\t(none)\t(none)\t0\t0\t0\toff\n\
             {p2}\t{psk}\t127.0.0.1:51902\t10.99.0.2/32,fd00::2/128\t1000000\t92\t328\t25\n"
            )
        );
        assert_eq!(
            field_text(&d, "wga", "fwmark", true).unwrap(),
            "wga\t0x2a\n"
        );
        assert_eq!(
            field_text(&d, "wga", "listen-port", false).unwrap(),
            "51901\n"
        );
        assert_eq!(
            field_text(&d, "wga", "allowed-ips", false).unwrap(),
            format!("{p4}\t(none)\n{p2}\t10.99.0.2/32 fd00::2/128\n")
        );
        assert_eq!(
            field_text(&d, "wga", "endpoints", true).unwrap(),
            format!("wga\t{p4}\t(none)\nwga\t{p2}\t127.0.0.1:51902\n")
        );
        assert_eq!(
            field_text(&d, "wga", "persistent-keepalive", false).unwrap(),
            format!("{p4}\toff\n{p2}\t25\n")
        );
        assert_eq!(
            field_text(&d, "wga", "transfer", false).unwrap(),
            format!("{p4}\t0\t0\n{p2}\t92\t328\n")
        );
        assert_eq!(
            field_text(&d, "wga", "latest-handshakes", false).unwrap(),
            format!("{p4}\t0\n{p2}\t1000000\n")
        );
        assert_eq!(
            field_text(&d, "wga", "peers", false).unwrap(),
            format!("{p4}\n{p2}\n")
        );
        assert_eq!(
            field_text(&d, "wga", "preshared-keys", false).unwrap(),
            format!("{p4}\t(none)\n{p2}\t{psk}\n")
        );
        assert_eq!(
            field_text(&d, "wga", "private-key", false).unwrap(),
            format!("{sk}\n")
        );
        assert_eq!(
            field_text(&d, "wga", "public-key", false).unwrap(),
            format!("{pk}\n")
        );
        assert_eq!(field_text(&d, "wga", "bogus", false), None);
        let empty = InterfaceStatus::default();
        assert_eq!(
            field_text(&empty, "x", "dump", false).unwrap(),
            "(none)\t(none)\t0\toff\n"
        );
        assert_eq!(
            pretty_text(&empty, "x", &env(true, false)),
            "interface: x\n"
        );
    }
}
