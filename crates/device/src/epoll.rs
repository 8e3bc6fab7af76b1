//! A thin epoll wrapper: one instance per worker, a few descriptors each.
//!
//! Registrations are **level-triggered**. A worker reads in bounded batches
//! and may stop before `EAGAIN` — its buffer pool ran dry, or it yields to
//! the other descriptor so neither direction starves. With edge triggering
//! such a worker would never be woken again for the data still queued (the
//! edge already happened); with level triggering the next `wait` simply
//! returns at once. The price is one extra cheap `epoll_wait` per drained
//! descriptor, which batching makes negligible. Level triggering also keeps
//! the [`crate::Cancel`] eventfd (never read) and a deleted TUN's EPOLLERR
//! waking every worker until it exits.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use crate::sys::{cvt, owned};

/// What to wait for on a descriptor. Errors and hang-ups are always reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interest(u32);

impl Interest {
    pub const READABLE: Interest = Interest(libc::EPOLLIN as u32);
    pub const WRITABLE: Interest = Interest(libc::EPOLLOUT as u32);
    pub const BOTH: Interest = Interest((libc::EPOLLIN | libc::EPOLLOUT) as u32);
}

/// One readiness report; a plain `struct epoll_event` so a slice of them is
/// handed to the kernel as is.
#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct Event(libc::epoll_event);

impl Event {
    /// An empty event, for initialising the array passed to [`Epoll::wait`].
    pub const EMPTY: Event = Event(libc::epoll_event { events: 0, u64: 0 });

    /// The token given at registration.
    #[inline]
    pub fn token(&self) -> u64 {
        self.0.u64
    }

    #[inline]
    fn bits(&self) -> u32 {
        self.0.events
    }

    /// Data can be read (or a read would return an error/EOF).
    #[inline]
    pub fn is_readable(&self) -> bool {
        self.bits() & (libc::EPOLLIN as u32) != 0
    }

    /// The socket can take more data (after a send returned `WouldBlock`).
    #[inline]
    pub fn is_writable(&self) -> bool {
        self.bits() & (libc::EPOLLOUT as u32) != 0
    }

    /// EPOLLERR or EPOLLHUP: the descriptor failed (a deleted TUN reports
    /// EPOLLERR); the next read returns the error.
    #[inline]
    pub fn is_error(&self) -> bool {
        self.bits() & ((libc::EPOLLERR | libc::EPOLLHUP) as u32) != 0
    }

    /// The raw `EPOLL*` bits.
    #[inline]
    pub fn raw_events(&self) -> u32 {
        self.bits()
    }
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Event")
            .field("token", &self.token())
            .field("events", &format_args!("{:#x}", self.bits()))
            .finish()
    }
}

/// An epoll instance (close-on-exec).
#[derive(Debug)]
pub struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: plain syscall; the result is checked and wrapped.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        Ok(Epoll { fd: owned(fd) })
    }

    /// Registers `fd` (level-triggered) with `token` reported back in events.
    pub fn add(&self, fd: &impl AsFd, token: u64, interest: Interest) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, token, interest)
    }

    /// Changes the token or interest of a registered `fd` (e.g. add WRITABLE
    /// while a socket's send queue is full, drop it once drained).
    pub fn modify(&self, fd: &impl AsFd, token: u64, interest: Interest) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, token, interest)
    }

    /// Unregisters `fd`. Closing a descriptor also removes it.
    pub fn delete(&self, fd: &impl AsFd) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, 0, Interest(0))
    }

    fn ctl(
        &self,
        op: libc::c_int,
        fd: &impl AsFd,
        token: u64,
        interest: Interest,
    ) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: interest.0,
            u64: token,
        };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call
        // (the kernel copies it); both descriptors are open while borrowed.
        cvt(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, fd.as_fd().as_raw_fd(), &mut ev) })?;
        Ok(())
    }

    /// Waits until at least one registered descriptor is ready or `timeout`
    /// passes (`None` = forever, `Some(ZERO)` = poll). Fills the front of
    /// `events` and returns how many; 0 means the timeout expired. Retries on
    /// EINTR (with the full timeout again: callers bound their loops by
    /// deadlines they check themselves).
    pub fn wait(&self, events: &mut [Event], timeout: Option<Duration>) -> io::Result<usize> {
        let max = libc::c_int::try_from(events.len()).unwrap_or(libc::c_int::MAX);
        let timeout_ms = timeout.map_or(-1, timeout_to_ms);
        loop {
            // SAFETY: `events` is a writable array of at least `max`
            // epoll_event-sized elements (Event is repr(transparent)); the
            // kernel writes at most `max` of them.
            let ret = unsafe {
                libc::epoll_wait(
                    self.fd.as_raw_fd(),
                    events.as_mut_ptr().cast::<libc::epoll_event>(),
                    max,
                    timeout_ms,
                )
            };
            match cvt(ret) {
                Ok(n) => return Ok(n as usize),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl AsFd for Epoll {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Milliseconds for epoll_wait/poll, rounding up so a sub-millisecond
/// timeout sleeps instead of spinning, and capping at c_int::MAX.
pub(crate) fn timeout_to_ms(d: Duration) -> libc::c_int {
    let ms = d.as_nanos().div_ceil(1_000_000);
    libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_rounds_up() {
        assert_eq!(timeout_to_ms(Duration::ZERO), 0);
        assert_eq!(timeout_to_ms(Duration::from_micros(1)), 1);
        assert_eq!(timeout_to_ms(Duration::from_millis(5)), 5);
        assert_eq!(
            timeout_to_ms(Duration::from_secs(u64::MAX)),
            libc::c_int::MAX
        );
    }

    #[test]
    fn event_is_epoll_event_sized() {
        assert_eq!(
            std::mem::size_of::<Event>(),
            std::mem::size_of::<libc::epoll_event>()
        );
    }
}
