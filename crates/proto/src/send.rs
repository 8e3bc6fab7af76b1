//! The one send path for packets from the TUN, in three steps so the caller can spread
//! the expensive one over its cores:
//!
//! 1. **plan**, in packet order ([`SendBatch::plan`]): route, session, send counter, padded
//!    length and destination. One short peer lock starts each run of packets to the same
//!    peer; a packet without a usable session is staged in its peer instead.
//! 2. **seal** ([`Sealing::seal`]): the AEAD, a pure function of the plan and the buffer,
//!    with no lock, on any thread, in any order.
//! 3. **finish** ([`SendBatch::finish`]): per-peer bookkeeping (bytes sent, timers), one
//!    short lock per run, and what the caller must do next ([`SendActions`]).
//!
//! The device's workers, the control thread's slow path ([`Peer::send_staged`]), the
//! virtual-time tests and the fuzz harness all go through these steps.
//!
//! A batch is handed the routing table, the one shared table it reads (besides the peers
//! it routes to), and never sees the interface that starts it ([`Interface::send_batch`]):
//! the interface uses this file, not the other way round.
//!
//! [`Peer::send_staged`]: crate::peer::Peer::send_staged
//! [`Interface::send_batch`]: crate::interface::Interface::send_batch

use crate::allowed_ips::AllowedIps;
use crate::ip;
use crate::peer_ref::PeerRef;
use crate::session::Keypair;
use crate::source::LocalSource;
use crate::time::Env;
use parking_lot::RwLock;
use std::net::SocketAddr;
use std::sync::Arc;

pub use crate::sealing::Sealing;

/// The peer an outgoing packet is routed to, by its destination address.
pub(crate) fn route(routes: &RwLock<AllowedIps<PeerRef>>, packet: &[u8]) -> Option<PeerRef> {
    let dst = ip::destination(packet)?;
    routes.read().lookup(dst).cloned()
}

/// What [`SendBatch::plan`] decided for one packet.
#[derive(Debug)]
pub enum Planned {
    /// Seal it and send it to `dst`, from `src` (our address the peer last reached us
    /// at; `None` lets the kernel choose).
    Send {
        dst: SocketAddr,
        src: Option<LocalSource>,
        sealing: Sealing,
    },
    /// No usable session: the packet waits in its peer (see [`SendActions::send_staged`]).
    Staged,
    /// No peer's allowed IPs hold its destination (or it is not an IP packet).
    NoRoute,
}

/// What the caller must do after a batch, off the data path: both may start a handshake.
#[derive(Debug, Default)]
pub struct SendActions {
    /// Peers that staged packets for want of a session: call
    /// [`Interface::send_staged`](crate::interface::Interface::send_staged).
    pub send_staged: Vec<PeerRef>,
    /// Peers whose session is getting old: call
    /// [`Interface::initiate`](crate::interface::Interface::initiate).
    pub initiate: Vec<PeerRef>,
}

impl SendActions {
    pub fn is_empty(&self) -> bool {
        self.send_staged.is_empty() && self.initiate.is_empty()
    }
}

/// The peer whose session the current run of packets is planned with.
struct Run {
    peer: PeerRef,
    keypair: Arc<Keypair>,
    dst: SocketAddr,
    src: Option<LocalSource>,
    bytes: u64,
    packets: u64,
}

impl Run {
    /// A run on `peer`'s session, if it has one usable now (one short hold of its lock).
    fn start(peer: &PeerRef, env: Env) -> Option<Run> {
        let p = peer.lock();
        let (keypair, dst) = p.send_context(env.now)?;
        Some(Run {
            peer: peer.clone(),
            keypair,
            dst,
            src: p.source(),
            bytes: 0,
            packets: 0,
        })
    }
}

/// One batch of packets from the TUN on its way through the send path; made by
/// [`Interface::send_batch`](crate::interface::Interface::send_batch).
pub struct SendBatch<'a> {
    routes: &'a RwLock<AllowedIps<PeerRef>>,
    env: Env,
    mtu: usize,
    run: Option<Run>,
    actions: SendActions,
}

impl<'a> SendBatch<'a> {
    /// A batch routed by `routes` and padded for `mtu`.
    pub(crate) fn new(routes: &'a RwLock<AllowedIps<PeerRef>>, mtu: usize, env: Env) -> Self {
        SendBatch {
            routes,
            env,
            mtu,
            run: None,
            actions: SendActions::default(),
        }
    }

    /// Plans the next packet of the batch. Counters follow the order of the calls.
    pub fn plan(&mut self, packet: &[u8]) -> Planned {
        let Some(peer) = route(self.routes, packet) else {
            return Planned::NoRoute;
        };
        if self.run.as_ref().is_none_or(|r| r.peer != peer) {
            self.end_run();
            self.run = Run::start(&peer, self.env);
        }
        let planned = self.run.as_mut().and_then(|r| {
            let sealing = Sealing::new(&r.keypair, packet.len(), self.mtu)?;
            r.bytes += sealing.datagram_len() as u64;
            r.packets += 1;
            Some(Planned::Send {
                dst: r.dst,
                src: r.src,
                sealing,
            })
        });
        if let Some(p) = planned {
            return p;
        }
        // No session, or its counters ran out mid-run: the packet waits for a handshake.
        self.end_run();
        peer.lock().stage(packet);
        if !self.actions.send_staged.contains(&peer) {
            self.actions.send_staged.push(peer);
        }
        Planned::Staged
    }

    /// Books what the batch sent and returns what the caller must do next.
    pub fn finish(mut self) -> SendActions {
        self.end_run();
        std::mem::take(&mut self.actions)
    }

    fn end_run(&mut self) {
        let Some(run) = self.run.take() else { return };
        if run.bytes == 0 {
            return;
        }
        let rekey = run.peer.lock().after_transport_sent(
            &run.keypair,
            self.env.now,
            run.bytes,
            run.packets,
            0,
        );
        if rekey && !self.actions.initiate.contains(&run.peer) {
            self.actions.initiate.push(run.peer);
        }
    }
}

impl Drop for SendBatch<'_> {
    fn drop(&mut self) {
        // Counters were spent: the bytes are booked even if the caller forgot `finish`.
        self.end_run();
    }
}
