//! What a running ferrotun interface counts, as the control plane hands it on: one model
//! ([`Stats`]) built from the device in the daemon, carried over the configuration socket
//! (`stats=1`, see [`wire`]), and read by `ferrotun stats`, `ferrotun top` and the
//! Prometheus endpoint.

pub mod model;
pub mod wire;

pub use model::{PeerStats, Stats};
pub use wire::{fetch, FetchError};
