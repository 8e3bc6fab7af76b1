//! This host's addresses (per interface), read with getifaddrs(3) and cached: the loop
//! guard asks whether a datagram's source is local, the unreachable responder asks for the
//! TUN's own address. Both questions come up only on rare paths (a datagram from our own
//! port, a packet without a peer), so the list is re-read when asked and older than
//! [`MAX_AGE_MS`] ([`MISS_MAX_AGE_MS`] when the address asked about is missing), never per
//! packet and never on the data path's fast track.

use parking_lot::{Mutex, RwLock};
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// How stale the cached list may be when used.
pub const MAX_AGE_MS: u64 = 1000;
/// How stale the list may be when it does not hold the address asked about. Bounds the
/// re-reads that datagrams from a non-local source on our port can cause to 100 a second.
pub const MISS_MAX_AGE_MS: u64 = 10;
const NEVER: u64 = u64::MAX;

/// One address and the interface that holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalAddr {
    pub ifname: String,
    pub addr: IpAddr,
}

#[derive(Debug, Default)]
pub struct LocalAddrs {
    list: RwLock<Arc<Vec<LocalAddr>>>,
    /// When the list was read (the caller's milliseconds), or [`NEVER`].
    read_at: AtomicU64,
    /// Held while one thread re-reads; the others use the list they have.
    refreshing: Mutex<()>,
}

impl LocalAddrs {
    pub fn new() -> Self {
        LocalAddrs {
            list: RwLock::default(),
            read_at: AtomicU64::new(NEVER),
            refreshing: Mutex::new(()),
        }
    }

    /// The addresses as of at most [`MAX_AGE_MS`] before `now_ms`, re-read if older.
    pub fn get(&self, now_ms: u64) -> Arc<Vec<LocalAddr>> {
        self.get_within(now_ms, MAX_AGE_MS)
    }

    fn get_within(&self, now_ms: u64, max_age_ms: u64) -> Arc<Vec<LocalAddr>> {
        let read_at = self.read_at.load(Ordering::Acquire);
        let stale = read_at == NEVER || now_ms.saturating_sub(read_at) >= max_age_ms;
        if stale {
            if let Some(_guard) = self.refreshing.try_lock() {
                match read_all() {
                    Ok(list) => *self.list.write() = Arc::new(list),
                    Err(e) => tracing::debug!("cannot list the host's addresses: {e}"),
                }
                // A failure is retried later too, not on every packet.
                self.read_at.store(now_ms, Ordering::Release);
            }
        }
        self.list.read().clone()
    }

    /// Whether `addr` is one of this host's addresses. An address not in the list makes
    /// it re-read if it is older than [`MISS_MAX_AGE_MS`]: an address added just before a
    /// routing loop starts must not let the loop run for a second.
    pub fn is_local(&self, addr: IpAddr, now_ms: u64) -> bool {
        self.get(now_ms).iter().any(|a| a.addr == addr)
            || self
                .get_within(now_ms, MISS_MAX_AGE_MS)
                .iter()
                .any(|a| a.addr == addr)
    }
}

/// Every address of every interface in this network namespace.
pub fn read_all() -> io::Result<Vec<LocalAddr>> {
    let out = nix::ifaddrs::getifaddrs()?
        .filter_map(|ifa| {
            let sa = ifa.address?;
            let addr = if let Some(v4) = sa.as_sockaddr_in() {
                IpAddr::V4(v4.ip())
            } else {
                IpAddr::V6(sa.as_sockaddr_in6()?.ip())
            };
            Some(LocalAddr {
                ifname: ifa.interface_name,
                addr,
            })
        })
        .collect();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn loopback_is_listed_and_local() {
        let all = read_all().unwrap();
        assert!(all
            .iter()
            .any(|a| a.addr == IpAddr::V4(Ipv4Addr::LOCALHOST)));
        let cache = LocalAddrs::new();
        assert!(cache.is_local(IpAddr::V4(Ipv4Addr::LOCALHOST), 5));
        // TEST-NET-3 is never assigned here.
        assert!(!cache.is_local("203.0.113.77".parse().unwrap(), 6));
    }

    #[test]
    fn the_list_is_reused_until_it_is_old() {
        let cache = LocalAddrs::new();
        let first = cache.get(10_000);
        assert!(Arc::ptr_eq(&first, &cache.get(10_000 + MAX_AGE_MS - 1)));
        assert!(!Arc::ptr_eq(&first, &cache.get(10_000 + MAX_AGE_MS)));
    }

    #[test]
    fn a_missing_address_rereads_a_list_older_than_the_miss_age() {
        let cache = LocalAddrs::new();
        let first = cache.get(10_000);
        let unknown: IpAddr = "203.0.113.77".parse().unwrap();
        assert!(!cache.is_local(unknown, 10_000 + MISS_MAX_AGE_MS - 1));
        assert!(Arc::ptr_eq(
            &first,
            &cache.get(10_000 + MISS_MAX_AGE_MS - 1)
        ));
        assert!(!cache.is_local(unknown, 10_000 + MISS_MAX_AGE_MS));
        assert!(!Arc::ptr_eq(&first, &cache.get(10_000 + MISS_MAX_AGE_MS)));
    }
}
