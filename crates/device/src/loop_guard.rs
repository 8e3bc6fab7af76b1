//! Stops routing loops: when a peer's endpoint is reachable only through that peer's own
//! allowed IPs on this interface (a classic misconfiguration: a default route into the
//! tunnel without an exception for the endpoint), every datagram to that peer comes back
//! in through the TUN, is sealed again (larger, and once over the MTU, fragmented into
//! two) and goes round forever. The kernel's WireGuard ends such a loop within a few
//! rounds; here our own datagrams are recognised on their first return and dropped
//! (counted as `sent_dropped.routing_loop`), and the loop is reported once.
//!
//! A cycle through two interfaces (each one's endpoint routed into the other, or a
//! cycle through two peers) is no different from onion routing datagram by datagram,
//! which must keep working: each datagram is addressed to another peer than the one it
//! routes to. What makes it unbounded is fragmentation: every pass adds headers, and once
//! a datagram no longer fits the next interface's MTU the kernel splits it in two, both
//! of which go round again, growing. The kernel's WireGuard ends it where the packet no
//! longer fits (its IPv6 datagrams are never fragmented on the way out). Here the first
//! fragment of a WireGuard datagram from one of this host's own addresses, read from the
//! TUN, is dropped with the rest of its datagram, but only while some of this interface's
//! own datagrams to its peers are routed into another tunnel-like interface (a TUN or
//! another WireGuard, an IP tunnel: route_watch.rs looks the peers' routes up and keeps
//! [`TunnelRoutes`], read here with a relaxed load). A loop needs that: in every cycle
//! each interface's endpoints are routed into the next one, so the interface the
//! fragments come back in through has its own datagrams routed into a tunnel.
//!
//! Without that condition, WireGuard of this host that does not fit is a tunnel nested in
//! this one with an MTU that leaves no room for our headers (1420 inside 1420): wrong, but
//! the kernel fragments the inner datagrams over IPv4 and the kernel's WireGuard carries
//! the fragments, so nested tunnels set up that way work, and must keep working here. So
//! the outer interface of such a nest, whose own endpoints are reached over ethernet, lets
//! them pass; the inner interface (routed into the outer one) is guarded, which costs only
//! a third tunnel nested inside it with too large an MTU. Our sockets still let the kernel
//! fragment on the way out to the network, so a link whose MTU is smaller than a full
//! tunnel packet keeps working: its fragments never come back in through a TUN. Setting
//! DF on the sockets (IP_PMTUDISC_DO) would have bounded the loop too, but broken exactly
//! those links.

use crate::local_addrs::LocalAddrs;
use crate::route_watch::TunnelRoutes;
use ferrotun_proto::interface::Interface;
use ferrotun_proto::outer::{self, Fragment, FragmentKey};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A loop that has been quiet this long is reported again when it comes back.
const REPORT_AGAIN_AFTER_MS: u64 = 60_000;

#[derive(Debug)]
pub struct LoopGuard {
    ifname: String,
    addrs: Arc<LocalAddrs>,
    /// Whether our datagrams may be routed into another tunnel (the route watch keeps
    /// it): only then can WireGuard of this host come back in fragments through a loop.
    routes: Arc<TunnelRoutes>,
    /// 1 + the milliseconds of the last looped datagram; 0 before the first.
    last_seen: AtomicU64,
    /// The same for fragments of a loop through another interface.
    last_nested: AtomicU64,
}

/// One worker's memory of the datagram whose first fragment it dropped, so that the
/// rest of it goes too (the kernel writes a datagram's fragments one after the other, and
/// all to one TUN queue: without ports they hash alike).
#[derive(Debug, Default)]
pub struct DroppedFragments {
    last: Option<FragmentKey>,
}

impl LoopGuard {
    pub fn new(ifname: &str, addrs: Arc<LocalAddrs>, routes: Arc<TunnelRoutes>) -> Self {
        LoopGuard {
            ifname: ifname.to_string(),
            addrs,
            routes,
            last_seen: AtomicU64::new(0),
            last_nested: AtomicU64::new(0),
        }
    }

