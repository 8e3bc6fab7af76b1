//! Links: find one by name or index, set its MTU and bring it up, delete it.

use netlink_packet_core::NLM_F_ACK;
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;

use super::{Netlink, NetlinkError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub mtu: u32,
    pub up: bool,
}

impl Link {
    fn from_message(m: &LinkMessage) -> Link {
        let mut link = Link {
            index: m.header.index,
            name: String::new(),
            mtu: 0,
            up: m.header.flags.contains(LinkFlags::Up),
        };
        for attr in &m.attributes {
            match attr {
                LinkAttribute::IfName(n) => link.name = n.clone(),
                LinkAttribute::Mtu(mtu) => link.mtu = *mtu,
                _ => {}
            }
        }
        link
    }
}

impl Netlink {
    /// The link called `name`, or `None` if there is none.
    pub fn link_by_name(&mut self, name: &str) -> Result<Option<Link>, NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        self.link_query(msg, || format!("cannot look up interface {name}"))
    }

    pub fn link_by_index(&mut self, index: u32) -> Result<Option<Link>, NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        self.link_query(msg, || format!("cannot look up interface #{index}"))
    }

    fn link_query(
        &mut self,
        msg: LinkMessage,
        what: impl Fn() -> String,
    ) -> Result<Option<Link>, NetlinkError> {
        match self.query(RouteNetlinkMessage::GetLink(msg), what) {
            Ok(replies) => Ok(replies.iter().find_map(|r| match r {
                RouteNetlinkMessage::NewLink(m) => Some(Link::from_message(m)),
                _ => None,
            })),
            Err(e) if e.errno() == libc::ENODEV => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Like `ip link set mtu MTU up dev NAME`.
    pub fn set_mtu_up(&mut self, link: &Link, mtu: u32) -> Result<(), NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = link.index;
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        msg.attributes.push(LinkAttribute::Mtu(mtu));
        let name = &link.name;
        self.change(RouteNetlinkMessage::SetLink(msg), 0, || {
            format!("cannot set MTU {mtu} and bring up {name}")
        })
    }

    /// Like `ip link delete dev NAME`.
    pub fn delete_link(&mut self, link: &Link) -> Result<(), NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = link.index;
        let name = &link.name;
        self.change(RouteNetlinkMessage::DelLink(msg), NLM_F_ACK, || {
            format!("cannot delete interface {name}")
        })
    }
}
