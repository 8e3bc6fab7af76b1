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
//! [`Peer::send_staged`]: crate::peer::Peer::send_staged

use crate::interface::{Interface, PeerRef};
use crate::session::{padded_len, Keypair, SessionError};
use crate::source::LocalSource;
use crate::time::Env;
use crate::wire::{TAG_LEN, TRANSPORT_HEADER_LEN};
use std::net::SocketAddr;
use std::sync::Arc;

/// One packet's encryption, decided in order (its counter and padding) and done anywhere.
#[derive(Debug, Clone)]
pub struct Sealing {
    keypair: Arc<Keypair>,
    counter: u64,
    len: usize,
    padded: usize,
}

impl Sealing {
    /// Reserves the next counter of `keypair` for a `len`-byte packet padded for `mtu`;
    /// `None` once the keypair may no longer send.
    pub(crate) fn new(keypair: &Arc<Keypair>, len: usize, mtu: usize) -> Option<Sealing> {
        let counter = keypair.next_send_counter()?;
        Some(Sealing {
            keypair: keypair.clone(),
            counter,
            len,
            padded: padded_len(len, mtu),
        })
    }

    /// The plaintext length.
    pub fn packet_len(&self) -> usize {
        self.len
    }

    /// The length of the sealed datagram: header, padded packet and tag.
    pub fn datagram_len(&self) -> usize {
        TRANSPORT_HEADER_LEN + self.padded + TAG_LEN
    }

    /// Encrypts in place the packet laid out in `buf` as `[header space][packet]...`;
    /// returns the datagram, `buf[..datagram_len()]`. Touches nothing but `buf`.
    pub fn seal<'b>(&self, buf: &'b mut [u8]) -> Result<&'b mut [u8], SessionError> {
        let datagram = buf
            .get_mut(..self.datagram_len())
            .ok_or(SessionError::BufferTooSmall)?;
        self.keypair.seal(self.counter, self.len, datagram)?;
        Ok(datagram)
    }
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
    /// Peers that staged packets for want of a session: call [`Interface::send_staged`].
    pub send_staged: Vec<PeerRef>,
    /// Peers whose session is getting old: call [`Interface::initiate`].
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

/// One batch of packets from the TUN on its way through the send path; made by
/// [`Interface::send_batch`].
pub struct SendBatch<'a> {
    iface: &'a Interface,
    env: Env,
    mtu: usize,
    run: Option<Run>,
    actions: SendActions,
}

impl<'a> SendBatch<'a> {
    pub(crate) fn new(iface: &'a Interface, env: Env) -> Self {
        SendBatch {
            iface,
            env,
            mtu: iface.mtu(),
            run: None,
            actions: SendActions::default(),
        }
    }

    /// Plans the next packet of the batch. Counters follow the order of the calls.
    pub fn plan(&mut self, packet: &[u8]) -> Planned {
        let Some(peer) = self.iface.route(packet) else {
            return Planned::NoRoute;
        };
        if self.run.as_ref().is_none_or(|r| r.peer != peer) {
            self.end_run();
            self.run = self
                .iface
                .send_context(&peer, self.env.now)
                .map(|(keypair, dst, src)| Run {
                    peer: peer.clone(),
                    keypair,
                    dst,
                    src,
                    bytes: 0,
                    packets: 0,
                });
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
        self.iface.stage(&peer, packet);
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
        let rekey = self.iface.after_transport_sent(
            &run.peer,
            &run.keypair,
            self.env.now,
            run.bytes,
            run.packets,
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
