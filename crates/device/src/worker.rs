//! One data-plane worker: a TUN queue and a UDP socket per family, waited on in the
//! worker's own epoll. The kernel steers each flow to one TUN queue and one socket, so a
//! flow stays on one worker and its peer's lock is almost never contended.

use crate::clock::Clock;
use crate::control::{Job, Jobs};
use crate::counting::ThreadCounters;
use crate::epoll::{Epoll, Event, Interest};
use crate::gso::GsoPlanner;
use crate::loop_guard::{DroppedFragments, LoopGuard};
use crate::netset::NetSet;
use crate::offload::{split_from, write_or_split, Coalescer, TunWrite, MAX_PACKET};
use crate::route_watch::NewSources;
use crate::steal::{Crew, ShareGate};
use crate::steer::Steering;
use crate::tun::{is_gone, TunQueue};
use crate::udp::{is_source_error, RecvMeta, Transmit, UdpSocket, BATCH};
use crate::unreachable::Unreachable;
use crate::vnet::VNET_HDR_LEN;
use crate::Cancel;
use ferrotun_proto::counters::{Counter, CounterSet};
use ferrotun_proto::interface::{Env, Interface, RxError, TransportRx};
use ferrotun_proto::send::{Planned, Sealing, SendActions};
use ferrotun_proto::source::LocalSource;
use ferrotun_proto::wire::{self, Message, TRANSPORT_HEADER_LEN};
use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Room for the largest IP packet plus the WireGuard header, padding and tag.
pub const BUF_SIZE: usize = 65536 + 64;

const TOKEN_TUN: u64 = 0;
const TOKEN_V4: u64 = 1;
const TOKEN_V6: u64 = 2;
const TOKEN_STOP: u64 = 3;
const TOKEN_CANCEL: u64 = 4;
const TOKEN_HELP: u64 = 5;

pub struct Worker {
    pub id: usize,
    /// Every queue of the TUN: this worker reads queue `id`, and writes each incoming
    /// packet through the queue `steering` picks for its flow.
    pub tuns: Arc<[TunQueue]>,
    pub steering: Arc<Steering>,
    /// The TUN took UDP segmentation offload: decrypted UDP datagrams may be merged too.
    pub uso: bool,
    pub net: Arc<NetSet>,
    pub iface: Arc<Interface>,
    pub jobs: Jobs,
    pub clock: Clock,
    /// The device's counters; this worker writes only its own set (see [`Worker::count`]).
    pub counters: Arc<ThreadCounters>,
    /// The other workers of this generation: where a big batch's crypto is offered.
    pub crew: Arc<Crew>,
    /// Set once the TUN refuses a merged (GSO) write; from then on packets go to the
    /// TUN one by one. Refused offload costs speed, never packets.
    pub gro_refused: Cell<bool>,
    /// Drops our own datagrams when a routing loop brings them back.
    pub loop_guard: Arc<LoopGuard>,
    /// Answers packets without a peer with ICMP errors.
    pub unreachable: Arc<Unreachable>,
    /// Told when a peer's replies leave from an address they did not leave from before,
    /// which the route watch then checks against the routes.
    pub new_sources: NewSources,
}

/// Buffers owned by one worker for its whole life: no allocation per packet.
struct Buffers {
    bufs: Vec<Vec<u8>>,
    metas: Vec<RecvMeta>,
    lens: Vec<usize>,
    gso: GsoPlanner,
    /// One TUN read with its virtio header (a TCP super-packet of up to 64 KiB), used
    /// only when the TUN has offloads on.
    tun_read: Vec<u8>,
    /// Decrypted packets on their way to the TUN, merged into super-packets.
    coalescer: Option<Coalescer>,
    /// What each batch buffer is to be sealed with, filled in order, sealed in parallel.
    seals: Vec<Option<Sealing>>,
    /// How often this worker offers its crypto to idle workers.
    gate: ShareGate,
    /// Messages to ask the next recvmmsg for, so that one receive holds about
    /// [`RX_BUDGET`] datagrams however many UDP GRO packs into each message.
    rx_msgs: usize,
    /// The datagram whose fragments the loop guard is dropping.
    dropped_fragments: DroppedFragments,
}

