//! recvmmsg/sendmmsg with UDP_GRO and UDP_SEGMENT control messages.
//!
//! All per-call scratch (headers, iovecs, addresses, control buffers) lives
//! in fixed arrays on the stack, so a batch allocates nothing.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::cmsg::{self, Control};
use crate::sockaddr::{canonical, SockAddr};
use crate::sys::cvt;
use ferrotun_proto::source::LocalSource;

/// Most datagrams (or GSO batches) per recvmmsg/sendmmsg call; the worker
/// sizes its batch (TUN reads between two sends) to match one such call.
pub const BATCH: usize = 64;

/// What arrived with one datagram of a [`crate::UdpSocket::recv_batch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecvMeta {
    /// The sender.
    pub src: SocketAddr,
    /// Bytes received into the buffer (several datagrams when coalesced).
    pub len: usize,
    /// Size of each coalesced datagram (the last may be shorter): iterate
    /// `buf.chunks(segment_size)`. Equals `len` when GRO did not coalesce.
    pub segment_size: usize,
    /// The datagram(s) did not fit the buffer and were cut (MSG_TRUNC).
    pub truncated: bool,
    /// Our address the datagram was sent to and the interface it arrived on (from
    /// IP_PKTINFO / IPV6_RECVPKTINFO, which the data-plane sockets turn on).
    pub dst: Option<LocalSource>,
}

impl Default for RecvMeta {
    fn default() -> Self {
        RecvMeta {
            src: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)),
            len: 0,
            segment_size: 0,
            truncated: false,
            dst: None,
        }
    }
}

/// One datagram, or with `segment_size` several equal ones (the last may be
/// shorter) sent as a single UDP GSO buffer, to `dst`.
///
/// GSO limits (kernel): at most 64 segments per buffer (128 on newer
/// kernels), `data.len()` at most ~65500 bytes, each segment plus IP/UDP
/// headers within the route MTU. Beyond them the kernel refuses the buffer
/// (EINVAL, EMSGSIZE) and `send_batch` sends it as separate datagrams, which
/// works but costs one datagram per segment.
///
/// An IPv4-mapped IPv6 `dst` (`[::ffff:a.b.c.d]:p`) is sent as the IPv4
/// address it is, so it belongs on an IPv4 socket.
///
/// With `src` the datagrams leave from that address of ours (an IP_PKTINFO or
/// IPV6_PKTINFO cmsg); a send the kernel refuses because of it fails like any
/// other (see [`crate::udp::is_source_error`]).
#[derive(Clone, Copy, Debug)]
pub struct Transmit<'a> {
    pub dst: SocketAddr,
    pub src: Option<LocalSource>,
    pub data: &'a [u8],
    pub segment_size: Option<u16>,
}

impl Transmit<'_> {
    /// How many datagrams this transmit carries (a GSO train carries several).
    pub fn datagrams(&self) -> usize {
        match self.segment_size {
            Some(seg) if seg > 0 => self.data.len().div_ceil(usize::from(seg)).max(1),
            _ => 1,
        }
    }
}

fn empty_mmsghdr() -> libc::mmsghdr {
    // SAFETY: mmsghdr is a plain C struct; all-zero (null pointers, zero
    // lengths) is a valid "empty" value.
    unsafe { std::mem::zeroed() }
}

/// A buffer [`crate::UdpSocket::recv_batch`] can receive into.
pub trait RecvBuf {
    /// Where the datagram is written.
    fn recv_region(&mut self) -> &mut [u8];
    /// Told how many bytes arrived (also in [`RecvMeta::len`]).
    fn set_received(&mut self, len: usize);
}

/// Receives into the whole slice; the length is only in [`RecvMeta::len`].
impl RecvBuf for &mut [u8] {
    #[inline]
    fn recv_region(&mut self) -> &mut [u8] {
        self
    }
    #[inline]
    fn set_received(&mut self, _len: usize) {}
}

/// Receives into the vector's current contents (its `len()`, not its
/// capacity); the vector is not resized, the length is in [`RecvMeta::len`].
impl RecvBuf for Vec<u8> {
    #[inline]
    fn recv_region(&mut self) -> &mut [u8] {
        self
    }
    #[inline]
    fn set_received(&mut self, _len: usize) {}
}

pub(crate) fn recv_batch<B: RecvBuf>(
    fd: RawFd,
    bufs: &mut [B],
    metas: &mut [RecvMeta],
) -> io::Result<usize> {
    let n = bufs.len().min(metas.len()).min(BATCH);
    if n == 0 {
        return Ok(0);
    }
    let mut hdrs = [empty_mmsghdr(); BATCH];
    let mut iovs = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; BATCH];
    let mut names = [SockAddr::zeroed(); BATCH];
    let mut ctrl: [Control; BATCH] = [Control::default(); BATCH];
    for i in 0..n {
        let spare = bufs[i].recv_region();
        iovs[i] = libc::iovec {
            iov_base: spare.as_mut_ptr().cast(),
            iov_len: spare.len(),
        };
        let h = &mut hdrs[i].msg_hdr;
        h.msg_name = names[i].as_mut_ptr().cast();
        h.msg_namelen = SockAddr::CAPACITY;
        h.msg_iov = &mut iovs[i];
        h.msg_iovlen = 1;
        h.msg_control = ctrl[i].as_mut_ptr().cast();
        h.msg_controllen = std::mem::size_of::<Control>() as _;
    }
    let got = loop {
        // SAFETY: the first n headers point at live, distinct iovecs (into
        // buffers borrowed mutably for this call), address and control
        // buffers of the sizes given; the kernel writes only within them.
        // A null timeout: non-blocking socket, returns what is queued.
        let ret = unsafe { libc::recvmmsg(fd, hdrs.as_mut_ptr(), n as _, 0, std::ptr::null_mut()) };
        match cvt(ret) {
            Ok(k) => break k as usize,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    };
    for i in 0..got {
        let len = hdrs[i].msg_len as usize;
        bufs[i].set_received(len);
        let h = &hdrs[i].msg_hdr;
        let control = cmsg::decode(h);
        metas[i] = RecvMeta {
            src: names[i].socket_addr().unwrap_or(RecvMeta::default().src),
            len,
            segment_size: control.segment.unwrap_or(len),
            truncated: h.msg_flags & libc::MSG_TRUNC != 0,
            dst: control.dst,
        };
    }
    Ok(got)
}

