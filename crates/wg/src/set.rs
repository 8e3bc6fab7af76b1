//! `set`, `showconf`, and `setconf` / `addconf` / `syncconf`.

use ferrotun_proto::keys::PublicKey;

use super::io::Io;
use super::keys::read_keyfile;
use ferrotun_uapi::config::values;
use ferrotun_uapi::config::WgConfig;
use ferrotun_uapi::{AllowedIpChange, PeerChange, SetRequest};

pub const SET_USAGE: &str = "<interface> [listen-port <port>] [fwmark <mark>] [private-key <file path>] [peer <base64 public key> [remove] [preshared-key <file path>] [endpoint <ip>:<port>] [persistent-keepalive <interval seconds>] [allowed-ips <ip1>/<cidr1>[,<ip2>/<cidr2>]...] ]...";

pub fn showconf(io: &mut Io, args: &[String]) -> i32 {
    let [_, iface] = args else {
        let cmd = args.first().map_or("showconf", String::as_str);
        let msg = format!("Usage: {} {cmd} <interface>\n", io.prog);
        io.err(&msg);
        return 1;
    };
    match io.client.get(iface) {
        Ok(status) => i32::from(!io.out(&WgConfig::from_status(&status).to_text())),
        Err(e) => {
            io.err(&format!("Unable to access interface: {e}\n"));
            1
        }
    }
}

pub fn set(io: &mut Io, args: &[String]) -> i32 {
    let (Some(iface), Some(rest)) = (args.get(1), args.get(2..).filter(|r| !r.is_empty())) else {
        let cmd = args.first().map_or("set", String::as_str);
        let msg = format!("Usage: {} {cmd} {SET_USAGE}\n", io.prog);
        io.err(&msg);
        return 1;
    };
    let request = match parse_set_args(io, rest) {
        Ok(r) => r,
        Err(msg) => {
            io.err(&format!("{msg}\n"));
            return 1;
        }
    };
    apply(io, iface, &request)
}

fn apply(io: &mut Io, iface: &str, request: &SetRequest) -> i32 {
    match io.client.set(iface, request) {
        Ok(()) => 0,
        Err(e) => {
            io.err(&format!("Unable to modify interface: {e}\n"));
            1
        }
    }
}

/// Turns `wg set` arguments into a request, with wg's rules: device options only before the
/// first `peer`, peer options only after one; `allowed-ips` replaces the peer's list.
pub fn parse_set_args(io: &mut Io, args: &[String]) -> Result<SetRequest, String> {
    let mut req = SetRequest::default();
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        let value = args.get(i + 1).map(String::as_str);
        let mut take_value = true;
        match (arg.as_str(), value, req.peers.last_mut()) {
            ("listen-port", Some(v), None) => {
                req.listen_port = Some(values::port(v).map_err(|e| e.to_string())?)
            }
            ("fwmark", Some(v), None) => {
                req.fwmark = Some(values::fwmark(v).map_err(|e| e.to_string())?)
            }
            ("private-key", Some(v), None) => {
                let key = match read_keyfile(io, v)? {
                    None => None,
                    Some(text) => values::private_key(&text).map_err(|e| e.to_string())?,
                };
                req.private_key = Some(key);
            }
            ("peer", Some(v), _) => {
                let key: PublicKey = values::public_key(v).map_err(|e| e.to_string())?;
                req.peers.push(PeerChange::new(key));
            }
            ("remove", _, Some(peer)) => {
                peer.remove = true;
                take_value = false;
            }
            ("endpoint", Some(v), Some(peer)) => {
                peer.endpoint = Some((io.resolve)(v).map_err(|e| e.to_string())?)
            }
            ("allowed-ips", Some(v), Some(peer)) => {
                let list: String = v.chars().filter(|c| !c.is_ascii_whitespace()).collect();
                for ip in values::allowed_ips(&list).map_err(|e| e.to_string())? {
                    if ip.has_host_bits() {
                        io.err(&format!("Warning: AllowedIP has nonzero host part: {ip}\n"));
                    }
                    peer.allowed_ips.push(AllowedIpChange::Add(ip.masked()));
                }
                peer.replace_allowed_ips = true;
            }
            ("persistent-keepalive", Some(v), Some(peer)) => {
                peer.persistent_keepalive = Some(values::keepalive(v).map_err(|e| e.to_string())?)
            }
            ("preshared-key", Some(v), Some(_)) => {
                let key = match read_keyfile(io, v)? {
                    None => None,
                    Some(text) => values::preshared_key(&text).map_err(|e| e.to_string())?,
                };
                if let Some(peer) = req.peers.last_mut() {
                    peer.preshared_key = Some(key);
                }
            }
            _ => return Err(format!("Invalid argument: {arg}")),
        }
        i += if take_value { 2 } else { 1 };
    }
    Ok(req)
}

/// `setconf`, `addconf` and `syncconf`, told apart by `args[0]` as in wg.
pub fn setconf(io: &mut Io, args: &[String]) -> i32 {
    let [cmd, iface, path] = args else {
        let cmd = args.first().map_or("setconf", String::as_str);
        let msg = format!(
            "Usage: {} {cmd} <interface> <configuration filename>\n",
            io.prog
        );
        io.err(&msg);
        return 1;
    };
    let text = match read_config(io, path) {
        Ok(t) => t,
        Err(msg) => {
            io.err(&format!("{msg}\n"));
            return 1;
        }
    };
    let config = match WgConfig::parse_with(&text, path, io.resolve) {
        Ok(c) => c,
        Err(e) => {
            io.err(&format!("{e}\n"));
            return 1;
        }
    };
    for w in &config.warnings {
        io.err(&format!("{w}\n"));
    }
    let mut request = config.to_set_request(cmd != "addconf");
    if cmd == "syncconf" {
        if let Err(code) = sync(io, iface, &mut request) {
            return code;
        }
    }
    apply(io, iface, &request)
}