/// Batches at least this large are offered to idle workers: below it, waking one costs
/// more than it saves.
pub const PARALLEL_MIN: usize = 16;
/// Packets per piece of shared crypto work: a few microseconds, so the owner never
/// waits long for a helper that is in the middle of one.
const CHUNK: usize = 8;
/// Datagrams handled per receive, like a NAPI budget. Without it one recvmmsg of 64
/// GRO messages can hold 4,000 datagrams: milliseconds of work before the worker looks
/// at its TUN again, and before the first of them reaches the TUN.
const RX_BUDGET: usize = BATCH;

impl Buffers {
    fn new(offload: bool, uso: bool) -> Self {
        Buffers {
            bufs: (0..BATCH).map(|_| vec![0u8; BUF_SIZE]).collect(),
            metas: vec![RecvMeta::default(); BATCH],
            lens: vec![0; BATCH],
            gso: GsoPlanner::new(),
            tun_read: if offload {
                vec![0u8; VNET_HDR_LEN + MAX_PACKET]
            } else {
                Vec::new()
            },
            coalescer: offload.then(|| {
                let mut c = Coalescer::new(BATCH);
                c.merge_udp(uso);
                c
            }),
            seals: (0..BATCH).map(|_| None).collect(),
            gate: ShareGate::default(),
            rx_msgs: BATCH,
            dropped_fragments: DroppedFragments::default(),
        }
    }
}

/// One sealed datagram of a batch: (buffer index, destination, source, sealed length).
type Sealed = (usize, Option<SocketAddr>, Option<LocalSource>, usize);

impl Worker {
    /// Runs until `stop` (this generation of workers) or `cancel` (the whole daemon)
    /// fires.
    pub fn run(self, stop: Cancel, cancel: Cancel) {
        if let Err(e) = self.event_loop(&stop, &cancel) {
            tracing::error!("worker {} stopped: {e}", self.id);
            cancel.trigger();
        }
    }

    /// Adds to this worker's own counters: no cache line shared with another core.
    fn count(&self, counter: Counter, n: u64) {
        self.counter_set().add(counter, n);
    }

    fn counter_set(&self) -> &CounterSet {
        self.counters.worker(self.id)
    }

    /// The TUN queue this worker reads.
    fn tun(&self) -> &TunQueue {
        &self.tuns[self.id]
    }

    /// The TUN queue to write an incoming IP packet through (see [`Steering`]).
    fn tun_for(&self, ip_packet: &[u8]) -> &TunQueue {
        let q = self.steering.queue_for(ip_packet, self.id, self.now_ms());
        self.tuns.get(q).unwrap_or(self.tun())
    }

    fn now_ms(&self) -> u64 {
        self.clock.now().as_nanos() / 1_000_000
    }

    fn v4(&self) -> Option<&Arc<UdpSocket>> {
        self.net.v4.get(self.id)
    }
    fn v6(&self) -> Option<&Arc<UdpSocket>> {
        self.net.v6.get(self.id)
    }

