//! Building and installing the allow-list filter with `seccompiler`.

use super::refused;
use super::syscalls::{allow_list, Op, Rule};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use std::collections::BTreeMap;
use std::io;

/// Whether this kernel can filter system calls (PR_GET_SECCOMP fails with EINVAL when it
/// was built without CONFIG_SECCOMP).
pub fn seccomp_available() -> bool {
    // SAFETY: PR_GET_SECCOMP only reads the calling thread's mode.
    unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) >= 0 }
}

fn target() -> io::Result<TargetArch> {
    std::env::consts::ARCH.try_into().map_err(|e| {
        io::Error::new(
            io::ErrorKind::Unsupported,
            format!("no seccomp filter for this architecture: {e}"),
        )
    })
}

fn rule(r: &Rule) -> io::Result<SeccompRule> {
    let conds = r
        .iter()
        .map(|c| {
            let op = match c.op {
                Op::Eq => SeccompCmpOp::Eq,
                Op::MaskedEq(mask) => SeccompCmpOp::MaskedEq(mask),
            };
            // Every argument we compare is a C int or a flag word that fits 32 bits;
            // comparing only those bits ignores whatever the caller left in the upper half.
            SeccompCondition::new(c.arg, SeccompCmpArgLen::Dword, op, c.value)
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(io::Error::other)?;
    SeccompRule::new(conds).map_err(io::Error::other)
}

/// Compiles the daemon's filter for this machine's architecture. A call off the list traps
/// (see [`refused`]); a call from another architecture's ABI kills the process.
pub fn build(pid: u32) -> io::Result<BpfProgram> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for entry in allow_list(pid) {
        let chain = entry
            .rules
            .iter()
            .map(rule)
            .collect::<io::Result<Vec<_>>>()?;
        if rules.insert(entry.nr, chain).is_some() {
            return Err(io::Error::other(format!(
                "{} is listed twice in the allow-list",
                entry.name
            )));
        }
    }
    let filter = SeccompFilter::new(rules, SeccompAction::Trap, SeccompAction::Allow, target()?)
        .map_err(io::Error::other)?;
    filter.try_into().map_err(io::Error::other)
}

/// Installs the SIGSYS handler and the filter on the calling thread (threads it starts
/// later inherit the filter); also sets no_new_privs, which the kernel requires.
pub fn install() -> io::Result<()> {
    let program = build(std::process::id())?;
    refused::install_handler()?;
    apply(&program).map_err(|e| io::Error::other(format!("seccomp: {e}")))
}

/// seccompiler's `apply_filter`, plus SECCOMP_FILTER_FLAG_SPEC_ALLOW: on kernels that
/// otherwise force the speculative-store-bypass mitigation on every filtered process, it
/// would slow the whole data path. That mitigation protects secrets from untrusted code
/// running in the same process; the daemon runs none.
fn apply(program: &BpfProgram) -> io::Result<()> {
    nix::sys::prctl::set_no_new_privs().map_err(io::Error::from)?;
    let len = u16::try_from(program.len())
        .map_err(|_| io::Error::other("filter too long for one BPF program"))?;
    let prog = libc::sock_fprog {
        len,
        // The kernel only reads the program; seccompiler's sock_filter has the kernel's
        // layout (u16 code, u8 jt, u8 jf, u32 k), as libc's does.
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    for flags in [libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW, 0] {
        // SAFETY: `prog` points at `program`, which outlives the call; the kernel copies it.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                flags,
                &prog as *const libc::sock_fprog,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        // Kernels before 4.17 know no SPEC_ALLOW: try again without it.
        if flags == 0 || e.raw_os_error() != Some(libc::EINVAL) {
            return Err(e);
        }
    }
    unreachable!("the last attempt returns")
}
