//! What a running interface counts: every way a packet can be dropped, by reason, and the
//! events an operator wants to see (handshakes, keepalives, offload fall-backs).
//!
//! Each [`Counter`] is counted in exactly one place, so totals never count an event twice:
//!
//! - **Peer counters** (the first [`PEER_COUNTERS`] variants) are kept in the peer's own
//!   state and added to under the peer's lock, which the code that sees the event already
//!   holds: nothing extra is shared on the data path. A device's total is the sum over its
//!   peers plus what removed peers had counted ([`Counts`] keeps both).
//! - **Device counters** are events that belong to no peer (a packet for no peer, a forged
//!   mac1, a full queue). Each thread adds them to its own [`CounterSet`], which sits on
//!   cache lines of its own; a reader sums the sets.
//!
//! Every counter has a stable key, `family` or `family.label`, used on the configuration
//! socket, in `ferrotun stats --json` and (as `ferrotun_<family>_total{<label name>=...}`)
//! in the Prometheus metrics.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    (
        peer { $($pv:ident => $pf:ident $(. $pl:ident)?,)* }
        device { $($dv:ident => $df:ident $(. $dl:ident)?,)* }
    ) => {
        /// One thing counted; see the module documentation for where each is counted.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Counter {
            $($pv,)*
            $($dv,)*
        }

        impl Counter {
            /// Every counter, peer counters first.
            pub const ALL: &'static [Counter] = &[$(Counter::$pv,)* $(Counter::$dv,)*];

            /// The counter's family and, for families split by a label, its label value.
            pub fn family_and_label(self) -> (Family, Option<&'static str>) {
                match self {
                    $(Counter::$pv => (Family::$pf, counters!(@label $($pl)?)),)*
                    $(Counter::$dv => (Family::$df, counters!(@label $($dl)?)),)*
                }
            }

            /// The stable key: `family` or `family.label`.
            pub fn key(self) -> &'static str {
                match self {
                    $(Counter::$pv => concat!(stringify!($pf) $(, ".", stringify!($pl))?),)*
                    $(Counter::$dv => concat!(stringify!($df) $(, ".", stringify!($dl))?),)*
                }
            }
        }
    };
    (@label) => { None };
    (@label $l:ident) => { Some(stringify!($l)) };
}

counters! {
    peer {
        RxPackets => received_packets,
        RxKeepalive => received_keepalives,
        RxInitiation => received_handshakes.initiation,
        RxResponse => received_handshakes.response,
        CookieReplyReceived => cookie_replies_received,
        DropStaleSession => received_dropped.stale_session,
        DropDecrypt => received_dropped.decrypt_failed,
        DropReplayedCounter => received_dropped.replayed_counter,
        DropSourceNotAllowed => received_dropped.source_not_allowed,
        DropMalformedInner => received_dropped.malformed_inner,
        DropReplayedTimestamp => received_dropped.replayed_timestamp,
        DropInitiationFlood => received_dropped.initiation_flood,
        TxPackets => sent_packets,
        TxKeepalive => sent_keepalives,
        StagedNoSession => sent_staged.no_session,
        StagedNoEndpoint => sent_staged.no_endpoint,
        DropStagedOverflow => sent_dropped.staged_overflow,
        DropStagedGiveUp => sent_dropped.staged_given_up,
        InitiationSent => handshake_initiations_sent,
        ResponseSent => handshake_responses_sent,
        CompletedInitiator => handshakes_completed.initiator,
        CompletedResponder => handshakes_completed.responder,
        HandshakeRetry => handshake_retries,
        HandshakeGiveUp => handshake_give_ups,
        Rekey => rekeys,
        KeysZeroed => keys_zeroed,
    }
    device {
        DropBadMessage => received_dropped.bad_size_or_type,
        DropTruncated => received_dropped.truncated,
        DropInvalidMac1 => received_dropped.invalid_mac1,
        DropCookieRequired => received_dropped.cookie_required,
        DropRateLimited => received_dropped.rate_limited,
        DropHandshakeDecrypt => received_dropped.handshake_decrypt_failed,
        DropUnknownPeer => received_dropped.unknown_static_key,
        DropUnexpectedHandshake => received_dropped.unexpected_handshake,
        DropNoPrivateKey => received_dropped.no_private_key,
        DropQueueFull => received_dropped.handshake_queue_full,
        DropUnknownIndex => received_dropped.unknown_index,
        DropNoPeer => sent_dropped.no_peer,
        DropLooped => sent_dropped.routing_loop,
        DropUnsplittable => sent_dropped.unsplittable,
        CookieReplySent => cookie_replies_sent,
        UnreachableSent => icmp_unreachable_sent,
        UdpEperm => udp_send_errors.EPERM,
        UdpEnobufs => udp_send_errors.ENOBUFS,
        UdpEhostunreach => udp_send_errors.EHOSTUNREACH,
        UdpEnetunreach => udp_send_errors.ENETUNREACH,
        UdpEmsgsize => udp_send_errors.EMSGSIZE,
        UdpEaddrnotavail => udp_send_errors.EADDRNOTAVAIL,
        UdpEinval => udp_send_errors.EINVAL,
        UdpEconnrefused => udp_send_errors.ECONNREFUSED,
        UdpEafnosupport => udp_send_errors.EAFNOSUPPORT,
        UdpOther => udp_send_errors.other,
        TunEinval => tun_write_errors.EINVAL,
        TunEio => tun_write_errors.EIO,
        TunEnobufs => tun_write_errors.ENOBUFS,
        TunEagain => tun_write_errors.EAGAIN,
        TunOther => tun_write_errors.other,
        GsoRefused => offload_fallbacks.udp_gso_refused,
        TunMergeRefused => offload_fallbacks.tun_merge_refused,
    }
}

