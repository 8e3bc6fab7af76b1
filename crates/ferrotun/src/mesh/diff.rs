//! The peers the registry asks for, and the smallest `set` that turns what the interface
//! has into that, as `wg syncconf` does: peers that did not change are not touched, so their
//! sessions carry on.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use ferrotun_proto::keys::PublicKey;

use crate::uapi::{AllowedIpChange, IpPrefix, PeerChange, PeerStatus, SetRequest};

/// What one peer should look like on the interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// `None` when no endpoint of the record is usable from here (the peer may still
    /// reach us; WireGuard then learns its endpoint).
    pub endpoint: Option<SocketAddr>,
    /// Sorted.
    pub allowed_ips: Vec<IpPrefix>,
    pub keepalive: u16,
}

pub type Peers = BTreeMap<PublicKey, Wanted>;

/// What a live interface has, in the same terms (so the agent starts from the device's
/// real state, e.g. after a restart, and removes peers that left while it was away).
pub fn from_status(peers: &[PeerStatus]) -> Peers {
    peers
        .iter()
        .map(|p| {
            let mut allowed_ips: Vec<IpPrefix> = p.allowed_ips.iter().map(|a| a.masked()).collect();
            sort(&mut allowed_ips);
            (
                p.public_key,
                Wanted {
                    endpoint: p.endpoint,
                    allowed_ips,
                    keepalive: p.persistent_keepalive,
                },
            )
        })
        .collect()
}

pub fn sort(prefixes: &mut [IpPrefix]) {
    prefixes.sort_by_key(|p| (p.addr.is_ipv6(), p.addr, p.cidr));
}

/// The changes from `have` to `want`; `None` when there are none.
///
/// An endpoint only changes when the registry's changed: an endpoint the peer roamed to
/// (WireGuard learns it from authenticated packets) is left alone while the record says the
/// same as before. `have` holds what was last applied, not the live endpoint, for that.
pub fn diff(have: &Peers, want: &Peers) -> Option<SetRequest> {
    let mut peers = Vec::new();
    for key in have.keys() {
        if !want.contains_key(key) {
            peers.push(PeerChange::removal(*key));
        }
    }
    for (key, w) in want {
        let old = have.get(key);
        if old == Some(w) {
            continue;
        }
        let mut change = PeerChange::new(*key);
        if old.map(|o| o.endpoint) != Some(w.endpoint) {
            change.endpoint = w.endpoint;
        }
        if old.map(|o| o.keepalive) != Some(w.keepalive) {
            change.persistent_keepalive = Some(w.keepalive);
        }
        if old.map(|o| &o.allowed_ips) != Some(&w.allowed_ips) {
            change.replace_allowed_ips = true;
            change.allowed_ips = w
                .allowed_ips
                .iter()
                .copied()
                .map(AllowedIpChange::Add)
                .collect();
        }
        peers.push(change);
    }
    (!peers.is_empty()).then(|| SetRequest {
        peers,
        ..SetRequest::default()
    })
}

#[cfg(test)]
#[path = "diff_tests.rs"]
mod tests;
