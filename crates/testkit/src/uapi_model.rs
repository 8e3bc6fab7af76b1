//! A model of what a `set=1` request must leave configured, written from the protocol's
//! rules rather than from ferrotun's code: requests are built as typed lines (rendered to the
//! exact wire text) and applied to a [`Config`] the way wireguard-go applies them line by
//! line, with ferrotun's one difference that a failing request changes nothing at all.
//!
//! Requests keep `remove`/`update_only` right after `public_key` and `replace_allowed_ips`
//! before any `allowed_ip`, the order `wg` sends: there the kernel's flag semantics and
//! wireguard-go's line-by-line ones agree, so the model is the same for both daemons.

use crate::raw_uapi::{Config, PeerConfig};
use ferrotun_proto::keys::PrivateKey;
use ferrotun_uapi::IpPrefix;
use std::net::SocketAddr;

pub const EINVAL: i32 = 22;
pub const EPROTO: i32 = 71;
pub const EADDRINUSE: i32 = 98;

#[derive(Debug, Clone)]
pub enum DevLine {
    /// Raw bytes as sent (the daemon clamps them); all-zero removes the key.
    PrivateKey {
        raw: [u8; 32],
        upper: bool,
    },
    ListenPort(u16),
    Fwmark(u32),
    ReplacePeers,
}

#[derive(Debug, Clone)]
pub enum PeerLine {
    Remove,
    UpdateOnly,
    ReplaceAllowedIps,
    /// All-zero removes the preshared key.
    PresharedKey([u8; 32]),
    Endpoint(SocketAddr),
    Keepalive(u16),
    /// The text as sent (host bits may be set) and the prefix it stands for.
    Allow(String, IpPrefix),
    Unallow(String, IpPrefix),
    ProtocolVersion,
}

#[derive(Debug, Clone)]
pub struct Section {
    pub public_key: [u8; 32],
    pub lines: Vec<PeerLine>,
}

/// A well-formed `set=1` request.
#[derive(Debug, Clone, Default)]
pub struct SetOp {
    pub dev: Vec<DevLine>,
    pub sections: Vec<Section>,
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The public key (hex) of the private key these raw bytes make once clamped.
pub fn public_of(raw: &[u8; 32]) -> String {
    PrivateKey::from_bytes(*raw).public_key().to_hex()
}

fn clamped_hex(raw: &[u8; 32]) -> Option<String> {
    (*raw != [0; 32]).then(|| PrivateKey::from_bytes(*raw).to_hex())
}

impl SetOp {
    /// The request's lines, without `set=1` and the closing blank line.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for line in &self.dev {
            out.push(match line {
                DevLine::PrivateKey { raw, upper } => {
                    let h = hex(raw);
                    format!("private_key={}", if *upper { h.to_uppercase() } else { h })
                }
                DevLine::ListenPort(p) => format!("listen_port={p}"),
                DevLine::Fwmark(m) => format!("fwmark={m}"),
                DevLine::ReplacePeers => "replace_peers=true".to_string(),
            });
        }
        for s in &self.sections {
            out.push(format!("public_key={}", hex(&s.public_key)));
            for line in &s.lines {
                out.push(match line {
                    PeerLine::Remove => "remove=true".to_string(),
                    PeerLine::UpdateOnly => "update_only=true".to_string(),
                    PeerLine::ReplaceAllowedIps => "replace_allowed_ips=true".to_string(),
                    PeerLine::PresharedKey(k) => format!("preshared_key={}", hex(k)),
                    PeerLine::Endpoint(e) => format!("endpoint={e}"),
                    PeerLine::Keepalive(k) => format!("persistent_keepalive_interval={k}"),
                    PeerLine::Allow(text, _) => format!("allowed_ip={text}"),
                    PeerLine::Unallow(text, _) => format!("allowed_ip=-{text}"),
                    PeerLine::ProtocolVersion => "protocol_version=1".to_string(),
                });
            }
        }
        out
    }

    pub fn listen_port(&self) -> Option<u16> {
        self.dev.iter().find_map(|l| match l {
            DevLine::ListenPort(p) => Some(*p),
            _ => None,
        })
    }
}

/// `set=1`, the lines, and the blank line that ends the request.
pub fn set_text(lines: &[String]) -> String {
    let mut text = String::from("set=1\n");
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    text.push('\n');
    text
}

/// What must be configured. `port_known` is false after a `listen_port=0` (the daemon picks
/// one) until the next check adopts the port the daemon reports.
#[derive(Debug, Clone)]
pub struct Model {
    pub config: Config,
    pub port_known: bool,
}

impl Model {
    pub fn new() -> Model {
        Model {
            config: Config::default(),
            port_known: false,
        }
    }

