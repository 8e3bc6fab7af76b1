//! The peers the registry asks for, and the smallest `set` that turns what the interface
//! has into that, as `wg syncconf` does: peers that did not change are not touched, so their
//! sessions carry on.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use ferrotun_proto::keys::PublicKey;

use ferrotun_uapi::{AllowedIpChange, IpPrefix, PeerChange, PeerStatus, SetRequest};

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
mod tests {
    use super::*;

    fn key(n: u8) -> PublicKey {
        PublicKey::from_bytes([n; 32])
    }

    fn wanted(ep: Option<&str>, ips: &[&str]) -> Wanted {
        Wanted {
            endpoint: ep.map(|e| e.parse().unwrap()),
            allowed_ips: ips.iter().map(|i| IpPrefix::parse(i).unwrap()).collect(),
            keepalive: 25,
        }
    }

    #[test]
    fn nothing_changed_means_no_request() {
        let peers = Peers::from([(key(1), wanted(Some("192.0.2.1:51820"), &["10.77.0.1/32"]))]);
        assert_eq!(diff(&peers, &peers.clone()), None);
        assert_eq!(diff(&Peers::new(), &Peers::new()), None);
    }

    #[test]
    fn only_added_removed_and_changed_peers_are_in_the_request() {
        let have = Peers::from([
            (key(1), wanted(Some("192.0.2.1:1"), &["10.77.0.1/32"])),
            (key(2), wanted(Some("192.0.2.2:1"), &["10.77.0.2/32"])),
            (key(3), wanted(Some("192.0.2.3:1"), &["10.77.0.3/32"])),
        ]);
        let want = Peers::from([
            (key(1), wanted(Some("192.0.2.1:1"), &["10.77.0.1/32"])),
            (key(3), wanted(Some("192.0.2.33:1"), &["10.77.0.3/32"])),
            (key(4), wanted(None, &["10.77.0.4/32", "fd77::4/128"])),
        ]);
        let req = diff(&have, &want).unwrap();
        assert!(!req.replace_peers);
        assert_eq!(req.peers.len(), 3);
        assert_eq!(req.peers[0], PeerChange::removal(key(2)));
        // Peer 3: only the endpoint moved; its allowed IPs are not rewritten.
        let p3 = &req.peers[1];
        assert_eq!(p3.public_key, key(3));
        assert_eq!(p3.endpoint, Some("192.0.2.33:1".parse().unwrap()));
        assert!(!p3.replace_allowed_ips && p3.allowed_ips.is_empty());
        assert_eq!(p3.persistent_keepalive, None);
        let p4 = &req.peers[2];
        assert_eq!(p4.public_key, key(4));
        assert!(p4.replace_allowed_ips);
        assert_eq!(p4.allowed_ips.len(), 2);
        assert_eq!(p4.persistent_keepalive, Some(25));
    }

    #[test]
    fn allowed_ip_change_replaces_the_list() {
        let have = Peers::from([(key(1), wanted(Some("192.0.2.1:1"), &["10.77.0.1/32"]))]);
        let want = Peers::from([(key(1), wanted(Some("192.0.2.1:1"), &["10.77.0.9/32"]))]);
        let req = diff(&have, &want).unwrap();
        assert_eq!(req.peers.len(), 1);
        assert!(req.peers[0].replace_allowed_ips);
        assert_eq!(req.peers[0].endpoint, None);
        assert_eq!(
            req.peers[0].allowed_ips,
            [AllowedIpChange::Add(
                IpPrefix::parse("10.77.0.9/32").unwrap()
            )]
        );
    }

    #[test]
    fn live_status_reads_back_as_peers() {
        let mut status = PeerStatus::new(key(7));
        status.endpoint = Some("192.0.2.7:5".parse().unwrap());
        status.persistent_keepalive = 25;
        status.allowed_ips = vec![
            IpPrefix::parse("fd77::7/128").unwrap(),
            IpPrefix::parse("10.77.0.7/32").unwrap(),
        ];
        let have = from_status(&[status]);
        let mut want = wanted(Some("192.0.2.7:5"), &["10.77.0.7/32", "fd77::7/128"]);
        sort(&mut want.allowed_ips);
        assert_eq!(diff(&have, &Peers::from([(key(7), want)])), None);
    }
}
