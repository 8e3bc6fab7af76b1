//! A test hook on every X25519 operation of the calling thread, so tests can check what
//! is (not) held while one runs. Both `crypto::dh` and `PrivateKey::public_key` report to
//! it, and `crypto` already uses `keys`: a file of its own keeps the two from naming each
//! other.

use std::cell::RefCell;

thread_local! {
    static HOOK: RefCell<Option<Box<dyn Fn()>>> = const { RefCell::new(None) };
}

/// Calls `hook` on each X25519 operation of this thread until `clear`.
pub(crate) fn set(hook: impl Fn() + 'static) {
    HOOK.with(|h| *h.borrow_mut() = Some(Box::new(hook)));
}

pub(crate) fn clear() {
    HOOK.with(|h| *h.borrow_mut() = None);
}

pub(crate) fn note() {
    HOOK.with(|h| {
        if let Some(hook) = h.borrow().as_ref() {
            hook();
        }
    });
}