    /// The model after `op`, or the errno the daemon must refuse it with (the model then
    /// stays as it was). `busy_port` is held by another socket.
    pub fn apply(&self, op: &SetOp, busy_port: u16) -> Result<Model, i32> {
        let mut next = self.clone();
        let c = &mut next.config;
        for line in &op.dev {
            match line {
                DevLine::ListenPort(p) if *p == busy_port => return Err(EADDRINUSE),
                DevLine::ListenPort(0) => next.port_known = false,
                DevLine::ListenPort(p) => {
                    c.listen_port = *p;
                    next.port_known = true;
                }
                DevLine::Fwmark(m) => c.fwmark = *m,
                DevLine::PrivateKey { raw, .. } => {
                    let key = clamped_hex(raw);
                    if key != c.private_key {
                        if key.is_some() {
                            // A peer whose key is now our own cannot stay.
                            c.peers.remove(&public_of(raw));
                        }
                        c.private_key = key;
                    }
                }
                DevLine::ReplacePeers => c.peers.clear(),
            }
        }
        let own = own_public(c);
        for s in &op.sections {
            apply_section(c, s, own.as_deref());
        }
        Ok(next)
    }

    /// Compares what the daemon reports with the model; adopts the daemon's port when the
    /// model does not know it (it must still be a real port).
    pub fn check(&mut self, actual: &Config) -> Result<(), String> {
        if !self.port_known {
            if actual.listen_port == 0 {
                return Err(
                    "daemon reports no listen port after a random one was asked for".into(),
                );
            }
            self.config.listen_port = actual.listen_port;
            self.port_known = true;
        }
        if *actual == self.config {
            return Ok(());
        }
        Err(describe_difference(&self.config, actual))
    }
}

impl Default for Model {
    fn default() -> Self {
        Model::new()
    }
}

/// The public key (hex) of the configured private key.
fn own_public(c: &Config) -> Option<String> {
    let hex_key = c.private_key.as_ref()?;
    let key = PrivateKey::from_hex(hex_key).ok()?;
    Some(key.public_key().to_hex())
}

fn apply_section(c: &mut Config, s: &Section, own: Option<&str>) {
    let key = hex(&s.public_key);
    if own == Some(key.as_str()) {
        // wireguard-go accepts and ignores a section for the device's own key.
        return;
    }
    match s.lines.first() {
        Some(PeerLine::Remove) => {
            c.peers.remove(&key);
            return;
        }
        Some(PeerLine::UpdateOnly) if !c.peers.contains_key(&key) => return,
        _ => {}
    }
    c.peers.entry(key.clone()).or_default();
    for line in &s.lines {
        match line {
            PeerLine::Remove | PeerLine::UpdateOnly | PeerLine::ProtocolVersion => {}
            PeerLine::ReplaceAllowedIps => peer(c, &key).allowed_ips.clear(),
            PeerLine::PresharedKey(k) => {
                peer(c, &key).preshared_key = (*k != [0; 32]).then(|| hex(k));
            }
            PeerLine::Endpoint(e) => peer(c, &key).endpoint = Some(*e),
            PeerLine::Keepalive(k) => peer(c, &key).keepalive = *k,
            PeerLine::Allow(_, prefix) => {
                // A prefix has one owner: adding it moves it, to the end of the new list.
                for p in c.peers.values_mut() {
                    p.allowed_ips.retain(|x| x != prefix);
                }
                peer(c, &key).allowed_ips.push(*prefix);
            }
            PeerLine::Unallow(_, prefix) => peer(c, &key).allowed_ips.retain(|x| x != prefix),
        }
    }
}

fn peer<'a>(c: &'a mut Config, key: &str) -> &'a mut PeerConfig {
    c.peers.entry(key.to_string()).or_default()
}

/// A readable account of how two configurations differ.
pub fn describe_difference(want: &Config, got: &Config) -> String {
    let mut out = Vec::new();
    if want.private_key != got.private_key {
        out.push(format!(
            "private_key: want {:?}, got {:?}",
            want.private_key, got.private_key
        ));
    }
    if want.listen_port != got.listen_port {
        out.push(format!(
            "listen_port: want {}, got {}",
            want.listen_port, got.listen_port
        ));
    }
    if want.fwmark != got.fwmark {
        out.push(format!("fwmark: want {}, got {}", want.fwmark, got.fwmark));
    }
    for (k, w) in &want.peers {
        match got.peers.get(k) {
            None => out.push(format!("peer {k} missing (want {w:?})")),
            Some(g) if g != w => out.push(format!("peer {k}: want {w:?}, got {g:?}")),
            Some(_) => {}
        }
    }
    for (k, g) in &got.peers {
        if !want.peers.contains_key(k) {
            out.push(format!("unexpected peer {k}: {g:?}"));
        }
    }
    out.join("\n")
}
