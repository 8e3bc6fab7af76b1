//! Threads that live inside a test namespace, so a test can open sockets there directly
//! (exact counts, exact timing) instead of going through an external tool.

use crate::Netns;
use ferrotun_device::netns::enter_netns;
use std::path::PathBuf;
use std::thread::JoinHandle;

/// Runs `f` on a new thread that first moves into `ns`. The namespace is a per-thread
/// attribute, so nothing else in the test process leaves the root namespace; the thread
/// ends with `f`.
pub fn spawn_in<T, F>(ns: &Netns, what: &str, f: F) -> JoinHandle<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let path = PathBuf::from("/run/netns").join(&ns.name);
    std::thread::Builder::new()
        .name(what.to_string())
        .spawn(move || {
            enter_netns(&path).unwrap_or_else(|e| panic!("cannot enter {}: {e}", path.display()));
            f()
        })
        .unwrap_or_else(|e| panic!("cannot start thread {what}: {e}"))
}

/// Joins a thread from [`spawn_in`], passing its panic on with the thread's name.
pub fn join<T>(handle: JoinHandle<T>) -> T {
    let name = handle.thread().name().unwrap_or("?").to_string();
    match handle.join() {
        Ok(v) => v,
        Err(e) => {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("thread {name} panicked: {msg}");
        }
    }
}
