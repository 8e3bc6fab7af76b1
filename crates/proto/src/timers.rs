//! The per-peer timer state machine (the kernel's `timers.c`, as deadlines).
//!
//! Each protocol event has one method ("call after a data packet is sent", ...), which
//! arms or cancels deadlines. The core never sleeps: the caller asks for [`Timers::expired`]
//! with the current time and acts on what fired, and [`Timers::next_deadline`] tells it when
//! to ask again.

use crate::constants::*;
use crate::time::Instant;
use std::time::Duration;

/// A timer that fired; the peer turns it into packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerEvent {
    /// Our initiation went unanswered for REKEY_TIMEOUT: send another (or give up).
    RetransmitHandshake,
    /// We received data and sent nothing back for KEEPALIVE_TIMEOUT.
    SendKeepalive,
    /// We sent data and heard nothing back for KEEPALIVE_TIMEOUT + REKEY_TIMEOUT.
    NewHandshake,
    /// No new session for 3 × REJECT_AFTER_TIME: erase all key material.
    ZeroKeyMaterial,
    /// The persistent keepalive interval passed without traffic.
    PersistentKeepalive,
}

#[derive(Debug, Default, Clone)]
pub struct Timers {
    retransmit_handshake: Option<Instant>,
    send_keepalive: Option<Instant>,
    new_handshake: Option<Instant>,
    zero_key_material: Option<Instant>,
    persistent_keepalive: Option<Instant>,
    /// Retransmissions of the current handshake attempt.
    pub handshake_attempts: u32,
    need_another_keepalive: bool,
    /// Set when the last-minute rekey was sent, cleared when a handshake completes.
    pub sent_lastminute_handshake: bool,
    /// Persistent keepalive interval in seconds; 0 disables it.
    pub persistent_keepalive_interval: u16,
    /// The limits in force (the protocol's, unless a test compressed them).
    pub timing: Timing,
    /// Jitter for the next handshake timer, refreshed by the caller (the core draws it
    /// from the injected rng when a timer fires, so the data path needs no rng).
    pub jitter: Duration,
}

impl Timers {
    fn persistent_interval(&self) -> Option<Duration> {
        match self.persistent_keepalive_interval {
            0 => None,
            secs => Some(Duration::from_secs(u64::from(secs))),
        }
    }

    /// A data packet (not a keepalive) was sent.
    pub fn data_sent(&mut self, now: Instant) {
        if self.new_handshake.is_none() {
            self.new_handshake =
                Some(now + self.timing.keepalive_timeout + self.timing.rekey_timeout + self.jitter);
        }
    }

    /// A data packet (not a keepalive) was received and authenticated.
    pub fn data_received(&mut self, now: Instant) {
        if self.send_keepalive.is_none() {
            self.send_keepalive = Some(now + self.timing.keepalive_timeout);
        } else {
            self.need_another_keepalive = true;
        }
    }

    /// Any authenticated packet (data, keepalive or handshake) was sent.
    pub fn any_authenticated_packet_sent(&mut self) {
        self.send_keepalive = None;
    }

    /// Any authenticated packet (data, keepalive or handshake) was received.
    pub fn any_authenticated_packet_received(&mut self) {
        self.new_handshake = None;
    }

    /// Any authenticated packet went either way: the persistent keepalive starts over.
    pub fn any_authenticated_packet_traversal(&mut self, now: Instant) {
        self.persistent_keepalive = self.persistent_interval().map(|d| now + d);
    }

    /// An initiation was sent.
    pub fn handshake_initiated(&mut self, now: Instant) {
        self.retransmit_handshake = Some(now + self.timing.rekey_timeout + self.jitter);
    }

    /// A handshake completed (initiator: response consumed; responder: key confirmed).
    pub fn handshake_complete(&mut self) {
        self.retransmit_handshake = None;
        self.handshake_attempts = 0;
        self.sent_lastminute_handshake = false;
    }

    /// A session was derived: key material is erased if nothing newer comes along.
    pub fn session_derived(&mut self, now: Instant) {
        self.zero_key_material = Some(now + self.timing.reject_after_time * 3);
    }

