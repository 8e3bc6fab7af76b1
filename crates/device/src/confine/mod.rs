//! Least privilege for the running daemon: the calls that take it away.
//!
//! The daemon opens everything that needs root first (TUN queues, UDP sockets, the
//! configuration socket), then, while it is still single-threaded, calls, in this order:
//!
//! 1. [`Janitor::spawn`]: a tiny helper that keeps uid 0 (and no capability at all) only
//!    to remove the configuration socket from root's `/var/run/wireguard` when the daemon
//!    is gone, so the daemon itself needs no CAP_DAC_OVERRIDE.
//! 2. [`drop_privileges`]: supplementary groups cleared, real/effective/saved uid and gid
//!    switched, every capability but the kept ones removed from the permitted, effective,
//!    inheritable, ambient and bounding sets, no_new_privs set.
//! 3. [`seccomp::install`]: the system-call allow-list (`syscalls.rs`), refused calls
//!    counted by [`refused`].
//!
//! Threads started afterwards inherit all of it, which is why nothing here uses per-thread
//! tricks: capabilities, securebits and no_new_privs are per thread in Linux, so doing it
//! once in the only thread is the one way to have it hold on every thread.

mod janitor;
mod linked;
pub mod peer;
mod privileges;
pub mod refused;
pub mod seccomp;
mod syscalls;

pub use janitor::Janitor;
pub use linked::LinkedPath;
pub use peer::peer_uid;
pub use privileges::{drop_privileges, lookup_user, thread_count, Identity};
pub use seccomp::seccomp_available;

/// Capabilities the daemon may keep, with the operation that needs each (README lists the
/// same). Anything else is gone from every set, the bounding set included.
pub use caps::Capability;
