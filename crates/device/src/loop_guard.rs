//! Stops routing loops: when a peer's endpoint is reachable only through the tunnel's own
//! allowed IPs, every datagram the tunnel sends comes back in through the TUN, is sealed
//! again (larger, and once over the MTU, fragmented into two) and goes round forever. The
//! kernel's WireGuard ends such a loop within a few rounds; here our own datagrams are
//! recognised on their first return and dropped, and the loop is reported once.

use crate::local_addrs::LocalAddrs;
use ferrotun_proto::{ip, outer};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A loop that has been quiet this long is reported again when it comes back.
const REPORT_AGAIN_AFTER_MS: u64 = 60_000;

#[derive(Debug)]
pub struct LoopGuard {
    ifname: String,
    addrs: Arc<LocalAddrs>,
    /// 1 + the milliseconds of the last looped datagram; 0 before the first.
    last_seen: AtomicU64,
}

impl LoopGuard {
    pub fn new(ifname: &str, addrs: Arc<LocalAddrs>) -> Self {
        LoopGuard {
            ifname: ifname.to_string(),
            addrs,
            last_seen: AtomicU64::new(0),
        }
    }

    /// Whether `packet`, read from the TUN, is one of our own datagrams (sent from
    /// `port`) coming back: then it must be dropped. The first one of a loop is logged.
    ///
    /// Cheap for everything else: a UDP packet from another port is turned away after
    /// reading three header fields; only a WireGuard message from our port from a local
    /// address counts, so WireGuard that another machine sends through the tunnel from the
    /// same port number, or WireGuard inside WireGuard on another port, passes.
    #[inline]
    pub fn is_looped(&self, packet: &[u8], port: u16, now_ms: u64) -> bool {
        let Some(src) = outer::wireguard_from_port(packet, port) else {
            return false;
        };
        if !self.addrs.is_local(src, now_ms) {
            return false;
        }
        let previous = self.last_seen.swap(now_ms + 1, Ordering::Relaxed);
        if previous == 0 || (now_ms + 1).saturating_sub(previous) >= REPORT_AGAIN_AFTER_MS {
            let endpoint = ip::destination(packet)
                .map(|a| a.to_string())
                .unwrap_or_default();
            tracing::warn!(
                "routing loop: {}'s own encrypted packets to {endpoint} come back in \
                 through {}; dropping them (a peer's endpoint must not be reachable only \
                 through the tunnel: exclude it with a route or a fwmark)",
                self.ifname,
                self.ifname
            );
        }
        true
    }

    /// Removes the looped packets from a batch read from the TUN (packet `i` is
    /// `bufs[i][offset..offset + lens[i]]`), keeping the others in order; returns how many
    /// are left. Buffers are swapped, not copied, and only once a packet is dropped.
    pub fn filter_batch(
        &self,
        bufs: &mut [Vec<u8>],
        lens: &mut [usize],
        n: usize,
        offset: usize,
        port: u16,
        now_ms: u64,
    ) -> usize {
        let mut kept = 0;
        for i in 0..n {
            let packet = &bufs[i][offset..offset + lens[i]];
            if self.is_looped(packet, port, now_ms) {
                continue;
            }
            if kept != i {
                bufs.swap(kept, i);
                lens[kept] = lens[i];
            }
            kept += 1;
        }
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 UDP datagram from 127.0.0.1 (local everywhere) or `src` to 10.9.0.2:7.
    fn datagram(src: [u8; 4], sport: u16, kind: u8, len: usize) -> Vec<u8> {
        let mut p = vec![0u8; 28 + len];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&((28 + len) as u16).to_be_bytes());
        p[9] = 17;
        p[12..16].copy_from_slice(&src);
        p[16..20].copy_from_slice(&[10, 9, 0, 2]);
        p[20..22].copy_from_slice(&sport.to_be_bytes());
        p[22..24].copy_from_slice(&7u16.to_be_bytes());
        p[24..26].copy_from_slice(&((8 + len) as u16).to_be_bytes());
        p[28] = kind;
        p
    }

    #[test]
    fn our_datagram_is_dropped_and_others_pass() {
        let guard = LoopGuard::new("wgt", Arc::new(LocalAddrs::new()));
        let local = [127, 0, 0, 1];
        assert!(guard.is_looped(&datagram(local, 51820, 4, 64), 51820, 1));
        assert!(guard.is_looped(&datagram(local, 51820, 1, 148), 51820, 2));
        // Another port: WireGuard inside WireGuard.
        assert!(!guard.is_looped(&datagram(local, 5, 4, 64), 51820, 3));
        // Our port number, but from a machine behind us (not a local address).
        assert!(!guard.is_looped(&datagram([203, 0, 113, 9], 51820, 4, 64), 51820, 4));
        // Our port and address, but not a WireGuard message.
        assert!(!guard.is_looped(&datagram(local, 51820, 9, 64), 51820, 5));
    }

    #[test]
    fn a_batch_keeps_its_other_packets_in_order() {
        let guard = LoopGuard::new("wgt", Arc::new(LocalAddrs::new()));
        let local = [127, 0, 0, 1];
        let packets = [
            datagram(local, 51820, 4, 64),
            datagram(local, 5, 4, 65),
            datagram(local, 51820, 4, 66),
            datagram(local, 51820, 4, 67),
            datagram(local, 6, 4, 68),
        ];
        let offset = 16;
        let mut bufs: Vec<Vec<u8>> = packets
            .iter()
            .map(|p| {
                let mut b = vec![0u8; offset];
                b.extend_from_slice(p);
                b
            })
            .collect();
        let mut lens: Vec<usize> = packets.iter().map(|p| p.len()).collect();
        let kept = guard.filter_batch(&mut bufs, &mut lens, 5, offset, 51820, 1);
        assert_eq!(kept, 2);
        assert_eq!(&bufs[0][offset..offset + lens[0]], &packets[1][..]);
        assert_eq!(&bufs[1][offset..offset + lens[1]], &packets[4][..]);
    }
}