    fn event_loop(&self, stop: &Cancel, cancel: &Cancel) -> io::Result<()> {
        let epoll = Epoll::new()?;
        epoll.add(self.tun(), TOKEN_TUN, Interest::READABLE)?;
        if let Some(s) = self.v4() {
            epoll.add(s.as_ref(), TOKEN_V4, Interest::READABLE)?;
        }
        if let Some(s) = self.v6() {
            epoll.add(s.as_ref(), TOKEN_V6, Interest::READABLE)?;
        }
        epoll.add(&stop.fd(), TOKEN_STOP, Interest::READABLE)?;
        epoll.add(&cancel.fd(), TOKEN_CANCEL, Interest::READABLE)?;
        epoll.add(&self.crew.wake_fd(self.id), TOKEN_HELP, Interest::READABLE)?;
        let mut events = [Event::EMPTY; 8];
        let mut b = Buffers::new(self.tun().vnet_hdr(), self.uso);
        loop {
            self.crew.set_idle(self.id, true);
            let waited = epoll.wait(&mut events, None);
            self.crew.set_idle(self.id, false);
            let n = waited?;
            for ev in &events[..n] {
                match ev.token() {
                    TOKEN_STOP | TOKEN_CANCEL => return Ok(()),
                    TOKEN_HELP => self.crew.help(self.id),
                    TOKEN_TUN => {
                        if let Err(e) = self.drain_tun(&mut b) {
                            if is_gone(&e) {
                                tracing::info!("interface was removed");
                                cancel.trigger();
                                return Ok(());
                            }
                            return Err(e);
                        }
                    }
                    TOKEN_V4 => {
                        if let Some(s) = self.v4() {
                            self.drain_udp(s, &mut b)?;
                        }
                    }
                    TOKEN_V6 => {
                        if let Some(s) = self.v6() {
                            self.drain_udp(s, &mut b)?;
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    // ------------------------------------------------------------ TUN → network

    /// Reads one batch from the TUN. One batch per wake-up, not "until empty": epoll is
    /// level-triggered, so a busy TUN wakes us again at once, and in between the UDP side
    /// (ACKs, pings, handshakes) gets its turn instead of queueing behind a bulk flow.
    fn drain_tun(&self, b: &mut Buffers) -> io::Result<()> {
        if b.coalescer.is_some() {
            return self.drain_tun_offload(b);
        }
        let (mut n, mut bytes) = (0, 0);
        while n < BATCH {
            match self.tun().read(&mut b.bufs[n][TRANSPORT_HEADER_LEN..]) {
                Ok(len) => {
                    b.lens[n] = len;
                    bytes += len;
                    n += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        self.steering.note_work(self.id, bytes, self.now_ms());
        if n > 0 {
            self.encrypt_batch(b, n);
        }
        Ok(())
    }

    /// The offload path (see [`read_offload_batch`]).
    fn drain_tun_offload(&self, b: &mut Buffers) -> io::Result<()> {
        let bytes = read_offload_batch(
            self.tun(),
            b,
            |b, n| self.encrypt_batch(b, n),
            || self.count(Counter::DropUnsplittable, 1),
        )?;
        self.steering.note_work(self.id, bytes, self.now_ms());
        Ok(())
    }

    /// Encrypts and sends a batch read from the TUN through the core's send path: the
    /// plan (counters in packet order) here, then the AEAD work on every core for a large
    /// batch (a single heavy flow lands on one worker, and this is how it still uses the
    /// others), and the batch leaves in its original order once all of it is sealed.
    fn encrypt_batch(&self, b: &mut Buffers, n: usize) {
        let n = self.drop_looped(b, n);
        let env = self.clock.env();
        let mut batch = self.iface.send_batch(env);
        let mut out: [Sealed; BATCH] = [(0, None, None, 0); BATCH];
        let mut count = 0;
        for i in 0..n {
            b.seals[i] = None;
            let packet = &b.bufs[i][TRANSPORT_HEADER_LEN..TRANSPORT_HEADER_LEN + b.lens[i]];
            match batch.plan(packet) {
                Planned::Send { dst, src, sealing } => {
                    out[count] = (i, Some(dst), src, sealing.datagram_len());
                    count += 1;
                    b.seals[i] = Some(sealing);
                }
                Planned::Staged => {}
                Planned::NoRoute => {
                    self.count(Counter::DropNoPeer, 1);
                    self.answer_unreachable(packet, env);
                }
            }
        }
        self.submit_actions(batch.finish());
        self.seal_all(b, n, count);
        self.send_sealed(b, &out[..count]);
    }

    /// Removes our own datagrams coming back through the TUN (see [`LoopGuard`]).
    fn drop_looped(&self, b: &mut Buffers, n: usize) -> usize {
        let (port, now_ms) = (self.net.port, self.now_ms());
        let (bufs, lens) = (&mut b.bufs[..n], &mut b.lens[..n]);
        let kept = self.loop_guard.filter_batch(
            &self.iface,
            bufs,
            lens,
            n,
            TRANSPORT_HEADER_LEN,
            port,
            &mut b.dropped_fragments,
            now_ms,
        );
        if kept < n {
            self.count(Counter::DropLooped, (n - kept) as u64);
        }
        kept
    }

    fn answer_unreachable(&self, packet: &[u8], env: Env) {
        match self.unreachable.answer(packet, self.tun(), env.now) {
            Ok(true) => self.count(Counter::UnreachableSent, 1),
            Ok(false) => {}
            Err(e) => self.count(Counter::tun_error(e.raw_os_error()), 1),
        }
    }

    fn seal_all(&self, b: &mut Buffers, n: usize, count: usize) {
        fn seal(bufs: &mut [Vec<u8>], seals: &mut [Option<Sealing>]) {
            for (buf, sealing) in bufs.iter_mut().zip(seals.iter_mut()) {
                if let Some(s) = sealing.take() {
                    // Cannot fail: every buffer holds the largest packet with its padding.
                    let _ = s.seal(buf);
                }
            }
        }
        let (bufs, seals) = (&mut b.bufs[..n], &mut b.seals[..n]);
        if count < PARALLEL_MIN {
            return seal(bufs, seals);
        }
        self.crew
            .run_zipped(self.id, &mut b.gate, CHUNK, bufs, seals, seal);
    }

    /// Hands what the send path asks for to the control thread: handshakes are not done
    /// on the data path.
    fn submit_actions(&self, actions: SendActions) {
        for peer in actions.send_staged {
            self.submit(Job::SendStaged(peer));
        }
        for peer in actions.initiate {
            self.submit(Job::Initiate(peer));
        }
    }

    /// Sends the sealed datagrams of a batch. Runs of same-sized datagrams to one
    /// destination are copied into one buffer and sent as a single UDP GSO message: the
    /// kernel then pushes one large packet through its stack instead of dozens.
    fn send_sealed(&self, b: &mut Buffers, out: &[Sealed]) {
        for family_v4 in [true, false] {
            let sock = if family_v4 { self.v4() } else { self.v6() };
            let picked = out.iter().filter_map(|&(i, dst, src, len)| {
                dst.filter(|d| d.is_ipv4() == family_v4)
                    .map(|d| (i, d, src, len))
            });
            let trains = b
                .gso
                .plan(picked, sock.is_some_and(|s| s.gso_enabled()), &b.bufs);
            if trains.is_empty() {
                continue;
            }
            let Some(sock) = sock else {
                // No socket of this family (IPv6 off on the host, say).
                let datagrams = trains.iter().map(|t| t.datagrams()).sum::<usize>();
                self.count(Counter::UdpEafnosupport, datagrams as u64);
                continue;
            };
            let mut msgs: Vec<Transmit<'_>> = trains
                .iter()
                .map(|t| Transmit {
                    dst: t.dst,
                    src: t.src,
                    data: t.data(&b.gso.arena, &b.bufs),
                    segment_size: t.segment_size,
                })
                .collect();
            self.send_all(sock, &mut msgs);
            let refused = sock.take_gso_refusals();
            if refused > 0 {
                self.count(Counter::GsoRefused, refused);
            }
        }
    }

    fn send_all(&self, sock: &UdpSocket, msgs: &mut [Transmit<'_>]) {
        let mut sent = 0;
        while sent < msgs.len() {
            match sock.send_batch(&msgs[sent..]) {
                Ok(0) => break,
                Ok(k) => sent += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // The socket buffer is full: wait for room rather than drop, the
                    // same back-pressure a kernel interface applies.
                    wait_writable(sock);
                }
                Err(e) if msgs[sent].src.is_some() && is_source_error(&e) => {
                    // Our address the peer used is gone or unusable: the peer goes back
                    // to the kernel's choice, and what this batch has for it is sent
                    // again from there (the peer roams to the new address, as it would
                    // to a kernel WireGuard falling back the same way).
                    let (dst, src) = (msgs[sent].dst, msgs[sent].src);
                    if let Some(source) = src {
                        tracing::debug!("send to {dst} from {} failed: {e}", source.addr);
                        self.iface.forget_source(dst, source);
                    }
                    for m in msgs[sent..].iter_mut() {
                        if m.dst == dst && m.src == src {
                            m.src = None;
                        }
                    }
                }
                Err(e) => {
                    // One bad destination must not sink the rest of the batch.
                    let datagrams = msgs[sent].datagrams() as u64;
                    self.count(Counter::udp_error(e.raw_os_error()), datagrams);
                    sent += 1;
                }
            }
        }
    }

    // ------------------------------------------------------------ network → TUN

    /// Receives one batch (one `recvmmsg`) per wake-up, for the same fairness as the TUN.
    fn drain_udp(&self, sock: &UdpSocket, b: &mut Buffers) -> io::Result<()> {
        let want = b.rx_msgs.clamp(1, BATCH);
        let n = loop {
            match sock.recv_batch(&mut b.bufs[..want], &mut b.metas[..want]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // ICMP errors surface here (ECONNREFUSED and friends): not fatal.
                    tracing::debug!("receive error: {e}");
                    return Ok(());
                }
            }
        };
        let env = self.clock.env();
        let received: usize = b.metas[..n].iter().map(|m| m.len).sum();
        self.steering.note_work(self.id, received, self.now_ms());
        let datagram_count: usize = b.metas[..n]
            .iter()
            .map(|m| m.len.div_ceil(m.segment_size.max(1)).max(1))
            .sum();
        b.rx_msgs = (RX_BUDGET * n / datagram_count.max(1)).clamp(1, BATCH);
        let Buffers {
            bufs,
            metas,
            coalescer,
            gate,
            ..
        } = b;
        // Every datagram of the batch (with UDP GRO one receive may hold several, all of
        // one flow: same sender, same address of ours).
        let mut datagrams: Vec<Received<'_>> = Vec::with_capacity(n);
        for (buf, meta) in bufs.iter_mut().zip(metas.iter()).take(n) {
            if meta.truncated {
                self.count(Counter::DropTruncated, 1);
                continue;
            }
            if meta.len == 0 {
                // An empty datagram has no chunks below; it is a message of no type.
                self.count(Counter::DropBadMessage, 1);
                continue;
            }
            let seg = meta.segment_size.max(1);
            for datagram in buf[..meta.len].chunks_mut(seg) {
                datagrams.push((datagram, meta.src, meta.dst));
            }
        }
        // Decryption and every check are offered to idle workers for a large batch;
        // delivery to the TUN then follows the order the datagrams arrived in.
        let iface: &Interface = &self.iface;
        let open = |datagrams: &mut [Received<'_>], opened: &mut [Opened]| {
            for ((datagram, src, local), out) in datagrams.iter_mut().zip(opened.iter_mut()) {
                if datagram.first() == Some(&4) {
                    *out = Some(iface.receive_transport_at(datagram, *src, *local, env));
                }
            }
        };
        let mut opened: Vec<Opened> = (0..datagrams.len()).map(|_| None).collect();
        if datagrams.len() < PARALLEL_MIN {
            open(&mut datagrams, &mut opened);
        } else {
            self.crew
                .run_zipped(self.id, gate, CHUNK, &mut datagrams, &mut opened, open);
        }
        for ((datagram, src, local), result) in datagrams.into_iter().zip(opened) {
            self.deliver(datagram, src, local, result, coalescer);
        }
        if let Some(c) = coalescer.as_mut() {
            self.flush_to_tun(c);
        }
        Ok(())
    }

    /// Writes the merged packets of a batch to the TUN.
    fn flush_to_tun(&self, coalescer: &mut Coalescer) {
        coalescer.drain(|packet| {
            let written = write_or_split(packet, |p| self.tun_for(after_vnet(p)).write(p));
            match written {
                Ok(TunWrite::Whole) => {}
                Ok(TunWrite::Split { failed, .. }) => {
                    self.count(Counter::TunMergeRefused, 1);
                    if !self.gro_refused.replace(true) {
                        tracing::warn!(
                            "the TUN refuses merged packets; writing them one by one from now on"
                        );
                    }
                    if failed > 0 {
                        self.count(Counter::TunOther, failed as u64);
                    }
                }
                Err(e) => self.count(Counter::tun_error(e.raw_os_error()), 1),
            }
        });
    }

    /// Hands one received datagram on: its decrypted packet to the TUN, a handshake
    /// message to the control thread.
    fn deliver(
        &self,
        datagram: &[u8],
        src: SocketAddr,
        local: Option<LocalSource>,
        opened: Option<Result<TransportRx, RxError>>,
        coalescer: &mut Option<Coalescer>,
    ) {
        match (opened, datagram.first()) {
            (Some(Ok(rx)), _) => {
                if rx.packet_len > 0 {
                    let packet =
                        &datagram[TRANSPORT_HEADER_LEN..TRANSPORT_HEADER_LEN + rx.packet_len];
                    match coalescer {
                        Some(c) => self.coalesce(c, packet),
                        None => {
                            if let Err(e) = self.tun_for(packet).write(packet) {
                                self.count(Counter::tun_error(e.raw_os_error()), 1);
                            }
                        }
                    }
                }
                // A dropped inner packet (`rx.dropped`) was counted in its peer.
                if rx.outcome.confirmed_session {
                    self.submit(Job::SendStaged(rx.peer.clone()));
                }
                if rx.outcome.wants_handshake {
                    self.submit(Job::Initiate(rx.peer));
                }
                if rx.outcome.new_source {
                    self.new_sources.store(true, Ordering::Relaxed);
                }
            }
            // The exact size and type first, so the queue holds nothing bigger than an
            // initiation (its memory bound) and the control thread no junk.
            (None, _) if is_handshake_message(datagram) => {
                let job = Job::Handshake {
                    data: datagram.to_vec(),
                    src,
                    local,
                };
                if self.jobs.try_send(job).is_err() {
                    self.count(Counter::DropQueueFull, 1);
                }
            }
            (Some(Err(e)), _) => {
                // Drops of a known peer's datagrams were counted in that peer.
                if e.is_device_drop() {
                    self.count(e.counter(), 1);
                }
            }
            (None, _) => self.count(Counter::DropBadMessage, 1),
        }
    }

    fn coalesce(&self, c: &mut Coalescer, packet: &[u8]) {
        if c.push(packet).is_ok() {
            if self.gro_refused.get() {
                // Nothing may merge any more: out it goes, alone.
                self.flush_to_tun(c);
            }
            return;
        }
        // Full: write out what is merged so far and take the packet in a fresh round.
        self.flush_to_tun(c);
        if c.push(packet).is_err() {
            // Only a packet over 64 KiB gets here, and the decrypted length was checked
            // against its IP header: the TUN could not have taken it either.
            self.count(Counter::TunEinval, 1);
        }
    }

    /// Hands a request to the control thread. A full queue loses nothing for good: the
    /// peer's timers ask again.
    fn submit(&self, job: Job) {
        let _ = self.jobs.try_send(job);
    }
}

/// An initiation, response or cookie reply of exactly its size (148, 92 or 64 bytes).
fn is_handshake_message(datagram: &[u8]) -> bool {
    matches!(
        wire::parse(datagram),
        Ok(Message::Initiation(_) | Message::Response(_) | Message::CookieReply(_))
    )
}

/// A received datagram: its bytes, its sender and our address it was sent to.
type Received<'a> = (&'a mut [u8], SocketAddr, Option<LocalSource>);

/// One wake-up's reading from an offload TUN. Each read may be a TCP (or UDP)
/// super-packet, cut into MTU-sized packets straight into the batch buffers behind room
/// for the header, and `send` gets each batch. Reads stop once a batch is full, so one
/// wake-up moves one batch (plus the rest of a super-packet that did not fit: it was read,
/// so it is sent); epoll is level-triggered and wakes the worker again for the rest, after
/// the network side had its turn. Returns the bytes read.
fn read_offload_batch(
    tun: &TunQueue,
    b: &mut Buffers,
    mut send: impl FnMut(&mut Buffers, usize),
    mut unsplittable: impl FnMut(),
) -> io::Result<usize> {
    let (mut n, mut bytes) = (0, 0);
    let mut full = false;
    while !full {
        let len = match tun.read(&mut b.tun_read) {
            Ok(len) => len,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        bytes += len;
        let mut first = 0;
        loop {
            let split = split_from(
                &b.tun_read[..len],
                first,
                &mut b.bufs[n..],
                TRANSPORT_HEADER_LEN,
                &mut b.lens[n..],
            );
            match split {
                Ok(0) => break,
                Ok(k) => {
                    n += k;
                    first += k;
                    if n == BATCH {
                        send(b, n);
                        n = 0;
                        full = true;
                    }
                }
                Err(_) => {
                    // Counted, not logged: a log line per dropped packet is a flood.
                    unsplittable();
                    break;
                }
            }
        }
    }
    if n > 0 {
        send(b, n);
    }
    Ok(bytes)
}

/// A received datagram after decryption: `None` when it is not a transport message.
type Opened = Option<Result<TransportRx, RxError>>;

/// The IP packet behind a virtio-net header.
fn after_vnet(packet: &[u8]) -> &[u8] {
    packet.get(VNET_HDR_LEN..).unwrap_or_default()
}

fn wait_writable(sock: &UdpSocket) {
    if let Ok(ep) = Epoll::new() {
        if ep.add(sock, 0, Interest::WRITABLE).is_ok() {
            let mut ev = [Event::EMPTY; 1];
            let _ = ep.wait(&mut ev, Some(std::time::Duration::from_millis(100)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netns::enter_netns;
    use crate::tun::Tun;
    use std::process::Command;

    /// A network namespace for one test, removed when dropped.
    struct Ns(String);

    impl Ns {
        fn new(tag: &str) -> Option<Ns> {
            let name = format!("ftw-{tag}-{}", std::process::id());
            let ok = Command::new("ip")
                .args(["netns", "add", &name])
                .status()
                .is_ok_and(|s| s.success());
            ok.then_some(Ns(name))
        }

        fn ip(&self, args: &[&str]) {
            let status = Command::new("ip")
                .args(["-n", &self.0])
                .args(args)
                .status()
                .expect("run ip");
            assert!(status.success(), "ip {args:?}");
        }
    }

    impl Drop for Ns {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }

    /// A backlog of three batches waiting in an offload TUN: one wake-up takes one batch
    /// and leaves the rest queued, so the network side gets its turn in between.
    #[test]
    fn offload_tun_wakeup_reads_one_batch_only() {
        // Needs root (namespaces, TUN); without it there is nothing to test here.
        let Some(ns) = Ns::new("batch") else {
            eprintln!("skipping: cannot create a network namespace");
            return;
        };
        let path = std::path::PathBuf::from(format!("/run/netns/{}", ns.0));
        let tun_name = "ftwb0";
        let (tun, backlog) = std::thread::scope(|s| {
            s.spawn(|| {
                enter_netns(&path).expect("enter namespace");
                let tun = Tun::create_with_offload(tun_name, 1).expect("offload TUN");
                assert!(tun.vnet_hdr(), "offloads refused");
                ns.ip(&["link", "set", tun_name, "up"]);
                ns.ip(&["addr", "add", "10.77.0.1/24", "dev", tun_name]);
                let sock = std::net::UdpSocket::bind("10.77.0.1:0").expect("bind");
                let backlog = 3 * BATCH;
                for i in 0..backlog {
                    sock.send_to(&[i as u8; 32], "10.77.0.2:9").expect("send");
                }
                (tun, backlog)
            })
            .join()
            .expect("namespace thread")
        });
        let queue = &tun.queues()[0];
        let mut b = Buffers::new(true, false);
        let mut sent = Vec::new();
        read_offload_batch(queue, &mut b, |_, n| sent.push(n), || {}).expect("read");
        assert_eq!(sent, vec![BATCH], "one wake-up must move exactly one batch");
        // The rest is still waiting in the TUN for the next wake-up.
        // (IPv6 router solicitations may be queued too: only our IPv4 packets count.)
        let mut left = 0;
        while let Ok(len) = queue.read(&mut b.tun_read) {
            left += usize::from(b.tun_read[VNET_HDR_LEN..len].first() == Some(&0x45));
        }
        assert!(left + BATCH >= backlog, "{left} of {backlog} left");
    }
}
