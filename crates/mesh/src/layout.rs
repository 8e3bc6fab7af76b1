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
mod tests {
    use super::*;
    use ferrotun_proto::keys::PrivateKey;
    use ferrotun_uapi::IpPrefix;

    fn pool() -> Pool {
        Pool::new(
            IpPrefix::parse("10.77.0.0/16").unwrap(),
            Some(IpPrefix::parse("fd77::/64").unwrap()),
        )
        .unwrap()
    }

    fn record(pk: &PublicKey) -> NodeRecord {
        NodeRecord {
            public_key: pk.to_base64(),
            name: "alpha".into(),
            address: "10.77.0.5".parse().unwrap(),
            address6: Some("fd77::5".parse().unwrap()),
            endpoints: vec![
                "203.0.113.1:51820".into(),
                "[2001:db8::1]:51820".into(),
                "vpn.example.org:4500".into(),
            ],
        }
    }

    fn key() -> PublicKey {
        PrivateKey::from_bytes([9; 32]).public_key()
    }

    #[test]
    fn a_good_record_reads_back() {
        let pk = key();
        let json = serde_json::to_vec(&record(&pk)).unwrap();
        let node = parse_node(&pk.to_hex(), &json, &pool()).unwrap();
        assert_eq!(node.index, 5);
        assert_eq!(node.public_key, pk);
        assert_eq!(node.endpoints.len(), 3);
    }

    #[test]
    fn bad_records_are_refused_whole() {
        let pk = key();
        let good = record(&pk);
        let p = pool();
        let check = |suffix: &str, value: &[u8], why: &str| {
            let r = parse_node(suffix, value, &p);
            assert!(r.is_err(), "{why}: accepted");
        };
        check(&pk.to_hex(), b"{not json", "malformed JSON");
        check(&pk.to_hex(), b"[]", "not an object");
        check("zz", &serde_json::to_vec(&good).unwrap(), "key not hex");
        let other = PrivateKey::from_bytes([3; 32]).public_key();
        check(
            &other.to_hex(),
            &serde_json::to_vec(&good).unwrap(),
            "stored under another key",
        );
        let mut r = good.clone();
        r.address = "10.78.0.5".parse().unwrap();
        check(
            &pk.to_hex(),
            &serde_json::to_vec(&r).unwrap(),
            "outside the CIDR",
        );
        let mut r = good.clone();
        r.address = "10.77.255.255".parse().unwrap();
        check(&pk.to_hex(), &serde_json::to_vec(&r).unwrap(), "broadcast");
        let mut r = good.clone();
        r.address6 = Some("fd77::6".parse().unwrap());
        check(
            &pk.to_hex(),
            &serde_json::to_vec(&r).unwrap(),
            "v6 of another host",
        );
        let mut r = good.clone();
        r.endpoints.push("nonsense".into());
        check(
            &pk.to_hex(),
            &serde_json::to_vec(&r).unwrap(),
            "bad endpoint",
        );
        let mut r = good.clone();
        r.endpoints = vec!["1.2.3.4:1".into(); 17];
        check(
            &pk.to_hex(),
            &serde_json::to_vec(&r).unwrap(),
            "too many endpoints",
        );
        let mut text = serde_json::to_value(&good).unwrap();
        text["private_key"] = "x".into();
        check(
            &pk.to_hex(),
            &serde_json::to_vec(&text).unwrap(),
            "unknown field",
        );
    }

    #[test]
    fn claims_read_back() {
        let pk = key();
        assert_eq!(parse_claim("12", pk.to_hex().as_bytes()), Some((12, pk)));
        assert_eq!(parse_claim("x", pk.to_hex().as_bytes()), None);
        assert_eq!(parse_claim("12", b"nope"), None);
    }

    #[test]
    fn mesh_names_stay_plain() {
        assert!(valid_mesh_name("mesh0"));
        for bad in ["", "a/b", "..", "averyveryverylongname", "a b"] {
            assert!(!valid_mesh_name(bad), "{bad}");
        }
    }
}
