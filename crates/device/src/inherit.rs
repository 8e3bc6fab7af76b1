//! Passing descriptors to a re-executed child, the way wireguard-go daemonises: the parent
//! creates the TUN and the configuration socket (so it can report failures), clears
//! close-on-exec on them and names them in the child's environment.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Lets `fd` survive `exec` (clears FD_CLOEXEC).
pub fn keep_across_exec(fd: &impl AsRawFd) -> io::Result<()> {
    let raw = fd.as_raw_fd();
    // SAFETY: F_GETFD/F_SETFD on a descriptor the caller owns; only flags change.
    let flags = unsafe { libc::fcntl(raw, libc::F_GETFD) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(raw, libc::F_SETFD, flags & !libc::FD_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Takes ownership of the descriptor whose number is in environment variable `var`, if it
/// names an open descriptor; marks it close-on-exec again so it goes no further.
pub fn take_inherited(var: &str) -> io::Result<Option<OwnedFd>> {
    let Ok(text) = std::env::var(var) else {
        return Ok(None);
    };
    let raw: RawFd = text.trim().parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{var}={text} is not a descriptor number"),
        )
    })?;
    // SAFETY: F_GETFD only queries; it fails with EBADF for a closed descriptor.
    let flags = unsafe { libc::fcntl(raw, libc::F_GETFD) };
    if raw < 0 || flags < 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{var}={text} is not an open descriptor"),
        ));
    }
    // SAFETY: the parent handed this open descriptor to us alone (it exited after exec'ing
    // us), so nothing else in this process owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: setting FD_CLOEXEC on the descriptor we now own.
    unsafe { libc::fcntl(raw, libc::F_SETFD, flags | libc::FD_CLOEXEC) };
    std::env::remove_var(var);
    Ok(Some(fd))
}