/// How many counters there are.
pub const COUNTERS: usize = Counter::ALL.len();
/// The peer counters are `Counter::ALL[..PEER_COUNTERS]`.
pub const PEER_COUNTERS: usize = Counter::DropBadMessage as usize;

/// A group of counters charted together: one Prometheus metric, split by a label when the
/// family has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(non_camel_case_types)]
pub enum Family {
    received_packets,
    received_keepalives,
    received_handshakes,
    cookie_replies_received,
    received_dropped,
    sent_packets,
    sent_keepalives,
    sent_staged,
    sent_dropped,
    handshake_initiations_sent,
    handshake_responses_sent,
    handshakes_completed,
    handshake_retries,
    handshake_give_ups,
    rekeys,
    keys_zeroed,
    cookie_replies_sent,
    icmp_unreachable_sent,
    udp_send_errors,
    tun_write_errors,
    offload_fallbacks,
}

impl Family {
    pub const ALL: &'static [Family] = &[
        Family::received_packets,
        Family::received_keepalives,
        Family::received_handshakes,
        Family::cookie_replies_received,
        Family::received_dropped,
        Family::sent_packets,
        Family::sent_keepalives,
        Family::sent_staged,
        Family::sent_dropped,
        Family::handshake_initiations_sent,
        Family::handshake_responses_sent,
        Family::handshakes_completed,
        Family::handshake_retries,
        Family::handshake_give_ups,
        Family::rekeys,
        Family::keys_zeroed,
        Family::cookie_replies_sent,
        Family::icmp_unreachable_sent,
        Family::udp_send_errors,
        Family::tun_write_errors,
        Family::offload_fallbacks,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Family::received_packets => "received_packets",
            Family::received_keepalives => "received_keepalives",
            Family::received_handshakes => "received_handshakes",
            Family::cookie_replies_received => "cookie_replies_received",
            Family::received_dropped => "received_dropped",
            Family::sent_packets => "sent_packets",
            Family::sent_keepalives => "sent_keepalives",
            Family::sent_staged => "sent_staged",
            Family::sent_dropped => "sent_dropped",
            Family::handshake_initiations_sent => "handshake_initiations_sent",
            Family::handshake_responses_sent => "handshake_responses_sent",
            Family::handshakes_completed => "handshakes_completed",
            Family::handshake_retries => "handshake_retries",
            Family::handshake_give_ups => "handshake_give_ups",
            Family::rekeys => "rekeys",
            Family::keys_zeroed => "keys_zeroed",
            Family::cookie_replies_sent => "cookie_replies_sent",
            Family::icmp_unreachable_sent => "icmp_unreachable_sent",
            Family::udp_send_errors => "udp_send_errors",
            Family::tun_write_errors => "tun_write_errors",
            Family::offload_fallbacks => "offload_fallbacks",
        }
    }

    /// The name of the label that splits the family, if any.
    pub fn label_name(self) -> Option<&'static str> {
        match self {
            Family::received_handshakes => Some("type"),
            Family::received_dropped | Family::sent_dropped | Family::sent_staged => Some("reason"),
            Family::handshakes_completed => Some("role"),
            Family::udp_send_errors | Family::tun_write_errors => Some("errno"),
            Family::offload_fallbacks => Some("kind"),
            _ => None,
        }
    }

    /// One line for people: what the family counts.
    pub fn help(self) -> &'static str {
        match self {
            Family::received_packets => {
                "Authentic transport datagrams received (data and keepalives)."
            }
            Family::received_keepalives => "Keepalives (empty transport messages) received.",
            Family::received_handshakes => "Handshake messages accepted, by type.",
            Family::cookie_replies_received => "Cookie replies received and accepted.",
            Family::received_dropped => "Datagrams received and dropped, by reason.",
            Family::sent_packets => "Transport datagrams sent (data and keepalives).",
            Family::sent_keepalives => "Keepalives sent.",
            Family::sent_staged => {
                "Packets from the tunnel held back until a handshake completes, by reason."
            }
            Family::sent_dropped => "Packets from the tunnel dropped, by reason.",
            Family::handshake_initiations_sent => "Handshake initiations sent.",
            Family::handshake_responses_sent => "Handshake responses sent.",
            Family::handshakes_completed => "Handshakes completed, by our role in them.",
            Family::handshake_retries => "Handshake initiations sent again after no answer.",
            Family::handshake_give_ups => "Times a peer's handshake attempts were given up.",
            Family::rekeys => "Handshakes started to replace a live session.",
            Family::keys_zeroed => "Times a peer's keys were erased after going unused.",
            Family::cookie_replies_sent => "Cookie replies sent because we were under load.",
            Family::icmp_unreachable_sent => {
                "ICMP unreachable errors written for packets no peer carries."
            }
            Family::udp_send_errors => "UDP datagrams the kernel refused to send, by errno.",
            Family::tun_write_errors => "Packets the TUN refused, by errno.",
            Family::offload_fallbacks => "Offloads refused, so the slower path was taken.",
        }
    }
}

