//! The interface-level core: identity, peers, cryptokey routing, session indices and the
//! cookie checker, behind `&self` methods so many worker threads can drive one interface.
//!
//! Locking, coarsest first: the peer map, one peer, the index table, the rng. Nothing
//! takes them in another order. The data path takes only read locks on shared tables plus
//! the one peer's mutex, so peers never contend with each other; handshakes and timers
//! (which do the X25519 work) run wherever the caller puts them, typically a separate
//! thread, and never hold a table lock while computing.
//!
//! This file holds the type, its construction and configuration, and the entry points of
//! its three paths, each in a file of its own as in the kernel's send.c, receive.c and
//! noise.c: `send.rs` and `receive.rs` are handed the tables they read and never see the
//! interface; `handshake.rs`, which needs most of it, adds its methods to [`Interface`].

use crate::allowed_ips::AllowedIps;
use crate::constants::Timing;
use crate::cookie::CookieChecker;
use crate::counters::{CounterSet, Counts, PeerCounts};
use crate::index::IndexTable;
use crate::keys::{PresharedKey, PrivateKey, PublicKey};
use crate::noise::{Handshake, InitiationEphemeral, LocalStatic};
use crate::peer::{Datagram, Peer, PeerCtx, PeerStats};
use crate::ratelimiter::RateLimiter;
use crate::receive;
use crate::registry::{IndexEntry, Registry};
use crate::send::{self, Planned, SendBatch};
use crate::session::Keypair;
use crate::source::LocalSource;
use crate::time::Instant;
use crate::wire;
use parking_lot::{Mutex, RwLock};
use rand_core::CryptoRngCore;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub const DEFAULT_MTU: usize = 1420;

pub use crate::peer_ref::PeerRef;
pub use crate::receive::{RxError, TransportRx};
pub use crate::time::Env;

/// A peer's endpoint and our address its datagrams leave from, for checking them against
/// the routes ([`Interface::sources`]).
#[derive(Clone)]
pub struct SourceState {
    pub peer: PeerRef,
    pub endpoint: SocketAddr,
    /// `None`: the kernel picks the source.
    pub source: Option<LocalSource>,
    /// A source refused for this endpoint, which the peer does not learn again.
    pub refused: Option<LocalSource>,
}

/// What `get` reports about one peer.
#[derive(Debug, Clone)]
pub struct PeerSnapshot {
    pub public_key: PublicKey,
    pub preshared_key: PresharedKey,
    pub endpoint: Option<SocketAddr>,
    pub persistent_keepalive: u16,
    pub stats: PeerStats,
    pub allowed_ips: Vec<(IpAddr, u8)>,
}

pub struct Interface {
    // The crate's fields are the handshake path's, which `handshake.rs` implements.
    pub(crate) local: RwLock<Option<Arc<LocalStatic>>>,
    pub(crate) cookie: Mutex<Option<CookieChecker>>,
    peers: RwLock<HashMap<PublicKey, PeerRef>>,
    routes: RwLock<AllowedIps<PeerRef>>,
    pub(crate) indices: RwLock<IndexTable<IndexEntry>>,
    pub(crate) rng: Mutex<Box<dyn CryptoRngCore + Send>>,
    pub(crate) limiter: RateLimiter,
    mtu: AtomicUsize,
    timing: RwLock<Timing>,
    /// Device counters of the handshake path (see [`crate::counters`]): the thread that
    /// handles handshakes is the one that writes them.
    pub counters: CounterSet,
    /// What removed peers had counted, so device totals never go down.
    retired: Mutex<PeerCounts>,
}

impl Interface {
    /// `rng` supplies every random value the protocol needs (keys, indices, nonces, jitter).
    pub fn new(rng: Box<dyn CryptoRngCore + Send>) -> Self {
        Interface {
            local: RwLock::new(None),
            cookie: Mutex::new(None),
            peers: RwLock::new(HashMap::new()),
            routes: RwLock::new(AllowedIps::new()),
            indices: RwLock::new(IndexTable::new()),
            rng: Mutex::new(rng),
            limiter: RateLimiter::new(),
            mtu: AtomicUsize::new(DEFAULT_MTU),
            timing: RwLock::new(Timing::default()),
            counters: CounterSet::default(),
            retired: Mutex::new(PeerCounts::default()),
        }
    }

