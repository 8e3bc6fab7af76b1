//! Multi-queue TUN device: one non-blocking descriptor per worker.
//!
//! Every queue is a separate open of `/dev/net/tun` attached to the same
//! interface with `IFF_TUN | IFF_NO_PI | IFF_MULTI_QUEUE`; the kernel spreads
//! flows over the queues by hash, so one flow stays on one worker.
//!
//! The interface is not persistent: it disappears when the last queue is
//! closed, and when someone deletes it (`ip link del`) every queue turns
//! unusable; see [`is_gone`].

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use std::time::{Duration, Instant};

use crate::netif::{disable_ipv6_address_generation, interface_exists, interface_index};
use crate::sys::{context, cvt, cvt_size, ioctl_ifreq, owned, retry, IfReq};
use crate::vnet::VNET_HDR_LEN;

const TUN_PATH: &[u8] = b"/dev/net/tun\0";
/// Kernel limit on queues per TUN (MAX_TAP_QUEUES).
pub const MAX_QUEUES: usize = 256;

/// TCP segmentation offloads we ask for, plus checksum offload they need.
const OFFLOAD_TCP: libc::c_uint = libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6;
/// UDP segmentation offload (kernel ≥ 6.2); tried first, dropped on EINVAL.
const OFFLOAD_UDP: libc::c_uint = libc::TUN_F_USO4 | libc::TUN_F_USO6;

/// A multi-queue TUN interface and all its queues.
#[derive(Debug)]
pub struct Tun {
    name: String,
    index: u32,
    offloads: libc::c_uint,
    queues: Vec<TunQueue>,
}

/// One queue of a [`Tun`]: an owned, non-blocking, close-on-exec descriptor.
///
/// When [`TunQueue::vnet_hdr`] is true, every packet read starts with a
/// 10-byte [`crate::VirtioNetHdr`] and every packet written must start with
/// one (use [`crate::VirtioNetHdr::NONE`] for a plain packet).
#[derive(Debug)]
pub struct TunQueue {
    fd: OwnedFd,
    vnet_hdr: bool,
}

impl Tun {
    /// Creates TUN `name` with `queues` queues and no offloads: reads and
    /// writes carry bare IP packets of at most MTU bytes. An empty `name`
    /// lets the kernel pick `tunN`; the real name is [`Tun::name`].
    ///
    /// If a multi-queue TUN of that name already exists, the queues attach
    /// to it. A persistent one with no queue attached (`ip tuntap add ...
    /// multi_queue`) takes our flags; one that another process has queues on
    /// keeps its own: [`Tun::vnet_hdr`] tells whether it uses virtio-net
    /// headers either way.
    pub fn create(name: &str, queues: usize) -> io::Result<Tun> {
        Self::open(name, queues, false).map_err(OpenError::into_io)
    }

