//! Removing the configuration socket after the daemon has given up root.
//!
//! `/var/run/wireguard` belongs to root with mode 0700, so an unprivileged daemon cannot
//! unlink its `IFACE.sock` on the way out, and wg-quick, `ferrotun down` and the next
//! daemon all expect it gone. Keeping CAP_DAC_OVERRIDE for that one unlink would let the
//! daemon read and write every file on the host. Instead, while still root and
//! single-threaded, the daemon forks this janitor: it keeps uid 0 (the directory's owner,
//! which is all an unlink there needs), moves to an empty network namespace of its own,
//! drops every capability, sets no_new_privs and installs a filter that allows only the
//! calls in `janitor_filter`, then waits on a socket pair. When the
//! daemon asks (orderly exit) or its end closes (any exit, SIGKILL included), the janitor
//! removes the socket file, if it is still the same inode, and exits.

use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult, Pid};
use seccompiler::{SeccompAction, SeccompFilter, SeccompRule, TargetArch};
use std::collections::BTreeMap;
use std::ffi::CString;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use super::privileges::thread_count;

pub struct Janitor {
    link: UnixStream,
    pid: Pid,
}

impl Janitor {
    /// Forks the janitor for the socket file at `path`, whose inode is `id` (device, inode).
    /// Must run single-threaded (fork copies only the calling thread).
    pub fn spawn(path: &Path, id: (u64, u64)) -> io::Result<Janitor> {
        if thread_count()? != 1 {
            return Err(io::Error::other(
                "the janitor must be started before the first thread",
            ));
        }
        let cpath = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in socket path"))?;
        let (ours, theirs) = UnixStream::pair()?;
        let arch: TargetArch = std::env::consts::ARCH
            .try_into()
            .map_err(|e| io::Error::other(format!("janitor filter: {e}")))?;
        let program = janitor_filter(arch)?;
        // SAFETY: the process has a single thread (checked above), so the child starts with
        // consistent memory (no lock held by a thread that does not exist there); it runs
        // `janitor_main`, which never returns.
        match unsafe { fork() }.map_err(io::Error::from)? {
            ForkResult::Child => {
                drop(ours);
                janitor_main(theirs, &cpath, id, &program)
            }
            ForkResult::Parent { child } => Ok(Janitor {
                link: ours,
                pid: child,
            }),
        }
    }

    /// Asks the janitor to remove the socket file now and waits (at most `timeout`) until
    /// it has, so that whoever waits for the file to vanish sees our sockets closed.
    pub fn remove_now(mut self, timeout: Duration) -> io::Result<()> {
        self.link.set_read_timeout(Some(timeout))?;
        self.link.write_all(&[1])?;
        let mut ack = [0u8; 1];
        let read = self.link.read(&mut ack);
        let _ = waitpid(self.pid, None);
        match read {
            Ok(1) => Ok(()),
            Ok(_) => Err(io::Error::other("the janitor exited without answering")),
            Err(e) => Err(e),
        }
    }
}

fn janitor_filter(arch: TargetArch) -> io::Result<seccompiler::BpfProgram> {
    let mut allowed = vec![
        libc::SYS_read,
        libc::SYS_write,
        libc::SYS_newfstatat,
        libc::SYS_unlinkat,
        libc::SYS_exit,
        libc::SYS_exit_group,
        libc::SYS_rt_sigreturn,
        libc::SYS_restart_syscall,
    ];
    #[cfg(target_arch = "x86_64")]
    allowed.extend([libc::SYS_lstat, libc::SYS_unlink]);
    allowed.sort_unstable();
    allowed.dedup();
    let rules: BTreeMap<i64, Vec<SeccompRule>> =
        allowed.into_iter().map(|nr| (nr, Vec::new())).collect();
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::KillProcess,
        SeccompAction::Allow,
        arch,
    )
    .map_err(io::Error::other)?;
    filter.try_into().map_err(io::Error::other)
}

fn fail(what: &str) -> ! {
    eprintln!("ferrotun janitor: {what}: {}", io::Error::last_os_error());
    // SAFETY: _exit ends this process at once, running nothing of the parent's.
    unsafe { libc::_exit(1) }
}

/// The janitor's whole life. Only raw calls after the filter is in: no allocation, no
/// locks.
fn janitor_main(
    link: UnixStream,
    path: &CString,
    id: (u64, u64),
    program: &seccompiler::BpfProgram,
) -> ! {
    // Only the link (and stderr, for the message above) stays open: the TUN queues and
    // sockets must close when the daemon closes them.
    let keep = link.as_raw_fd();
    for fd in [0, 1] {
        // SAFETY: closing our copies of stdin/stdout; nothing in this process uses them.
        unsafe { libc::close(fd) };
    }
    // SAFETY: close_range closes descriptor ranges; no Rust object in this process owns any
    // of them except `link`, which is excluded.
    unsafe {
        libc::syscall(libc::SYS_close_range, 3u32, (keep - 1) as u32, 0u32);
        libc::syscall(libc::SYS_close_range, (keep + 1) as u32, u32::MAX, 0u32);
    }
    // The daemon's stop signals must not end the janitor first (systemd signals the whole
    // control group): it goes when the daemon goes.
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGPIPE] {
        // SAFETY: SIG_IGN is a valid disposition; no handler code runs.
        unsafe { libc::signal(sig, libc::SIG_IGN) };
    }
    // It needs no network: an empty namespace of its own takes it away (and keeps it out
    // of `ip netns pids` of the daemon's namespace). Best effort: where namespaces cannot
    // be made, the filter below still keeps it off every socket call.
    // SAFETY: unshare only changes this process' namespace membership.
    unsafe { libc::unshare(libc::CLONE_NEWNET) };
    let name = c"ferrotun-janitor";
    // SAFETY: PR_SET_NAME copies at most 16 bytes from a valid C string.
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
    use caps::CapSet;
    for cap in caps::runtime::thread_all_supported() {
        if caps::drop(None, CapSet::Bounding, cap).is_err() {
            fail("cannot drop capabilities");
        }
    }
    for set in [
        CapSet::Ambient,
        CapSet::Inheritable,
        CapSet::Effective,
        CapSet::Permitted,
    ] {
        if caps::clear(None, set).is_err() {
            fail("cannot drop capabilities");
        }
    }
    if seccompiler::apply_filter(program).is_err() {
        fail("cannot install the system call filter");
    }
    let mut byte = [0u8; 1];
    loop {
        // SAFETY: reading one byte into a buffer we own.
        let n = unsafe { libc::read(keep, byte.as_mut_ptr().cast(), 1) };
        if n >= 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break;
        }
    }
    // SAFETY: a zeroed `stat` is a valid buffer for lstat to fill.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a valid C string, `st` a buffer we own.
    let found = unsafe { libc::lstat(path.as_ptr(), &mut st) } == 0;
    if found && (st.st_dev, st.st_ino) == id {
        // SAFETY: `path` is a valid C string.
        unsafe { libc::unlink(path.as_ptr()) };
    }
    // SAFETY: writing one byte from a buffer we own; the daemon may be gone (EPIPE is
    // ignored, SIGPIPE is ignored).
    unsafe { libc::write(keep, [1u8].as_ptr().cast(), 1) };
    // SAFETY: ends the janitor without running the parent's exit handlers.
    unsafe { libc::_exit(0) }
}