    // ------------------------------------------------------------ configuration

    pub fn private_key(&self) -> Option<PrivateKey> {
        self.local.read().as_ref().map(|l| l.private_key().clone())
    }

    pub fn public_key(&self) -> Option<PublicKey> {
        self.local.read().as_ref().map(|l| *l.public_key())
    }

    /// Sets or clears the private key. Sessions of the old identity end; a peer whose
    /// public key equals our new one is removed (a peer cannot be ourselves).
    pub fn set_private_key(&self, key: Option<PrivateKey>) {
        if self.private_key() == key {
            return;
        }
        let local = key.map(|k| Arc::new(LocalStatic::new(k)));
        if let Some(l) = &local {
            self.remove_peer(l.public_key());
        }
        *self.cookie.lock() = local.as_deref().map(CookieChecker::new);
        *self.local.write() = local.clone();
        for peer in self.peer_list() {
            let mut reg = Registry::new(&self.indices, &peer);
            // The static-static X25519 happens here, before the peer's lock is taken.
            let handshake = local
                .as_deref()
                .map(|l| Handshake::new(l, *peer.public_key(), PresharedKey::ZERO));
            peer.lock().set_local(handshake, &mut reg);
        }
    }

    pub fn set_mtu(&self, mtu: usize) {
        self.mtu.store(mtu, Ordering::Relaxed);
        for peer in self.peer_list() {
            peer.lock().set_mtu(mtu);
        }
    }

    /// Replaces the protocol's limits for every peer, present and future (tests only:
    /// production keeps the protocol's values).
    pub fn set_timing(&self, timing: Timing) {
        *self.timing.write() = timing;
        for peer in self.peer_list() {
            peer.lock().set_timing(timing);
        }
    }

    pub fn mtu(&self) -> usize {
        self.mtu.load(Ordering::Relaxed)
    }

    pub fn peer(&self, key: &PublicKey) -> Option<PeerRef> {
        self.peers.read().get(key).cloned()
    }

    /// Every peer, in no particular order.
    pub fn peer_list(&self) -> Vec<PeerRef> {
        self.peers.read().values().cloned().collect()
    }

    pub fn peer_count(&self) -> usize {
        self.peers.read().len()
    }

    /// Returns the peer with this key, creating it if needed; `None` for our own key.
    pub fn add_peer(&self, key: PublicKey) -> Option<PeerRef> {
        let local = self.local.read().clone();
        if local.as_ref().is_some_and(|l| *l.public_key() == key) {
            return None;
        }
        let mut peers = self.peers.write();
        let timing = *self.timing.read();
        let peer = peers.entry(key).or_insert_with(|| {
            let mut state = Peer::new(local.as_deref(), key, self.mtu());
            state.set_timing(timing);
            PeerRef::new(key, state)
        });
        Some(peer.clone())
    }

    pub fn remove_peer(&self, key: &PublicKey) -> bool {
        let peer = {
            let mut peers = self.peers.write();
            let Some(peer) = peers.remove(key) else {
                return false;
            };
            // Its counts move to the retired sum while the map is held, as a reader of
            // the totals holds it (see `counts_with`): every reading sees them exactly
            // once, so device totals never dip.
            let counts = peer.lock().stats().counts;
            self.retired.lock().merge(&counts);
            peer
        };
        self.routes.write().remove_value(&peer);
        let mut reg = Registry::new(&self.indices, &peer);
        peer.lock().shutdown(&mut reg);
        true
    }

    pub fn remove_all_peers(&self) {
        let keys: Vec<PublicKey> = self.peers.read().keys().copied().collect();
        for key in keys {
            self.remove_peer(&key);
        }
    }

    pub fn add_allowed_ip(&self, peer: &PeerRef, addr: IpAddr, cidr: u8) -> bool {
        self.routes.write().insert(addr, cidr, peer.clone()).is_ok()
    }

