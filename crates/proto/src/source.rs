//! The local side of a peer's endpoint: which of our addresses the peer's datagrams
//! arrive at, so replies can leave from that same address on a multi-homed host.

use std::net::IpAddr;

/// Our address a datagram arrived at, and the interface it came in on (0 = unknown).
///
/// Learned with the peer's endpoint from every authenticated packet and handed back with
/// each datagram to that peer; the device sends from it (IP_PKTINFO / IPV6_PKTINFO) and
/// tells the interface to forget it when the address stops working, or to refuse it when
/// the route to the peer leaves by another interface than `ifindex` (the kernel's
/// WireGuard forgets its source when the route's device changes). Without one the
/// kernel picks the source by its routing table, which on a host with several addresses
/// may not be the one the peer talks to: the peer then sees us move (and a NAT or a
/// stateful firewall in between drops the replies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LocalSource {
    pub addr: IpAddr,
    pub ifindex: u32,
}
