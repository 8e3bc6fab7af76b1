//! A raw ICMP or ICMPv6 socket for a thread inside a test namespace (see
//! [`super::inside::spawn_in`]): sees every ICMP message the namespace receives, so a test
//! can check an error's type, code and quoted packet, and count them exactly.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

pub struct IcmpListener {
    fd: OwnedFd,
    v6: bool,
}

/// One received ICMP message: who sent it and the message itself (type, code, checksum,
/// 4 bytes, then the quoted packet).
#[derive(Debug, Clone)]
pub struct Received {
    pub from: IpAddr,
    pub message: Vec<u8>,
}

impl IcmpListener {
    /// Opens a raw socket for ICMP (`v6` false) or ICMPv6 (`v6` true) in the calling
    /// thread's namespace; each receive waits at most `timeout`.
    pub fn open(v6: bool, timeout: Duration) -> io::Result<IcmpListener> {
        let (family, proto) = if v6 {
            (libc::AF_INET6, libc::IPPROTO_ICMPV6)
        } else {
            (libc::AF_INET, libc::IPPROTO_ICMP)
        };
        // SAFETY: plain socket(2); the result is checked before it is wrapped.
        let raw = unsafe { libc::socket(family, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let tv = libc::timeval {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_usec: timeout.subsec_micros() as libc::suseconds_t,
        };
        // SAFETY: `tv` is a valid timeval for the duration of the call.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(IcmpListener { fd, v6 })
    }

    /// The next ICMP message, or `None` after the timeout. An IPv4 raw socket hands over
    /// the IP header too; it is stripped here.
    pub fn recv(&self) -> Option<Received> {
        let mut buf = [0u8; 2048];
        // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
        let mut from: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut from_len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: buf and from are valid writable regions of the sizes passed.
        let n = unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                0,
                (&mut from as *mut libc::sockaddr_storage).cast(),
                &mut from_len,
            )
        };
        if n < 0 {
            return None;
        }
        let data = &buf[..n as usize];
        if self.v6 {
            // SAFETY: the kernel filled an AF_INET6 address into the storage.
            let sin6 =
                unsafe { &*(&from as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(Received {
                from: IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)),
                message: data.to_vec(),
            })
        } else {
            let ihl = usize::from(*data.first()? & 0x0f) * 4;
            let src: [u8; 4] = data.get(12..16)?.try_into().ok()?;
            Some(Received {
                from: IpAddr::V4(Ipv4Addr::from(src)),
                message: data.get(ihl..)?.to_vec(),
            })
        }
    }

    /// Every message that arrives until `deadline` (give the socket a timeout well below
    /// the time left, or the last wait overshoots it).
    pub fn collect_until(&self, deadline: std::time::Instant) -> Vec<Received> {
        let mut all = Vec::new();
        while std::time::Instant::now() < deadline {
            all.extend(self.recv());
        }
        all
    }
}