impl Counter {
    /// True for counters kept per peer (see the module documentation).
    pub fn is_peer(self) -> bool {
        (self as usize) < PEER_COUNTERS
    }

    pub fn family(self) -> Family {
        self.family_and_label().0
    }

    pub fn label(self) -> Option<&'static str> {
        self.family_and_label().1
    }

    /// The counter with this key.
    pub fn from_key(key: &str) -> Option<Counter> {
        Counter::ALL.iter().copied().find(|c| c.key() == key)
    }

    /// True for the families that count dropped packets.
    pub fn is_drop(self) -> bool {
        matches!(
            self.family(),
            Family::received_dropped
                | Family::sent_dropped
                | Family::udp_send_errors
                | Family::tun_write_errors
        )
    }

    /// The counter for a failed UDP send.
    pub fn udp_error(errno: Option<i32>) -> Counter {
        match errno {
            Some(libc_errno::EPERM) => Counter::UdpEperm,
            Some(libc_errno::ENOBUFS) => Counter::UdpEnobufs,
            Some(libc_errno::EHOSTUNREACH) => Counter::UdpEhostunreach,
            Some(libc_errno::ENETUNREACH) => Counter::UdpEnetunreach,
            Some(libc_errno::EMSGSIZE) => Counter::UdpEmsgsize,
            Some(libc_errno::EADDRNOTAVAIL) => Counter::UdpEaddrnotavail,
            Some(libc_errno::EINVAL) => Counter::UdpEinval,
            Some(libc_errno::ECONNREFUSED) => Counter::UdpEconnrefused,
            Some(libc_errno::EAFNOSUPPORT) => Counter::UdpEafnosupport,
            _ => Counter::UdpOther,
        }
    }

    /// The counter for a failed TUN write.
    pub fn tun_error(errno: Option<i32>) -> Counter {
        match errno {
            Some(libc_errno::EINVAL) => Counter::TunEinval,
            Some(libc_errno::EIO) => Counter::TunEio,
            Some(libc_errno::ENOBUFS) => Counter::TunEnobufs,
            Some(libc_errno::EAGAIN) => Counter::TunEagain,
            _ => Counter::TunOther,
        }
    }
}

/// The Linux errno values the error counters name (the core has no libc; these are the
/// kernel's numbers on every architecture Linux shares them on, which is all of these).
mod libc_errno {
    pub const EPERM: i32 = 1;
    pub const EIO: i32 = 5;
    pub const EAGAIN: i32 = 11;
    pub const EINVAL: i32 = 22;
    pub const EMSGSIZE: i32 = 90;
    pub const EAFNOSUPPORT: i32 = 97;
    pub const EADDRNOTAVAIL: i32 = 99;
    pub const ENETUNREACH: i32 = 101;
    pub const ENOBUFS: i32 = 105;
    pub const ECONNREFUSED: i32 = 111;
    pub const EHOSTUNREACH: i32 = 113;
}

/// A peer's own counters: plain numbers, changed only under the peer's lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCounts([u64; PEER_COUNTERS]);

impl Default for PeerCounts {
    fn default() -> Self {
        PeerCounts([0; PEER_COUNTERS])
    }
}

impl PeerCounts {
    pub fn add(&mut self, counter: Counter, n: u64) {
        debug_assert!(counter.is_peer(), "{counter:?} is not a peer counter");
        if let Some(slot) = self.0.get_mut(counter as usize) {
            *slot = slot.wrapping_add(n);
        }
    }

