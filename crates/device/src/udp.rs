//! The data-plane UDP sockets: one per worker per address family, all bound
//! to the same port with SO_REUSEPORT so the kernel hashes each flow to one
//! socket (one worker), non-blocking, with batched I/O in [`crate::mmsg`].
//!
//! Written against libc rather than socket2: socket2 has no recvmmsg or
//! sendmmsg, no UDP_SEGMENT/UDP_GRO control messages, and the few options
//! we set are one setsockopt each.
//!
//! Why not quinn-udp (0.6.3), which does batched UDP with GSO/GRO and PKTINFO
//! for QUIC stacks: a port of this file to it was built and measured, and it
//! lost; it also cannot keep every feature:
//! - no sendmmsg: it sends one sendmsg per transmit, so a batch of datagrams
//!   to several peers (or that GSO cannot group) costs a syscall each;
//! - no MSG_TRUNC in its RecvMeta: [`RecvMeta::truncated`] (the DropTruncated
//!   counter) could only be guessed from a full buffer;
//! - the IPv6 source cmsg always has interface index 0, so a link-local source
//!   cannot name its link;
//! - its constructor turns on QUIC's options (IP_PMTUDISC_PROBE, IPV6_DONTFRAG,
//!   UDP_GRO, SO_TIMESTAMPNS, IP_RECVTOS), which the port had to undo one by one.
//!
//! Measured 2026-12-07, both release binaries in one interleaved run, twice, on a
//! shared 2-core machine (load average 12-15 in run A, 5 in run B, so noisy):
//! `FTBENCH_TCP_SECS=5 FTBENCH_UDP_SECS=3 FTBENCH_PING_COUNT=30 FTBENCH_INSTALL=0
//! bench/run.sh --runs 3 "ours=/tmp/ft-ours -f {if}" "quinn=/tmp/ft-quinn -f {if}"`
//! Median (min-max over the 3 rounds):
//!
//! | row             | A: ours          | A: quinn-udp     | B: ours          | B: quinn-udp     |
//! |-----------------|------------------|------------------|------------------|------------------|
//! | tcp1 Gbit/s     | 1.08 (0.86-1.49) | 0.78 (0.73-0.98) | 1.06 (0.99-1.23) | 0.95 (0.93-1.09) |
//! | tcp4 Gbit/s     | 0.96 (0.84-1.26) | 0.88 (0.74-1.05) | 1.14 (0.99-1.29) | 1.33 (1.25-1.34) |
//! | udp1400 kpps    | 7.6 (7.0-12.9)   | 6.4 (5.7-6.5)    | 7.8 (5.6-14.5)   | 11.2 (8.2-13.0)  |
//! | udp64 kpps      | 17.8 (13.0-20.3) | 15.1 (14.4-25.0) | 37.1 (25.2-43.2) | 20.8 (19.4-38.8) |
//! | rtt_idle ms     | 0.52 (0.38-4.00) | 0.62 (0.60-1.16) | 0.62 (0.26-1.16) | 0.52 (0.44-2.72) |
//! | rtt_load ms     | 10.7 (8.6-14.6)  | 18.3 (14.3-21.5) | 11.0 (7.1-11.7)  | 14.4 (13.0-15.6) |
//! | cpu_per_gb s/GB | 3.36 (3.16-3.84) | 3.65 (3.42-3.92) | 3.86 (3.27-3.94) | 3.28 (3.22-3.57) |
//!
//! With quinn-udp, rtt_load and tcp1 are worse beyond our rounds' spread (its
//! median outside our min-max) in both runs, udp1400 in A and udp64 (one sendmsg
//! per small datagram) in B; tcp4 and cpu_per_gb were better in B only. A row
//! worse beyond the spread decides: the hand-written mmsg.rs/cmsg.rs/sockaddr.rs
//! stay.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

use crate::mmsg;
use crate::sockaddr::SockAddr;
use crate::sys::{context, cvt, getsockopt_int, owned, setsockopt_int};

pub use crate::cmsg::is_source_error;
pub use crate::mmsg::{RecvBuf, RecvMeta, Transmit, BATCH};