    /// Like [`Tun::create`], but asks for IFF_VNET_HDR and TCP (and, where
    /// the kernel has it, UDP) segmentation offload, so reads can return
    /// super-packets of up to 64 KiB with a GSO header. Falls back to the
    /// plain device when the kernel refuses; check [`Tun::vnet_hdr`].
    ///
    /// With offloads on, read buffers must hold `VNET_HDR_LEN + 65535`
    /// bytes, or super-packets are cut short (and so lost).
    pub fn create_with_offload(name: &str, queues: usize) -> io::Result<Tun> {
        let existed = !name.is_empty() && interface_exists(name);
        match Self::open(name, queues, true) {
            Err(OpenError::Offload(e)) => {
                tracing::debug!(%name, error = %e, "TUN offloads unavailable, using plain TUN");
                // If the failed attempt created the interface, its queues are
                // closed now, but a fork in another thread may hold them
                // (until its exec) and with them the interface: wait for the
                // name to be free before creating it anew.
                let deadline = Instant::now() + Duration::from_secs(1);
                while !existed
                    && !name.is_empty()
                    && interface_exists(name)
                    && Instant::now() < deadline
                {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Self::open(name, queues, false)
            }
            other => other,
        }
        .map_err(OpenError::into_io)
    }

    /// Adopts an already configured queue descriptor (e.g. inherited through
    /// `WG_TUN_FD` by a re-executed daemon) and attaches `queues - 1` more
    /// queues to the same interface, with the same flags (more than one
    /// queue needs a TUN made with IFF_MULTI_QUEUE). The descriptor is
    /// switched to non-blocking mode. If it uses virtio-net headers, the
    /// offloads are set again (there is no ioctl to read them back).
    pub fn from_fd(fd: OwnedFd, queues: usize) -> io::Result<Tun> {
        let (flags, name) =
            get_iff(fd.as_raw_fd()).map_err(|e| context(e, "TUNGETIFF on inherited TUN fd"))?;
        let vnet_hdr = flags & libc::IFF_VNET_HDR != 0;
        set_nonblocking(fd.as_raw_fd())?;
        // There is no TUNGETOFFLOAD: set them again to learn what is in force.
        let offloads = if vnet_hdr {
            enable_offloads(fd.as_raw_fd())?
        } else {
            0
        };
        let mut tun = Tun {
            index: 0,
            offloads,
            queues: vec![TunQueue { fd, vnet_hdr }],
            name,
        };
        tun.attach_rest(queues, flags & !libc::IFF_VNET_HDR, vnet_hdr)?;
        tun.index = interface_index(&tun.name).unwrap_or(0);
        Ok(tun)
    }

    fn open(name: &str, queues: usize, offload: bool) -> Result<Tun, OpenError> {
        if queues == 0 || queues > MAX_QUEUES {
            return Err(OpenError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("TUN queue count {queues} not in 1..={MAX_QUEUES}"),
            )));
        }
        let flags = libc::IFF_TUN | libc::IFF_NO_PI | libc::IFF_MULTI_QUEUE;
        let fd = open_queue(name, flags | if offload { libc::IFF_VNET_HDR } else { 0 })?;
        // Flags are the device's, set by whoever created it: read them back
        // in case we attached to an existing device.
        let (actual, name) = get_iff(fd.as_raw_fd())?;
        let vnet_hdr = actual & libc::IFF_VNET_HDR != 0;
        if offload && !vnet_hdr {
            return Err(OpenError::Offload(io::Error::new(
                io::ErrorKind::Unsupported,
                "existing TUN without IFF_VNET_HDR",
            )));
        }
        let mut tun = Tun {
            name,
            index: 0,
            offloads: 0,
            queues: vec![TunQueue { fd, vnet_hdr }],
        };
        if offload {
            // Offload state is per device, so the first queue sets it for all.
            tun.offloads =
                enable_offloads(tun.queues[0].fd.as_raw_fd()).map_err(OpenError::Offload)?;
        }
        tun.attach_rest(queues, flags, vnet_hdr)?;
        tun.index = interface_index(&tun.name).unwrap_or(0);
        // Not fatal: the tunnel works with a link-local address, it only carries one
        // more than it should.
        if let Err(e) = disable_ipv6_address_generation(&tun.name) {
            tracing::warn!(name = %tun.name, error = %e, "the kernel may give this TUN a link-local address");
        }
        Ok(tun)
    }

    fn attach_rest(&mut self, queues: usize, flags: libc::c_int, vnet_hdr: bool) -> io::Result<()> {
        // Flags other than the queue ones come from the first attach; later
        // attaches must still pass IFF_MULTI_QUEUE and a matching type.
        let flags = flags | if vnet_hdr { libc::IFF_VNET_HDR } else { 0 };
        while self.queues.len() < queues {
            let fd = open_queue(&self.name, flags)?;
            self.queues.push(TunQueue { fd, vnet_hdr });
        }
        Ok(())
    }

    /// The interface name the kernel gave (equal to the requested one unless
    /// that was empty or a `%d` pattern).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The interface index (0 if it could not be read, which only happens
    /// if the interface vanished during creation).
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Whether packets carry a 10-byte virtio-net header (offloads on).
    pub fn vnet_hdr(&self) -> bool {
        self.queues.first().is_some_and(|q| q.vnet_hdr)
    }

    /// The TUN_F_* offload bits in force (0 without offloads). Includes
    /// `libc::TUN_F_USO4 | libc::TUN_F_USO6` when the kernel took UDP
    /// segmentation offload too; reads may then carry GSO_UDP_L4 packets.
    pub fn offloads(&self) -> u32 {
        self.offloads
    }

    /// The queues, in creation order.
    pub fn queues(&self) -> &[TunQueue] {
        &self.queues
    }

    /// Hands out the queues (one per worker). The interface lives while any
    /// queue is open.
    pub fn into_queues(self) -> Vec<TunQueue> {
        self.queues
    }
}

impl TunQueue {
    /// Reads one packet (with its virtio-net header when
    /// [`TunQueue::vnet_hdr`]). `WouldBlock` when the queue is empty; see
    /// [`is_gone`] for the error after the interface was deleted. A packet
    /// longer than `buf` is silently cut to `buf.len()` (the rest is lost),
    /// so size buffers for the MTU, or `VNET_HDR_LEN + 65535` with offloads.
    #[inline]
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        retry(|| {
            // SAFETY: buf is a valid writable region of buf.len() bytes.
            cvt_size(unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) })
        })
    }

    /// Writes one packet (prefixed by a virtio-net header when
    /// [`TunQueue::vnet_hdr`]). In practice never `WouldBlock`: the TUN's
    /// send buffer is unlimited, and the kernel drops what its backlog
    /// cannot take. An empty write is EINVAL; a malformed packet is accepted
    /// and dropped by the IP stack.
    #[inline]
    pub fn write(&self, packet: &[u8]) -> io::Result<usize> {
        retry(|| {
            // SAFETY: packet is a valid readable region of packet.len() bytes.
            cvt_size(unsafe {
                libc::write(self.fd.as_raw_fd(), packet.as_ptr().cast(), packet.len())
            })
        })
    }

    /// Whether this queue's packets carry a [`crate::VirtioNetHdr`].
    #[inline]
    pub fn vnet_hdr(&self) -> bool {
        self.vnet_hdr
    }

    /// Bytes of virtio-net header in front of each packet (0 or 10).
    #[inline]
    pub fn hdr_len(&self) -> usize {
        if self.vnet_hdr {
            VNET_HDR_LEN
        } else {
            0
        }
    }

    /// Gives up ownership of the descriptor (e.g. to pass it to a
    /// re-executed daemon).
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }
}

