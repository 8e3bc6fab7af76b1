//! Routes: add one as `ip route add PREFIX dev LINK [table T]` does, list them, and look up
//! where a packet to an address would go (`ip route get`).

use std::net::IpAddr;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteMetric, RouteProtocol,
    RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::addr::family;
use super::{Link, Netlink, NetlinkError};
use ferrotun_uapi::IpPrefix;

pub const TABLE_MAIN: u32 = RouteHeader::RT_TABLE_MAIN as u32;

/// A route as the kernel lists it, reduced to what wg-quick looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub destination: IpPrefix,
    pub table: u32,
    pub oif: Option<u32>,
    /// The route's own MTU metric, if it has one.
    pub mtu: Option<u32>,
    pub kind: RouteType,
}

/// Where the kernel would send a packet: the device and any MTU the route carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteLookup {
    pub oif: Option<u32>,
    pub mtu: Option<u32>,
}

fn route_address(addr: IpAddr) -> RouteAddress {
    match addr {
        IpAddr::V4(a) => RouteAddress::Inet(a),
        IpAddr::V6(a) => RouteAddress::Inet6(a),
    }
}

fn unspecified(family: AddressFamily) -> IpAddr {
    if family == AddressFamily::Inet6 {
        IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
    }
}

fn metric_mtu(attrs: &[RouteAttribute]) -> Option<u32> {
    attrs.iter().find_map(|a| match a {
        RouteAttribute::Metrics(metrics) => metrics.iter().find_map(|m| match m {
            RouteMetric::Mtu(mtu) => Some(*mtu),
            _ => None,
        }),
        _ => None,
    })
}

fn oif(attrs: &[RouteAttribute]) -> Option<u32> {
    attrs.iter().find_map(|a| match a {
        RouteAttribute::Oif(i) => Some(*i),
        _ => None,
    })
}

impl Route {
    fn from_message(m: &RouteMessage) -> Route {
        let addr = m
            .attributes
            .iter()
            .find_map(|a| match a {
                RouteAttribute::Destination(RouteAddress::Inet(a)) => Some(IpAddr::V4(*a)),
                RouteAttribute::Destination(RouteAddress::Inet6(a)) => Some(IpAddr::V6(*a)),
                _ => None,
            })
            .unwrap_or_else(|| unspecified(m.header.address_family));
        let table = m
            .attributes
            .iter()
            .find_map(|a| match a {
                RouteAttribute::Table(t) => Some(*t),
                _ => None,
            })
            .unwrap_or(u32::from(m.header.table));
        Route {
            destination: IpPrefix {
                addr,
                cidr: m.header.destination_prefix_length,
            },
            table,
            oif: oif(&m.attributes),
            mtu: metric_mtu(&m.attributes),
            kind: m.header.kind,
        }
    }
}

impl Netlink {
    /// Like `ip route add PREFIX dev LINK table TABLE`: a unicast route of link scope,
    /// protocol boot, as iproute2 sends it.
    pub fn add_route(
        &mut self,
        link: &Link,
        prefix: &IpPrefix,
        table: u32,
    ) -> Result<(), NetlinkError> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = family(&prefix.addr);
        msg.header.destination_prefix_length = prefix.cidr;
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.scope = RouteScope::Link;
        msg.header.kind = RouteType::Unicast;
        // iproute2 puts a small table id in the header and a large one in an attribute.
        match u8::try_from(table) {
            Ok(t) => msg.header.table = t,
            Err(_) => {
                msg.header.table = RouteHeader::RT_TABLE_UNSPEC;
                msg.attributes.push(RouteAttribute::Table(table));
            }
        }
        msg.attributes
            .push(RouteAttribute::Destination(route_address(
                prefix.masked().addr,
            )));
        msg.attributes.push(RouteAttribute::Oif(link.index));
        let name = &link.name;
        self.change(
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            || format!("cannot add route {prefix} dev {name} table {table}"),
        )
    }

    /// Every route of one family, in every table.
    pub fn routes(&mut self, ipv6: bool) -> Result<Vec<Route>, NetlinkError> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = if ipv6 {
            AddressFamily::Inet6
        } else {
            AddressFamily::Inet
        };
        let replies = self.dump(RouteNetlinkMessage::GetRoute(msg), || {
            "cannot list routes".to_string()
        })?;
        Ok(replies
            .iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewRoute(m) => Some(Route::from_message(m)),
                _ => None,
            })
            .collect())
    }

    /// Like `ip route get ADDR`; `None` when the address is unreachable.
    pub fn route_get(&mut self, addr: IpAddr) -> Result<Option<RouteLookup>, NetlinkError> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = family(&addr);
        msg.header.destination_prefix_length = IpPrefix::host(addr).cidr;
        msg.attributes
            .push(RouteAttribute::Destination(route_address(addr)));
        match self.query(RouteNetlinkMessage::GetRoute(msg), || {
            format!("cannot look up the route to {addr}")
        }) {
            Ok(replies) => Ok(replies.iter().find_map(|r| match r {
                RouteNetlinkMessage::NewRoute(m) => Some(RouteLookup {
                    oif: oif(&m.attributes),
                    mtu: metric_mtu(&m.attributes),
                }),
                _ => None,
            })),
            Err(NetlinkError::Kernel { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