/// Socket buffer size asked for, as wireguard-go does (7 MiB): bursts of
/// batched traffic overflow the default ~200 KiB and get dropped.
const SOCKET_BUFFER: libc::c_int = 7 << 20;

/// A non-blocking, close-on-exec UDP socket of the data plane.
#[derive(Debug)]
pub struct UdpSocket {
    fd: OwnedFd,
    v6: bool,
    port: u16,
    /// Cleared for good when the kernel refuses GSO for this socket's route
    /// (EIO: the egress device cannot checksum); sends then split.
    gso: AtomicBool,
    /// GSO sends refused and split since the last [`UdpSocket::take_gso_refusals`].
    gso_refusals: AtomicU64,
}

/// The sockets of both families on one port, as [`bind_dual`] returns them.
#[derive(Debug)]
pub struct BoundSockets {
    pub port: u16,
    /// IPv4 sockets; empty only if the host has no IPv4.
    pub v4: Vec<UdpSocket>,
    /// IPv6 sockets (IPV6_V6ONLY); empty if the host has IPv6 disabled.
    pub v6: Vec<UdpSocket>,
}

/// Binds `count` sockets of one family to `port` on the wildcard address
/// with SO_REUSEPORT (IPv6 ones with IPV6_V6ONLY=1), applying `fwmark` (0 =
/// none). With `port` 0 the first socket gets a kernel-chosen port and the
/// others join it. Fails as a whole (closing what was opened) if any bind
/// fails, e.g. `AddrInUse` when another program holds the port.
pub fn bind_reuseport(
    port: u16,
    v6: bool,
    count: usize,
    fwmark: u32,
) -> io::Result<Vec<UdpSocket>> {
    let family = if v6 { "IPv6" } else { "IPv4" };
    bind_raw(port, v6, count, fwmark)
        .map_err(|e| context(e, format_args!("bind UDP {family} port {port}")))
}

/// Binds `count` IPv4 and `count` IPv6 sockets to one port, like
/// wireguard-go: if either family is unsupported by the host
/// (EAFNOSUPPORT, e.g. IPv6 disabled at boot), continues with the other.
/// With `port` 0, if the IPv4 port turns out to be taken for IPv6, tries
/// again with a new port (up to 100 times).
pub fn bind_dual(port: u16, count: usize, fwmark: u32) -> io::Result<BoundSockets> {
    let unsupported = |e: &io::Error| e.raw_os_error() == Some(libc::EAFNOSUPPORT);
    let mut tries = 0;
    loop {
        let v4 = match bind_raw(port, false, count, fwmark) {
            Ok(v4) => v4,
            Err(e) if unsupported(&e) => Vec::new(),
            Err(e) => return Err(context(e, format_args!("bind UDP IPv4 port {port}"))),
        };
        let chosen = v4.first().map_or(port, |s| s.port);
        match bind_raw(chosen, true, count, fwmark) {
            Ok(v6) => {
                let port = v6.first().map_or(chosen, |s| s.port);
                return Ok(BoundSockets { port, v4, v6 });
            }
            Err(e) if unsupported(&e) && !v4.is_empty() => {
                return Ok(BoundSockets {
                    port: chosen,
                    v4,
                    v6: Vec::new(),
                })
            }
            Err(e) if port == 0 && e.raw_os_error() == Some(libc::EADDRINUSE) && tries < 100 => {
                tries += 1;
            }
            Err(e) => return Err(context(e, format_args!("bind UDP IPv6 port {chosen}"))),
        }
    }
}

/// Whether the kernel supports UDP GSO (UDP_SEGMENT, Linux ≥ 4.18). Probed
/// once on a scratch socket; sockets start with GSO on when this is true.
pub fn probe_gso() -> bool {
    static GSO: OnceLock<bool> = OnceLock::new();
    *GSO.get_or_init(|| {
        let Ok(sock) = new_socket(false) else {
            return false;
        };
        setsockopt_int(sock.as_raw_fd(), libc::SOL_UDP, libc::UDP_SEGMENT, 1200).is_ok()
    })
}

