//! SIGINT/SIGTERM → [`Cancel::trigger`].
//!
//! Uses `signal-hook` (its registry chains handlers, restarts syscalls with
//! SA_RESTART and is safe against concurrent registration) rather than a
//! hand-written `sigaction`. A signalfd would need the signals blocked in
//! every thread before any thread is spawned, which is easy to get wrong in
//! a daemon that links other code; a handler needs no such discipline.

use std::io;

use crate::Cancel;

/// Makes SIGINT and SIGTERM trigger `cancel` (as wireguard-go exits on both).
/// The process then shuts down through the normal path: workers see the
/// cancel, descriptors close, the UAPI socket is removed.
/// Further signals are absorbed (the process is already shutting down);
/// a hung shutdown is for SIGKILL.
pub fn install_shutdown_signals(cancel: &Cancel) -> io::Result<()> {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        let cancel = cancel.clone();
        let handler = move || cancel.trigger();
        // SAFETY: the handler only does async-signal-safe things: an atomic
        // swap and write(2) in Cancel::trigger.
        // It allocates nothing, takes no lock and does not panic. The Arc
        // captured in it is never dropped (signal-hook keeps the closure for
        // the life of the process).
        unsafe { signal_hook::low_level::register(sig, handler) }?;
    }
    Ok(())
}
