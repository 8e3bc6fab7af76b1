//! The client against real etcd processes (Debian's etcd-server and etcd-client packages).
//! Each test starts its own member(s) on loopback.

mod auth;
mod kv;
mod leader;
mod lease;
mod server;
mod tls;
mod watch;

use std::future::Future;
use std::time::Duration;

/// Every call in the tests is bounded, so a broken client fails instead of hanging.
pub async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(5), f).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: no answer within 5 s"),
    }
}
