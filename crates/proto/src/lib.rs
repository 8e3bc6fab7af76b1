//! ferrotun's sans-IO WireGuard protocol core.
//!
//! Pure state machines over byte buffers: wire formats, the Noise IKpsk2 handshake, cookies,
//! transport sessions, the replay window, timers and cryptokey routing. Time and randomness
//! are handed in; nothing here opens a socket, spawns a thread, sleeps or uses `unsafe`.
//! [`interface::Interface`] is the entry point the device layer drives.

#![forbid(unsafe_code)]
// Outside tests an error is reported, never a panic: no unwrap or expect in shipped code.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod allowed_ips;
pub mod constants;
pub mod cookie;
pub mod counters;
pub mod crypto;
pub(crate) mod handshake;
pub mod icmp;
pub(crate) mod index;
pub mod interface;
pub mod ip;
pub mod keys;
pub mod noise;
pub mod outer;
pub mod peer;
pub(crate) mod peer_ref;
pub(crate) mod ratelimiter;
pub(crate) mod receive;
pub(crate) mod registry;
pub(crate) mod replay;
pub(crate) mod sealing;
pub mod send;
pub mod session;
pub mod source;
pub mod time;
pub(crate) mod timers;
pub mod wire;
#[cfg(test)]
mod x25519_audit;
