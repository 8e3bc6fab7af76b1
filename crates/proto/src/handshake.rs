//! The handshake path: initiations, responses and cookie replies, checked cheapest first
//! (parse, mac1, then under load mac2 and the per-source rate limit) so a flood costs
//! little before any X25519 is spent, then handed to the peer they belong to.
//!
//! These are methods of [`Interface`]; they need its identity, cookie checker, rate
//! limiter, index table and rng, so this file uses `interface.rs` and never the other way
//! round.

use crate::cookie::{check_macs, MacVerdict};
use crate::counters::Counter;
use crate::interface::Interface;
use crate::keys::PrivateKey;
use crate::noise::{open_initiation, HandshakeError, ResponseAgreement, ResponseEphemeral};
use crate::peer::Datagram;
use crate::peer_ref::PeerRef;
use crate::registry::IndexEntry;
use crate::source::LocalSource;
use crate::time::Env;
use crate::wire::{self, Message};
use rand_core::CryptoRngCore;
use std::net::SocketAddr;

impl Interface {
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
