//! The interface-level core: identity, peers, cryptokey routing, session indices and the
//! cookie checker, behind `&self` methods so many worker threads can drive one interface.
//!
//! Locking, coarsest first: the peer map, one peer, the index table, the rng. Nothing
//! takes them in another order. The data path takes only read locks on shared tables plus
//! the one peer's mutex, so peers never contend with each other; handshakes and timers
//! (which do the X25519 work) run wherever the caller puts them, typically a separate
//! thread, and never hold a table lock while computing.

use crate::allowed_ips::AllowedIps;
use crate::constants::Timing;
use crate::cookie::{check_macs, CookieChecker, MacVerdict};
use crate::counters::{Counter, CounterSet, Counts, PeerCounts};
use crate::index::IndexTable;
use crate::ip;
use crate::keys::{PresharedKey, PrivateKey, PublicKey};
use crate::noise::{
    open_initiation, Handshake, HandshakeError, InitiationEphemeral, LocalStatic,
    ResponseAgreement, ResponseEphemeral,
};
use crate::peer::{Datagram, IndexRegistry, Peer, PeerCtx, PeerStats, ReceiveOutcome};
use crate::ratelimiter::RateLimiter;
use crate::send::SendBatch;
use crate::session::{Keypair, SessionError};
use crate::source::LocalSource;
use crate::time::Instant;
use crate::wire::{self, Message};
use parking_lot::{Mutex, MutexGuard, RwLock};
use rand_core::CryptoRngCore;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub const DEFAULT_MTU: usize = 1420;

pub use crate::time::Env;

pub struct PeerCell {
    public_key: PublicKey,
    state: Mutex<Peer>,
    /// The X25519 work of this peer's next initiation, done ahead outside `state`'s lock
    /// (see `with_ctx`). Taken and put back only while `state` is not held.
    spare: Mutex<Option<InitiationEphemeral>>,
}

/// A shared handle to one peer; equality is identity.
#[derive(Clone)]
pub struct PeerRef(Arc<PeerCell>);

impl PartialEq for PeerRef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for PeerRef {}

impl std::hash::Hash for PeerRef {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::ptr::hash(Arc::as_ptr(&self.0), state)
    }
}

impl std::fmt::Debug for PeerRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Peer({})", self.0.public_key)
    }
}

impl PeerRef {
    pub fn public_key(&self) -> &PublicKey {
        &self.0.public_key
    }
    /// The peer's state. Never handed out of the core: other layers go through
    /// [`Interface`] methods, so no caller holds a peer's lock across its own work.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Peer> {
        self.0.state.lock()
    }
}

#[derive(Clone)]
enum IndexEntry {
    Handshake(PeerRef),
    Keypair(PeerRef, Arc<Keypair>),
}

impl IndexEntry {
    fn peer(&self) -> &PeerRef {
        match self {
            IndexEntry::Handshake(p) | IndexEntry::Keypair(p, _) => p,
        }
    }
}

/// Index allocation on behalf of one peer; takes the table's write lock only per call, so
/// the data path can hand it around without blocking readers.
struct Registry<'a> {
    table: &'a RwLock<IndexTable<IndexEntry>>,
    peer: &'a PeerRef,
}

impl IndexRegistry for Registry<'_> {
    fn allocate(&mut self, rng: &mut dyn CryptoRngCore) -> u32 {
        self.table
            .write()
            .insert(IndexEntry::Handshake(self.peer.clone()), &mut { rng })
    }
    fn bind(&mut self, index: u32, keypair: &Arc<Keypair>) {
        // The index was allocated for this handshake and is still held while it completes,
        // so it is present; were it not, the session would simply be unreachable.
        let _ = self.table.write().replace(
            index,
            IndexEntry::Keypair(self.peer.clone(), keypair.clone()),
        );
    }
    fn release(&mut self, index: u32) {
        let mut table = self.table.write();
        // Only release what is ours: a stale index may already name another peer.
        if table.get(index).is_some_and(|e| e.peer() == self.peer) {
            table.remove(index);
        }
    }
}

/// Why an incoming datagram produced nothing for the TUN. Counted, never logged one by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RxError {
    #[error("malformed message")]
    Malformed,
    #[error("unknown receiver index")]
    UnknownIndex,
    #[error("expired or replaced session")]
    StaleSession,
    #[error("authentication failed")]
    Decrypt,
    #[error("replayed or too old counter")]
    Replayed,
    #[error("inner packet is not IP or has an inconsistent length")]
    BadInnerPacket,
    #[error("inner source address is not allowed for this peer")]
    SourceNotAllowed,
}

