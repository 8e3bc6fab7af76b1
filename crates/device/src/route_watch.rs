//! Following the routes to the peers: a peer's replies leave from our address its
//! datagrams arrived at (the sticky source, see `ferrotun_proto::source`), which is right
//! only while the route to the peer leaves by the interface they came in on. When a more
//! specific route through another interface appears, the kernel's WireGuard forgets the
//! source (the route's device changed) and lets the routing table pick one of the new
//! link's addresses; a router on the new path that checks source addresses would drop
//! datagrams still sent from the old link's address.
//!
//! A NETLINK_ROUTE socket subscribed to RTMGRP_IPV4_ROUTE and RTMGRP_IPV6_ROUTE (and the
//! policy-rule groups) hears of every route change in the namespace. Then, and when the data path reports a source not
//! used before (rare: a peer roaming, or the first packets), this thread asks the kernel
//! for the route to each peer's endpoint from its source (`ip route get ENDPOINT from
//! SOURCE mark FWMARK`) and has the core refuse a source whose route leaves by another
//! interface. Nothing is added to the data path but a flag set on a new source: the
//! lookups happen here, once per peer and change.

use crate::epoll::{Epoll, Event, Interest};
use crate::netset::NetSet;
use crate::Cancel;
use ferrotun_proto::interface::{Interface, SourceState};
use ferrotun_proto::source::LocalSource;
use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_REQUEST,
};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr as IpSocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The multicast groups of route and policy-rule changes (`RTMGRP_IPV4_ROUTE`,
/// `RTMGRP_IPV6_ROUTE`, `RTMGRP_IPV4_RULE` and RTNLGRP_IPV6_RULE's bit): a rule can send
/// a peer's datagrams to another table as surely as a route can (wg-quick adds some).
const RTMGRP_ROUTES: u32 = 0x40 | 0x400 | 0x80 | (1 << (19 - 1));

const TOKEN_NETLINK: u64 = 0;
const TOKEN_CANCEL: u64 = 1;

/// How long a new source may go unchecked: the data path only sets a flag, which this
/// thread looks at this often.
const NEW_SOURCE_DELAY: Duration = Duration::from_millis(100);
/// Checks after route changes are at least this far apart, so a routing daemon rewriting
/// a full table costs one pass per interval, not one per route.
const MIN_CHECK_INTERVAL: Duration = Duration::from_millis(50);

/// Set by the data path when a peer's replies leave from an address of ours they did not
/// leave from before.
pub type NewSources = Arc<AtomicBool>;

/// A subscription to route changes and a socket to ask for routes on.
pub struct RouteWatch {
    changes: Socket,
    lookups: Lookups,
}

impl RouteWatch {
    /// Subscribes in the calling thread's network namespace (the interface's). Opened
    /// before the daemon confines itself, like every socket of the daemon.
    pub fn open() -> io::Result<RouteWatch> {
        let mut changes = Socket::new(NETLINK_ROUTE)?;
        changes.bind(&SocketAddr::new(0, RTMGRP_ROUTES))?;
        changes.set_non_blocking(true)?;
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        // The kernel answers a route query before the request's send returns; never
        // waiting for it bounds a lookup even if it did not.
        socket.set_non_blocking(true)?;
        Ok(RouteWatch {
            changes,
            lookups: Lookups { socket, seq: 0 },
        })
    }

    /// Reads every pending notification; whether there was any (or some were lost).
    fn drain(&self) -> io::Result<bool> {
        let mut any = false;
        loop {
            match self.changes.recv_from_full() {
                Ok(_) => any = true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(any),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Notifications were lost: something changed.
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => any = true,
                Err(e) => return Err(e),
            }
        }
    }

    /// Checks the peers' sources on every route change and new source until `cancel`
    /// fires.
    pub fn spawn(
        mut self,
        iface: Arc<Interface>,
        net: Arc<RwLock<Arc<NetSet>>>,
        new_sources: NewSources,
        cancel: Cancel,
    ) -> io::Result<JoinHandle<()>> {
        let epoll = Epoll::new()?;
        epoll.add(&self.changes, TOKEN_NETLINK, Interest::READABLE)?;
        epoll.add(&cancel.fd(), TOKEN_CANCEL, Interest::READABLE)?;
        std::thread::Builder::new()
            .name("route-watch".into())
            .spawn(move || {
                let mut sources = Sources::default();
                let mut routes_changed = false;
                let mut last_check: Option<Instant> = None;
                let mut fwmark = net.read().fwmark;
                let mut events = [Event::EMPTY; 2];
                while !cancel.is_triggered() {
                    if let Err(e) = epoll.wait(&mut events, Some(NEW_SOURCE_DELAY)) {
                        if e.kind() != io::ErrorKind::Interrupted {
                            tracing::warn!("route watch stopped: {e}");
                            return;
                        }
                    }
                    // Another mark can pick other routes (wg-quick's policy rules).
                    let mark = net.read().fwmark;
                    routes_changed |= mark != fwmark;
                    fwmark = mark;
                    match self.drain() {
                        Ok(changed) => routes_changed |= changed,
                        Err(e) => {
                            tracing::warn!("route watch stopped: {e}");
                            return;
                        }
                    }
                    let due = last_check.is_none_or(|t| t.elapsed() >= MIN_CHECK_INTERVAL);
                    let new = new_sources.load(Ordering::Relaxed);
                    if !(routes_changed && due || new) {
                        continue;
                    }
                    new_sources.store(false, Ordering::Relaxed);
                    if routes_changed && due {
                        sources.routes_changed();
                        routes_changed = false;
                        last_check = Some(Instant::now());
                    }
                    let mut lookups = |dst, src| self.lookups.oif(dst, src, fwmark);
                    sources.check(&iface, &mut lookups);
                }
            })
    }
}

/// What the routes say about the sources seen since they last changed.
#[derive(Default)]
struct Sources {
    /// Whether the route to an endpoint leaves by the interface a source was learned on.
    fits: HashMap<(IpAddr, LocalSource), bool>,
    /// The routes changed since the last check: refused sources may fit again.
    recheck_refused: bool,
}

impl Sources {
    fn routes_changed(&mut self) {
        self.fits.clear();
        self.recheck_refused = true;
    }

    /// Refuses every peer's source that does not fit its route, and after a route change
    /// allows again the refused ones that now do. `oif` looks a route up: the output
    /// interface of the route to an address from a source, `None` when it cannot tell.
    fn check(&mut self, iface: &Interface, oif: &mut dyn FnMut(IpAddr, IpAddr) -> Option<u32>) {
        for SourceState {
            peer,
            endpoint,
            source,
            refused,
        } in iface.sources()
        {
            if let Some(s) = source {
                if self.fits(endpoint, s, oif) == Some(false) {
                    iface.refuse_source(&peer, endpoint, s);
                }
            }
            if let (Some(r), true) = (refused, self.recheck_refused) {
                if self.fits(endpoint, r, oif) == Some(true) {
                    iface.allow_source(&peer, r);
                }
            }
        }
        self.recheck_refused = false;
    }

    fn fits(
        &mut self,
        endpoint: IpSocketAddr,
        source: LocalSource,
        oif: &mut dyn FnMut(IpAddr, IpAddr) -> Option<u32>,
    ) -> Option<bool> {
        // An IPv6 link-local source names its link, which the kernel then sends by; an
        // unknown interface (0) cannot be compared.
        let link_local = matches!(source.addr, IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80);
        if source.ifindex == 0 || link_local {
            return Some(true);
        }
        let key = (endpoint.ip(), source);
        if let Some(&fits) = self.fits.get(&key) {
            return Some(fits);
        }
        let fits = oif(endpoint.ip(), source.addr)? == source.ifindex;
        self.fits.insert(key, fits);
        Some(fits)
    }
}

/// Route queries (`RTM_GETROUTE`) on a socket of their own.
struct Lookups {
    socket: Socket,
    seq: u32,
}

impl Lookups {
    /// The output interface of the route to `dst` from `src` for packets marked `fwmark`;
    /// `None` if the kernel gives none (no route, `src` no longer ours) or cannot be asked.
    fn oif(&mut self, dst: IpAddr, src: IpAddr, fwmark: u32) -> Option<u32> {
        match self.query(dst, src, fwmark) {
            Ok(oif) => oif,
            Err(e) => {
                tracing::debug!("cannot look up the route to {dst} from {src}: {e}");
                None
            }
        }
    }

    fn query(&mut self, dst: IpAddr, src: IpAddr, fwmark: u32) -> io::Result<Option<u32>> {
        self.seq = self.seq.wrapping_add(1);
        let mut msg = RouteMessage::default();
        let (family, bits) = match dst {
            IpAddr::V4(_) => (AddressFamily::Inet, 32),
            IpAddr::V6(_) => (AddressFamily::Inet6, 128),
        };
        msg.header.address_family = family;
        msg.header.destination_prefix_length = bits;
        msg.header.source_prefix_length = bits;
        msg.attributes
            .push(RouteAttribute::Destination(route_address(dst)));
        msg.attributes
            .push(RouteAttribute::Source(route_address(src)));
        if fwmark != 0 {
            msg.attributes.push(RouteAttribute::Mark(fwmark));
        }
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(
            header,
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::GetRoute(msg)),
        );
        packet.finalize();
        let mut buf = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.socket.send_to(&buf, &SocketAddr::new(0, 0), 0)?;
        loop {
            let (data, _) = match self.socket.recv_from_full() {
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if let Some(answer) = self.answer_in(&data) {
                return Ok(answer);
            }
        }
    }

    /// The answer to the current query in a batch of netlink messages: `Some(oif)` for
    /// the route (or the kernel's error), `None` when the batch holds no answer to it.
    fn answer_in(&self, mut data: &[u8]) -> Option<Option<u32>> {
        while let Ok(buf) = NetlinkBuffer::new_checked(data) {
            let len = buf.length() as usize;
            if len == 0 {
                break;
            }
            let chunk = data.get(..len).unwrap_or(data);
            if let Ok(msg) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(chunk) {
                if msg.header.sequence_number == self.seq {
                    return Some(match msg.payload {
                        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(route)) => {
                            route.attributes.iter().find_map(|a| match a {
                                RouteAttribute::Oif(i) => Some(*i),
                                _ => None,
                            })
                        }
                        _ => None,
                    });
                }
            }
            data = data.get(len.next_multiple_of(4)..).unwrap_or_default();
        }
        None
    }
}

