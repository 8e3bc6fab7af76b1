//! One peer's protocol state: its handshake, its three keypair slots, its timers and the
//! packets waiting for a session.
//!
//! A `Peer` is a plain state machine with `&mut self` methods; the caller decides how it is
//! shared (the [`Interface`](crate::interface::Interface) keeps each peer behind its own
//! mutex, so peers never contend with each other). It does no I/O: every method returns the
//! datagrams to send, and time, randomness and index allocation are handed in.

use crate::constants::*;
use crate::counters::{Counter, PeerCounts};
use crate::keys::PrivateKey;
use crate::keys::{PresharedKey, PublicKey};
use crate::noise::{
    Handshake, HandshakeError, InitiationEphemeral, LocalStatic, OpenedInitiation,
    ResponseAgreement, ResponseEphemeral,
};
use crate::sealing::Sealing;
use crate::session::{Keypair, SessionKeys};
use crate::source::LocalSource;
use crate::time::{Env, Instant, WallTime};
use crate::timers::{TimerEvent, Timers};
use crate::wire::{self, TRANSPORT_HEADER_LEN};
use rand_core::CryptoRngCore;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// A datagram the caller should send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    pub dst: SocketAddr,
    /// Our address to send from (the one the peer last reached us at); `None` lets the
    /// kernel choose.
    pub src: Option<LocalSource>,
    pub data: Vec<u8>,
}

/// Where session indices come from and how the data path finds keypairs by index.
///
/// Indices are unique per interface, so the interface owns the table; a peer only asks
/// for fresh ones and says what they now refer to.
pub trait IndexRegistry {
    /// A fresh, random, unused index, registered as this peer's pending handshake.
    fn allocate(&mut self, rng: &mut dyn CryptoRngCore) -> u32;
    /// The index now names an established keypair (incoming transport data finds it).
    fn bind(&mut self, index: u32, keypair: &Arc<Keypair>);
    /// The index is no longer in use.
    fn release(&mut self, index: u32);
}

/// Everything a handshake-side peer operation needs from outside.
pub struct PeerCtx<'a> {
    pub now: Instant,
    pub wall: WallTime,
    pub local: &'a LocalStatic,
    pub rng: &'a mut dyn CryptoRngCore,
    pub indices: &'a mut dyn IndexRegistry,
    /// The X25519 work of the next initiation, done before the peer's lock was taken;
    /// an initiation takes it (and makes its own only if there is none).
    pub ephemeral: Option<InitiationEphemeral>,
}

/// What the data path learns after an authenticated transport packet.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReceiveOutcome {
    /// The packet confirmed a new session: staged packets can go out now.
    pub confirmed_session: bool,
    /// A handshake should be started (the caller hands it to the handshake side).
    pub wants_handshake: bool,
    /// Replies now leave from an address of ours not used for this peer before: the device
    /// checks it against its routes (see [`Peer::refuse_source`]).
    pub new_source: bool,
}

/// The keypair slots of docs/PROTOCOL.md §5: `next` waits for key confirmation, `current`
/// sends, `previous` still receives packets that were in flight during a rekey.
#[derive(Default)]
struct Keypairs {
    previous: Option<Arc<Keypair>>,
    current: Option<Arc<Keypair>>,
    next: Option<Arc<Keypair>>,
}

impl Keypairs {
    fn all(&self) -> impl Iterator<Item = &Arc<Keypair>> {
        [&self.previous, &self.current, &self.next]
            .into_iter()
            .flatten()
    }
}

/// Counters a user sees in `wg show`, and the peer's own counters by reason.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PeerStats {
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub last_handshake: Option<WallTime>,
    pub counts: PeerCounts,
}

