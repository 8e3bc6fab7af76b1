//! Small helpers shared by the syscall wrappers: errno conversion, EINTR
//! retry, and the `ifreq` layout used by the interface ioctls.

use std::ffi::c_char;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// Converts a `-1`-means-errno return value into `io::Result`.
#[inline]
pub(crate) fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Like [`cvt`] for calls returning `ssize_t` (read, write, sendmsg...).
#[inline]
pub(crate) fn cvt_size(ret: libc::ssize_t) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

/// Runs `f` again while it fails with EINTR. A signal landing mid-syscall is
/// not an error for any caller in this crate; shutdown is observed through
/// [`crate::Cancel`], not through EINTR.
#[inline]
pub(crate) fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Wraps a freshly returned descriptor (after `cvt`) so it is closed on drop.
#[inline]
pub(crate) fn owned(fd: libc::c_int) -> OwnedFd {
    debug_assert!(fd >= 0);
    // SAFETY: callers pass a descriptor just returned by a successful
    // syscall; nothing else owns it yet.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Maximum interface name length including the NUL (IFNAMSIZ).
pub(crate) const IFNAMSIZ: usize = 16;

/// `struct ifreq`: a 16-byte name followed by a 24-byte union. Written out
/// here instead of using `libc::ifreq` because the libc crate does not define
/// it for every Linux target libc, and we only ever need the name plus one
/// `short` (flags) or one `int` (MTU, ifindex) at the start of the union.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct IfReq {
    pub name: [c_char; IFNAMSIZ],
    pub data: IfReqData,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) union IfReqData {
    pub flags: libc::c_short,
    pub int: libc::c_int,
    // The kernel's union is 24 bytes (struct ifmap / sockaddr); pad to it so
    // the kernel never reads or writes past our struct.
    pub _pad: [u8; 24],
}

impl IfReq {
    /// Builds a zeroed request for `name`. Fails with `InvalidInput` when the
    /// name is too long for IFNAMSIZ or contains a NUL. An empty name is
    /// allowed: TUNSETIFF then picks `tunN` itself.
    pub fn new(name: &str) -> io::Result<IfReq> {
        let bytes = name.as_bytes();
        if bytes.len() >= IFNAMSIZ || bytes.contains(&0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid interface name {name:?} (at most 15 bytes, no NUL)"),
            ));
        }
        let mut req = IfReq {
            name: [0; IFNAMSIZ],
            data: IfReqData { _pad: [0; 24] },
        };
        for (dst, src) in req.name.iter_mut().zip(bytes) {
            *dst = *src as c_char;
        }
        Ok(req)
    }

    /// The name as the kernel filled it in (up to the first NUL).
    pub fn name(&self) -> String {
        let bytes: Vec<u8> = self
            .name
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Issues an `ifreq` ioctl on `fd`.
pub(crate) fn ioctl_ifreq(
    fd: libc::c_int,
    request: libc::c_ulong,
    req: &mut IfReq,
) -> io::Result<()> {
    // SAFETY: `req` is a valid, exclusively borrowed `struct ifreq` of the
    // full kernel size (40 bytes), which is what every ifreq ioctl reads and
    // writes; the kernel does not keep the pointer after returning.
    retry(|| cvt(unsafe { libc::ioctl(fd, request as _, req as *mut IfReq) })).map(|_| ())
}

/// Adds what was being done to an error, keeping its kind (so callers can
/// still match `AddrInUse`, `PermissionDenied`, ...).
pub(crate) fn context(err: io::Error, what: impl std::fmt::Display) -> io::Error {
    io::Error::new(err.kind(), format!("{what}: {err}"))
}

/// Sets an integer socket option.
pub(crate) fn setsockopt_int(
    fd: libc::c_int,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: we pass a pointer to a live c_int and its exact size.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(|_| ())
}

/// Reads an integer socket option.
pub(crate) fn getsockopt_int(
    fd: libc::c_int,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: value/len point to a live c_int and its size; the kernel
    // writes at most `len` bytes.
    cvt(unsafe {
        libc::getsockopt(
            fd,
            level,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    })?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifreq_is_kernel_sized() {
        assert_eq!(std::mem::size_of::<IfReq>(), 40);
    }

    #[test]
    fn ifreq_name_round_trip_and_limits() {
        assert_eq!(IfReq::new("wg0").unwrap().name(), "wg0");
        assert_eq!(IfReq::new("abcdefghijklmno").unwrap().name().len(), 15);
        assert!(IfReq::new("abcdefghijklmnop").is_err());
        assert!(IfReq::new("a\0b").is_err());
    }
}