    /// Handshake retries ran out: stop keepalives and schedule erasing the keys, unless
    /// erasure is already scheduled.
    pub fn handshake_given_up(&mut self, now: Instant) {
        self.send_keepalive = None;
        self.retransmit_handshake = None;
        if self.zero_key_material.is_none() {
            self.zero_key_material = Some(now + self.timing.reject_after_time * 3);
        }
    }

    /// The persistent keepalive interval changed.
    pub fn set_persistent_keepalive(&mut self, secs: u16, now: Instant) {
        self.persistent_keepalive_interval = secs;
        self.persistent_keepalive = self.persistent_interval().map(|d| now + d);
    }

    /// Cancels every timer (the peer is removed or the interface goes down).
    pub fn stop_all(&mut self) {
        self.retransmit_handshake = None;
        self.send_keepalive = None;
        self.new_handshake = None;
        self.zero_key_material = None;
        self.persistent_keepalive = None;
    }

    /// The earliest armed deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        [
            self.retransmit_handshake,
            self.send_keepalive,
            self.new_handshake,
            self.zero_key_material,
            self.persistent_keepalive,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Disarms and returns every timer that is due at `now`, in a fixed order.
    pub fn expired(&mut self, now: Instant) -> Vec<TimerEvent> {
        let mut fired = Vec::new();
        let mut take = |slot: &mut Option<Instant>, event| {
            if slot.is_some_and(|at| at <= now) {
                *slot = None;
                fired.push(event);
            }
        };
        take(&mut self.zero_key_material, TimerEvent::ZeroKeyMaterial);
        take(
            &mut self.retransmit_handshake,
            TimerEvent::RetransmitHandshake,
        );
        take(&mut self.new_handshake, TimerEvent::NewHandshake);
        take(&mut self.send_keepalive, TimerEvent::SendKeepalive);
        take(
            &mut self.persistent_keepalive,
            TimerEvent::PersistentKeepalive,
        );
        fired
    }

    /// After a send-keepalive fired: re-arm it if more data arrived meanwhile.
    pub fn keepalive_sent_after_timer(&mut self, now: Instant) {
        if self.need_another_keepalive {
            self.need_another_keepalive = false;
            self.send_keepalive = Some(now + self.timing.keepalive_timeout);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> Instant {
        Instant::ZERO + Duration::from_secs(secs)
    }

    #[test]
    fn new_handshake_is_armed_once_and_cancelled_by_receive() {
        let mut t = Timers::default();
        t.data_sent(at(0));
        t.data_sent(at(3)); // does not push the deadline
        assert_eq!(t.next_deadline(), Some(at(15)));
        t.any_authenticated_packet_received();
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn keepalive_fires_after_data_received_unless_we_sent() {
        let mut t = Timers::default();
        t.data_received(at(0));
        assert!(t.expired(at(9)).is_empty());
        assert_eq!(t.expired(at(10)), vec![TimerEvent::SendKeepalive]);
        t.data_received(at(20));
        t.any_authenticated_packet_sent();
        assert!(t.expired(at(40)).is_empty());
    }

    #[test]
    fn need_another_keepalive_rearms() {
        let mut t = Timers::default();
        t.data_received(at(0));
        t.data_received(at(5));
        assert_eq!(t.expired(at(10)), vec![TimerEvent::SendKeepalive]);
        t.keepalive_sent_after_timer(at(10));
        assert_eq!(t.next_deadline(), Some(at(20)));
    }

    #[test]
    fn persistent_keepalive_follows_traffic() {
        let mut t = Timers::default();
        t.set_persistent_keepalive(25, at(0));
        t.any_authenticated_packet_traversal(at(10));
        assert_eq!(t.next_deadline(), Some(at(35)));
        t.set_persistent_keepalive(0, at(11));
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn give_up_keeps_an_earlier_zero_key_deadline() {
        let mut t = Timers::default();
        t.session_derived(at(0));
        t.handshake_given_up(at(100));
        assert_eq!(t.next_deadline(), Some(at(540)));
    }
}
