//! One shutdown signal observed by every thread (like Go's context).
//!
//! A [`Cancel`] is an eventfd plus an atomic flag, shared through an `Arc`.
//! Workers register [`Cancel::fd`] in their epoll: once triggered the eventfd
//! stays readable forever (nobody reads it), so with level-triggered epoll
//! every worker wakes and keeps waking until it exits. Code that does not
//! block in epoll checks [`Cancel::is_triggered`] or sleeps in
//! [`Cancel::wait`].
//!
//! [`Cancel::trigger`] is async-signal-safe (an atomic store and one
//! `write(2)`), so a signal handler may call it.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::epoll::timeout_to_ms;
use crate::sys::{cvt, owned};

#[derive(Clone, Debug)]
pub struct Cancel {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    triggered: AtomicBool,
    fd: OwnedFd,
}

impl Cancel {
    pub fn new() -> io::Result<Cancel> {
        // Non-blocking so trigger() can never block, even if the counter
        // were somehow about to overflow.
        // SAFETY: plain syscall; the result is checked and wrapped.
        let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
        Ok(Cancel {
            inner: Arc::new(Inner {
                triggered: AtomicBool::new(false),
                fd: owned(fd),
            }),
        })
    }

    /// Signals shutdown. Idempotent, async-signal-safe.
    pub fn trigger(&self) {
        // Release: whatever the triggering thread wrote before (e.g. the
        // reason) is visible to a thread that sees the flag with Acquire.
        if self.inner.triggered.swap(true, Ordering::AcqRel) {
            return;
        }
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our eventfd. The result
        // is ignored on purpose: the only possible failure is EAGAIN on a
        // counter near u64::MAX, and the flag is set regardless.
        let _ = unsafe {
            libc::write(
                self.inner.fd.as_raw_fd(),
                (&one as *const u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
    }

    /// Whether [`Cancel::trigger`] was called.
    #[inline]
    pub fn is_triggered(&self) -> bool {
        self.inner.triggered.load(Ordering::Acquire)
    }

    /// The eventfd to register (READABLE) in an epoll. Readable once
    /// triggered; never read it (that would hide the signal from others).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.inner.fd.as_fd()
    }

    /// Sleeps until triggered or `timeout` passes (`None` = no limit).
    /// Returns whether it was triggered. For threads that do not sit in an
    /// epoll, e.g. a timer thread: `while !cancel.wait(Some(tick)) { ... }`.
    pub fn wait(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            if self.is_triggered() {
                return true;
            }
            let ms = match deadline {
                None => -1,
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    None => return self.is_triggered(),
                    Some(left) => timeout_to_ms(left),
                },
            };
            let mut pfd = libc::pollfd {
                fd: self.inner.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd for the duration of the call. Errors
            // (EINTR) just loop and re-check the flag and the deadline.
            unsafe { libc::poll(&mut pfd, 1, ms) };
        }
    }
}

impl AsFd for Cancel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_wakes_waiters_in_other_threads() {
        let c = Cancel::new().unwrap();
        assert!(!c.is_triggered());
        assert!(!c.wait(Some(Duration::from_millis(5))));
        let c2 = c.clone();
        let t = std::thread::spawn(move || c2.wait(Some(Duration::from_secs(10))));
        std::thread::sleep(Duration::from_millis(20));
        c.trigger();
        c.trigger();
        assert!(t.join().unwrap());
        assert!(c.is_triggered());
        assert!(c.wait(None));
    }

    #[test]
    fn triggered_cancel_wakes_epoll_repeatedly() {
        use crate::epoll::{Epoll, Event, Interest};
        let c = Cancel::new().unwrap();
        let ep = Epoll::new().unwrap();
        ep.add(&c, 7, Interest::READABLE).unwrap();
        let mut evs = [Event::EMPTY; 4];
        assert_eq!(
            ep.wait(&mut evs, Some(Duration::from_millis(1))).unwrap(),
            0
        );
        c.trigger();
        for _ in 0..3 {
            assert_eq!(ep.wait(&mut evs, Some(Duration::from_secs(5))).unwrap(), 1);
            assert_eq!(evs[0].token(), 7);
            assert!(evs[0].is_readable());
        }
    }
}
