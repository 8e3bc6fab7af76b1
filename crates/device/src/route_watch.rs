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
//!
//! The same lookups (from the peer's source, or from none when it has none) tell whether
//! some peer's datagrams are routed into another tunnel-like interface ([`TunnelRoutes`]),
//! the one case where WireGuard of this host can come back in through our TUN in a loop
//! (see loop_guard.rs); the output interface's link type comes from `RTM_GETLINK` on the
//! same socket.

use crate::epoll::{Epoll, Event, Interest};
use crate::netlink_batch::route_messages;
use crate::netset::NetSet;
use crate::Cancel;
use ferrotun_proto::interface::{Interface, SourceState};
use ferrotun_proto::source::LocalSource;
use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_REQUEST};
use netlink_packet_route::link::{LinkLayerType, LinkMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use parking_lot::RwLock;
use std::cell::RefCell;
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

/// Whether some peer's datagrams are routed into a tunnel-like interface (see
/// [`is_tunnel_like`]), which the loop guard reads on the data path; and the
/// configuration's word that endpoints changed, for the route watch to look again.
#[derive(Debug)]
pub struct TunnelRoutes {
    /// Set while it is so, or may be: from an endpoint change until the watch has looked,
    /// and until it first looks (before any lookup the guard stays on).
    through_tunnel: AtomicBool,
    /// Peers or endpoints changed since the watch last looked.
    changed: AtomicBool,
}

impl Default for TunnelRoutes {
    fn default() -> Self {
        TunnelRoutes {
            through_tunnel: AtomicBool::new(true),
            changed: AtomicBool::new(false),
        }
    }
}

impl TunnelRoutes {
    /// Whether some peer's datagrams may leave by a tunnel-like interface. A relaxed load:
    /// the data path reads it per packet.
    #[inline]
    pub fn through_tunnel(&self) -> bool {
        self.through_tunnel.load(Ordering::Relaxed)
    }

    /// Peers were added or their endpoints set (the configuration socket): until the
    /// route watch has looked up the new endpoints' routes, count them as through a tunnel.
    pub fn endpoints_changed(&self) {
        // In this order, with `set`'s: a result computed before the change never
        // outlives it (either `set` sees `changed`, or this store comes after its own).
        self.changed.store(true, Ordering::SeqCst);
        self.through_tunnel.store(true, Ordering::SeqCst);
    }

    fn take_changed(&self) -> bool {
        self.changed.swap(false, Ordering::SeqCst)
    }

    /// What the watch found; a change meanwhile keeps it on until the next look.
    pub(crate) fn set(&self, found: bool) {
        self.through_tunnel.store(found, Ordering::SeqCst);
        if self.changed.load(Ordering::SeqCst) {
            self.through_tunnel.store(true, Ordering::SeqCst);
        }
    }
}

/// Whether an interface of this link type can carry our datagrams into another tunnel,
/// from which they may come back to us: ARPHRD_NONE is every WireGuard on Linux (the
/// kernel's, and the TUN devices of ferrotun, wireguard-go and boringtun); the IP tunnels
/// (ipip and vti, ip6tnl and vti6, sit, gre and ip6gre) can close such a cycle too, with
/// a WireGuard interface in it that alone sees its WireGuard fragments. Not a link with
/// a link layer (ethernet, veth, bridges, Wi-Fi): the outer interface of a nested tunnel
/// sends over one, and its fragments of inner WireGuard must pass. Not PPP or raw-IP
/// either (IFF_POINTOPOINT alone would take them in): DSL and mobile uplinks, where a
/// tunnel's own endpoints usually are.
pub fn is_tunnel_like(link_type: LinkLayerType) -> bool {
    matches!(
        link_type,
        LinkLayerType::None
            | LinkLayerType::Tunnel
            | LinkLayerType::Tunnel6
            | LinkLayerType::Sit
            | LinkLayerType::Ipgre
            | LinkLayerType::Ip6gre
    )
}

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
        tunnel_routes: Arc<TunnelRoutes>,
        cancel: Cancel,
    ) -> io::Result<JoinHandle<()>> {
        let epoll = Epoll::new()?;
        epoll.add(&self.changes, TOKEN_NETLINK, Interest::READABLE)?;
        epoll.add(&cancel.fd(), TOKEN_CANCEL, Interest::READABLE)?;
        std::thread::Builder::new()
            .name("route-watch".into())
            .spawn(move || {
                let mut sources = Sources::default();
                let mut exits = Exits::default();
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
                    if mark != fwmark {
                        routes_changed = true;
                        exits.routes_changed();
                    }
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
                    let endpoints = tunnel_routes.take_changed();
                    if !(routes_changed && due || new || endpoints) {
                        continue;
                    }
                    new_sources.store(false, Ordering::Relaxed);
                    if routes_changed && due {
                        sources.routes_changed();
                        exits.routes_changed();
                        routes_changed = false;
                        last_check = Some(Instant::now());
                    }
                    let lookups = RefCell::new(&mut self.lookups);
                    let mut oif = |dst, src| lookups.borrow_mut().oif(dst, src, fwmark);
                    sources.check(&iface, &mut |dst, src| oif(dst, Some(src)));
                    let mut tunnel_like = |index| lookups.borrow_mut().tunnel_like(index);
                    tunnel_routes.set(exits.any_through_tunnel(&iface, &mut oif, &mut tunnel_like));
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

/// The interfaces the peers' datagrams leave by, as far as looked up since the routes
/// last changed.
#[derive(Default)]
struct Exits {
    /// The output interface of the route to an endpoint from a source (`None`: the
    /// kernel's choice).
    oifs: HashMap<(IpAddr, Option<IpAddr>), u32>,
    /// Whether an interface is tunnel-like ([`is_tunnel_like`]).
    tunnel_like: HashMap<u32, bool>,
}

impl Exits {
    /// Forgets everything: an interface index may now name another interface, too.
    fn routes_changed(&mut self) {
        self.oifs.clear();
        self.tunnel_like.clear();
    }

    /// Whether some peer's datagrams leave by a tunnel-like interface: the route to its
    /// endpoint from its source, or from none when it has none yet (as its datagrams
    /// leave). `oif` looks a route up, `tunnel_like` an interface; `None` when they cannot
    /// tell (no route: nothing is sent), which is not remembered.
    fn any_through_tunnel(
        &mut self,
        iface: &Interface,
        oif: &mut dyn FnMut(IpAddr, Option<IpAddr>) -> Option<u32>,
        tunnel_like: &mut dyn FnMut(u32) -> Option<bool>,
    ) -> bool {
        for state in iface.sources() {
            let key = (state.endpoint.ip(), state.source.map(|s| s.addr));
            let index = match self.oifs.get(&key) {
                Some(&index) => index,
                None => {
                    // A source the kernel no longer takes (gone, or link-local without
                    // its scope) is not what the datagrams leave from either.
                    let found = oif(key.0, key.1).or_else(|| key.1.and_then(|_| oif(key.0, None)));
                    let Some(index) = found else {
                        continue;
                    };
                    self.oifs.insert(key, index);
                    index
                }
            };
            let tunnel = match self.tunnel_like.get(&index) {
                Some(&tunnel) => tunnel,
                None => {
                    let Some(tunnel) = tunnel_like(index) else {
                        continue;
                    };
                    self.tunnel_like.insert(index, tunnel);
                    tunnel
                }
            };
            if tunnel {
                return true;
            }
        }
        false
    }
}

/// Route and link queries (`RTM_GETROUTE`, `RTM_GETLINK`) on a socket of their own.
struct Lookups {
    socket: Socket,
    seq: u32,
}

impl Lookups {
    /// The output interface of the route to `dst` from `src` (`None`: as the kernel would
    /// pick one) for packets marked `fwmark`; `None` if the kernel gives none (no route,
    /// `src` no longer ours) or cannot be asked.
    fn oif(&mut self, dst: IpAddr, src: Option<IpAddr>, fwmark: u32) -> Option<u32> {
        let mut msg = RouteMessage::default();
        let (family, bits) = match dst {
            IpAddr::V4(_) => (AddressFamily::Inet, 32),
            IpAddr::V6(_) => (AddressFamily::Inet6, 128),
        };
        msg.header.address_family = family;
        msg.header.destination_prefix_length = bits;
        msg.attributes
            .push(RouteAttribute::Destination(route_address(dst)));
        if let Some(src) = src {
            msg.header.source_prefix_length = bits;
            msg.attributes
                .push(RouteAttribute::Source(route_address(src)));
        }
        if fwmark != 0 {
            msg.attributes.push(RouteAttribute::Mark(fwmark));
        }
        match self.query(RouteNetlinkMessage::GetRoute(msg)) {
            Ok(Some(RouteNetlinkMessage::NewRoute(route))) => {
                route.attributes.iter().find_map(|a| match a {
                    RouteAttribute::Oif(i) => Some(*i),
                    _ => None,
                })
            }
            Ok(_) => None,
            Err(e) => {
                tracing::debug!("cannot look up the route to {dst} from {src:?}: {e}");
                None
            }
        }
    }

    /// Whether the interface `index` is tunnel-like ([`is_tunnel_like`]); `None` if the
    /// kernel does not know it (any more) or cannot be asked.
    fn tunnel_like(&mut self, index: u32) -> Option<bool> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        match self.query(RouteNetlinkMessage::GetLink(msg)) {
            Ok(Some(RouteNetlinkMessage::NewLink(link))) => {
                Some(is_tunnel_like(link.header.link_layer_type))
            }
            Ok(_) => None,
            Err(e) => {
                tracing::debug!("cannot look up interface {index}: {e}");
                None
            }
        }
    }

    /// Sends `request` and returns the kernel's answer (`None` for an error message).
    fn query(&mut self, request: RouteNetlinkMessage) -> io::Result<Option<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(request));
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

    /// The answer to the current query in a batch of netlink messages: `Some(answer)`
    /// (`Some(None)` for the kernel's error), `None` when the batch holds no answer to it.
    fn answer_in(&self, data: &[u8]) -> Option<Option<RouteNetlinkMessage>> {
        route_messages(data)
            .find(|msg| msg.header.sequence_number == self.seq)
            .map(|msg| match msg.payload {
                NetlinkPayload::InnerMessage(answer) => Some(answer),
                _ => None,
            })
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
        assert_eq!(watch.lookups.oif(local, Some(local), 0), Some(lo));
        assert_eq!(
            watch.lookups.oif(local, None, 0),
            Some(lo),
            "sequence numbers"
        );
        assert_eq!(watch.lookups.tunnel_like(lo), Some(false));
        assert_eq!(watch.lookups.tunnel_like(u32::MAX), None);
    }

    #[test]
    fn a_peer_routed_into_a_tunnel_is_found_with_or_without_a_source() {
        const ETH: u32 = 2;
        const TUN: u32 = 9;
        let iface = Interface::new(Box::new(rand_core::OsRng));
        let mut exits = Exits::default();
        let route: std::cell::RefCell<HashMap<(IpAddr, Option<IpAddr>), u32>> = Default::default();
        let asked = Cell::new(0);
        let mut oif = |dst, src| {
            asked.set(asked.get() + 1);
            route.borrow().get(&(dst, src)).copied()
        };
        let mut tunnel_like = |index| Some(index == TUN);
        // No peer, or peers whose datagrams leave by ethernet: no tunnel.
        assert!(!exits.any_through_tunnel(&iface, &mut oif, &mut tunnel_like));
        let a = peer_with_source(&iface);
        let dst: IpAddr = "10.0.0.2".parse().unwrap();
        let src: IpAddr = "10.0.0.1".parse().unwrap();
        route.borrow_mut().insert((dst, Some(src)), ETH);
        assert!(!exits.any_through_tunnel(&iface, &mut oif, &mut tunnel_like));
        assert_eq!(asked.get(), 1);
        // Remembered until the routes change.
        assert!(!exits.any_through_tunnel(&iface, &mut oif, &mut tunnel_like));
        assert_eq!(asked.get(), 1);

        // A second peer without a source yet, its endpoint routed into a tunnel.
        let b = iface.add_peer(PublicKey::from_bytes([4; 32])).unwrap();
        let inner: IpAddr = "10.243.0.2".parse().unwrap();
        iface.set_endpoint(&b, "10.243.0.2:7".parse().unwrap());
        route.borrow_mut().insert((inner, None), TUN);
        assert!(exits.any_through_tunnel(&iface, &mut oif, &mut tunnel_like));
        // Its endpoint moves out of the tunnel.
        iface.set_endpoint(&b, "192.0.2.1:7".parse().unwrap());
        route
            .borrow_mut()
            .insert(("192.0.2.1".parse().unwrap(), None), ETH);
        assert!(!exits.any_through_tunnel(&iface, &mut oif, &mut tunnel_like));

        // The route to the first peer from its source moves into the tunnel.
        route.borrow_mut().insert((dst, Some(src)), TUN);
        exits.routes_changed();
        assert!(exits.any_through_tunnel(&iface, &mut oif, &mut tunnel_like));
        // A source the kernel no longer takes: the route without one counts.
        route.borrow_mut().remove(&(dst, Some(src)));
        route.borrow_mut().insert((dst, None), ETH);
        exits.routes_changed();
        assert!(!exits.any_through_tunnel(&iface, &mut oif, &mut tunnel_like));
        // The peer goes: nothing is routed into the tunnel, whatever its route was.
        route.borrow_mut().insert((dst, Some(src)), TUN);
        exits.routes_changed();
        assert!(exits.any_through_tunnel(&iface, &mut oif, &mut tunnel_like));
        iface.remove_peer(&PublicKey::from_bytes([3; 32]));
        assert!(!exits.any_through_tunnel(&iface, &mut oif, &mut tunnel_like));
        let _ = a;
    }

    #[test]
    fn an_unknown_route_or_interface_is_not_a_tunnel_and_not_remembered() {
        let iface = Interface::new(Box::new(rand_core::OsRng));
        peer_with_source(&iface);
        let mut exits = Exits::default();
        assert!(!exits.any_through_tunnel(&iface, &mut |_, _| None, &mut |_| Some(true)));
        assert!(!exits.any_through_tunnel(&iface, &mut |_, _| Some(9), &mut |_| None));
        assert!(exits.any_through_tunnel(&iface, &mut |_, _| Some(9), &mut |_| Some(true)));
    }

    #[test]
    fn an_endpoint_change_keeps_the_guard_on_until_the_watch_has_looked() {
        let routes = TunnelRoutes::default();
        assert!(routes.through_tunnel(), "on before the first look");
        routes.set(false);
        assert!(!routes.through_tunnel());
        routes.endpoints_changed();
        assert!(routes.through_tunnel());
        // A look that began before the change does not turn it off.
        routes.set(false);
        assert!(routes.through_tunnel());
        assert!(routes.take_changed());
        routes.set(false);
        assert!(!routes.through_tunnel());
    }

    #[test]
    fn tunnels_are_tunnel_like_and_links_are_not() {
        for t in [
            LinkLayerType::None,
            LinkLayerType::Tunnel,
            LinkLayerType::Tunnel6,
            LinkLayerType::Sit,
            LinkLayerType::Ipgre,
            LinkLayerType::Ip6gre,
        ] {
            assert!(is_tunnel_like(t), "{t:?}");
        }
        for t in [
            LinkLayerType::Ether,
            LinkLayerType::Loopback,
            LinkLayerType::Ppp,
            LinkLayerType::Rawip,
            LinkLayerType::Ieee80211,
            LinkLayerType::Void,
        ] {
            assert!(!is_tunnel_like(t), "{t:?}");
        }
    }
}