    pub fn remove_allowed_ip(&self, peer: &PeerRef, addr: IpAddr, cidr: u8) -> bool {
        self.routes
            .write()
            .remove_prefix_for(peer, addr, cidr)
            .unwrap_or(false)
    }

    pub fn clear_allowed_ips(&self, peer: &PeerRef) {
        self.routes.write().remove_value(peer);
    }

    pub fn allowed_ips(&self, peer: &PeerRef) -> Vec<(IpAddr, u8)> {
        self.routes.read().iter_value(peer).collect()
    }

    pub fn set_persistent_keepalive(&self, peer: &PeerRef, secs: u16, env: Env) -> Vec<Datagram> {
        self.with_ctx(peer, env, |p, ctx| p.set_persistent_keepalive(secs, ctx))
            .unwrap_or_else(|| {
                // Without a private key nothing can be sent, but the setting still holds.
                peer.lock().set_persistent_keepalive_interval(secs, env.now);
                Vec::new()
            })
    }

    pub fn set_endpoint(&self, peer: &PeerRef, endpoint: SocketAddr) {
        peer.lock().set_endpoint(endpoint);
    }

    pub fn set_preshared_key(&self, peer: &PeerRef, psk: PresharedKey) {
        peer.lock().set_preshared_key(psk);
    }

    /// Our address `peer` last reached us at, which its datagrams leave from.
    pub fn source(&self, peer: &PeerRef) -> Option<LocalSource> {
        peer.lock().source()
    }

    /// Sending to `dst` from our address `source` failed in a way that says the address
    /// is unusable (removed, or not valid for that route): every peer at `dst` that sends
    /// from it goes back to the kernel's choice. Returns how many peers changed.
    pub fn forget_source(&self, dst: SocketAddr, source: LocalSource) -> usize {
        self.peer_list()
            .iter()
            .filter(|p| p.lock().forget_source(dst, source))
            .count()
    }

    /// Every peer with an endpoint: what the device checks against its routes when they
    /// change (see [`Peer::refuse_source`](crate::peer::Peer::refuse_source)).
    pub fn sources(&self) -> Vec<SourceState> {
        self.peer_list()
            .into_iter()
            .filter_map(|peer| {
                let (endpoint, source, refused) = {
                    let p = peer.lock();
                    (p.endpoint()?, p.source(), p.refused_source())
                };
                Some(SourceState {
                    peer,
                    endpoint,
                    source,
                    refused,
                })
            })
            .collect()
    }

    /// Makes `local` the address `peer`'s datagrams leave from, as an authenticated packet
    /// arriving there does; whether it is new (see [`ReceiveOutcome::new_source`]).
    ///
    /// [`ReceiveOutcome::new_source`]: crate::peer::ReceiveOutcome::new_source
    pub fn set_source(&self, peer: &PeerRef, local: Option<LocalSource>) -> bool {
        peer.lock().set_source(local)
    }

    /// The route to `dst` leaves by another interface than the one `source` was learned on:
    /// `peer` stops sending from it, and does not learn it again while its endpoint is
    /// `dst`, until [`Self::allow_source`]. Returns whether the peer was sending from it.
    pub fn refuse_source(&self, peer: &PeerRef, dst: SocketAddr, source: LocalSource) -> bool {
        peer.lock().refuse_source(dst, source)
    }

    /// The routes changed and `source`, refused for `peer`, fits again.
    pub fn allow_source(&self, peer: &PeerRef, source: LocalSource) {
        peer.lock().allow_source(source);
    }

    /// True when `peer` has a session usable for sending now.
    pub fn has_session(&self, peer: &PeerRef, now: Instant) -> bool {
        peer.lock().has_session(now)
    }

    pub fn snapshot(&self, peer: &PeerRef) -> PeerSnapshot {
        let p = peer.lock();
        PeerSnapshot {
            public_key: *peer.public_key(),
            preshared_key: p.preshared_key().clone(),
            endpoint: p.endpoint(),
            persistent_keepalive: p.persistent_keepalive(),
            stats: p.stats(),
            allowed_ips: self.allowed_ips(peer),
        }
    }

