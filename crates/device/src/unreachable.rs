//! Answers a packet that no peer carries with ICMP/ICMPv6 "destination unreachable", as
//! the kernel's WireGuard does, so the sender fails at once (ping prints the error, a TCP
//! connect returns EHOSTUNREACH) instead of waiting for a timeout. The error is written to
//! the TUN, where the host receives it as if it came from the tunnel.

use crate::local_addrs::{LocalAddr, LocalAddrs};
use crate::tun::TunQueue;
use crate::vnet::VNET_HDR_LEN;
use ferrotun_proto::icmp::{self, TokenBucket};
use ferrotun_proto::ip;
use ferrotun_proto::time::Instant;
use parking_lot::Mutex;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

/// Errors per second once the burst is spent, for the whole interface. The kernel allows
/// one per second per destination after a burst of six, and 1000 per second in all; one
/// bucket for everything keeps a flood from making us a flood, and still answers each new
/// connection attempt of a normal host at once.
pub const RATE_PER_SECOND: u32 = 100;
/// Errors sent back to back before the rate applies.
pub const BURST: u32 = 50;

#[derive(Debug)]
pub struct Unreachable {
    ifname: String,
    addrs: Arc<LocalAddrs>,
    bucket: Mutex<TokenBucket>,
}

impl Unreachable {
    pub fn new(ifname: &str, addrs: Arc<LocalAddrs>) -> Self {
        Unreachable {
            ifname: ifname.to_string(),
            addrs,
            bucket: Mutex::new(TokenBucket::new(RATE_PER_SECOND, BURST)),
        }
    }

    /// Writes the error for `packet` (read from the TUN, routed to no peer) to `tun`, if
    /// the packet deserves one and the rate limit allows. True when one was written; a
    /// failed write is returned for counting (never logged: it would be a line per packet).
    pub fn answer(&self, packet: &[u8], tun: &TunQueue, now: Instant) -> std::io::Result<bool> {
        let Some(src) = self.source_for(packet, now) else {
            return Ok(false);
        };
        let mut out = [0u8; VNET_HDR_LEN + icmp::ERROR_MAX];
        // With offloads the TUN takes a virtio-net header first: all zero, a plain packet.
        let hdr = tun.hdr_len();
        let Ok(len) = icmp::unreachable(packet, src, &mut out[hdr..]) else {
            return Ok(false);
        };
        if !self.bucket.lock().allow(now) {
            return Ok(false);
        }
        tun.write(&out[..hdr + len]).map(|_| true)
    }

    /// The error's source address.
    ///
    /// The kernel answers from an address of its own, the one it would use to reach the
    /// sender: for a packet routed into the interface, normally the interface's own
    /// address. Here the error enters the host through the TUN, as a received packet, and
    /// that changes what works:
    /// - IPv6 accepts a received packet whose source is one of the host's addresses, so
    ///   the interface's own IPv6 address is used, as the kernel would (a link-local one
    ///   when the sender used a link-local source). Without one, the destination.
    /// - IPv4 drops a received packet whose source is one of the host's own addresses
    ///   ("martian source", unless accept_local is set), so an error from the interface's
    ///   address would never reach the sender. It comes from the unreachable destination
    ///   instead: ping shows "From <destination> ... Destination Host Unreachable", and
    ///   the sender still fails at once, which is the point of the error.
    ///
    /// The interface's addresses come from a cache re-read at most once a second, never
    /// per packet.
    fn source_for(&self, packet: &[u8], now: Instant) -> Option<IpAddr> {
        let dst = ip::destination(packet)?;
        if dst.is_multicast() {
            // Never answered (the builder refuses it too); no need to look anything up.
            return None;
        }
        let IpAddr::V6(_) = dst else {
            return Some(dst);
        };
        let sender_link_local =
            matches!(ip::source(packet), Some(IpAddr::V6(s)) if is_link_local(&s));
        let addrs = self.addrs.get(now.as_nanos() / 1_000_000);
        let own = |want_link_local: bool| {
            addrs
                .iter()
                .find_map(|LocalAddr { ifname, addr }| match addr {
                    IpAddr::V6(a)
                        if *ifname == self.ifname && is_link_local(a) == want_link_local =>
                    {
                        Some(IpAddr::V6(*a))
                    }
                    _ => None,
                })
        };
        Some(
            own(sender_link_local)
                .or_else(|| own(!sender_link_local))
                .unwrap_or(dst),
        )
    }
}

fn is_link_local(a: &Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_errors_come_from_the_destination() {
        let u = Unreachable::new("lo", Arc::new(LocalAddrs::new()));
        let mut p = vec![0u8; 28];
        p[0] = 0x45;
        p[12..16].copy_from_slice(&[10, 0, 0, 1]);
        p[16..20].copy_from_slice(&[10, 0, 0, 99]);
        assert_eq!(
            u.source_for(&p, Instant::ZERO),
            Some("10.0.0.99".parse().unwrap())
        );
    }

    #[test]
    fn ipv6_errors_come_from_the_interface_when_it_has_an_address() {
        let mut p = vec![0u8; 48];
        p[0] = 0x60;
        p[8] = 0xfd;
        p[23] = 1;
        p[24] = 0xfd;
        p[39] = 0x99;
        // `lo` holds ::1 wherever IPv6 is on; a made-up interface holds nothing.
        let lo = Unreachable::new("lo", Arc::new(LocalAddrs::new()));
        let has_v6 = crate::local_addrs::read_all()
            .unwrap()
            .iter()
            .any(|a| a.ifname == "lo" && a.addr == IpAddr::V6(Ipv6Addr::LOCALHOST));
        if has_v6 {
            assert_eq!(
                lo.source_for(&p, Instant::ZERO),
                Some(IpAddr::V6(Ipv6Addr::LOCALHOST))
            );
        }
        let none = Unreachable::new("nosuchif0", Arc::new(LocalAddrs::new()));
        assert_eq!(
            none.source_for(&p, Instant::ZERO),
            Some("fd00::99".parse().unwrap())
        );
    }
}
