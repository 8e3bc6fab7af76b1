//! The agent's copy of the mesh prefix: records are checked as they arrive, and one that
//! fails a check is logged and left out whole (never half-applied).

use std::collections::BTreeMap;

use ferrotun_proto::keys::PublicKey;

use super::alloc::Pool;
use super::layout::{addrs_prefix, nodes_prefix, parse_claim, parse_node, Node};

pub struct View {
    mesh: String,
    pool: Pool,
    nodes: BTreeMap<String, Node>,
    claims: BTreeMap<String, (u32, PublicKey)>,
    /// Records already logged as claiming another key's address, with the claim they
    /// conflicted with. Kept across `reset` so a resync does not log them again; an entry
    /// goes when its conflict does, so a new conflict of the same record is logged anew.
    conflicts_logged: BTreeMap<String, (u32, PublicKey)>,
}

impl View {
    pub fn new(mesh: &str, pool: Pool) -> View {
        View {
            mesh: mesh.to_string(),
            pool,
            nodes: BTreeMap::new(),
            claims: BTreeMap::new(),
            conflicts_logged: BTreeMap::new(),
        }
    }

    /// Replaces everything with a fresh read of the prefix.
    pub fn reset(&mut self, kvs: Vec<(String, Vec<u8>)>) {
        self.nodes.clear();
        self.claims.clear();
        for (k, v) in kvs {
            self.put(&k, &v);
        }
    }

    pub fn put(&mut self, key: &str, value: &[u8]) {
        if let Some(suffix) = key.strip_prefix(&nodes_prefix(&self.mesh)) {
            match parse_node(suffix, value, &self.pool) {
                Ok(node) => {
                    self.nodes.insert(key.to_string(), node);
                }
                Err(why) => {
                    tracing::warn!("ignoring node record {key:?}: {why}");
                    self.nodes.remove(key);
                }
            }
        } else if let Some(suffix) = key.strip_prefix(&addrs_prefix(&self.mesh)) {
            match parse_claim(suffix, value) {
                Some(claim) if (1..=self.pool.last_index()).contains(&claim.0) => {
                    self.claims.insert(key.to_string(), claim);
                }
                _ => {
                    tracing::warn!("ignoring address claim {key:?}: not an index and a public key");
                    self.claims.remove(key);
                }
            }
        } else {
            tracing::debug!("ignoring unknown key {key:?}");
        }
    }

    pub fn delete(&mut self, key: &str) {
        self.nodes.remove(key);
        self.claims.remove(key);
    }

    /// The nodes that are peers: valid records whose address is claimed by the same key
    /// (so a node cannot take another's address by writing it in its record), except `me`.
    /// A record whose address another key claims is logged, once.
    pub fn peers(&mut self, me: &PublicKey) -> Vec<&Node> {
        for (key, address, owner) in self.new_conflicts() {
            tracing::warn!(
                "ignoring node record {key:?}: its address {address} is claimed by {owner}"
            );
        }
        let owners: BTreeMap<u32, PublicKey> = self.claims.values().copied().collect();
        self.nodes
            .values()
            .filter(|n| n.public_key != *me)
            .filter(|n| {
                let ok = owners.get(&n.index) == Some(&n.public_key);
                if !ok && !owners.contains_key(&n.index) {
                    // Not hostile: a claim that expired, or one not seen yet.
                    tracing::debug!("node {} has no claim on {}", n.public_key, n.address);
                }
                ok
            })
            .collect()
    }

