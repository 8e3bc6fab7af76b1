//! Following the interface's MTU: `ip link set mtu` and wg-quick change it after the
//! daemon has started, and the core must pad for (and the device must split at) the MTU
//! in force, never one it remembers.
//!
//! A NETLINK_ROUTE socket subscribed to RTMGRP_LINK hears of every link change in the
//! namespace; the MTU of each RTM_NEWLINK for our interface goes to the core at once.

use crate::epoll::{Epoll, Event, Interest};
use crate::netlink_batch::route_messages;
use crate::Cancel;
use ferrotun_proto::interface::Interface;
use netlink_packet_core::NetlinkPayload;
use netlink_packet_route::link::LinkAttribute;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::io;
use std::sync::Arc;
use std::thread::JoinHandle;

/// The link-change multicast group (`RTMGRP_LINK` in rtnetlink.h).
const RTMGRP_LINK: u32 = 1;

const TOKEN_NETLINK: u64 = 0;
const TOKEN_CANCEL: u64 = 1;

/// A subscription to link changes of one interface.
pub struct MtuWatch {
    socket: Socket,
    ifindex: u32,
    name: String,
}

impl MtuWatch {
    /// Subscribes in the calling thread's network namespace (the interface's).
    pub fn open(ifindex: u32, name: &str) -> io::Result<MtuWatch> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind(&SocketAddr::new(0, RTMGRP_LINK))?;
        socket.set_non_blocking(true)?;
        Ok(MtuWatch {
            socket,
            ifindex,
            name: name.to_string(),
        })
    }

    /// Reads every pending notification; the interface's latest MTU if any of them
    /// named it.
    pub fn poll(&mut self) -> io::Result<Option<u32>> {
        let mut latest = None;
        loop {
            let data = match self.socket.recv_from_full() {
                Ok((data, _)) => data,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(latest),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    // Notifications were lost: ask for the MTU instead.
                    latest = crate::netif::mtu(&self.name).ok().or(latest);
                    continue;
                }
                Err(e) => return Err(e),
            };
            if let Some(mtu) = self.mtu_in(&data) {
                latest = Some(mtu);
            }
        }
    }

    /// The MTU a batch of netlink messages gives our interface, if any.
    fn mtu_in(&self, data: &[u8]) -> Option<u32> {
        let mut latest = None;
        for msg in route_messages(data) {
            if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) = msg.payload {
                if link.header.index == self.ifindex {
                    for attr in &link.attributes {
                        if let LinkAttribute::Mtu(mtu) = attr {
                            latest = Some(*mtu);
                        }
                    }
                }
            }
        }
        latest
    }

    /// Applies the MTU to `iface` now and on every change until `cancel` fires.
    pub fn spawn(mut self, iface: Arc<Interface>, cancel: Cancel) -> io::Result<JoinHandle<()>> {
        let epoll = Epoll::new()?;
        epoll.add(&self.socket, TOKEN_NETLINK, Interest::READABLE)?;
        epoll.add(&cancel.fd(), TOKEN_CANCEL, Interest::READABLE)?;
        // A change between the TUN's creation and the subscription is heard of nowhere
        // else: start from the MTU in force now.
        if let Ok(mtu) = crate::netif::mtu(&self.name) {
            apply(&iface, mtu);
        }
        std::thread::Builder::new()
            .name("mtu-watch".into())
            .spawn(move || {
                let mut events = [Event::EMPTY; 2];
                while !cancel.is_triggered() {
                    let n = match epoll.wait(&mut events, None) {
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            tracing::warn!("MTU watch stopped: {e}");
                            return;
                        }
                    };
                    if !events[..n].iter().any(|e| e.token() == TOKEN_NETLINK) {
                        continue;
                    }
                    match self.poll() {
                        Ok(Some(mtu)) => apply(&iface, mtu),
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!("MTU watch stopped: {e}");
                            return;
                        }
                    }
                }
            })
    }
}

fn apply(iface: &Interface, mtu: u32) {
    let mtu = mtu as usize;
    if iface.mtu() != mtu {
        tracing::info!("interface MTU is now {mtu}");
        iface.set_mtu(mtu);
    }
}
