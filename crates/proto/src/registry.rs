//! The interface's session-index table: what each index names (a peer's pending handshake
//! or one of its keypairs), and the per-peer view through which a peer allocates, binds
//! and releases its own indices.

use crate::index::IndexTable;
use crate::peer::IndexRegistry;
use crate::peer_ref::PeerRef;
use crate::session::Keypair;
use parking_lot::RwLock;
use rand_core::CryptoRngCore;
use std::sync::Arc;

#[derive(Clone)]
pub(crate) enum IndexEntry {
    Handshake(PeerRef),
    Keypair(PeerRef, Arc<Keypair>),
}

impl IndexEntry {
    pub(crate) fn peer(&self) -> &PeerRef {
        match self {
            IndexEntry::Handshake(p) | IndexEntry::Keypair(p, _) => p,
        }
    }

    /// The keypair this index names, with its peer; `None` for a pending handshake.
    pub(crate) fn keypair(&self) -> Option<(PeerRef, Arc<Keypair>)> {
        match self {
            IndexEntry::Keypair(peer, kp) => Some((peer.clone(), kp.clone())),
            IndexEntry::Handshake(_) => None,
        }
    }
}

/// Index allocation on behalf of one peer; takes the table's write lock only per call, so
/// the data path can hand it around without blocking readers.
pub(crate) struct Registry<'a> {
    table: &'a RwLock<IndexTable<IndexEntry>>,
    peer: &'a PeerRef,
}

impl<'a> Registry<'a> {
    pub(crate) fn new(table: &'a RwLock<IndexTable<IndexEntry>>, peer: &'a PeerRef) -> Self {
        Registry { table, peer }
    }
}

impl IndexRegistry for Registry<'_> {
    fn allocate(&mut self, rng: &mut dyn CryptoRngCore) -> u32 {
        self.table
            .write()
            .insert(IndexEntry::Handshake(self.peer.clone()), &mut { rng })
    }
    fn bind(&mut self, index: u32, keypair: &Arc<Keypair>) {
        // The index was allocated for this handshake and is still held while it completes,
        // so it is present; were it not, the session would simply be unreachable.
        let _ = self.table.write().replace(
            index,
            IndexEntry::Keypair(self.peer.clone(), keypair.clone()),
        );
    }
    fn release(&mut self, index: u32) {
        let mut table = self.table.write();
        // Only release what is ours: a stale index may already name another peer.
        if table.get(index).is_some_and(|e| e.peer() == self.peer) {
            table.remove(index);
        }
    }
}
