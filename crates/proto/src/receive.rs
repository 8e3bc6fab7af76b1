//! The receive path for transport messages: find the session by index, check it is still
//! fresh, decrypt, check the replay window, then check that the inner packet is one its
//! peer may send before it may reach the TUN.
//!
//! It reads two shared tables, the session indices and the allowed IPs, plus the one
//! peer's lock; it is handed those rather than the interface, which uses this file
//! through [`Interface::receive_transport_at`](crate::interface::Interface::receive_transport_at).

use crate::allowed_ips::AllowedIps;
use crate::counters::Counter;
use crate::index::IndexTable;
use crate::ip;
use crate::peer::ReceiveOutcome;
use crate::peer_ref::PeerRef;
use crate::registry::{IndexEntry, Registry};
use crate::session::SessionError;
use crate::source::LocalSource;
use crate::time::Env;
use crate::wire::{self, Message};
use parking_lot::RwLock;
use std::net::SocketAddr;

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
    /// peer's datagrams are counted in that peer by
    /// [`Interface::receive_transport`](crate::interface::Interface::receive_transport).
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

/// Decrypts a transport message in place and checks it (see
/// [`Interface::receive_transport`](crate::interface::Interface::receive_transport)), with
/// `indices` naming the sessions and `routes` the inner sources each peer may use.
pub(crate) fn transport(
    indices: &RwLock<IndexTable<IndexEntry>>,
    routes: &RwLock<AllowedIps<PeerRef>>,
    datagram: &mut [u8],
    src: SocketAddr,
    local: Option<LocalSource>,
    env: Env,
) -> Result<TransportRx, RxError> {
    let index = match wire::parse(datagram) {
        Ok(Message::Transport(t)) => t.receiver_index(),
        _ => return Err(RxError::Malformed),
    };
    let (peer, keypair) = indices
        .read()
        .get(index)
        .and_then(IndexEntry::keypair)
        .ok_or(RxError::UnknownIndex)?;
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
        match inner_packet_len(routes, inner, &peer) {
            Ok(len) => (len, None),
            Err(e) => (0, Some(e)),
        }
    } else {
        (0, None)
    };
    let mut reg = Registry::new(indices, &peer);
    let mut p = peer.lock();
    let mut outcome =
        p.after_transport_received(&keypair, src, env, wire_len, carried_data, &mut reg);
    outcome.new_source = p.set_source(local);
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
fn inner_packet_len(
    routes: &RwLock<AllowedIps<PeerRef>>,
    inner: &[u8],
    peer: &PeerRef,
) -> Result<usize, RxError> {
    let len = ip::claimed_len(inner).ok_or(RxError::BadInnerPacket)?;
    let source = ip::source(inner).ok_or(RxError::BadInnerPacket)?;
    if routes.read().lookup(source) != Some(peer) {
        return Err(RxError::SourceNotAllowed);
    }
    Ok(len)
}