fn new_socket(v6: bool) -> io::Result<OwnedFd> {
    let domain = if v6 { libc::AF_INET6 } else { libc::AF_INET };
    // SAFETY: plain socket(2); the result is checked and wrapped.
    let fd = cvt(unsafe {
        libc::socket(
            domain,
            libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    })?;
    Ok(owned(fd))
}

fn bind_raw(port: u16, v6: bool, count: usize, fwmark: u32) -> io::Result<Vec<UdpSocket>> {
    if port != 0 {
        ensure_port_free(port, v6)?;
    }
    let mut socks: Vec<UdpSocket> = Vec::with_capacity(count);
    let mut port = port;
    for _ in 0..count {
        let sock = bind_one(port, v6, fwmark)?;
        port = sock.port;
        socks.push(sock);
    }
    Ok(socks)
}

/// SO_REUSEPORT lets any process of the same user join a port's group, so a second daemon
/// could silently share our port and split its traffic. A plain bind (no SO_REUSEPORT)
/// fails with EADDRINUSE if anyone holds the port, which is the answer wireguard-go gives.
fn ensure_port_free(port: u16, v6: bool) -> io::Result<()> {
    // The probe socket closes when it drops here, freeing the port for the real group.
    let probe = family_socket(v6)?;
    bind_wildcard(probe.as_raw_fd(), port, v6)
}

/// A UDP socket of one family; IPv6 ones are IPv6-only, since IPv4 has its own sockets.
fn family_socket(v6: bool) -> io::Result<OwnedFd> {
    let fd = new_socket(v6)?;
    if v6 {
        setsockopt_int(fd.as_raw_fd(), libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1)?;
    }
    Ok(fd)
}

/// Binds `raw` to its family's wildcard address on `port`.
fn bind_wildcard(raw: libc::c_int, port: u16, v6: bool) -> io::Result<()> {
    let addr = if v6 {
        SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0))
    } else {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
    };
    let (sa, len) = SockAddr::from_socket_addr(&addr);
    // SAFETY: `sa` is a valid sockaddr of `len` bytes for the call.
    cvt(unsafe { libc::bind(raw, sa.as_ptr(), len) })?;
    Ok(())
}

