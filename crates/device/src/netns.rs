//! Moving the calling thread into a network namespace (`setns(2)`).
//!
//! A network namespace is a per-thread attribute: after [`enter_netns`] only the calling
//! thread lives in the new namespace, and every socket it opens from then on belongs there.
//! Callers therefore do this on a thread of their own that ends when its work is done, so
//! no other code (a thread pool, the main thread) runs in the wrong namespace by accident.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

use crate::sys::{context, cvt};

/// Moves the calling thread into the network namespace named by `path` (a bind-mounted
/// namespace such as `/run/netns/NAME`, or `/proc/PID/ns/net`).
pub fn enter_netns(path: &Path) -> io::Result<()> {
    let file = File::open(path)
        .map_err(|e| context(e, format_args!("open network namespace {}", path.display())))?;
    // SAFETY: plain setns(2) on a descriptor we own and keep open for the duration of the
    // call; CLONE_NEWNET makes the kernel reject anything that is not a network namespace.
    cvt(unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) }).map_err(|e| {
        context(
            e,
            format_args!("enter network namespace {}", path.display()),
        )
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_a_file_that_is_not_a_namespace() {
        let err = std::thread::spawn(|| enter_netns(Path::new("/proc/self/status")))
            .join()
            .expect("thread");
        assert!(err.is_err());
    }

    #[test]
    fn entering_the_own_namespace_keeps_the_thread_working() {
        // The test may run without CAP_SYS_ADMIN; then setns is refused with EPERM, which is
        // still a clean error rather than a crash.
        let result = std::thread::spawn(|| {
            enter_netns(Path::new("/proc/self/ns/net"))?;
            std::net::UdpSocket::bind("127.0.0.1:0").map(|_| ())
        })
        .join()
        .expect("thread");
        if let Err(e) = result {
            assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
        }
    }
}
