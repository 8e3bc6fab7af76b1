//! The system calls the running daemon may make: its whole seccomp allow-list, in one place.
//!
//! Everything the daemon does after start-up is here, grouped by who makes the call: the
//! Rust runtime and glibc (memory, threads, signals, time), the data path (TUN, UDP,
//! epoll, eventfd), the configuration socket and the control plane (netlink and interface
//! queries). The list was taken from `strace -f` of the daemon through the integration
//! tests' scenarios (traffic, handshakes, every kind of `wg set`, rebinding, fwmark changes,
//! link deletion, SIGTERM) and widened to whole families where the data path is expected to
//! grow (any socket call on AF_INET/AF_INET6/AF_NETLINK/AF_UNIX).
//!
//! The control plane's Prometheus endpoint (`--metrics`, thread `metrics`) needs nothing
//! more (strace of scrapes, refusals and timeouts: accept4, recvfrom, write/writev,
//! shutdown, close, fcntl, epoll): its TCP listener and its tokio runtime are made before
//! confinement (tokio's signal driver calls socketpair, which stays refused).
//!
//! Anything not listed is refused: the call does not run, returns EPERM and is counted and
//! logged (see `refused`). Never to be added: execve/execveat, ptrace, process_vm_*, mount
//! and friends, module loading, kexec, bpf, perf_event_open, set*id, capset, unshare,
//! setns, chroot/pivot_root, keyctl, io_uring, userfaultfd; nor unlink/rename/chmod (the
//! daemon changes no file; the janitor removes the socket).
//!
//! To extend it: add a line to the matching group, with the reason when it is not obvious,
//! and run the daemon's tests; a call that is still missing shows up in the daemon's log as
//! "seccomp refused ... system call number(s) [N]" (N is the number for this architecture:
//! `ausyscall N` or <asm/unistd_64.h> names it). Threads must start only after the daemon
//! is confined (`Opened::start`), so they inherit the filter.

/// One argument test: argument `arg` (0-based) compared with `value`.
#[derive(Clone, Copy, Debug)]
pub struct Cond {
    pub arg: u8,
    pub op: Op,
    pub value: u64,
}

#[derive(Clone, Copy, Debug)]
pub enum Op {
    Eq,
    /// `(argument & mask) == value`
    MaskedEq(u64),
}

/// All conditions of a rule must hold.
pub type Rule = Vec<Cond>;

/// A system call that is allowed: always (no rules) or when one of its rules holds.
pub struct Entry {
    pub nr: i64,
    pub name: &'static str,
    pub rules: Vec<Rule>,
}

macro_rules! always {
    ($($name:ident),* $(,)?) => {
        [$(Entry { nr: libc::$name, name: stringify!($name), rules: Vec::new() }),*]
    };
}

fn when(nr: i64, name: &'static str, rules: Vec<Rule>) -> Entry {
    Entry { nr, name, rules }
}

fn eq(arg: u8, value: u64) -> Cond {
    Cond {
        arg,
        op: Op::Eq,
        value,
    }
}

/// `arg & mask == 0`: none of the bits in `mask` set.
fn none_of(arg: u8, mask: u64) -> Cond {
    Cond {
        arg,
        op: Op::MaskedEq(mask),
        value: 0,
    }
}

/// The socket families the daemon and its data path use: UDP over both IP versions,
/// netlink (route and link queries, MTU watching) and Unix (the configuration socket,
/// glibc's throwaway socket for if_nametoindex). AF_PACKET and the rest are refused.
pub const FAMILIES: [i32; 4] = [
    libc::AF_INET,
    libc::AF_INET6,
    libc::AF_NETLINK,
    libc::AF_UNIX,
];

/// ioctl requests made after start-up: interface queries by name (if_nametoindex, MTU,
/// flags) and the generic descriptor ones the standard library uses. No TUNSET*, no
/// SIOCS* (the TUN is configured before confinement).
const IOCTLS: [u64; 9] = [
    libc::SIOCGIFINDEX,
    libc::SIOCGIFMTU,
    libc::SIOCGIFFLAGS,
    libc::SIOCGIFNAME,
    libc::FIONREAD,
    libc::FIONBIO,
    libc::FIOCLEX,
    libc::FIONCLEX,
    libc::TCGETS,
];

/// prctl options: thread names (the standard library names every thread) and reads of the
/// calling thread's own state.
const PRCTLS: [i32; 6] = [
    libc::PR_SET_NAME,
    libc::PR_GET_NAME,
    libc::PR_GET_DUMPABLE,
    libc::PR_GET_NO_NEW_PRIVS,
    libc::PR_GET_SECCOMP,
    libc::PR_CAPBSET_READ,
];