fn read_config(io: &mut Io, path: &str) -> Result<String, String> {
    let mut bytes = Vec::new();
    let read = if path == "/dev/stdin" {
        std::io::Read::read_to_end(io.stdin, &mut bytes).map(|_| ())
    } else {
        std::fs::read(path).map(|b| bytes = b)
    };
    read.map_err(|e| {
        let text = e
            .raw_os_error()
            .map_or_else(|| e.to_string(), ferrotun_uapi::client::errno_message);
        format!("fopen: {text}")
    })?;
    String::from_utf8(bytes).map_err(|_| format!("{path}: not valid UTF-8 text"))
}

/// Makes a setconf request into a syncconf one, as wg computes it: keep the running peers that
/// the file lists (so their sessions survive), remove the others. With no peers in the file
/// or none running, a plain replace does the same.
fn sync(io: &mut Io, iface: &str, request: &mut SetRequest) -> Result<(), i32> {
    if request.peers.is_empty() {
        return Ok(());
    }
    let running = match io.client.get(iface) {
        Ok(s) => s,
        Err(e) => {
            io.err(&format!(
                "Unable to retrieve current interface configuration: {e}\n"
            ));
            return Err(1);
        }
    };
    if running.peers.is_empty() {
        return Ok(());
    }
    request.replace_peers = false;
    let removals: Vec<PeerChange> = running
        .peers
        .iter()
        .filter(|p| !request.peers.iter().any(|q| q.public_key == p.public_key))
        .map(|p| PeerChange::removal(p.public_key))
        .collect();
    request.peers.splice(0..0, removals);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Env, Io};
    use ferrotun_uapi::config::values::ValueError;
    use ferrotun_uapi::Client;
    use std::net::SocketAddr;

    const PK1: &str = "jMGj6XfckCqD+cuJV1XkrPPw66oBfUPndCyBTTmhZAo=";

    fn no_dns(text: &str) -> Result<SocketAddr, ValueError> {
        ferrotun_uapi::config::endpoint::split(text)?;
        text.parse().map_err(|_| ValueError::Resolve {
            reason: "no DNS".into(),
            value: text.into(),
        })
    }

    fn parse(args: &[&str], stdin: &[u8]) -> (Result<SetRequest, String>, String) {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let mut input = stdin;
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut io = Io {
            prog: "wg".into(),
            stdin: &mut input,
            stdout: &mut out,
            stderr: &mut err,
            env: Env::default(),
            client: Client::with_dir("/nonexistent"),
            resolve: &no_dns,
        };
        let r = parse_set_args(&mut io, &args);
        (r, String::from_utf8(err).unwrap())
    }

    #[test]
    fn full_command_line() {
        let psk = "WAmgVYXkbT2bCtdcDwolI88/iVi/aV3/PHcUBTQSYmo=\n";
        let (req, warn) = parse(
            &[
                "listen-port",
                "51820",
                "fwmark",
                "0x10",
                "peer",
                PK1,
                "preshared-key",
                "/dev/stdin",
                "endpoint",
                "[::1]:5",
                "persistent-keepalive",
                "off",
                "allowed-ips",
                "10.0.0.1/8, fd00::/64",
                "peer",
                PK1,
                "remove",
            ],
            psk.as_bytes(),
        );
        let req = req.unwrap();
        assert_eq!(
            warn,
            "Warning: AllowedIP has nonzero host part: 10.0.0.1/8\n"
        );
        assert_eq!((req.listen_port, req.fwmark), (Some(51820), Some(16)));
        let p = &req.peers[0];
        assert!(matches!(p.preshared_key, Some(Some(_))));
        assert_eq!(p.persistent_keepalive, Some(0));
        assert!(p.replace_allowed_ips);
        assert_eq!(p.allowed_ips[0].prefix().to_string(), "10.0.0.0/8");
        assert!(req.peers[1].remove);
    }

    #[test]
    fn empty_key_file_removes() {
        let (req, _) = parse(&["private-key", "/dev/null"], b"");
        assert_eq!(req.unwrap().private_key, Some(None));
        let (req, _) = parse(&["peer", PK1, "preshared-key", "/dev/stdin"], b"");
        assert_eq!(req.unwrap().peers[0].preshared_key, Some(None));
    }

    #[test]
    fn argument_errors_like_wg() {
        let cases: [(&[&str], &str); 7] = [
            (
                &["peer", PK1, "listen-port", "1"],
                "Invalid argument: listen-port",
            ),
            (&["remove"], "Invalid argument: remove"),
            (&["listen-port"], "Invalid argument: listen-port"),
            (
                &["peer", "xyz"],
                "Key is not the correct length or format: `xyz'",
            ),
            (
                &["fwmark", "big"],
                "Fwmark is neither 0/off nor 0-0xffffffff: `big'",
            ),
            (
                &["private-key", "/nonexistent/key"],
                "fopen: No such file or directory",
            ),
            (
                &["peer", PK1, "endpoint", "1.2.3.4"],
                "Unable to find port of endpoint: `1.2.3.4'",
            ),
        ];
        for (args, want) in cases {
            assert_eq!(parse(args, b"").0.unwrap_err(), want, "{args:?}");
        }
    }
}
