//! The cross-platform configuration protocol (UAPI): typed messages, their text forms, the
//! framing, and a client for `/var/run/wireguard/<iface>.sock`.

// Outside tests an error is reported, never a panic: no unwrap or expect in shipped code.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
// All unsafe code lives in crates/device.
#![forbid(unsafe_code)]

pub mod client;
pub mod config;
pub mod format;
pub mod framing;
pub(crate) mod model;
pub mod parse;
pub mod prefix;
pub mod stats;
mod values;

pub use client::{Client, ClientError};
pub use model::{AllowedIpChange, InterfaceStatus, PeerChange, PeerStatus, SetRequest};
pub use prefix::IpPrefix;