    /// Records whose address is claimed by another key and that were not reported yet, as
    /// (record key, address, owner of the claim).
    fn new_conflicts(&mut self) -> Vec<(String, std::net::IpAddr, PublicKey)> {
        let owners: BTreeMap<u32, PublicKey> = self.claims.values().copied().collect();
        let current: BTreeMap<String, (u32, PublicKey)> = self
            .nodes
            .iter()
            .filter_map(|(key, n)| {
                let owner = *owners.get(&n.index)?;
                (owner != n.public_key).then(|| (key.clone(), (n.index, owner)))
            })
            .collect();
        let mut new = Vec::new();
        for (key, conflict) in &current {
            if self.conflicts_logged.get(key) != Some(conflict) {
                new.push((key.clone(), self.nodes[key].address, conflict.1));
            }
        }
        self.conflicts_logged = current;
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{addr_key, node_key, NodeRecord};
    use ferrotun_proto::keys::PrivateKey;
    use ferrotun_uapi::IpPrefix;

    fn setup() -> (View, PublicKey, PublicKey) {
        let pool = Pool::new(IpPrefix::parse("10.77.0.0/24").unwrap(), None).unwrap();
        let a = PrivateKey::from_bytes([1; 32]).public_key();
        let b = PrivateKey::from_bytes([2; 32]).public_key();
        (View::new("m", pool), a, b)
    }

    fn record(pk: &PublicKey, addr: &str) -> Vec<u8> {
        serde_json::to_vec(&NodeRecord {
            public_key: pk.to_base64(),
            name: "n".into(),
            address: addr.parse().unwrap(),
            address6: None,
            endpoints: vec!["192.0.2.1:51820".into()],
        })
        .unwrap()
    }

    #[test]
    fn a_node_is_a_peer_only_with_its_own_claim() {
        let (mut v, a, b) = setup();
        v.put(&node_key("m", &a), &record(&a, "10.77.0.1"));
        assert!(v.peers(&b).is_empty(), "no claim yet");
        v.put(&addr_key("m", 1), b.to_hex().as_bytes());
        assert!(v.peers(&b).is_empty(), "address claimed by someone else");
        v.put(&addr_key("m", 1), a.to_hex().as_bytes());
        assert_eq!(v.peers(&b).len(), 1);
        assert!(v.peers(&a).is_empty(), "never a peer of itself");
        v.delete(&node_key("m", &a));
        assert!(v.peers(&b).is_empty());
    }

    #[test]
    fn junk_replacing_a_record_removes_it_and_junk_keys_are_ignored() {
        let (mut v, a, b) = setup();
        v.put(&addr_key("m", 1), a.to_hex().as_bytes());
        v.put(&node_key("m", &a), &record(&a, "10.77.0.1"));
        v.put("/ferrotun/mesh/m/nodes/zz", b"{}");
        v.put("/ferrotun/mesh/m/other", b"x");
        v.put(&addr_key("m", 0), b.to_hex().as_bytes());
        v.put(&addr_key("m", 9999), b.to_hex().as_bytes());
        assert_eq!(v.peers(&b).len(), 1);
        v.put(&node_key("m", &a), b"{\"public_key\":");
        assert!(v.peers(&b).is_empty());
    }

    #[test]
    fn a_record_claiming_another_keys_address_is_reported_once() {
        let (mut v, a, b) = setup();
        let c = PrivateKey::from_bytes([3; 32]).public_key();
        v.put(&addr_key("m", 1), a.to_hex().as_bytes());
        v.put(&node_key("m", &a), &record(&a, "10.77.0.1"));
        v.put(&node_key("m", &b), &record(&b, "10.77.0.1"));
        let first = v.new_conflicts();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].0, node_key("m", &b));
        assert_eq!(first[0].2, a);
        assert!(v.new_conflicts().is_empty(), "reported again");
        assert_eq!(v.peers(&c).len(), 1);
        // A resync reads the same records again: nothing new to report.
        let kvs = vec![
            (addr_key("m", 1), a.to_hex().into_bytes()),
            (node_key("m", &a), record(&a, "10.77.0.1")),
            (node_key("m", &b), record(&b, "10.77.0.1")),
        ];
        v.reset(kvs);
        assert!(
            v.new_conflicts().is_empty(),
            "reported again after a resync"
        );
        // The conflict goes, then comes back: that is a new one.
        v.delete(&node_key("m", &b));
        assert!(v.new_conflicts().is_empty());
        v.put(&node_key("m", &b), &record(&b, "10.77.0.1"));
        assert_eq!(v.new_conflicts().len(), 1);
    }
}