    /// Whether `packet`, read from the TUN, is one of our own datagrams (sent from
    /// `port`) going round a loop: then it must be dropped. The first one of a loop is
    /// logged.
    ///
    /// Cheap for everything else: a UDP packet from another port is turned away after
    /// reading a few header fields. Only a WireGuard message from our port, from a local
    /// address, addressed to the endpoint of the peer it routes to counts: WireGuard that
    /// another machine sends through the tunnel from the same port number passes, so does
    /// WireGuard inside WireGuard on another port, and so does onion routing (a peer
    /// reached through another peer of the same interface).
    #[inline]
    pub fn is_looped(&self, iface: &Interface, packet: &[u8], port: u16, now_ms: u64) -> bool {
        let Some(ours) = outer::wireguard_from_port(packet, port) else {
            return false;
        };
        if !self.addrs.is_local(ours.src, now_ms)
            || !outer::loops_to_its_own_peer(iface, packet, &ours)
        {
            return false;
        }
        if is_new_report(&self.last_seen, now_ms) {
            tracing::warn!(
                "routing loop: {}'s own encrypted packets to {} come back in through {}; \
                 dropping them (a peer's endpoint must not be reachable only through the \
                 tunnel: exclude it with a route or a fwmark)",
                self.ifname,
                ours.dst,
                self.ifname
            );
        }
        true
    }

    /// Whether `packet`, read from the TUN, is a fragment of a WireGuard datagram of this
    /// host while some of our own datagrams are routed into another tunnel (see the
    /// module's comment): then it must be dropped. A packet that is no fragment costs a
    /// byte or two, and every packet a relaxed load when none of our routes leads into a
    /// tunnel.
    #[inline]
    pub fn is_nested_fragment(
        &self,
        packet: &[u8],
        dropped: &mut DroppedFragments,
        now_ms: u64,
    ) -> bool {
        if !self.routes.through_tunnel() {
            return false;
        }
        match outer::fragment(packet) {
            None => false,
            Some(Fragment { key, first, .. }) if !first => dropped.last == Some(key),
            Some(Fragment { wireguard, key, .. }) => {
                if !wireguard || !self.addrs.is_local(key.src, now_ms) {
                    // A new datagram that reuses the id: its other pieces pass too.
                    if dropped.last == Some(key) {
                        dropped.last = None;
                    }
                    return false;
                }
                dropped.last = Some(key);
                if is_new_report(&self.last_nested, now_ms) {
                    tracing::warn!(
                        "routing loop: WireGuard datagrams of this host to {} come in through \
                         {} too large to pass without fragmenting while {}'s own are routed \
                         into another tunnel; dropping them (another WireGuard interface's \
                         endpoint is routed through {} while {}'s is routed through it, or a \
                         tunnel inside {} has an MTU that leaves no room for {}'s headers)",
                        key.dst,
                        self.ifname,
                        self.ifname,
                        self.ifname,
                        self.ifname,
                        self.ifname,
                        self.ifname
                    );
                }
                true
            }
        }
    }

    /// Removes the looped packets from a batch read from the TUN (packet `i` is
    /// `bufs[i][offset..offset + lens[i]]`), keeping the others in order; returns how many
    /// are left. Buffers are swapped, not copied, and only once a packet is dropped.
    #[allow(clippy::too_many_arguments)]
    pub fn filter_batch(
        &self,
        iface: &Interface,
        bufs: &mut [Vec<u8>],
        lens: &mut [usize],
        n: usize,
        offset: usize,
        port: u16,
        dropped: &mut DroppedFragments,
        now_ms: u64,
    ) -> usize {
        let mut kept = 0;
        for i in 0..n {
            let packet = &bufs[i][offset..offset + lens[i]];
            if self.is_looped(iface, packet, port, now_ms)
                || self.is_nested_fragment(packet, dropped, now_ms)
            {
                continue;
            }
            if kept != i {
                bufs.swap(kept, i);
                lens[kept] = lens[i];
            }
            kept += 1;
        }
        kept
    }
}

