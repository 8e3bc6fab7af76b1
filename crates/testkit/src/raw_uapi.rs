//! The configuration socket spoken as raw text, so a test controls every byte it sends, and
//! a daemon's configuration read back in a form that two daemons, or a daemon and a model,
//! can be compared in (keys as lowercase hex, peers ordered by key, counters left out).

use crate::netns::socket_path;
use ferrotun_uapi::parse::parse_get_reply;
use ferrotun_uapi::IpPrefix;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// How long one request may take before the test gives up on the daemon.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends `request` on a fresh connection and returns the reply up to and including the
/// blank line that ends it, or whatever came before the daemon closed the connection.
pub fn exchange(ifname: &str, request: &str) -> String {
    let path = socket_path(ifname);
    let mut stream = UnixStream::connect(&path)
        .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", path.display()));
    stream
        .set_read_timeout(Some(REPLY_TIMEOUT))
        .expect("set read timeout");
    stream
        .set_write_timeout(Some(REPLY_TIMEOUT))
        .expect("set write timeout");
    stream
        .write_all(request.as_bytes())
        .unwrap_or_else(|e| panic!("cannot send to {}: {e}", path.display()));
    let deadline = Instant::now() + REPLY_TIMEOUT;
    let mut reply = Vec::new();
    let mut chunk = [0u8; 4096];
    while !reply.ends_with(b"\n\n") {
        assert!(
            Instant::now() < deadline,
            "no complete reply from {ifname} within {REPLY_TIMEOUT:?} to {request:?}"
        );
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => reply.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            // The daemon may reset a connection it refused after replying.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("reading the reply from {ifname} to {request:?}: {e}"),
        }
    }
    String::from_utf8(reply).expect("replies are UTF-8")
}

/// The `errno=` value of a reply exactly as sent (0, or a negated errno); `None` if the
/// reply has no such line.
pub fn wire_errno(reply: &str) -> Option<i32> {
    reply
        .lines()
        .find_map(|l| l.strip_prefix("errno="))
        .and_then(|v| v.parse().ok())
}

/// What one peer is configured with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerConfig {
    pub preshared_key: Option<String>,
    pub endpoint: Option<SocketAddr>,
    pub keepalive: u16,
    /// In the order the daemon reports them.
    pub allowed_ips: Vec<IpPrefix>,
}

/// What a device is configured with (what `wg showconf` would print).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    pub private_key: Option<String>,
    pub listen_port: u16,
    pub fwmark: u32,
    /// By public key (hex).
    pub peers: BTreeMap<String, PeerConfig>,
}

/// `get=1` on a fresh connection, parsed by ferrotun's own reply parser.
pub fn get_config(ifname: &str) -> Result<Config, String> {
    let reply = exchange(ifname, "get=1\n\n");
    let status = parse_get_reply(&reply).map_err(|e| format!("{e} in get reply {reply:?}"))?;
    let mut config = Config {
        private_key: status.private_key.as_ref().map(|k| k.to_hex()),
        listen_port: status.listen_port,
        fwmark: status.fwmark,
        peers: BTreeMap::new(),
    };
    for peer in status.peers {
        if peer.protocol_version != 1 {
            return Err(format!(
                "protocol_version {} in {reply:?}",
                peer.protocol_version
            ));
        }
        let key = peer.public_key.to_hex();
        let value = PeerConfig {
            preshared_key: peer.preshared_key.as_ref().map(|k| k.to_hex()),
            endpoint: peer.endpoint,
            keepalive: peer.persistent_keepalive,
            allowed_ips: peer.allowed_ips,
        };
        if config.peers.insert(key.clone(), value).is_some() {
            return Err(format!("peer {key} listed twice in {reply:?}"));
        }
    }
    Ok(config)
}