/// Position in a `&[Transmit]`: which message, and how many of its bytes
/// already went out (only nonzero while splitting a GSO buffer).
#[derive(Clone, Copy, Default)]
struct Cursor {
    msg: usize,
    offset: usize,
}

/// `refused` counts the GSO sends the kernel refused and that went out split instead.
pub(crate) fn send_batch(
    fd: RawFd,
    gso: &AtomicBool,
    refused: &AtomicU64,
    msgs: &[Transmit<'_>],
) -> io::Result<usize> {
    let mut cur = Cursor::default();
    // The message whose GSO send was refused; it goes out split.
    let mut split_msg = usize::MAX;
    while cur.msg < msgs.len() {
        let gso_on = gso.load(Ordering::Relaxed);
        match send_some(fd, msgs, cur, |i| gso_on && i != split_msg) {
            Ok(next) => cur = next,
            Err((e, used_gso)) => {
                let errno = e.raw_os_error();
                let gso_refused = matches!(errno, Some(libc::EIO | libc::EINVAL | libc::EMSGSIZE));
                if used_gso && gso_refused {
                    if errno == Some(libc::EIO) && gso.swap(false, Ordering::Relaxed) {
                        tracing::warn!(
                            "UDP GSO refused with EIO; sending datagrams one by one on this socket"
                        );
                    }
                    split_msg = cur.msg;
                    refused.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                if cur.msg > 0 {
                    return Ok(cur.msg);
                }
                return Err(e);
            }
        }
    }
    Ok(msgs.len())
}

/// One sendmmsg from `cur`: builds up to BATCH headers (whole messages with
/// a UDP_SEGMENT cmsg where `use_gso(i)`, else one header per segment) and
/// returns the cursor after what the kernel took. On failure (nothing sent)
/// returns the error and whether the first header carried GSO.
fn send_some(
    fd: RawFd,
    msgs: &[Transmit<'_>],
    mut cur: Cursor,
    use_gso: impl Fn(usize) -> bool,
) -> Result<Cursor, (io::Error, bool)> {
    let mut hdrs = [empty_mmsghdr(); BATCH];
    let mut iovs = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; BATCH];
    let mut names = [SockAddr::zeroed(); BATCH];
    let mut ctrl: [Control; BATCH] = [Control::default(); BATCH];
    // Cursor after each header, to find where a partial send stopped.
    let mut after = [Cursor::default(); BATCH];
    let mut first_gso = false;
    let mut n = 0;
    while n < BATCH && cur.msg < msgs.len() {
        let m = &msgs[cur.msg];
        let rest = m.data.get(cur.offset..).unwrap_or_default();
        let seg = m.segment_size.map_or(0, usize::from);
        let gso = seg > 0 && rest.len() > seg && use_gso(cur.msg);
        let piece = if gso || seg == 0 {
            rest
        } else {
            &rest[..rest.len().min(seg)]
        };
        let (sa, sa_len) = SockAddr::from_socket_addr(&canonical(m.dst));
        names[n] = sa;
        iovs[n] = libc::iovec {
            iov_base: piece.as_ptr() as *mut libc::c_void,
            iov_len: piece.len(),
        };
        let h = &mut hdrs[n].msg_hdr;
        h.msg_name = names[n].as_mut_ptr().cast();
        h.msg_namelen = sa_len;
        h.msg_iov = &mut iovs[n];
        h.msg_iovlen = 1;
        let segment = gso.then_some(seg as u16);
        let control_len = cmsg::encode(&mut ctrl[n], segment, m.src);
        if control_len > 0 {
            h.msg_control = ctrl[n].as_mut_ptr().cast();
            h.msg_controllen = control_len as _;
        }
        first_gso |= gso && n == 0;
        cur.offset += piece.len();
        if cur.offset >= m.data.len() {
            cur = Cursor {
                msg: cur.msg + 1,
                offset: 0,
            };
        }
        after[n] = cur;
        n += 1;
    }
    loop {
        // SAFETY: the first n headers point at live iovecs over borrowed
        // message data (only read by the kernel), addresses of the lengths
        // given, and control buffers holding well-formed cmsgs (or none).
        let ret = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), n as _, 0) };
        match cvt(ret) {
            Ok(k) if k > 0 => return Ok(after[k as usize - 1]),
            Ok(_) => return Err((io::Error::from(io::ErrorKind::WouldBlock), first_gso)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err((e, first_gso)),
        }
    }
}