    /// Every counter of the core: the handshake path's, every peer's and the removed
    /// peers'. The device adds its threads' own sets.
    pub fn counts(&self) -> Counts {
        self.counts_with(|peer| (peer.lock().stats().counts, ())).0
    }

    /// Every peer's snapshot, and the core's counters summed from that same reading (one
    /// pass over the peers, and the totals agree with the peers shown).
    pub fn snapshots_and_counts(&self) -> (Vec<PeerSnapshot>, Counts) {
        let (counts, snapshots) = self.counts_with(|peer| {
            let snapshot = self.snapshot(peer);
            (snapshot.stats.counts, snapshot)
        });
        (snapshots, counts)
    }

    /// Sums the counters while `read` visits every peer, with the peer map held
    /// throughout: a peer removed meanwhile has moved its counts to the retired sum under
    /// the map's write lock, so each is counted once, in its peer or in that sum.
    fn counts_with<T>(
        &self,
        mut read: impl FnMut(&PeerRef) -> (PeerCounts, T),
    ) -> (Counts, Vec<T>) {
        let peers = self.peers.read();
        let mut counts = Counts::default();
        let mut out = Vec::with_capacity(peers.len());
        for peer in peers.values() {
            let (peer_counts, t) = read(peer);
            counts.add_peer(&peer_counts);
            out.push(t);
        }
        counts.add_peer(&self.retired.lock());
        counts.add_set(&self.counters);
        (counts, out)
    }

    // ------------------------------------------------------------ plumbing

    /// Runs `f` with a full peer context; `None` when there is no private key.
    ///
    /// No X25519 runs under the peer's lock, which the data path needs for every batch:
    /// an initiation `f` may start uses key agreement prepared here beforehand.
    pub(crate) fn with_ctx<T>(
        &self,
        peer: &PeerRef,
        env: Env,
        f: impl FnOnce(&mut Peer, &mut PeerCtx) -> T,
    ) -> Option<T> {
        let local = self.local.read().clone()?;
        let ephemeral = self.spare_ephemeral(peer);
        let (out, unused) = {
            let mut p = peer.lock();
            let mut rng = self.rng.lock();
            let mut reg = Registry::new(&self.indices, peer);
            let mut ctx = PeerCtx {
                now: env.now,
                wall: env.wall,
                local: &local,
                rng: &mut **rng,
                indices: &mut reg,
                ephemeral,
            };
            let out = f(&mut p, &mut ctx);
            (out, ctx.ephemeral.take())
        };
        if let Some(spare) = unused {
            peer.keep_spare(spare);
        }
        Some(out)
    }

    /// The peer's prepared initiation key agreement, made now if there is none (two
    /// X25519 operations, with no lock held). `None` only for an unusable peer key.
    fn spare_ephemeral(&self, peer: &PeerRef) -> Option<InitiationEphemeral> {
        if let Some(spare) = peer.take_spare() {
            return Some(spare);
        }
        let private = PrivateKey::generate(&mut &mut **self.rng.lock());
        InitiationEphemeral::new(private, peer.public_key()).ok()
    }

    // ------------------------------------------------------------ data path

    /// The peer an outgoing packet is routed to, by its destination address.
    pub fn route(&self, packet: &[u8]) -> Option<PeerRef> {
        send::route(&self.routes, packet)
    }