pub struct Peer {
    public_key: PublicKey,
    preshared_key: PresharedKey,
    /// None while the interface has no private key: such a peer cannot handshake.
    handshake: Option<Handshake>,
    keypairs: Keypairs,
    endpoint: Option<SocketAddr>,
    /// Where the peer's latest authenticated packet arrived: replies leave from there.
    source: Option<LocalSource>,
    /// A source the device found unfit for the endpoint (the route to it leaves by another
    /// interface than the one the source was learned on), with that endpoint: learned
    /// again, it is not used, so packets still in flight to it cannot bring it back.
    refused: Option<(SocketAddr, LocalSource)>,
    timers: Timers,
    last_sent_handshake: Option<Instant>,
    staged: VecDeque<Vec<u8>>,
    stats: PeerStats,
    mtu: usize,
}

fn is_fresh(keypair: &Keypair, now: Instant, timing: &Timing) -> bool {
    now.saturating_duration_since(keypair.created()) < timing.reject_after_time
}

fn jitter(rng: &mut dyn CryptoRngCore) -> Duration {
    let max = REKEY_TIMEOUT_JITTER_MAX.as_millis() as u32;
    Duration::from_millis(u64::from(rng.next_u32() % max))
}

impl Peer {
    pub fn new(local: Option<&LocalStatic>, public_key: PublicKey, mtu: usize) -> Self {
        Peer {
            public_key,
            preshared_key: PresharedKey::ZERO,
            handshake: local.map(|l| Handshake::new(l, public_key, PresharedKey::ZERO)),
            keypairs: Keypairs::default(),
            endpoint: None,
            source: None,
            refused: None,
            timers: Timers::default(),
            last_sent_handshake: None,
            staged: VecDeque::new(),
            stats: PeerStats::default(),
            mtu,
        }
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }
    pub fn preshared_key(&self) -> &PresharedKey {
        &self.preshared_key
    }
    pub fn endpoint(&self) -> Option<SocketAddr> {
        self.endpoint
    }
    /// Our address to send to the endpoint from (see [`LocalSource`]).
    pub fn source(&self) -> Option<LocalSource> {
        self.source
    }
    pub fn persistent_keepalive(&self) -> u16 {
        self.timers.persistent_keepalive_interval
    }
    pub fn stats(&self) -> PeerStats {
        self.stats
    }
    pub fn staged_len(&self) -> usize {
        self.staged.len()
    }
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }
    /// True when a session is established and usable for sending now.
    pub fn has_session(&self, now: Instant) -> bool {
        self.usable_current(now).is_some()
    }

    /// The operator's endpoint: the source learned for the old one means nothing for it.
    pub fn set_endpoint(&mut self, endpoint: SocketAddr) {
        self.endpoint = Some(endpoint);
        self.source = None;
    }

    /// Our address the peer's latest authenticated packet arrived at (`None`: unknown),
    /// set with the endpoint that packet came from; replies leave from it, unless the
    /// device refused it for that endpoint ([`Self::refuse_source`]). Returns whether it
    /// is a source not in use before, which the device must check against its routes.
    pub fn set_source(&mut self, local: Option<LocalSource>) -> bool {
        let local = local.filter(|l| {
            self.refused
                .is_none_or(|(dst, refused)| Some(dst) != self.endpoint || refused != *l)
        });
        let new = local.is_some() && local != self.source;
        self.source = local;
        new
    }

    /// The route to `dst` no longer leaves by the interface `source` was learned on: our
    /// datagrams to the peer at `dst` stop leaving from it (the kernel picks the source by
    /// its routes, as the kernel's WireGuard does when the route's device changes), and the
    /// peer's packets arriving there do not bring it back until [`Self::allow_source`].
    /// Returns whether the peer was sending from it.
    pub fn refuse_source(&mut self, dst: SocketAddr, source: LocalSource) -> bool {
        if self.endpoint != Some(dst) {
            return false;
        }
        self.refused = Some((dst, source));
        if self.source != Some(source) {
            return false;
        }
        tracing::info!(peer = %self.short_key(), "the route to {dst} leaves by another interface than the one its datagrams reach {} on; letting the kernel choose", source.addr);
        self.source = None;
        true
    }

    /// The source refused for the current endpoint, if any.
    pub fn refused_source(&self) -> Option<LocalSource> {
        self.refused
            .filter(|(dst, _)| Some(*dst) == self.endpoint)
            .map(|(_, s)| s)
    }

    /// The routes changed and the refused `source` fits again: it may be learned again.
    pub fn allow_source(&mut self, source: LocalSource) {
        if self.refused.is_some_and(|(_, r)| r == source) {
            self.refused = None;
        }
    }

    /// Forgets the source to send from if it is `source` and the endpoint is still `dst`
    /// (the device could not send from it: the address is gone or unusable). Returns
    /// whether it was forgotten; the kernel then picks the source until the next
    /// authenticated packet names one again.
    pub fn forget_source(&mut self, dst: SocketAddr, source: LocalSource) -> bool {
        if self.endpoint != Some(dst) || self.source != Some(source) {
            return false;
        }
        tracing::info!(peer = %self.short_key(), "cannot send from {}, letting the kernel choose", source.addr);
        self.source = None;
        true
    }

    /// Roaming: the peer's endpoint, and our address it reached, follow its latest
    /// authenticated packet.
    fn learn_endpoint(&mut self, src: SocketAddr, local: Option<LocalSource>) {
        if self.endpoint != Some(src) {
            tracing::info!(peer = %self.short_key(), "endpoint is now {src}");
            self.endpoint = Some(src);
        }
        self.set_source(local);
    }

    /// The abbreviated key wireguard-go prints in its logs: enough to tell peers apart.
    fn short_key(&self) -> String {
        let full = self.public_key.to_base64();
        format!("{}…{}", &full[..4], &full[39..43])
    }

    pub fn set_timing(&mut self, timing: Timing) {
        self.timers.timing = timing;
    }

    pub fn set_mtu(&mut self, mtu: usize) {
        self.mtu = mtu;
    }

    pub fn set_preshared_key(&mut self, psk: PresharedKey) {
        if let Some(hs) = self.handshake.as_mut() {
            hs.set_preshared_key(psk.clone());
        }
        self.preshared_key = psk;
    }

    /// Sets the persistent keepalive. Turning it on sends a keepalive at once, as
    /// wireguard-go does, so a peer behind NAT opens its mapping immediately.
    pub fn set_persistent_keepalive(&mut self, secs: u16, ctx: &mut PeerCtx) -> Vec<Datagram> {
        let was_off = self.timers.persistent_keepalive_interval == 0;
        self.timers.set_persistent_keepalive(secs, ctx.now);
        if was_off && secs > 0 {
            self.send_keepalive(ctx)
        } else {
            Vec::new()
        }
    }

    /// Sets the interval without sending anything (used when nothing can be sent yet).
    pub fn set_persistent_keepalive_interval(&mut self, secs: u16, now: Instant) {
        self.timers.set_persistent_keepalive(secs, now);
    }

    /// The interface's private key changed (or appeared): every session and handshake of
    /// the old identity is void. `handshake` is the new identity's state for this peer,
    /// built (with its static-static X25519) before the peer's lock was taken.
    pub fn set_local(&mut self, handshake: Option<Handshake>, indices: &mut dyn IndexRegistry) {
        self.zero_key_material(indices);
        self.handshake = handshake.map(|mut hs| {
            hs.set_preshared_key(self.preshared_key.clone());
            hs
        });
    }

    /// Releases every index and erases all key material (peer removal, key change, or the
    /// zero-key timer).
    pub fn zero_key_material(&mut self, indices: &mut dyn IndexRegistry) {
        for kp in self.keypairs.all() {
            indices.release(kp.local_index());
        }
        self.keypairs = Keypairs::default();
        if let Some(hs) = self.handshake.as_mut() {
            if let Some(idx) = hs.pending_initiation_index() {
                indices.release(idx);
            }
            hs.clear();
        }
    }

    /// Called when the peer is removed: nothing of it may stay reachable.
    pub fn shutdown(&mut self, indices: &mut dyn IndexRegistry) {
        self.zero_key_material(indices);
        self.timers.stop_all();
        self.staged.clear();
    }

    // ---------------------------------------------------------------- data path

    fn usable_current(&self, now: Instant) -> Option<&Arc<Keypair>> {
        self.keypairs.current.as_ref().filter(|kp| {
            is_fresh(kp, now, &self.timers.timing)
                && kp.send_counter() < self.timers.timing.reject_after_messages
        })
    }

    /// The keypair and endpoint to encrypt with now, if there is a usable session.
    /// The caller seals outside the peer lock with `Keypair::next_send_counter` + `seal`.
    pub fn send_context(&self, now: Instant) -> Option<(Arc<Keypair>, SocketAddr)> {
        let endpoint = self.endpoint?;
        self.usable_current(now).map(|kp| (kp.clone(), endpoint))
    }

    /// Counts one event of this peer (see [`crate::counters`]).
    pub fn count(&mut self, counter: Counter) {
        self.stats.counts.add(counter, 1);
    }

    /// Queues a packet until a session exists; the oldest is dropped past the limit.
    pub fn stage(&mut self, packet: &[u8]) {
        if self.staged.len() >= MAX_STAGED_PACKETS
            && self.staged.pop_front().is_some_and(|p| !p.is_empty())
        {
            // An empty one is a keepalive waiting for a session, not a packet.
            self.count(Counter::DropStagedOverflow);
        }
        self.count(if self.endpoint.is_none() {
            Counter::StagedNoEndpoint
        } else {
            Counter::StagedNoSession
        });
        self.staged.push_back(packet.to_vec());
    }

    /// Bookkeeping after transport messages went out on `keypair`: `packets` datagrams of
    /// `wire_bytes` in all, `keepalives` of them empty. Returns true when a handshake should
    /// start to keep the key fresh.
    pub fn after_transport_sent(
        &mut self,
        keypair: &Keypair,
        now: Instant,
        wire_bytes: u64,
        packets: u64,
        keepalives: u64,
    ) -> bool {
        let carried_data = packets > keepalives;
        self.stats.tx_bytes += wire_bytes;
        self.stats.counts.add(Counter::TxPackets, packets);
        self.stats.counts.add(Counter::TxKeepalive, keepalives);
        self.timers.any_authenticated_packet_traversal(now);
        self.timers.any_authenticated_packet_sent();
        if carried_data {
            self.timers.data_sent(now);
        }
        keypair.send_counter() > self.timers.timing.rekey_after_messages
            || (keypair.is_initiator()
                && now.saturating_duration_since(keypair.created())
                    >= self.timers.timing.rekey_after_time)
    }

    /// True if `keypair` may still decrypt: it belongs to this peer and is not too old.
    pub fn accepts_keypair(&self, keypair: &Keypair, now: Instant) -> bool {
        is_fresh(keypair, now, &self.timers.timing)
            && self
                .keypairs
                .all()
                .any(|kp| std::ptr::eq(kp.as_ref(), keypair))
    }

    /// Bookkeeping after a transport message on `keypair` passed AEAD and replay checks.
    pub fn after_transport_received(
        &mut self,
        keypair: &Arc<Keypair>,
        src: SocketAddr,
        env: Env,
        wire_bytes: u64,
        carried_data: bool,
        indices: &mut dyn IndexRegistry,
    ) -> ReceiveOutcome {
        let Env { now, wall } = env;
        let mut outcome = ReceiveOutcome::default();
        self.stats.rx_bytes += wire_bytes;
        self.count(Counter::RxPackets);
        if !carried_data {
            self.count(Counter::RxKeepalive);
        }
        self.endpoint = Some(src);
        if self
            .keypairs
            .next
            .as_ref()
            .is_some_and(|n| Arc::ptr_eq(n, keypair))
        {
            // Key confirmation: the initiator used the session we derived as responder.
            if let Some(old) = self.keypairs.previous.take() {
                indices.release(old.local_index());
            }
            self.keypairs.previous = self.keypairs.current.take();
            self.keypairs.current = self.keypairs.next.take();
            self.timers.handshake_complete();
            self.stats.last_handshake = Some(wall);
            self.count(Counter::CompletedResponder);
            outcome.confirmed_session = true;
            tracing::info!(peer = %self.short_key(), "session confirmed (we responded)");
        }
        self.timers.any_authenticated_packet_received();
        self.timers.any_authenticated_packet_traversal(now);
        if carried_data {
            self.timers.data_received(now);
        }
        let is_current = self
            .keypairs
            .current
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, keypair));
        if is_current
            && keypair.is_initiator()
            && !self.timers.sent_lastminute_handshake
            && now.saturating_duration_since(keypair.created())
                >= self.timers.timing.last_minute_rekey_age()
        {
            self.timers.sent_lastminute_handshake = true;
            outcome.wants_handshake = true;
        }
        outcome
    }

    /// Seals one packet with the current session into a new datagram: the send path's
    /// own plan and seal steps, for staged packets and keepalives.
    fn seal_owned(&self, keypair: &Arc<Keypair>, packet: &[u8]) -> Option<Vec<u8>> {
        let sealing = Sealing::new(keypair, packet.len(), self.mtu)?;
        let mut buf = vec![0u8; sealing.datagram_len()];
        buf[TRANSPORT_HEADER_LEN..TRANSPORT_HEADER_LEN + packet.len()].copy_from_slice(packet);
        sealing.seal(&mut buf).ok()?;
        Some(buf)
    }

    /// Sends every staged packet if a session allows it, otherwise starts a handshake
    /// (the kernel's `wg_packet_send_staged_packets`).
    pub fn send_staged(&mut self, ctx: &mut PeerCtx) -> Vec<Datagram> {
        let Some((keypair, dst)) = self.send_context(ctx.now) else {
            return self.initiate(ctx, false).into_iter().collect();
        };
        let mut out = Vec::with_capacity(self.staged.len());
        let mut bytes = 0u64;
        let mut keepalives = 0u64;
        while let Some(packet) = self.staged.pop_front() {
            match self.seal_owned(&keypair, &packet) {
                Some(data) => {
                    bytes += data.len() as u64;
                    keepalives += u64::from(packet.is_empty());
                    out.push(Datagram {
                        dst,
                        src: self.source,
                        data,
                    });
                }
                None => {
                    // Counter space ran out mid-queue: keep the rest for the next session.
                    self.staged.push_front(packet);
                    out.extend(self.initiate(ctx, false));
                    return out;
                }
            }
        }
        let packets = out.len() as u64;
        if !out.is_empty()
            && self.after_transport_sent(&keypair, ctx.now, bytes, packets, keepalives)
        {
            out.extend(self.initiate(ctx, false));
        }
        out
    }

    /// Sends a keepalive: an empty transport message, or the staged packets if there are
    /// any (they confirm the session just as well).
    pub fn send_keepalive(&mut self, ctx: &mut PeerCtx) -> Vec<Datagram> {
        if self.staged.is_empty() {
            self.staged.push_back(Vec::new());
        }
        self.send_staged(ctx)
    }

    // ---------------------------------------------------------------- handshakes

    /// Sends a handshake initiation unless one went out less than REKEY_TIMEOUT ago.
    /// `is_retry` keeps the attempt count (timer retransmissions); anything else resets it.
    pub fn initiate(&mut self, ctx: &mut PeerCtx, is_retry: bool) -> Option<Datagram> {
        if !is_retry {
            self.timers.handshake_attempts = 0;
        }
        if self.last_sent_handshake.is_some_and(|t| {
            ctx.now.saturating_duration_since(t) < self.timers.timing.rekey_timeout
        }) {
            return None;
        }
        let renewing = self.keypairs.current.is_some();
        let hs = self.handshake.as_mut()?;
        if let Some(old) = hs.pending_initiation_index() {
            ctx.indices.release(old);
        }
        let index = ctx.indices.allocate(ctx.rng);
        let made = match ctx.ephemeral.take() {
            Some(e) => hs.create_initiation_prepared(ctx.local, index, e, ctx.now, ctx.wall),
            // Only a second initiation within one locked call gets here.
            None => hs.create_initiation(ctx.local, index, ctx.now, ctx.wall, &mut ctx.rng),
        };
        let msg = match made {
            Ok(msg) => msg,
            Err(_) => {
                ctx.indices.release(index);
                return None;
            }
        };
        self.last_sent_handshake = Some(ctx.now);
        tracing::debug!(peer = %self.short_key(), retry = is_retry, "sending handshake initiation");
        self.timers.jitter = jitter(ctx.rng);
        self.timers.any_authenticated_packet_traversal(ctx.now);
        self.timers.any_authenticated_packet_sent();
        self.timers.handshake_initiated(ctx.now);
        let dst = self.endpoint?;
        self.stats.tx_bytes += msg.len() as u64;
        self.count(Counter::InitiationSent);
        if is_retry {
            self.count(Counter::HandshakeRetry);
        } else if renewing {
            self.count(Counter::Rekey);
        }
        Some(Datagram {
            dst,
            src: self.source,
            data: msg.to_vec(),
        })
    }

    /// True if an initiation `open_initiation` attributed to this peer would be accepted
    /// now: the check to make before spending X25519 work on answering it.
    pub fn would_accept(
        &self,
        opened: &OpenedInitiation,
        now: Instant,
    ) -> Result<(), HandshakeError> {
        self.handshake
            .as_ref()
            .ok_or(HandshakeError::InvalidPeerKey)?
            .would_accept_initiation(opened, now)
    }

    /// A copy of the pending initiation's ephemeral key, if `local_index` names it: the
    /// input of a response's X25519 work, done outside the peer's lock.
    pub fn pending_ephemeral(&self, local_index: u32) -> Option<PrivateKey> {
        self.handshake.as_ref()?.pending_ephemeral(local_index)
    }

    /// Answers an initiation that `open_initiation` attributed to this peer, with the
    /// response's X25519 work done beforehand.
    pub fn respond(
        &mut self,
        opened: OpenedInitiation,
        prepared: ResponseEphemeral,
        src: SocketAddr,
        local: Option<LocalSource>,
        ctx: &mut PeerCtx,
    ) -> Result<Datagram, HandshakeError> {
        let hs = self
            .handshake
            .as_mut()
            .ok_or(HandshakeError::InvalidPeerKey)?;
        let accepted = hs.accept_initiation(ctx.local, opened, ctx.now)?;
        let index = ctx.indices.allocate(ctx.rng);
        let (msg, keys) =
            match hs.create_response_prepared(ctx.local, accepted, index, prepared, ctx.now) {
                Ok(ok) => ok,
                Err(e) => {
                    ctx.indices.release(index);
                    return Err(e);
                }
            };
        self.stats.rx_bytes += wire::INITIATION_LEN as u64;
        self.learn_endpoint(src, local);
        tracing::debug!(peer = %self.short_key(), "answered a handshake initiation");
        self.timers.any_authenticated_packet_received();
        self.timers.any_authenticated_packet_traversal(ctx.now);
        self.install_session(keys, ctx);
        self.last_sent_handshake = Some(ctx.now);
        self.timers.any_authenticated_packet_traversal(ctx.now);
        self.timers.any_authenticated_packet_sent();
        self.stats.tx_bytes += msg.len() as u64;
        self.count(Counter::RxInitiation);
        self.count(Counter::ResponseSent);
        Ok(Datagram {
            dst: src,
            src: local,
            data: msg.to_vec(),
        })
    }

    /// Completes our handshake with the peer's response (its X25519 work done beforehand,
    /// see [`pending_ephemeral`](Self::pending_ephemeral)); sends the staged packets, or a
    /// keepalive so the responder gets key confirmation at once.
    pub fn consume_response(
        &mut self,
        msg: &wire::Response<'_>,
        agreement: ResponseAgreement,
        src: SocketAddr,
        local: Option<LocalSource>,
        ctx: &mut PeerCtx,
    ) -> Result<Vec<Datagram>, HandshakeError> {
        let hs = self
            .handshake
            .as_mut()
            .ok_or(HandshakeError::InvalidPeerKey)?;
        let keys = hs.consume_response_prepared(msg, agreement, ctx.now)?;
        self.stats.rx_bytes += wire::RESPONSE_LEN as u64;
        self.learn_endpoint(src, local);
        tracing::info!(peer = %self.short_key(), "handshake completed (we initiated)");
        self.timers.any_authenticated_packet_received();
        self.timers.any_authenticated_packet_traversal(ctx.now);
        self.install_session(keys, ctx);
        self.timers.handshake_complete();
        self.stats.last_handshake = Some(ctx.wall);
        self.count(Counter::RxResponse);
        self.count(Counter::CompletedInitiator);
        Ok(self.send_keepalive(ctx))
    }

    pub fn consume_cookie_reply(
        &mut self,
        msg: &wire::CookieReply<'_>,
        now: Instant,
    ) -> Result<(), HandshakeError> {
        let hs = self
            .handshake
            .as_mut()
            .ok_or(HandshakeError::InvalidPeerKey)?;
        hs.consume_cookie_reply(msg, now)?;
        self.count(Counter::CookieReplyReceived);
        Ok(())
    }

    /// Places a freshly derived session in its slot (docs/PROTOCOL.md §5 "Keypair slots").
    fn install_session(&mut self, keys: SessionKeys, ctx: &mut PeerCtx) {
        let keypair = Arc::new(Keypair::new(keys, ctx.now));
        ctx.indices.bind(keypair.local_index(), &keypair);
        let slots = &mut self.keypairs;
        let mut dropped = Vec::new();
        if keypair.is_initiator() {
            if let Some(next) = slots.next.take() {
                dropped.extend(slots.current.take());
                dropped.extend(slots.previous.replace(next));
            } else {
                dropped.extend(std::mem::replace(&mut slots.previous, slots.current.take()));
            }
            slots.current = Some(keypair);
        } else {
            dropped.extend(slots.next.replace(keypair));
            dropped.extend(slots.previous.take());
        }
        for kp in dropped {
            ctx.indices.release(kp.local_index());
        }
        self.timers.session_derived(ctx.now);
    }

    // ---------------------------------------------------------------- timers

    /// Runs every timer due at `ctx.now` and returns what to send.
    pub fn tick(&mut self, ctx: &mut PeerCtx) -> Vec<Datagram> {
        let mut out = Vec::new();
        for event in self.timers.expired(ctx.now) {
            match event {
                TimerEvent::RetransmitHandshake => {
                    if self.timers.handshake_attempts > MAX_TIMER_HANDSHAKES {
                        tracing::info!(
                            peer = %self.short_key(),
                            "no handshake after {} attempts, giving up",
                            MAX_TIMER_HANDSHAKES + 2
                        );
                        self.timers.handshake_given_up(ctx.now);
                        self.count(Counter::HandshakeGiveUp);
                        // Empty ones are keepalives waiting for a session, not packets.
                        let given_up = self.staged.iter().filter(|p| !p.is_empty()).count() as u64;
                        self.stats.counts.add(Counter::DropStagedGiveUp, given_up);
                        self.staged.clear();
                    } else {
                        self.timers.handshake_attempts += 1;
                        out.extend(self.initiate(ctx, true));
                    }
                }
                TimerEvent::SendKeepalive => {
                    out.extend(self.send_keepalive(ctx));
                    self.timers.keepalive_sent_after_timer(ctx.now);
                }
                TimerEvent::NewHandshake => out.extend(self.initiate(ctx, false)),
                TimerEvent::ZeroKeyMaterial => {
                    tracing::debug!(peer = %self.short_key(), "erasing old key material");
                    self.zero_key_material(ctx.indices);
                    self.count(Counter::KeysZeroed);
                }
                TimerEvent::PersistentKeepalive => out.extend(self.send_keepalive(ctx)),
            }
        }
        out
    }
}
