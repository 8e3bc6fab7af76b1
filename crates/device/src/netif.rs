//! Interface-level ioctls: MTU, link up, name → index; and the one per-interface sysctl
//! we set, IPv6 address generation.
//!
//! These go through a throwaway AF_INET datagram socket, as wireguard-go and
//! `ifconfig` do: the SIOC*IF* ioctls are served by any socket, and the socket
//! belongs to the calling thread's network namespace, which is the namespace
//! whose interface is meant. They are setup calls, so opening a socket per
//! call costs nothing that matters and keeps no descriptor alive.
//!
//! wireguard-go sets MTU 1420 on the TUN it creates and leaves bringing the
//! link up to `ip`/`wg-quick`; the daemon decides which of these to call.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use crate::sys::{context, cvt, ioctl_ifreq, owned, IfReq};

fn ioctl_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call; the result is checked and wrapped.
    let fd = cvt(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    Ok(owned(fd))
}

/// Sets the MTU of interface `name` (SIOCSIFMTU).
pub fn set_mtu(name: &str, mtu: u32) -> io::Result<()> {
    let sock = ioctl_socket()?;
    let mut req = IfReq::new(name)?;
    req.data.int = libc::c_int::try_from(mtu)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "MTU out of range"))?;
    ioctl_ifreq(sock.as_raw_fd(), libc::SIOCSIFMTU, &mut req)
        .map_err(|e| context(e, format_args!("set MTU {mtu} on {name}")))
}

/// Reads the MTU of interface `name` (SIOCGIFMTU).
pub fn mtu(name: &str) -> io::Result<u32> {
    let sock = ioctl_socket()?;
    let mut req = IfReq::new(name)?;
    ioctl_ifreq(sock.as_raw_fd(), libc::SIOCGIFMTU, &mut req)
        .map_err(|e| context(e, format_args!("get MTU of {name}")))?;
    // SAFETY: SIOCGIFMTU filled the `int` member (ifr_mtu).
    Ok(unsafe { req.data.int } as u32)
}

/// Brings interface `name` up (or down): read-modify-write of IFF_UP via
/// SIOCGIFFLAGS/SIOCSIFFLAGS, so other flags are left as they are.
pub fn set_up(name: &str, up: bool) -> io::Result<()> {
    let sock = ioctl_socket()?;
    let mut req = IfReq::new(name)?;
    ioctl_ifreq(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req)
        .map_err(|e| context(e, format_args!("get flags of {name}")))?;
    // SAFETY: SIOCGIFFLAGS filled the `short` member (ifr_flags).
    let flags = unsafe { req.data.flags };
    let up_flag = libc::IFF_UP as libc::c_short;
    req.data.flags = if up {
        flags | up_flag
    } else {
        flags & !up_flag
    };
    ioctl_ifreq(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &mut req)
        .map_err(|e| context(e, format_args!("set {name} up={up}")))
}

/// Whether interface `name` is up (IFF_UP set).
pub fn is_up(name: &str) -> io::Result<bool> {
    let sock = ioctl_socket()?;
    let mut req = IfReq::new(name)?;
    ioctl_ifreq(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req)
        .map_err(|e| context(e, format_args!("get flags of {name}")))?;
    // SAFETY: SIOCGIFFLAGS filled the `short` member (ifr_flags).
    Ok(unsafe { req.data.flags } & libc::IFF_UP as libc::c_short != 0)
}

/// The index of interface `name` in the calling thread's network namespace,
/// or `None` if no such interface exists (if_nametoindex).
pub fn interface_index(name: &str) -> Option<u32> {
    let cname = CString::new(name).ok()?;
    // SAFETY: `cname` is a valid NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    (index != 0).then_some(index)
}

/// Whether an interface called `name` exists (in the calling thread's
/// network namespace).
pub fn interface_exists(name: &str) -> bool {
    interface_index(name).is_some()
}

/// Tells the kernel to generate no IPv6 addresses of its own on `name`
/// (`addr_gen_mode` = 1, IN6_ADDR_GEN_MODE_NONE; the sysctl is the same setting as
/// netlink's IFLA_INET6_ADDR_GEN_MODE). Must run before the link first goes up.
///
/// A TUN gets a random link-local address otherwise: WireGuard has no link layer to
/// need one (the kernel's wg interfaces have none), every `wg-quick save` would write
/// it into the configuration as one more `Address = fe80::…/64`, and its router
/// solicitations go into the tunnel, where no peer takes them (counted as drops).
/// Without IPv6 in the kernel there is nothing to turn off.
pub fn disable_ipv6_address_generation(name: &str) -> io::Result<()> {
    let path = format!("/proc/sys/net/ipv6/conf/{name}/addr_gen_mode");
    match std::fs::write(&path, "1") {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other.map_err(|e| context(e, format_args!("write {path}"))),
    }
}