    /// Starts a batch of packets from the TUN through the send path (see [`crate::send`]).
    pub fn send_batch(&self, env: Env) -> SendBatch<'_> {
        SendBatch::new(&self.routes, self.mtu(), env)
    }

    /// One packet through the send path, for callers without a device: the datagrams to
    /// send now, including a handshake when the packet had to wait for one.
    pub fn encapsulate(&self, packet: &[u8], env: Env) -> Vec<Datagram> {
        let mut batch = self.send_batch(env);
        let planned = batch.plan(packet);
        let actions = batch.finish();
        let mut out = Vec::new();
        if let Planned::Send { dst, src, sealing } = planned {
            let mut buf = vec![0u8; sealing.datagram_len()];
            buf[wire::TRANSPORT_HEADER_LEN..][..packet.len()].copy_from_slice(packet);
            if let Ok(data) = sealing.seal(&mut buf) {
                out.push(Datagram {
                    dst,
                    src,
                    data: data.to_vec(),
                });
            }
        }
        for peer in &actions.send_staged {
            out.extend(self.send_staged(peer, env));
        }
        for peer in &actions.initiate {
            out.extend(self.initiate(peer, env));
        }
        out
    }

    /// Sends the peer's staged packets, or starts a handshake if there is no session.
    pub fn send_staged(&self, peer: &PeerRef, env: Env) -> Vec<Datagram> {
        self.with_ctx(peer, env, |p, ctx| p.send_staged(ctx))
            .unwrap_or_default()
    }

    /// Starts a handshake with `peer` now (subject to the REKEY_TIMEOUT rate limit).
    pub fn initiate(&self, peer: &PeerRef, env: Env) -> Vec<Datagram> {
        self.with_ctx(peer, env, |p, ctx| p.initiate(ctx, false))
            .flatten()
            .into_iter()
            .collect()
    }

    /// The keypair an incoming transport message names, with its peer.
    pub fn keypair_for_index(&self, index: u32) -> Option<(PeerRef, Arc<Keypair>)> {
        self.indices.read().get(index)?.keypair()
    }

    /// Decrypts a transport message in place and does every check before its inner packet
    /// may reach the TUN: session freshness, AEAD, replay, and that the inner source address
    /// is one the sending peer is allowed to use. Once the datagram is authentic it counts
    /// for the peer whatever its inner packet is: a bad or disallowed inner packet comes
    /// back in [`TransportRx::dropped`], not as an error.
    pub fn receive_transport(
        &self,
        datagram: &mut [u8],
        src: SocketAddr,
        env: Env,
    ) -> Result<TransportRx, RxError> {
        self.receive_transport_at(datagram, src, None, env)
    }

    /// [`Self::receive_transport`] for a datagram that arrived at our address `local`:
    /// an authentic one makes `local` the address replies to its peer leave from.
    pub fn receive_transport_at(
        &self,
        datagram: &mut [u8],
        src: SocketAddr,
        local: Option<LocalSource>,
        env: Env,
    ) -> Result<TransportRx, RxError> {
        receive::transport(&self.indices, &self.routes, datagram, src, local, env)
    }

    // ------------------------------------------------------------ timers

    /// Runs every peer's due timers.
    pub fn tick(&self, env: Env) -> Vec<Datagram> {
        let mut out = Vec::new();
        for peer in self.peer_list() {
            let due = peer.lock().next_deadline().is_some_and(|d| d <= env.now);
            if due {
                if let Some(d) = self.with_ctx(&peer, env, |p, ctx| p.tick(ctx)) {
                    out.extend(d);
                }
            }
        }
        out
    }

    /// Session indices in use (handshakes and keypairs): flat when no state leaks.
    pub fn index_count(&self) -> usize {
        self.indices.read().len()
    }

    /// The earliest timer deadline of any peer.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.peer_list()
            .iter()
            .filter_map(|p| p.lock().next_deadline())
            .min()
    }
}

#[cfg(test)]
mod tests {
    //! No X25519 under a peer's lock: the data path takes that lock for every batch, so a
    //! handshake's key agreement there would stall the peer's traffic. Every X25519 operation
    //! of these handshakes is audited (a test hook, `x25519_audit`), in one thread, so a peer lock
    //! found held is held by the operation's own caller.

    use super::*;
    use crate::time::WallTime;
    use crate::x25519_audit;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use std::cell::Cell;
    use std::net::{Ipv4Addr, SocketAddrV4};
    use std::rc::Rc;
    use std::time::Duration;

    struct Side {
        iface: Interface,
        addr: SocketAddr,
        key: PrivateKey,
    }