fn route_address(addr: IpAddr) -> RouteAddress {
    match addr {
        IpAddr::V4(a) => RouteAddress::Inet(a),
        IpAddr::V6(a) => RouteAddress::Inet6(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrotun_proto::keys::PublicKey;
    use std::cell::Cell;

    fn source(addr: &str, ifindex: u32) -> LocalSource {
        LocalSource {
            addr: addr.parse().unwrap(),
            ifindex,
        }
    }

    /// A peer at 10.0.0.2:2 whose replies leave from 10.0.0.1 (learned on interface 5).
    fn peer_with_source(iface: &Interface) -> ferrotun_proto::interface::PeerRef {
        let peer = iface.add_peer(PublicKey::from_bytes([3; 32])).unwrap();
        iface.set_endpoint(&peer, "10.0.0.2:2".parse().unwrap());
        iface.set_source(&peer, Some(source("10.0.0.1", 5)));
        peer
    }

    #[test]
    fn a_source_whose_route_leaves_elsewhere_is_refused_until_it_fits_again() {
        let iface = Interface::new(Box::new(rand_core::OsRng));
        let peer = peer_with_source(&iface);
        let mut sources = Sources::default();
        let route = Cell::new(5);
        let asked = Cell::new(0);
        let mut oif = |_: IpAddr, _: IpAddr| {
            asked.set(asked.get() + 1);
            Some(route.get())
        };
        sources.check(&iface, &mut oif);
        assert_eq!(iface.source(&peer), Some(source("10.0.0.1", 5)));
        // Known: not asked again until the routes change.
        sources.check(&iface, &mut oif);
        assert_eq!(asked.get(), 1);

        route.set(7);
        sources.routes_changed();
        sources.check(&iface, &mut oif);
        assert_eq!(
            iface.source(&peer),
            None,
            "the route leaves by interface 7 now"
        );
        // The peer's packets still arriving there do not bring it back.
        assert!(!iface.set_source(&peer, Some(source("10.0.0.1", 5))));
        assert_eq!(iface.source(&peer), None);
        // Another address of ours is new, and checked.
        assert!(iface.set_source(&peer, Some(source("10.0.0.3", 7))));

        route.set(5);
        sources.routes_changed();
        sources.check(&iface, &mut oif);
        assert!(iface.set_source(&peer, Some(source("10.0.0.1", 5))));
        assert_eq!(iface.source(&peer), Some(source("10.0.0.1", 5)));
    }

    #[test]
    fn an_unanswered_lookup_changes_nothing() {
        let iface = Interface::new(Box::new(rand_core::OsRng));
        let peer = peer_with_source(&iface);
        let mut sources = Sources::default();
        sources.check(&iface, &mut |_, _| None);
        assert_eq!(iface.source(&peer), Some(source("10.0.0.1", 5)));
    }

    #[test]
    fn the_kernel_answers_a_route_query() {
        let Ok(mut watch) = RouteWatch::open() else {
            eprintln!("skipping: no NETLINK_ROUTE socket");
            return;
        };
        let lo = crate::interface_index("lo").expect("lo");
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(watch.lookups.oif(local, local, 0), Some(lo));
        assert_eq!(
            watch.lookups.oif(local, local, 0),
            Some(lo),
            "sequence numbers"
        );
    }
}
