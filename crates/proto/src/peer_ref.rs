//! The shared handle to one peer: what the interface's tables, the send path and the
//! receive path hold to reach a peer, and the only way to its state.

use crate::keys::PublicKey;
use crate::noise::InitiationEphemeral;
use crate::peer::Peer;
use parking_lot::{Mutex, MutexGuard};
use std::sync::Arc;

struct PeerCell {
    public_key: PublicKey,
    state: Mutex<Peer>,
    /// The X25519 work of this peer's next initiation, done ahead outside `state`'s lock
    /// (see `Interface::with_ctx`). Taken and put back only while `state` is not held.
    spare: Mutex<Option<InitiationEphemeral>>,
}

/// A shared handle to one peer; equality is identity.
#[derive(Clone)]
pub struct PeerRef(Arc<PeerCell>);

impl PartialEq for PeerRef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for PeerRef {}

impl std::hash::Hash for PeerRef {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::ptr::hash(Arc::as_ptr(&self.0), state)
    }
}

impl std::fmt::Debug for PeerRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Peer({})", self.0.public_key)
    }
}

impl PeerRef {
    pub(crate) fn new(public_key: PublicKey, state: Peer) -> PeerRef {
        PeerRef(Arc::new(PeerCell {
            public_key,
            state: Mutex::new(state),
            spare: Mutex::new(None),
        }))
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.0.public_key
    }

    /// The peer's state. Never handed out of the core: other layers go through
    /// [`Interface`](crate::interface::Interface) methods, so no caller holds a peer's lock
    /// across its own work.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Peer> {
        self.0.state.lock()
    }

    /// The initiation key agreement prepared for this peer, if one is waiting.
    pub(crate) fn take_spare(&self) -> Option<InitiationEphemeral> {
        self.0.spare.lock().take()
    }

    /// Keeps a prepared key agreement that went unused for the next initiation.
    pub(crate) fn keep_spare(&self, spare: InitiationEphemeral) {
        *self.0.spare.lock() = Some(spare);
    }

    /// Whether some thread holds the peer's state now (tests audit what runs under it).
    #[cfg(test)]
    pub(crate) fn is_locked(&self) -> bool {
        self.0.state.is_locked()
    }
}
