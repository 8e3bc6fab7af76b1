//! `set`, `showconf`, and `setconf` / `addconf` / `syncconf`.

use ferrotun_proto::keys::PublicKey;

use super::io::Io;
use super::keys::read_keyfile;
use crate::config::values;
use crate::config::WgConfig;
use crate::uapi::{AllowedIpChange, PeerChange, SetRequest};

pub(crate) const SET_USAGE: &str = "<interface> [listen-port <port>] [fwmark <mark>] [private-key <file path>] [peer <base64 public key> [remove] [preshared-key <file path>] [endpoint <ip>:<port>] [persistent-keepalive <interval seconds>] [allowed-ips <ip1>/<cidr1>[,<ip2>/<cidr2>]...] ]...";

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
            .map_or_else(|| e.to_string(), crate::uapi::client::errno_message);
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
#[path = "set_tests.rs"]
mod tests;