    pub fn get(&self, counter: Counter) -> u64 {
        self.0.get(counter as usize).copied().unwrap_or(0)
    }

    pub fn merge(&mut self, other: &PeerCounts) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a = a.wrapping_add(*b);
        }
    }
}

/// One thread's device counters, on cache lines no other thread writes: a worker adds to
/// its own set without a shared line bouncing between cores.
#[repr(align(128))]
pub struct CounterSet([AtomicU64; COUNTERS]);

impl Default for CounterSet {
    fn default() -> Self {
        CounterSet(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl std::fmt::Debug for CounterSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(
                Counter::ALL
                    .iter()
                    .map(|c| (c.key(), self.get(*c)))
                    .filter(|(_, v)| *v > 0),
            )
            .finish()
    }
}

impl CounterSet {
    pub fn add(&self, counter: Counter, n: u64) {
        debug_assert!(!counter.is_peer(), "{counter:?} is a peer counter");
        if let Some(slot) = self.0.get(counter as usize) {
            slot.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn get(&self, counter: Counter) -> u64 {
        self.0
            .get(counter as usize)
            .map_or(0, |s| s.load(Ordering::Relaxed))
    }
}

/// Every counter's value at one moment: what a reader sums sets and peers into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counts([u64; COUNTERS]);

impl Default for Counts {
    fn default() -> Self {
        Counts([0; COUNTERS])
    }
}

impl Counts {
    pub fn get(&self, counter: Counter) -> u64 {
        self.0.get(counter as usize).copied().unwrap_or(0)
    }

    pub fn set(&mut self, counter: Counter, value: u64) {
        if let Some(slot) = self.0.get_mut(counter as usize) {
            *slot = value;
        }
    }

    pub fn add_set(&mut self, set: &CounterSet) {
        for (i, slot) in self.0.iter_mut().enumerate() {
            *slot = slot.wrapping_add(set.0[i].load(Ordering::Relaxed));
        }
    }

    pub fn add_peer(&mut self, peer: &PeerCounts) {
        for (slot, v) in self.0.iter_mut().zip(peer.0.iter()) {
            *slot = slot.wrapping_add(*v);
        }
    }

    /// Every counter with its value, in catalogue order.
    pub fn iter(&self) -> impl Iterator<Item = (Counter, u64)> + '_ {
        Counter::ALL.iter().map(|c| (*c, self.get(*c)))
    }
}

impl From<&PeerCounts> for Counts {
    fn from(peer: &PeerCounts) -> Counts {
        let mut c = Counts::default();
        c.add_peer(peer);
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for c in Counter::ALL {
            assert!(seen.insert(c.key()), "duplicate key {}", c.key());
            assert_eq!(Counter::from_key(c.key()), Some(*c));
            let built = match c.label() {
                Some(l) => format!("{}.{l}", c.family().name()),
                None => c.family().name().to_string(),
            };
            assert_eq!(c.key(), built, "the key is the family and label names");
            assert_eq!(Counter::ALL[*c as usize], *c, "ALL is in declaration order");
        }
        assert_eq!(Counter::from_key("received_dropped.nonsense"), None);
    }

    #[test]
    fn peer_counters_come_first_and_families_are_labelled_consistently() {
        assert!(Counter::ALL[..PEER_COUNTERS].iter().all(|c| c.is_peer()));
        assert!(Counter::ALL[PEER_COUNTERS..].iter().all(|c| !c.is_peer()));
        for c in Counter::ALL {
            assert_eq!(
                c.label().is_some(),
                c.family().label_name().is_some(),
                "{c:?}: a family is either split by a label or not"
            );
            assert!(Family::ALL.contains(&c.family()));
        }
        for f in Family::ALL {
            assert!(
                Counter::ALL.iter().any(|c| c.family() == *f),
                "{f:?} unused"
            );
        }
    }

    #[test]
    fn counts_sum_sets_and_peers() {
        let set = CounterSet::default();
        set.add(Counter::DropNoPeer, 3);
        let mut peer = PeerCounts::default();
        peer.add(Counter::RxPackets, 5);
        let mut counts = Counts::default();
        counts.add_set(&set);
        counts.add_set(&set);
        counts.add_peer(&peer);
        assert_eq!(counts.get(Counter::DropNoPeer), 6);
        assert_eq!(counts.get(Counter::RxPackets), 5);
        assert_eq!(counts.iter().filter(|(_, v)| *v > 0).count(), 2);
    }

    #[test]
    fn errno_counters() {
        assert_eq!(
            Counter::udp_error(Some(105)).key(),
            "udp_send_errors.ENOBUFS"
        );
        assert_eq!(Counter::udp_error(None), Counter::UdpOther);
        assert_eq!(Counter::tun_error(Some(5)).key(), "tun_write_errors.EIO");
    }
}