/// The allow-list for this architecture. `pid` is the daemon's own process id: signals may
/// only be sent to it (glibc's abort and raise), never to another process.
pub fn allow_list(pid: u32) -> Vec<Entry> {
    let mut list = Vec::new();

    // Memory (allocator, thread stacks and their guard pages). Never executable: nothing
    // maps code after start-up, so PROT_EXEC is refused (no shellcode pages).
    let no_exec = |nr, name| when(nr, name, vec![vec![none_of(2, libc::PROT_EXEC as u64)]]);
    list.push(no_exec(libc::SYS_mmap, "SYS_mmap"));
    list.push(no_exec(libc::SYS_mprotect, "SYS_mprotect"));
    list.extend(always![SYS_munmap, SYS_mremap, SYS_madvise, SYS_brk]);

    // Threads and synchronisation (std::thread, parking_lot, crossbeam, glibc's pthread:
    // clone3 first, clone as the fallback; rseq and the robust futex list at thread start;
    // sigaltstack for the standard library's stack-overflow guard). clone3's flags live in
    // memory, out of a filter's reach, so a fork cannot be told from a thread; a forked
    // copy would be just as confined and could exec nothing.
    list.extend(always![
        SYS_futex,
        SYS_clone,
        SYS_clone3,
        SYS_set_robust_list,
        SYS_rseq,
        SYS_sched_yield,
        SYS_sched_getaffinity,
        SYS_gettid,
        SYS_getpid,
        SYS_exit,
        SYS_exit_group,
        SYS_sigaltstack,
        SYS_rt_sigaction,
        SYS_rt_sigprocmask,
        SYS_rt_sigreturn,
    ]);
    // abort() (a panic in a release build) raises SIGABRT on its own thread.
    let pid = u64::from(pid);
    list.push(when(libc::SYS_tgkill, "SYS_tgkill", vec![vec![eq(0, pid)]]));

    // prctl: only the options above.
    let prctl = PRCTLS.iter().map(|&o| vec![eq(0, o as u64)]).collect();
    list.push(when(libc::SYS_prctl, "SYS_prctl", prctl));

    // Time and randomness (clock_gettime normally goes through the vDSO; the calls are the
    // fallback). getrandom: handshake keys and nonces.
    list.extend(always![
        SYS_clock_gettime,
        SYS_clock_nanosleep,
        SYS_nanosleep,
        SYS_getrandom,
    ]);

    // Descriptors: TUN reads and writes (the data path may add writev for ICMP replies),
    // eventfd wake-ups, logging to stderr, closing; fstat-like calls (the socket file
    // watch, read_to_string's size hint); our own ids (the SO_PEERCRED check).
    list.extend(always![
        SYS_read,
        SYS_write,
        SYS_readv,
        SYS_writev,
        SYS_close,
        SYS_fcntl,
        SYS_fstat,
        SYS_newfstatat,
        SYS_statx,
        SYS_lseek,
        SYS_eventfd2,
        SYS_getuid,
        SYS_geteuid,
        SYS_getgid,
        SYS_getegid,
    ]);
    // Reaping the janitor at exit (it is our child).
    list.extend(always![SYS_wait4]);
    // Files: read-only opens (/proc/stat for the CPU-load sample, /proc and /sys queries);
    // nothing is ever written or created.
    list.push(when(
        libc::SYS_openat,
        "SYS_openat",
        vec![vec![none_of(
            2,
            (libc::O_WRONLY | libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC | libc::O_APPEND) as u64,
        )]],
    ));
    list.extend(always![
        SYS_getdents64,
        SYS_readlinkat,
        SYS_faccessat,
        SYS_faccessat2
    ]);

    // ioctl: only the requests listed in IOCTLS.
    let ioctls = IOCTLS.iter().map(|&r| vec![eq(1, r)]).collect();
    list.push(when(libc::SYS_ioctl, "SYS_ioctl", ioctls));

    // Polling: each worker's epoll, the control thread's and the cancel's waits.
    list.extend(always![
        SYS_epoll_create1,
        SYS_epoll_ctl,
        SYS_epoll_pwait,
        SYS_epoll_pwait2,
        SYS_ppoll,
    ]);

    // Sockets: new ones only in the four families (rebinding on a listen-port change,
    // netlink queries, glibc's if_nametoindex socket); everything else on any socket the
    // daemon holds (UDP batches with GSO/GRO and control messages, the configuration
    // socket's accept and SO_PEERCRED, netlink requests).
    let families = FAMILIES.iter().map(|&f| vec![eq(0, f as u64)]).collect();
    list.push(when(libc::SYS_socket, "SYS_socket", families));
    list.extend(always![
        SYS_bind,
        SYS_connect,
        SYS_accept4,
        SYS_getsockname,
        SYS_getpeername,
        SYS_setsockopt,
        SYS_getsockopt,
        SYS_sendto,
        SYS_recvfrom,
        SYS_sendmsg,
        SYS_recvmsg,
        SYS_sendmmsg,
        SYS_recvmmsg,
        SYS_shutdown,
    ]);

    list.extend(arch_specific());
    list
}

/// Older calls that only some architectures have (aarch64 has only the *at/p* forms).
#[cfg(target_arch = "x86_64")]
fn arch_specific() -> Vec<Entry> {
    always![SYS_poll, SYS_epoll_wait].into()
}

#[cfg(not(target_arch = "x86_64"))]
fn arch_specific() -> Vec<Entry> {
    Vec::new()
}
