//! Typed forms → text: a `get=1` reply in wireguard-go's line order, a `set=1` request as
//! wg(8) writes it, and the `errno=` line that ends every reply.

use std::fmt::Write as _;

use super::model::{AllowedIpChange, InterfaceStatus, SetRequest};
use super::prefix::fmt_endpoint;

const ZERO_KEY_HEX: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The `key=value` lines of a get reply, without the final `errno=0` and blank line (so a
/// server can append the status it ends up with).
pub fn format_status(status: &InterfaceStatus) -> String {
    let mut out = String::new();
    // `write!` into a String cannot fail; the results are ignored for that reason.
    if let Some(key) = &status.private_key {
        let _ = writeln!(out, "private_key={}", key.to_hex());
    }
    if status.listen_port != 0 {
        let _ = writeln!(out, "listen_port={}", status.listen_port);
    }
    if status.fwmark != 0 {
        let _ = writeln!(out, "fwmark={}", status.fwmark);
    }
    for peer in &status.peers {
        let _ = writeln!(out, "public_key={}", peer.public_key.to_hex());
        let psk = peer.preshared_key.as_ref().map(|k| k.to_hex());
        let _ = writeln!(
            out,
            "preshared_key={}",
            psk.as_deref().unwrap_or(ZERO_KEY_HEX)
        );
        let _ = writeln!(out, "protocol_version={}", peer.protocol_version);
        if let Some(ep) = &peer.endpoint {
            let _ = writeln!(out, "endpoint={}", fmt_endpoint(ep));
        }
        let (sec, nsec) = peer.last_handshake.unwrap_or((0, 0));
        let _ = writeln!(out, "last_handshake_time_sec={sec}");
        let _ = writeln!(out, "last_handshake_time_nsec={nsec}");
        let _ = writeln!(out, "tx_bytes={}", peer.tx_bytes);
        let _ = writeln!(out, "rx_bytes={}", peer.rx_bytes);
        let _ = writeln!(
            out,
            "persistent_keepalive_interval={}",
            peer.persistent_keepalive
        );
        for ip in &peer.allowed_ips {
            let _ = writeln!(out, "allowed_ip={ip}");
        }
    }
    out
}

/// A complete successful get reply.
pub fn format_get_reply(status: &InterfaceStatus) -> String {
    let mut out = format_status(status);
    out.push_str(&format_errno(0));
    out
}

/// The line (and blank line) ending a reply. `errno` is positive (22 = EINVAL) and is sent
/// negated, as wireguard-go does and wg(8) expects.
pub fn format_errno(errno: i32) -> String {
    format!("errno={}\n\n", -errno.saturating_abs())
}

/// A complete `set=1` request, in the line order wg(8) emits.
pub fn format_set_request(req: &SetRequest) -> String {
    let mut out = String::from("set=1\n");
    if let Some(key) = &req.private_key {
        let hex = key.as_ref().map(|k| k.to_hex());
        let _ = writeln!(
            out,
            "private_key={}",
            hex.as_deref().unwrap_or(ZERO_KEY_HEX)
        );
    }
    if let Some(port) = req.listen_port {
        let _ = writeln!(out, "listen_port={port}");
    }
    if let Some(mark) = req.fwmark {
        let _ = writeln!(out, "fwmark={mark}");
    }
    if req.replace_peers {
        out.push_str("replace_peers=true\n");
    }
    for peer in &req.peers {
        let _ = writeln!(out, "public_key={}", peer.public_key.to_hex());
        if peer.remove {
            out.push_str("remove=true\n");
            continue;
        }
        if peer.update_only {
            out.push_str("update_only=true\n");
        }
        if let Some(psk) = &peer.preshared_key {
            let hex = psk.as_ref().map(|k| k.to_hex());
            let _ = writeln!(
                out,
                "preshared_key={}",
                hex.as_deref().unwrap_or(ZERO_KEY_HEX)
            );
        }
        if let Some(ep) = &peer.endpoint {
            let _ = writeln!(out, "endpoint={}", fmt_endpoint(ep));
        }
        if let Some(ka) = peer.persistent_keepalive {
            let _ = writeln!(out, "persistent_keepalive_interval={ka}");
        }
        if peer.replace_allowed_ips {
            out.push_str("replace_allowed_ips=true\n");
        }
        for change in &peer.allowed_ips {
            match change {
                AllowedIpChange::Add(p) => writeln!(out, "allowed_ip={p}"),
                AllowedIpChange::Remove(p) => writeln!(out, "allowed_ip=-{p}"),
            }
            .ok();
        }
    }
    out.push('\n');
    out
}

#[cfg(test)]
#[path = "format_tests.rs"]
mod tests;
