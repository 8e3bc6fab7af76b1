//! The cross-platform configuration protocol (UAPI): typed messages, their text forms, the
//! framing, and a client for `/var/run/wireguard/<iface>.sock`.

pub mod client;
pub mod format;
pub mod framing;
pub mod model;
pub mod parse;
pub mod prefix;
mod values;

pub use client::{Client, ClientError};
pub use model::{AllowedIpChange, InterfaceStatus, PeerChange, PeerStatus, SetRequest};
pub use prefix::IpPrefix;