/// Notes a looped packet at `now_ms` in `last`; whether the loop is to be reported (its
/// first packet, or the first after a quiet [`REPORT_AGAIN_AFTER_MS`]).
fn is_new_report(last: &AtomicU64, now_ms: u64) -> bool {
    let previous = last.swap(now_ms + 1, Ordering::Relaxed);
    previous == 0 || (now_ms + 1).saturating_sub(previous) >= REPORT_AGAIN_AFTER_MS
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrotun_proto::keys::PublicKey;

    /// An IPv4 UDP datagram from `src:sport` to 10.9.0.2:7.
    fn datagram(src: [u8; 4], sport: u16, kind: u8, len: usize) -> Vec<u8> {
        let mut p = vec![0u8; 28 + len];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&((28 + len) as u16).to_be_bytes());
        p[9] = 17;
        p[12..16].copy_from_slice(&src);
        p[16..20].copy_from_slice(&[10, 9, 0, 2]);
        p[20..22].copy_from_slice(&sport.to_be_bytes());
        p[22..24].copy_from_slice(&7u16.to_be_bytes());
        p[24..26].copy_from_slice(&((8 + len) as u16).to_be_bytes());
        p[28] = kind;
        p
    }

    /// An interface with one peer whose endpoint, 10.9.0.2:7, is inside its allowed IPs.
    fn looping_interface() -> Interface {
        let iface = Interface::new(Box::new(rand_core::OsRng));
        let c = iface.add_peer(PublicKey::from_bytes([3; 32])).unwrap();
        iface.add_allowed_ip(&c, "10.9.0.0".parse().unwrap(), 24);
        iface.set_endpoint(&c, "10.9.0.2:7".parse().unwrap());
        iface
    }

    #[test]
    fn our_datagram_is_dropped_and_others_pass() {
        let guard = LoopGuard::new("wgt", Arc::new(LocalAddrs::new()), Arc::default());
        let iface = looping_interface();
        // 127.0.0.1 is local everywhere.
        let local = [127, 0, 0, 1];
        assert!(guard.is_looped(&iface, &datagram(local, 51820, 4, 64), 51820, 1));
        assert!(guard.is_looped(&iface, &datagram(local, 51820, 1, 148), 51820, 2));
        // Another port: WireGuard inside WireGuard.
        assert!(!guard.is_looped(&iface, &datagram(local, 5, 4, 64), 51820, 3));
        // Our port number, but from a machine behind us (not a local address).
        let remote = datagram([203, 0, 113, 9], 51820, 4, 64);
        assert!(!guard.is_looped(&iface, &remote, 51820, 4));
        // Our port and address, but not a WireGuard message.
        assert!(!guard.is_looped(&iface, &datagram(local, 51820, 9, 64), 51820, 5));
        // The peer's endpoint moved out of the tunnel: the same datagram is no loop.
        let c = iface.peer(&PublicKey::from_bytes([3; 32])).unwrap();
        iface.set_endpoint(&c, "192.0.2.1:7".parse().unwrap());
        assert!(!guard.is_looped(&iface, &datagram(local, 51820, 4, 64), 51820, 6));
    }

    #[test]
    fn a_batch_keeps_its_other_packets_in_order() {
        let guard = LoopGuard::new("wgt", Arc::new(LocalAddrs::new()), Arc::default());
        let iface = looping_interface();
        let local = [127, 0, 0, 1];
        let packets = [
            datagram(local, 51820, 4, 64),
            datagram(local, 5, 4, 65),
            datagram(local, 51820, 4, 66),
            datagram(local, 51820, 4, 67),
            datagram(local, 6, 4, 68),
        ];
        let offset = 16;
        let mut bufs: Vec<Vec<u8>> = packets
            .iter()
            .map(|p| {
                let mut b = vec![0u8; offset];
                b.extend_from_slice(p);
                b
            })
            .collect();
        let mut lens: Vec<usize> = packets.iter().map(|p| p.len()).collect();
        let mut dropped = DroppedFragments::default();
        let kept = guard.filter_batch(
            &iface,
            &mut bufs,
            &mut lens,
            5,
            offset,
            51820,
            &mut dropped,
            1,
        );
        assert_eq!(kept, 2);
        assert_eq!(&bufs[0][offset..offset + lens[0]], &packets[1][..]);
        assert_eq!(&bufs[1][offset..offset + lens[1]], &packets[4][..]);
    }

    #[test]
    fn fragments_of_local_wireguard_go_with_the_rest_of_their_datagram() {
        let guard = LoopGuard::new("wgt", Arc::new(LocalAddrs::new()), Arc::default());
        let mut dropped = DroppedFragments::default();
        let fragment = |src: [u8; 4], kind: u8, id: u16, offset: u16| {
            let mut p = datagram(src, 5, kind, 1400);
            p.truncate(600);
            p[4..6].copy_from_slice(&id.to_be_bytes());
            p[6..8].copy_from_slice(&(0x2000 | offset).to_be_bytes());
            p
        };
        let local = [127, 0, 0, 1];
        // A whole datagram of local WireGuard on another port: onion routing, passes.
        assert!(!guard.is_nested_fragment(&datagram(local, 5, 4, 64), &mut dropped, 1));
        // Its first fragment is dropped, and so is the rest of that datagram only.
        assert!(guard.is_nested_fragment(&fragment(local, 4, 7, 0), &mut dropped, 2));
        assert!(guard.is_nested_fragment(&fragment(local, 4, 7, 72), &mut dropped, 3));
        assert!(!guard.is_nested_fragment(&fragment(local, 4, 8, 72), &mut dropped, 4));
        // Fragments of other traffic pass: not WireGuard, or from another machine.
        assert!(!guard.is_nested_fragment(&fragment(local, 9, 9, 0), &mut dropped, 5));
        assert!(!guard.is_nested_fragment(&fragment(local, 9, 9, 72), &mut dropped, 6));
        // A later datagram reusing a dropped one's id is let through whole.
        assert!(guard.is_nested_fragment(&fragment(local, 4, 11, 0), &mut dropped, 9));
        assert!(!guard.is_nested_fragment(&fragment(local, 9, 11, 0), &mut dropped, 10));
        assert!(!guard.is_nested_fragment(&fragment(local, 9, 11, 72), &mut dropped, 11));
        let remote = [203, 0, 113, 9];
        assert!(!guard.is_nested_fragment(&fragment(remote, 4, 10, 0), &mut dropped, 7));
        assert!(!guard.is_nested_fragment(&fragment(remote, 4, 10, 72), &mut dropped, 8));
    }

    #[test]
    fn fragments_pass_while_no_route_of_ours_leads_into_a_tunnel() {
        let routes = Arc::new(TunnelRoutes::default());
        let guard = LoopGuard::new("wgt", Arc::new(LocalAddrs::new()), routes.clone());
        let mut dropped = DroppedFragments::default();
        let fragment = |id: u16, offset: u16| {
            let mut p = datagram([127, 0, 0, 1], 5, 4, 1400);
            p.truncate(600);
            p[4..6].copy_from_slice(&id.to_be_bytes());
            p[6..8].copy_from_slice(&(0x2000 | offset).to_be_bytes());
            p
        };
        // Before the route watch has looked, the guard is on.
        assert!(routes.through_tunnel());
        assert!(guard.is_nested_fragment(&fragment(1, 0), &mut dropped, 1));
        // Our endpoints are reached over a link: a nested tunnel's fragments pass.
        routes.set(false);
        assert!(!guard.is_nested_fragment(&fragment(2, 0), &mut dropped, 2));
        assert!(!guard.is_nested_fragment(&fragment(2, 72), &mut dropped, 3));
        // An endpoint changed: on again until the watch has looked.
        routes.endpoints_changed();
        assert!(guard.is_nested_fragment(&fragment(3, 0), &mut dropped, 4));
        assert!(guard.is_nested_fragment(&fragment(3, 72), &mut dropped, 5));
    }
}
