//! Overlay addresses: host number `index` inside the mesh's IPv4 CIDR, and the same host
//! number inside its IPv6 CIDR. Claiming an index is a compare-and-swap in etcd (see
//! `registry.rs`); this file is the arithmetic and the choice of candidates.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ferrotun_uapi::IpPrefix;

/// The address space of one mesh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    pub v4: IpPrefix,
    pub v6: Option<IpPrefix>,
}

impl Pool {
    /// Checks that the prefixes are networks (no host bits) with room for hosts, and that the
    /// IPv6 prefix has at least as many host numbers as the IPv4 one.
    pub fn new(v4: IpPrefix, v6: Option<IpPrefix>) -> Result<Pool, String> {
        if !v4.addr.is_ipv4() || v4.cidr > 30 || v4.cidr < 8 {
            return Err(format!(
                "--cidr {v4}: an IPv4 network between /8 and /30 is needed"
            ));
        }
        if v4.has_host_bits() {
            return Err(format!(
                "--cidr {v4} has host bits set (use {})",
                v4.masked()
            ));
        }
        if let Some(v6) = v6 {
            if !v6.addr.is_ipv6() || v6.cidr > 128 - (32 - u32::from(v4.cidr)) as u8 {
                return Err(format!(
                    "--cidr6 {v6}: an IPv6 network with at least as many hosts as {v4} is needed"
                ));
            }
            if v6.has_host_bits() {
                return Err(format!(
                    "--cidr6 {v6} has host bits set (use {})",
                    v6.masked()
                ));
            }
        }
        Ok(Pool { v4, v6 })
    }

    /// Host numbers 1 ..= last (the network and broadcast addresses are never handed out).
    pub fn last_index(&self) -> u32 {
        (1u32 << (32 - u32::from(self.v4.cidr))) - 2
    }

    pub fn address(&self, index: u32) -> IpAddr {
        let IpAddr::V4(base) = self.v4.addr else {
            unreachable!("Pool::new checks the family")
        };
        IpAddr::V4(Ipv4Addr::from(u32::from(base) + index))
    }

    pub fn address6(&self, index: u32) -> Option<IpAddr> {
        let v6 = self.v6?;
        let IpAddr::V6(base) = v6.addr else {
            unreachable!("Pool::new checks the family")
        };
        Some(IpAddr::V6(Ipv6Addr::from(
            u128::from(base) + u128::from(index),
        )))
    }

    /// The host number of an IPv4 address inside the CIDR, if it is a usable one.
    pub fn index_of(&self, addr: IpAddr) -> Option<u32> {
        let (IpAddr::V4(a), IpAddr::V4(base)) = (addr, self.v4.addr) else {
            return None;
        };
        let offset = u32::from(a).checked_sub(u32::from(base))?;
        (1..=self.last_index()).contains(&offset).then_some(offset)
    }

    /// The interface addresses of host `index`: with the mesh's prefix lengths, so the kernel
    /// routes the whole mesh to the interface as `Address = 10.77.0.5/16` does.
    pub fn interface_addresses(&self, index: u32) -> Vec<IpPrefix> {
        let mut out = vec![IpPrefix {
            addr: self.address(index),
            cidr: self.v4.cidr,
        }];
        if let (Some(v6), Some(addr)) = (self.v6, self.address6(index)) {
            out.push(IpPrefix {
                addr,
                cidr: v6.cidr,
            });
        }
        out
    }
}

/// Free host numbers to try, lowest first, skipping those known taken. Nodes joining at the
/// same moment race for the same candidates; the compare-and-swap picks one winner for each
/// and the losers move on to the next.
pub fn candidates(pool: &Pool, taken: &BTreeSet<u32>) -> impl Iterator<Item = u32> {
    let taken = taken.clone();
    (1..=pool.last_index()).filter(move |i| !taken.contains(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(v4: &str, v6: Option<&str>) -> Result<Pool, String> {
        Pool::new(
            IpPrefix::parse(v4).unwrap(),
            v6.map(|p| IpPrefix::parse(p).unwrap()),
        )
    }

    #[test]
    fn addresses_follow_the_host_number_in_both_families() {
        let p = pool("10.77.0.0/16", Some("fd77::/64")).unwrap();
        assert_eq!(p.last_index(), 65534);
        assert_eq!(p.address(1).to_string(), "10.77.0.1");
        assert_eq!(p.address(300).to_string(), "10.77.1.44");
        assert_eq!(p.address6(300).unwrap().to_string(), "fd77::12c");
        assert_eq!(p.index_of("10.77.1.44".parse().unwrap()), Some(300));
        assert_eq!(
            p.interface_addresses(2)
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["10.77.0.2/16", "fd77::2/64"]
        );
    }

    #[test]
    fn network_broadcast_and_foreign_addresses_have_no_host_number() {
        let p = pool("10.77.0.0/24", None).unwrap();
        for a in [
            "10.77.0.0",
            "10.77.0.255",
            "10.78.0.1",
            "10.76.255.255",
            "fd77::1",
        ] {
            assert_eq!(p.index_of(a.parse().unwrap()), None, "{a}");
        }
        assert_eq!(p.index_of("10.77.0.254".parse().unwrap()), Some(254));
    }

    #[test]
    fn bad_pools_are_refused() {
        assert!(pool("10.77.0.1/16", None).is_err());
        assert!(pool("10.77.0.0/31", None).is_err());
        assert!(pool("fd77::/64", None).is_err());
        assert!(pool("10.77.0.0/16", Some("fd77::/120")).is_err());
        assert!(pool("10.77.0.0/16", Some("10.0.0.0/8")).is_err());
    }

    #[test]
    fn candidates_skip_taken_numbers() {
        let p = pool("10.77.0.0/29", None).unwrap();
        let taken = BTreeSet::from([1, 2, 4]);
        assert_eq!(candidates(&p, &taken).collect::<Vec<_>>(), [3, 5, 6]);
    }
}