fn bind_one(port: u16, v6: bool, fwmark: u32) -> io::Result<UdpSocket> {
    let fd = family_socket(v6)?;
    let raw = fd.as_raw_fd();
    setsockopt_int(raw, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
    if fwmark != 0 {
        setsockopt_int(raw, libc::SOL_SOCKET, libc::SO_MARK, fwmark as libc::c_int)?;
    }
    set_buffer_sizes(raw);
    // Every datagram then says which of our addresses it was sent to, so replies can
    // leave from that address (on a host with several, the kernel's default source may
    // be another, which the peer never configured).
    if v6 {
        setsockopt_int(raw, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)?;
    } else {
        setsockopt_int(raw, libc::IPPROTO_IP, libc::IP_PKTINFO, 1)?;
    }
    bind_wildcard(raw, port, v6)?;
    let port = local_addr(raw)?.port();
    Ok(UdpSocket {
        fd,
        v6,
        port,
        gso: AtomicBool::new(probe_gso()),
        gso_refusals: AtomicU64::new(0),
    })
}

/// Big socket buffers: the FORCE variants (root / CAP_NET_ADMIN) go past
/// net.core.[rw]mem_max; without privilege fall back to the capped ones.
/// Failure is not fatal, only slower, so errors are ignored.
fn set_buffer_sizes(fd: RawFd) {
    for (force, plain) in [
        (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
        (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
    ] {
        if setsockopt_int(fd, libc::SOL_SOCKET, force, SOCKET_BUFFER).is_err() {
            let _ = setsockopt_int(fd, libc::SOL_SOCKET, plain, SOCKET_BUFFER);
        }
    }
}

fn local_addr(fd: RawFd) -> io::Result<SocketAddr> {
    let mut sa = SockAddr::zeroed();
    let mut len = SockAddr::CAPACITY;
    // SAFETY: `sa` has room for `len` bytes; the kernel writes at most that
    // and updates `len`.
    cvt(unsafe { libc::getsockname(fd, sa.as_mut_ptr(), &mut len) })?;
    sa.socket_addr()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "getsockname: not an IP address"))
}

impl UdpSocket {
    /// The bound port (never 0).
    pub fn local_port(&self) -> u16 {
        self.port
    }

    /// The bound address (wildcard IP, real port).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        local_addr(self.fd.as_raw_fd())
    }

    /// Whether this is an IPv6 (V6ONLY) socket; it sends only to IPv6
    /// destinations, an IPv4 socket only to IPv4 ones.
    pub fn is_v6(&self) -> bool {
        self.v6
    }

    /// Sets SO_MARK (0 clears it) for policy routing of outgoing packets
    /// (wg-quick's default-route rules). Needs CAP_NET_ADMIN.
    pub fn set_fwmark(&self, mark: u32) -> io::Result<()> {
        setsockopt_int(
            self.fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MARK,
            mark as libc::c_int,
        )
    }

    /// Reads SO_MARK back.
    pub fn fwmark(&self) -> io::Result<u32> {
        getsockopt_int(self.fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_MARK).map(|m| m as u32)
    }

    /// Turns on UDP GRO (Linux ≥ 5.0): the kernel may then hand one receive
    /// buffer several datagrams from one sender, all `segment_size` long but
    /// the last. Returns `Ok(false)` if the kernel lacks it. With GRO on,
    /// receive buffers must hold 65535 bytes, or coalesced batches are
    /// truncated ([`RecvMeta::truncated`]) and lost.
    pub fn enable_gro(&self) -> io::Result<bool> {
        match setsockopt_int(self.fd.as_raw_fd(), libc::SOL_UDP, libc::UDP_GRO, 1) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENOPROTOOPT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether sends with a `segment_size` still go out as one GSO batch
    /// (true after a successful [`probe_gso`] until the kernel refuses with
    /// EIO; they are split into datagrams otherwise).
    pub fn gso_enabled(&self) -> bool {
        self.gso.load(Ordering::Relaxed)
    }

    /// Turns GSO off for this socket (for tests and a config switch).
    pub fn disable_gso(&self) {
        self.gso.store(false, Ordering::Relaxed);
    }

    /// Receives up to `min(bufs.len(), metas.len(), BATCH)` datagrams with
    /// one recvmmsg. Datagram i lands in `bufs[i]` (a `&mut [u8]` or `Vec<u8>`) and
    /// `metas[i]` tells its sender, our address it was sent to, its length and
    /// GRO segment size. Returns how
    /// many arrived; `WouldBlock` when none is waiting. Errors queued on the
    /// socket by ICMP (ECONNREFUSED, EHOSTUNREACH...) come back here once
    /// each and are not fatal.
    pub fn recv_batch<B: RecvBuf>(
        &self,
        bufs: &mut [B],
        metas: &mut [RecvMeta],
    ) -> io::Result<usize> {
        mmsg::recv_batch(self.fd.as_raw_fd(), bufs, metas)
    }

    /// Sends `msgs` in order with sendmmsg, as few calls as needed. A
    /// `Transmit` with a `segment_size` goes out as one UDP GSO send while
    /// GSO works, else split into datagrams: if the kernel rejects a GSO
    /// send (EIO, EINVAL, EMSGSIZE) it is split and sent again, so nothing
    /// is lost; EIO also turns GSO off for this socket.
    ///
    /// Returns `Ok(n)`, n ≥ 1: the first n transmits were sent (the
    /// caller calls again with the rest, waiting for WRITABLE if needed).
    /// `Err(e)`: `msgs[0]` was not sent; on `WouldBlock` try it again when
    /// writable, on any other error drop it and go on with the rest. A
    /// split transmit interrupted half way is reported unsent, so some of its
    /// datagrams may be sent twice; WireGuard's replay check drops those.
    pub fn send_batch(&self, msgs: &[Transmit<'_>]) -> io::Result<usize> {
        mmsg::send_batch(self.fd.as_raw_fd(), &self.gso, &self.gso_refusals, msgs)
    }

    /// How many GSO sends the kernel refused (and that went out split) since the last
    /// call: the counting is left to the caller, who knows whose counters they are.
    pub fn take_gso_refusals(&self) -> u64 {
        // A plain load first: the common answer is 0, without a locked instruction.
        if self.gso_refusals.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        self.gso_refusals.swap(0, Ordering::Relaxed)
    }
}

impl AsFd for UdpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