impl RxError {
    /// The counter this drop goes to.
    pub fn counter(self) -> Counter {
        match self {
            RxError::Malformed => Counter::DropBadMessage,
            RxError::UnknownIndex => Counter::DropUnknownIndex,
            RxError::StaleSession => Counter::DropStaleSession,
            RxError::Decrypt => Counter::DropDecrypt,
            RxError::Replayed => Counter::DropReplayedCounter,
            RxError::BadInnerPacket => Counter::DropMalformedInner,
            RxError::SourceNotAllowed => Counter::DropSourceNotAllowed,
        }
    }

    /// The drop still wants counting by the caller: it belongs to no peer. Drops of a known
    /// peer's datagrams are counted in that peer by [`Interface::receive_transport`].
    pub fn is_device_drop(self) -> bool {
        !self.counter().is_peer()
    }
}

/// A decrypted transport message, ready for the TUN.
#[derive(Debug)]
pub struct TransportRx {
    pub peer: PeerRef,
    /// The inner packet lives at `datagram[TRANSPORT_HEADER_LEN..][..packet_len]`; zero for
    /// a keepalive and for a dropped packet.
    pub packet_len: usize,
    pub outcome: ReceiveOutcome,
    /// Why the inner packet must not reach the TUN although the datagram was authentic.
    /// The peer's endpoint, timers, key confirmation and counters were updated all the
    /// same, as the kernel and wireguard-go do, so `outcome` still wants acting on.
    pub dropped: Option<RxError>,
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
    local: RwLock<Option<Arc<LocalStatic>>>,
    cookie: Mutex<Option<CookieChecker>>,
    peers: RwLock<HashMap<PublicKey, PeerRef>>,
    routes: RwLock<AllowedIps<PeerRef>>,
    indices: RwLock<IndexTable<IndexEntry>>,
    rng: Mutex<Box<dyn CryptoRngCore + Send>>,
    limiter: RateLimiter,
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
            let mut reg = Registry {
                table: &self.indices,
                peer: &peer,
            };
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
            PeerRef(Arc::new(PeerCell {
                public_key: key,
                state: Mutex::new(state),
                spare: Mutex::new(None),
            }))
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
        let mut reg = Registry {
            table: &self.indices,
            peer: &peer,
        };
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
    fn with_ctx<T>(
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
            let mut reg = Registry {
                table: &self.indices,
                peer,
            };
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
        if unused.is_some() {
            *peer.0.spare.lock() = unused;
        }
        Some(out)
    }

    /// The peer's prepared initiation key agreement, made now if there is none (two
    /// X25519 operations, with no lock held). `None` only for an unusable peer key.
    fn spare_ephemeral(&self, peer: &PeerRef) -> Option<InitiationEphemeral> {
        if let Some(spare) = peer.0.spare.lock().take() {
            return Some(spare);
        }
        let private = PrivateKey::generate(&mut &mut **self.rng.lock());
        InitiationEphemeral::new(private, peer.public_key()).ok()
    }

    // ------------------------------------------------------------ data path

    /// The peer an outgoing packet is routed to, by its destination address.
    pub fn route(&self, packet: &[u8]) -> Option<PeerRef> {
        let dst = ip::destination(packet)?;
        self.routes.read().lookup(dst).cloned()
    }

