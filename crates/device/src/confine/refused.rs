//! Making a refused system call visible without killing the daemon.
//!
//! The filter answers a call outside the allow-list with SECCOMP_RET_TRAP: the kernel does
//! not run it and sends SIGSYS to the thread that made it. The handler here counts it,
//! remembers which call it was, and makes the call return -EPERM, so the code that made it
//! sees an ordinary error and the daemon carries on. Some thread that is not in a signal
//! handler ([`take_new`], polled by the daemon) turns the counts into a log line.
//!
//! Why not the alternatives: SECCOMP_RET_KILL_PROCESS would turn a call the allow-list
//! missed (a rare path, a new glibc) into an outage; SECCOMP_RET_ERRNO alone is silent;
//! SECCOMP_RET_LOG lets the call through.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

/// System call numbers below this are remembered one by one; the rest are only counted.
const TRACKED: usize = 512;
const WORDS: usize = TRACKED / 64;

static TOTAL: AtomicU64 = AtomicU64::new(0);
static REPORTED: AtomicU64 = AtomicU64::new(0);
static SEEN: [AtomicU64; WORDS] = [const { AtomicU64::new(0) }; WORDS];
static LOGGED: [AtomicU64; WORDS] = [const { AtomicU64::new(0) }; WORDS];

/// The kernel's `struct siginfo` for SIGSYS (`_sigsys` in the union), as far as we read it.
#[repr(C)]
struct SigsysInfo {
    signo: libc::c_int,
    errno: libc::c_int,
    code: libc::c_int,
    #[cfg(target_pointer_width = "64")]
    _pad: libc::c_int,
    call_addr: *mut libc::c_void,
    syscall: libc::c_int,
    arch: libc::c_uint,
}

/// SIGSYS's si_code for a seccomp trap.
const SYS_SECCOMP: libc::c_int = 1;

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
extern "C" fn on_sigsys(_sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers; for SIGSYS with
    // si_code SYS_SECCOMP its union holds `_sigsys`, laid out as SigsysInfo.
    let info = unsafe { &*(info as *const SigsysInfo) };
    if info.code != SYS_SECCOMP {
        return;
    }
    TOTAL.fetch_add(1, Ordering::Relaxed);
    if let Ok(nr) = usize::try_from(info.syscall) {
        if nr < TRACKED {
            SEEN[nr / 64].fetch_or(1 << (nr % 64), Ordering::Relaxed);
        }
    }
    // SAFETY: for SA_SIGINFO handlers the third argument is the interrupted thread's
    // ucontext; writing its return-value register is how the refused call "returns" -EPERM
    // when the handler returns (the kernel restores the registers from it).
    unsafe { set_return(ctx as *mut libc::ucontext_t, -(libc::EPERM as i64)) };
}

#[cfg(target_arch = "x86_64")]
unsafe fn set_return(ctx: *mut libc::ucontext_t, value: i64) {
    // SAFETY: the caller passes the handler's valid ucontext.
    unsafe { (*ctx).uc_mcontext.gregs[libc::REG_RAX as usize] = value };
}

#[cfg(target_arch = "aarch64")]
unsafe fn set_return(ctx: *mut libc::ucontext_t, value: i64) {
    // SAFETY: the caller passes the handler's valid ucontext; x0 holds the return value.
    unsafe { (*ctx).uc_mcontext.regs[0] = value as u64 };
}

/// Elsewhere the handler would not know which register carries the return value: no
/// filter there (the daemon refuses to start confined and names the opt-out).
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub(crate) fn install_handler() -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "refused system calls cannot be handled on this architecture",
    ))
}

/// Installs the SIGSYS handler; before the filter, so no trap is ever unhandled.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(crate) fn install_handler() -> io::Result<()> {
    // SAFETY: a zeroed sigaction is a valid starting point (no flags, empty mask).
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = on_sigsys as *const () as usize;
    action.sa_flags = libc::SA_SIGINFO;
    // SAFETY: `action.sa_mask` is a valid sigset_t owned by us.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    // SAFETY: the handler only does async-signal-safe things (atomic operations and a
    // register write in the ucontext it is given); `action` outlives the call.
    let rc = unsafe { libc::sigaction(libc::SIGSYS, &action, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Refused calls so far.
pub fn total() -> u64 {
    TOTAL.load(Ordering::Relaxed)
}

/// Whether system call `nr` has been refused at least once.
pub fn was_refused(nr: i64) -> bool {
    usize::try_from(nr)
        .ok()
        .filter(|&n| n < TRACKED)
        .is_some_and(|n| SEEN[n / 64].load(Ordering::Relaxed) & (1 << (n % 64)) != 0)
}

/// What was refused since the last call: (calls refused since then, system call numbers
/// refused for the first time). None when nothing new happened.
pub fn take_new() -> Option<(u64, Vec<usize>)> {
    let total = TOTAL.load(Ordering::Relaxed);
    let before = REPORTED.swap(total, Ordering::Relaxed);
    if total == before {
        return None;
    }
    let mut first = Vec::new();
    for (w, (seen, logged)) in SEEN.iter().zip(&LOGGED).enumerate() {
        let now = seen.load(Ordering::Relaxed);
        let fresh = now & !logged.fetch_or(now, Ordering::Relaxed);
        first.extend(
            (0..64)
                .filter(|b| fresh & (1 << b) != 0)
                .map(|b| w * 64 + b),
        );
    }
    Some((total - before, first))
}
