//! Typed forms of the configuration protocol's two messages: the device state a `get=1`
//! returns, and the changes a `set=1` asks for. Both the daemon's server and the `wg`-style
//! client speak in these types; the text forms live in `parse.rs` and `format.rs`.

use std::net::SocketAddr;

use ferrotun_proto::keys::{PresharedKey, PrivateKey, PublicKey};

pub use super::prefix::IpPrefix;

/// A device as a `get=1` reply describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterfaceStatus {
    /// `None` when the device has no private key (go omits the line then).
    pub private_key: Option<PrivateKey>,
    /// 0 = not listening / not reported.
    pub listen_port: u16,
    /// 0 = no mark.
    pub fwmark: u32,
    pub peers: Vec<PeerStatus>,
}

impl InterfaceStatus {
    /// The public key derived from the private key, as wg derives it from a get reply.
    pub fn public_key(&self) -> Option<PublicKey> {
        self.private_key.as_ref().map(PrivateKey::public_key)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    pub public_key: PublicKey,
    /// `None` for the all-zero key ("no preshared key").
    pub preshared_key: Option<PresharedKey>,
    pub endpoint: Option<SocketAddr>,
    /// Unix time (seconds, nanoseconds) of the latest handshake; `None` = never (0/0).
    pub last_handshake: Option<(u64, u32)>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// Seconds; 0 = off.
    pub persistent_keepalive: u16,
    pub allowed_ips: Vec<IpPrefix>,
    pub protocol_version: u32,
}

impl PeerStatus {
    /// A freshly configured peer with nothing known yet.
    pub fn new(public_key: PublicKey) -> Self {
        PeerStatus {
            public_key,
            preshared_key: None,
            endpoint: None,
            last_handshake: None,
            rx_bytes: 0,
            tx_bytes: 0,
            persistent_keepalive: 0,
            allowed_ips: Vec::new(),
            protocol_version: 1,
        }
    }
}

/// The changes a `set=1` request asks for, in the order they are to be applied: device
/// fields, then `replace_peers`, then each peer change in request order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetRequest {
    /// `Some(None)` removes the private key (the all-zero key on the wire).
    pub private_key: Option<Option<PrivateKey>>,
    /// `Some(0)` asks for a random port.
    pub listen_port: Option<u16>,
    /// `Some(0)` clears the mark.
    pub fwmark: Option<u32>,
    /// Remove every existing peer before applying `peers`.
    pub replace_peers: bool,
    /// The same public key may appear more than once; changes apply in order.
    pub peers: Vec<PeerChange>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerChange {
    pub public_key: PublicKey,
    /// Delete the peer; every other field is then meaningless.
    pub remove: bool,
    /// Only change an existing peer; never create one.
    pub update_only: bool,
    /// `Some(None)` removes the preshared key.
    pub preshared_key: Option<Option<PresharedKey>>,
    pub endpoint: Option<SocketAddr>,
    /// `Some(0)` turns keepalives off.
    pub persistent_keepalive: Option<u16>,
    /// Clear the peer's allowed IPs before applying `allowed_ips`.
    pub replace_allowed_ips: bool,
    pub allowed_ips: Vec<AllowedIpChange>,
}

impl PeerChange {
    /// A change that selects (and creates, if missing) the peer and changes nothing else.
    pub fn new(public_key: PublicKey) -> Self {
        PeerChange {
            public_key,
            remove: false,
            update_only: false,
            preshared_key: None,
            endpoint: None,
            persistent_keepalive: None,
            replace_allowed_ips: false,
            allowed_ips: Vec::new(),
        }
    }

    /// A change that deletes the peer.
    pub fn removal(public_key: PublicKey) -> Self {
        PeerChange {
            remove: true,
            ..PeerChange::new(public_key)
        }
    }
}

/// One `allowed_ip` line. The prefix is always stored masked (host bits cleared).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllowedIpChange {
    /// Route this prefix to the peer, taking it from any other peer that had it.
    Add(IpPrefix),
    /// Drop this prefix from the peer, if the peer has it (`allowed_ip=-…`).
    Remove(IpPrefix),
}

impl AllowedIpChange {
    pub fn prefix(&self) -> IpPrefix {
        match self {
            AllowedIpChange::Add(p) | AllowedIpChange::Remove(p) => *p,
        }
    }
}