    /// Starts a batch of packets from the TUN through the send path (see [`crate::send`]).
    pub fn send_batch(&self, env: Env) -> SendBatch<'_> {
        SendBatch::new(self, env)
    }

    /// One packet through the send path, for callers without a device: the datagrams to
    /// send now, including a handshake when the packet had to wait for one.
    pub fn encapsulate(&self, packet: &[u8], env: Env) -> Vec<Datagram> {
        let mut batch = self.send_batch(env);
        let planned = batch.plan(packet);
        let actions = batch.finish();
        let mut out = Vec::new();
        if let crate::send::Planned::Send { dst, src, sealing } = planned {
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

    pub(crate) fn send_context(
        &self,
        peer: &PeerRef,
        now: Instant,
    ) -> Option<(Arc<Keypair>, SocketAddr, Option<LocalSource>)> {
        let p = peer.lock();
        let (keypair, dst) = p.send_context(now)?;
        Some((keypair, dst, p.source()))
    }

    pub(crate) fn stage(&self, peer: &PeerRef, packet: &[u8]) {
        peer.lock().stage(packet);
    }

    pub(crate) fn after_transport_sent(
        &self,
        peer: &PeerRef,
        keypair: &Keypair,
        now: Instant,
        bytes: u64,
        packets: u64,
    ) -> bool {
        peer.lock()
            .after_transport_sent(keypair, now, bytes, packets, 0)
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
        match self.indices.read().get(index)? {
            IndexEntry::Keypair(peer, kp) => Some((peer.clone(), kp.clone())),
            IndexEntry::Handshake(_) => None,
        }
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
        let index = match wire::parse(datagram) {
            Ok(Message::Transport(t)) => t.receiver_index(),
            _ => return Err(RxError::Malformed),
        };
        let (peer, keypair) = self.keypair_for_index(index).ok_or(RxError::UnknownIndex)?;
        {
            let mut p = peer.lock();
            if !p.accepts_keypair(&keypair, env.now) {
                p.count(Counter::DropStaleSession);
                return Err(RxError::StaleSession);
            }
        }
        let wire_len = datagram.len() as u64;
        let padded_len = match keypair.open(datagram) {
            Ok(inner) => inner.len(),
            Err(e) => {
                let error = match e {
                    SessionError::Replay => RxError::Replayed,
                    _ => RxError::Decrypt,
                };
                peer.lock().count(error.counter());
                return Err(error);
            }
        };
        let inner = datagram
            .get(wire::TRANSPORT_HEADER_LEN..wire::TRANSPORT_HEADER_LEN + padded_len)
            .ok_or(RxError::Malformed)?;
        let carried_data = padded_len > 0;
        let (packet_len, dropped) = if carried_data {
            match self.inner_packet_len(inner, &peer) {
                Ok(len) => (len, None),
                Err(e) => (0, Some(e)),
            }
        } else {
            (0, None)
        };
        let mut reg = Registry {
            table: &self.indices,
            peer: &peer,
        };
        let mut p = peer.lock();
        let outcome =
            p.after_transport_received(&keypair, src, env, wire_len, carried_data, &mut reg);
        p.set_source(local);
        if let Some(e) = dropped {
            p.count(e.counter());
        }
        drop(p);
        Ok(TransportRx {
            peer,
            packet_len,
            outcome,
            dropped,
        })
    }

    /// The length of a decrypted inner packet that may go to the TUN.
    fn inner_packet_len(&self, inner: &[u8], peer: &PeerRef) -> Result<usize, RxError> {
        let len = ip::claimed_len(inner).ok_or(RxError::BadInnerPacket)?;
        let source = ip::source(inner).ok_or(RxError::BadInnerPacket)?;
        if self.routes.read().lookup(source) != Some(peer) {
            return Err(RxError::SourceNotAllowed);
        }
        Ok(len)
    }

    // ------------------------------------------------------------ handshake path

    /// Handles an initiation, response or cookie reply. `under_load` comes from the caller's
    /// handshake queue depth; under load, messages without a valid mac2 get a cookie reply
    /// instead of any expensive work, and each source is rate limited.
    pub fn handle_handshake(
        &self,
        datagram: &[u8],
        src: SocketAddr,
        under_load: bool,
        env: Env,
    ) -> Vec<Datagram> {
        self.handle_handshake_at(datagram, src, None, under_load, env)
    }

    /// [`Self::handle_handshake`] for a datagram that arrived at our address `local`: the
    /// answer leaves from it, and an authentic initiation or response makes it the address
    /// replies to that peer leave from.
    pub fn handle_handshake_at(
        &self,
        datagram: &[u8],
        src: SocketAddr,
        local: Option<LocalSource>,
        under_load: bool,
        env: Env,
    ) -> Vec<Datagram> {
        match self.try_handshake(datagram, src, local, under_load, env) {
            Ok(out) => out,
            Err(Refused(counter)) => {
                if !counter.is_peer() {
                    self.counters.add(counter, 1);
                }
                Vec::new()
            }
        }
    }

    fn try_handshake(
        &self,
        datagram: &[u8],
        src: SocketAddr,
        at: Option<LocalSource>,
        under_load: bool,
        env: Env,
    ) -> Result<Vec<Datagram>, Refused> {
        use Counter::*;
        let message = wire::parse(datagram).map_err(|_| Refused(DropBadMessage))?;
        let sender_index = match &message {
            Message::Initiation(m) => m.sender_index(),
            Message::Response(m) => m.sender_index(),
            Message::CookieReply(reply) => {
                let entry = self
                    .indices
                    .read()
                    .get(reply.receiver_index())
                    .cloned()
                    .ok_or(Refused(DropUnexpectedHandshake))?;
                entry
                    .peer()
                    .lock()
                    .consume_cookie_reply(reply, env.now)
                    .map_err(Refused::handshake)?;
                return Ok(Vec::new());
            }
            Message::Transport(_) => return Err(Refused(DropBadMessage)),
        };
        {
            let mut cookie = self.cookie.lock();
            let checker = cookie.as_mut().ok_or(Refused(DropNoPrivateKey))?;
            match check_macs(checker, datagram, src, under_load, env.now) {
                MacVerdict::Reject => return Err(Refused(DropInvalidMac1)),
                MacVerdict::SendCookie => {
                    let mut guard = self.rng.lock();
                    let mut rng: &mut dyn CryptoRngCore = &mut **guard;
                    let reply =
                        checker.create_reply(datagram, sender_index, src, env.now, &mut rng);
                    // The message itself is dropped; the reply is what it gets instead.
                    self.counters.add(CookieReplySent, 1);
                    self.counters.add(DropCookieRequired, 1);
                    return Ok(vec![Datagram {
                        dst: src,
                        src: at,
                        data: reply.to_vec(),
                    }]);
                }
                MacVerdict::Accept => {}
            }
        }
        if under_load && !self.limiter.allow(src.ip(), env.now) {
            return Err(Refused(DropRateLimited));
        }
        let local = self.local.read().clone().ok_or(Refused(DropNoPrivateKey))?;
        match message {
            // The X25519 work of both messages runs between two short holds of the
            // peer's lock: the first checks that it is worth doing, the second (which
            // checks everything again) installs the result.
            Message::Initiation(msg) => {
                let opened = open_initiation(&local, &msg).map_err(Refused::handshake)?;
                let peer = self
                    .peer(opened.remote_static())
                    .ok_or(Refused(DropUnknownPeer))?;
                let verdict = peer.lock().would_accept(&opened, env.now);
                verdict.map_err(|e| Refused::of_peer(&peer, e))?;
                let private = PrivateKey::generate(&mut &mut **self.rng.lock());
                let prepared =
                    ResponseEphemeral::new(private, &opened).map_err(Refused::handshake)?;
                let answered = self
                    .with_ctx(&peer, env, |p, ctx| {
                        p.respond(opened, prepared, src, at, ctx)
                    })
                    .ok_or(Refused(DropNoPrivateKey))?;
                answered
                    .map(|d| vec![d])
                    .map_err(|e| Refused::of_peer(&peer, e))
            }
            Message::Response(msg) => {
                let entry = self.indices.read().get(msg.receiver_index()).cloned();
                let Some(IndexEntry::Handshake(peer)) = entry else {
                    return Err(Refused(DropUnexpectedHandshake));
                };
                let ephemeral = peer
                    .lock()
                    .pending_ephemeral(msg.receiver_index())
                    .ok_or(Refused(DropUnexpectedHandshake))?;
                let agreement = ResponseAgreement::compute(&local, ephemeral, &msg)
                    .map_err(Refused::handshake)?;
                self.with_ctx(&peer, env, |p, ctx| {
                    p.consume_response(&msg, agreement, src, at, ctx)
                })
                .ok_or(Refused(DropNoPrivateKey))?
                .map_err(Refused::handshake)
            }
            Message::CookieReply(_) | Message::Transport(_) => Err(Refused(DropBadMessage)),
        }
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

/// Why a handshake message was dropped: the counter it goes to. A peer counter has been
/// counted in its peer already.
struct Refused(Counter);

impl Refused {
    /// A failed handshake step that belongs to no peer's counters.
    fn handshake(e: HandshakeError) -> Refused {
        Refused(match e {
            HandshakeError::UnexpectedResponse
            | HandshakeError::UnexpectedCookie
            | HandshakeError::StalePrecomputation
            | HandshakeError::WrongPeer
            | HandshakeError::Replay
            | HandshakeError::Flood => Counter::DropUnexpectedHandshake,
            HandshakeError::InvalidPeerKey
            | HandshakeError::InvalidEphemeral
            | HandshakeError::Decrypt => Counter::DropHandshakeDecrypt,
        })
    }

    /// An initiation from a known peer refused for its freshness: counted in that peer.
    fn of_peer(peer: &PeerRef, e: HandshakeError) -> Refused {
        let counter = match e {
            HandshakeError::Replay => Counter::DropReplayedTimestamp,
            HandshakeError::Flood => Counter::DropInitiationFlood,
            other => return Refused::handshake(other),
        };
        peer.lock().count(counter);
        Refused(counter)
    }
}

#[cfg(test)]
#[path = "interface_tests.rs"]
mod tests;
