//! What the mesh keeps in etcd, under `/ferrotun/mesh/<NAME>/`:
//!
//! - `nodes/<public key, hex>`: a [`NodeRecord`] (JSON), attached to the node's short lease,
//!   so it vanishes when the node stops renewing it.
//! - `addrs/<index>`: the owner's public key (hex); the index is the host number inside the
//!   mesh CIDR. Attached to a second, long lease (the grace period) so an address is only
//!   freed once its node has been gone that long.
//!
//! Everything here is public: keys are public keys, addresses and endpoints are what peers
//! need anyway. Private keys never leave the node.

use std::net::{IpAddr, SocketAddr};

use ferrotun_proto::keys::PublicKey;
use serde::{Deserialize, Serialize};

use super::alloc::Pool;

/// The prefix of everything one mesh keeps in etcd.
pub fn mesh_prefix(mesh: &str) -> String {
    format!("/ferrotun/mesh/{mesh}/")
}

pub fn nodes_prefix(mesh: &str) -> String {
    format!("{}nodes/", mesh_prefix(mesh))
}

pub fn addrs_prefix(mesh: &str) -> String {
    format!("{}addrs/", mesh_prefix(mesh))
}

pub fn node_key(mesh: &str, key: &PublicKey) -> String {
    format!("{}{}", nodes_prefix(mesh), key.to_hex())
}

pub fn addr_key(mesh: &str, index: u32) -> String {
    format!("{}{index}", addrs_prefix(mesh))
}

/// A mesh name becomes part of etcd keys and of the interface name: keep it plain.
pub fn valid_mesh_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && name != "."
        && name != ".."
}

/// One node as it registers itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeRecord {
    /// Base64, as `wg` shows it.
    pub public_key: String,
    /// A human name (the host name by default); only shown.
    pub name: String,
    /// The node's overlay IPv4 address (host number `index` in the mesh CIDR).
    pub address: IpAddr,
    /// The node's overlay IPv6 address, when the mesh has an IPv6 CIDR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address6: Option<IpAddr>,
    /// Where the node can be reached, best first: the operator's endpoint, then the node's
    /// own addresses with its listen port. Host names are allowed (resolved by the reader).
    pub endpoints: Vec<String>,
}

/// A node record that passed every check, ready to become a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub public_key: PublicKey,
    pub name: String,
    pub index: u32,
    pub address: IpAddr,
    pub address6: Option<IpAddr>,
    pub endpoints: Vec<String>,
}

/// Longest record accepted, and most endpoints: a record is small; anything larger is junk.
const MAX_RECORD: usize = 8 * 1024;
const MAX_ENDPOINTS: usize = 16;

/// Reads `nodes/<hex>` = `value` back, checking everything a peer will be built from: the key
/// matches the record's public key, the addresses lie inside the mesh's CIDRs and agree with
/// each other, endpoints parse. Any failure rejects the whole record.
pub fn parse_node(key_suffix: &str, value: &[u8], pool: &Pool) -> Result<Node, String> {
    if value.len() > MAX_RECORD {
        return Err(format!("record of {} bytes is too large", value.len()));
    }
    let key = PublicKey::from_hex(key_suffix).map_err(|_| "key is not a public key".to_string())?;
    let record: NodeRecord =
        serde_json::from_slice(value).map_err(|e| format!("malformed record: {e}"))?;
    let public_key = PublicKey::from_base64(&record.public_key)
        .map_err(|_| "public_key is not a base64 key".to_string())?;
    if public_key != key {
        return Err("public_key does not match the key it is stored under".into());
    }
    let index = pool
        .index_of(record.address)
        .ok_or_else(|| format!("address {} is outside the mesh", record.address))?;
    let expected6 = pool.address6(index);
    if record.address6.is_some() && record.address6 != expected6 {
        return Err(format!(
            "address6 {:?} does not belong with {}",
            record.address6, record.address
        ));
    }
    if record.endpoints.len() > MAX_ENDPOINTS {
        return Err("too many endpoints".into());
    }
    for e in &record.endpoints {
        parse_endpoint(e).ok_or_else(|| format!("bad endpoint {e:?}"))?;
    }
    if record.name.len() > 255 || record.name.chars().any(char::is_control) {
        return Err("bad name".into());
    }
    Ok(Node {
        public_key,
        name: record.name,
        index,
        address: record.address,
        address6: record.address6,
        endpoints: record.endpoints,
    })
}

/// An endpoint as a record holds it: `IP:PORT`, `[IPv6]:PORT` or `HOST:PORT`. Returns the
/// literal address when it is one, and checks a host name's form otherwise.
pub enum Endpoint {
    Addr(SocketAddr),
    Host(String, u16),
}

pub fn parse_endpoint(text: &str) -> Option<Endpoint> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return (addr.port() != 0).then_some(Endpoint::Addr(addr));
    }
    let (host, port) = text.rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    let ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    ok.then(|| Endpoint::Host(host.to_string(), port))
}

/// Reads `addrs/<index>` = owner back: `None` when either part is not what the agent writes.
pub fn parse_claim(key_suffix: &str, value: &[u8]) -> Option<(u32, PublicKey)> {
    let index = key_suffix.parse().ok()?;
    let owner = PublicKey::from_hex(std::str::from_utf8(value).ok()?).ok()?;
    Some((index, owner))
}

#[cfg(test)]
#[path = "layout_tests.rs"]
mod tests;