    fn side(seed: u64, port: u16) -> Side {
        let mut rng = StdRng::seed_from_u64(seed);
        let key = PrivateKey::generate(&mut rng);
        let iface = Interface::new(Box::new(StdRng::seed_from_u64(seed + 100)));
        iface.set_private_key(Some(key.clone()));
        Side {
            iface,
            addr: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)),
            key,
        }
    }

    fn env(secs: u64) -> Env {
        Env {
            now: Instant::ZERO + Duration::from_secs(secs),
            wall: WallTime::new(1_700_000_000 + secs, 0),
        }
    }

    /// A minimal IPv4 packet (tunnel traffic): a header and 8 bytes, from the shared builder.
    fn packet(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
        ferrotun_testkit::packet::ipv4(src, dst, 17, &[0; 8])
    }

    /// Counts this thread's X25519 operations, and those run while one of `peers`' locks
    /// was held, until dropped.
    struct Audit {
        total: Rc<Cell<usize>>,
        under_lock: Rc<Cell<usize>>,
    }

    impl Audit {
        fn start(peers: Vec<PeerRef>) -> Audit {
            let (total, under_lock) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
            let (t, u) = (total.clone(), under_lock.clone());
            x25519_audit::set(move || {
                t.set(t.get() + 1);
                if peers.iter().any(|p| p.is_locked()) {
                    u.set(u.get() + 1);
                }
            });
            Audit { total, under_lock }
        }
    }

    impl Drop for Audit {
        fn drop(&mut self) {
            x25519_audit::clear();
        }
    }

    #[test]
    fn no_x25519_runs_under_a_peer_lock() {
        let (a, b) = (side(1, 10_001), side(2, 10_002));
        let pa = a.iface.add_peer(b.key.public_key()).unwrap();
        let pb = b.iface.add_peer(a.key.public_key()).unwrap();
        a.iface
            .add_allowed_ip(&pa, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 32);
        b.iface
            .add_allowed_ip(&pb, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 32);
        pa.lock().set_endpoint(b.addr);
        let audit = Audit::start(vec![pa.clone(), pb.clone()]);

        // A full handshake started by a packet, and the packet's delivery.
        let out = a
            .iface
            .encapsulate(&packet([10, 0, 0, 1], [10, 0, 0, 2]), env(1));
        assert_eq!(out.len(), 1, "an initiation");
        let initiation = out[0].data.clone();
        let out = b.iface.handle_handshake(&initiation, a.addr, false, env(1));
        assert_eq!(out.len(), 1, "a response");
        let out = a
            .iface
            .handle_handshake(&out[0].data, b.addr, false, env(1));
        assert_eq!(out.len(), 1, "the staged packet");
        let mut data = out[0].data.clone();
        let rx = b
            .iface
            .receive_transport(&mut data, a.addr, env(1))
            .unwrap();
        assert!(rx.outcome.confirmed_session && rx.packet_len > 0);
        assert!(
            audit.total.get() >= 8,
            "{} X25519 operations",
            audit.total.get()
        );

        // A replayed initiation costs the one X25519 that identifies its sender, no more.
        let before = audit.total.get();
        assert!(b
            .iface
            .handle_handshake(&initiation, a.addr, false, env(2))
            .is_empty());
        assert_eq!(audit.total.get(), before + 1);

        // Initiations from the timers: a rekey by age, then its retransmission.
        let rekey = env(125);
        let out = a
            .iface
            .encapsulate(&packet([10, 0, 0, 1], [10, 0, 0, 2]), rekey);
        assert!(
            out.iter().any(|d| d.data[0] == 1),
            "an old session starts a new handshake"
        );
        let before = audit.total.get();
        let retry = a.iface.tick(env(131));
        assert!(retry.iter().any(|d| d.data[0] == 1), "a retransmission");
        assert!(audit.total.get() > before);

        // A new private key: every peer's static-static agreement is computed again.
        let before = audit.total.get();
        a.iface
            .set_private_key(Some(PrivateKey::generate(&mut StdRng::seed_from_u64(7))));
        assert!(audit.total.get() > before);

        assert_eq!(
            audit.under_lock.get(),
            0,
            "{} of {} X25519 operations ran under a peer's lock",
            audit.under_lock.get(),
            audit.total.get()
        );
    }
}
