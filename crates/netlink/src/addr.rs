//! Interface addresses: add one as `ip address add` does, list a link's.

use std::net::IpAddr;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::{Link, Netlink, NetlinkError};
use ferrotun_uapi::IpPrefix;

/// An address on a link, with its prefix length (host bits kept).
pub type Address = IpPrefix;

pub(crate) fn family(addr: &IpAddr) -> AddressFamily {
    match addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

impl Netlink {
    /// Like `ip address add ADDR/LEN dev LINK`: local and peer address both ADDR, no
    /// broadcast, the default (global) scope.
    pub fn add_address(&mut self, link: &Link, address: &Address) -> Result<(), NetlinkError> {
        let mut msg = AddressMessage::default();
        msg.header.family = family(&address.addr);
        msg.header.prefix_len = address.cidr;
        msg.header.index = link.index;
        msg.attributes.push(AddressAttribute::Local(address.addr));
        msg.attributes.push(AddressAttribute::Address(address.addr));
        let name = &link.name;
        self.change(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            || format!("cannot add address {address} to {name}"),
        )
    }

    /// The link's addresses in the kernel's order (IPv4 first), as `ip address show` lists them.
    pub fn addresses(&mut self, link: &Link) -> Result<Vec<Address>, NetlinkError> {
        Ok(self
            .all_addresses()?
            .into_iter()
            .filter(|(index, _)| *index == link.index)
            .map(|(_, a)| a)
            .collect())
    }

    /// Every address of every link, each with its link's index.
    pub fn all_addresses(&mut self) -> Result<Vec<(u32, Address)>, NetlinkError> {
        let replies = self.dump(
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            || "cannot list addresses".to_string(),
        )?;
        let mut out = Vec::new();
        for reply in replies {
            let RouteNetlinkMessage::NewAddress(m) = reply else {
                continue;
            };
            // IFA_LOCAL is the interface's own address; IFA_ADDRESS the peer's on a
            // point-to-point link (and the only one for IPv6).
            let local = m.attributes.iter().find_map(|a| match a {
                AddressAttribute::Local(ip) => Some(*ip),
                _ => None,
            });
            let addr = local.or_else(|| {
                m.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Address(ip) => Some(*ip),
                    _ => None,
                })
            });
            if let Some(addr) = addr {
                out.push((
                    m.header.index,
                    IpPrefix {
                        addr,
                        cidr: m.header.prefix_len,
                    },
                ));
            }
        }
        Ok(out)
    }
}
