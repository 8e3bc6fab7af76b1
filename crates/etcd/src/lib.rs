//! A small etcd v3 client: key-value reads and writes, transactions, leases with their
//! keep-alive stream, watches, user/password authentication and TLS, over one connection to
//! one member.
//!
//! Why hand-written: the `etcd-client` crate generates its protobuf code at build time,
//! and its build script needs `protoc` (a system package); this project builds with nothing
//! but a Rust toolchain. So the few etcd messages used here are written out as Rust structs
//! with `#[derive(prost::Message)]` (the field numbers from etcd's public v3 API:
//! `etcdserverpb` rpc.proto and `mvccpb` kv.proto), and the calls go through `tonic`'s
//! generic gRPC client with `tonic-prost`'s codec: nothing in the build runs protoc.

#![forbid(unsafe_code)]

mod auth;
mod client;
mod credentials;
mod error;
mod kv;
mod lease;
pub mod messages;
mod tls;
mod watch;

pub use client::{Client, ConnectOptions};
pub use error::{Code, Error};
pub use kv::prefix_range_end;
pub use lease::LeaseKeepAlive;
pub use messages::{
    Compare, CompareResult, Event, EventType, KeyValue, RangeResponse, RequestOp, TxnRequest,
    TxnResponse, WatchResponse,
};
pub use tls::TlsOptions;
pub use watch::{WatchOptions, WatchStream};