impl AsFd for TunQueue {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for TunQueue {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Whether `err`, returned by [`TunQueue::read`]/[`TunQueue::write`], means
/// the interface is gone (deleted with `ip link del`, or its namespace
/// destroyed) and the worker should trigger shutdown.
///
/// Observed on Linux 6.12: once the interface is unregistered, each queue fd
/// is detached; epoll reports `EPOLLERR` on it (level-triggered, so it keeps
/// waking), and read/write fail with `EBADFD` ("File descriptor in bad
/// state"), which is also what wireguard-go checks. It never recovers: an
/// interface created again under the same name is a different device.
pub fn is_gone(err: &io::Error) -> bool {
    err.raw_os_error() == Some(libc::EBADFD)
}

enum OpenError {
    /// Failure that has nothing to do with offloads.
    Io(io::Error),
    /// The device opened, but offloads could not be enabled.
    Offload(io::Error),
}

impl OpenError {
    fn into_io(self) -> io::Error {
        match self {
            OpenError::Io(e) | OpenError::Offload(e) => e,
        }
    }
}

impl From<io::Error> for OpenError {
    fn from(e: io::Error) -> Self {
        OpenError::Io(e)
    }
}

/// Opens /dev/net/tun and attaches it, non-blocking, to `name` with `flags`.
fn open_queue(name: &str, flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: TUN_PATH is NUL-terminated; the result is checked and wrapped.
    let fd = cvt(unsafe {
        libc::open(
            TUN_PATH.as_ptr().cast(),
            libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    })
    .map_err(|e| context(e, "open /dev/net/tun"))?;
    let fd = owned(fd);
    let mut req = IfReq::new(name)?;
    req.data.flags = flags as libc::c_short;
    ioctl_ifreq(fd.as_raw_fd(), libc::TUNSETIFF as _, &mut req)
        .map_err(|e| context(e, format_args!("TUNSETIFF {name:?}")))?;
    Ok(fd)
}

/// TUNGETIFF: the device's IFF_* flags and name, from any attached queue.
fn get_iff(fd: RawFd) -> io::Result<(libc::c_int, String)> {
    let mut req = IfReq::new("")?;
    ioctl_ifreq(fd, libc::TUNGETIFF as _, &mut req)?;
    // SAFETY: TUNGETIFF fills ifr_flags (a short; every bit pattern valid).
    let flags = libc::c_int::from(unsafe { req.data.flags }) & 0xffff;
    Ok((flags, req.name()))
}

/// Sets the 10-byte header size and the widest offload set the kernel takes.
fn enable_offloads(fd: RawFd) -> io::Result<libc::c_uint> {
    let hdr_sz = VNET_HDR_LEN as libc::c_int;
    // SAFETY: TUNSETVNETHDRSZ reads one int through the pointer.
    cvt(unsafe {
        libc::ioctl(
            fd,
            libc::TUNSETVNETHDRSZ as _,
            &hdr_sz as *const libc::c_int,
        )
    })
    .map_err(|e| context(e, "TUNSETVNETHDRSZ"))?;
    match set_offload(fd, OFFLOAD_TCP | OFFLOAD_UDP) {
        Ok(()) => return Ok(OFFLOAD_TCP | OFFLOAD_UDP),
        // Kernels before 6.2 reject the USO bits with EINVAL.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
        Err(e) => return Err(context(e, "TUNSETOFFLOAD")),
    }
    set_offload(fd, OFFLOAD_TCP)
        .map(|()| OFFLOAD_TCP)
        .map_err(|e| context(e, "TUNSETOFFLOAD"))
}

fn set_offload(fd: RawFd, offloads: libc::c_uint) -> io::Result<()> {
    // SAFETY: TUNSETOFFLOAD takes its argument by value (an unsigned long);
    // no memory is passed.
    cvt(unsafe { libc::ioctl(fd, libc::TUNSETOFFLOAD as _, offloads as libc::c_ulong) }).map(|_| ())
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFL/F_SETFL on a descriptor we own; no pointers involved.
    let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) })?;
    Ok(())
}
