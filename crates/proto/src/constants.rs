//! Protocol timing constants (docs/PROTOCOL.md §5), shared by the timer and session logic.

use std::time::Duration;

pub const REKEY_AFTER_TIME: Duration = Duration::from_secs(120);
pub const REJECT_AFTER_TIME: Duration = Duration::from_secs(180);
pub const REKEY_ATTEMPT_TIME: Duration = Duration::from_secs(90);
pub const REKEY_TIMEOUT: Duration = Duration::from_secs(5);
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Retransmissions before giving up: REKEY_ATTEMPT_TIME / REKEY_TIMEOUT.
pub const MAX_TIMER_HANDSHAKES: u32 = 18;
/// Upper bound (exclusive) of the random jitter added to handshake timers.
pub const REKEY_TIMEOUT_JITTER_MAX: Duration = Duration::from_millis(334);
/// Packets queued per peer while it has no session; the oldest goes first past this.
pub const MAX_STAGED_PACKETS: usize = 128;
/// An initiator starts one "last-minute" handshake when a received packet arrives on a
/// keypair this old, so the session is replaced before the receiver refuses it.
pub const LAST_MINUTE_REKEY_AGE: Duration = Duration::from_secs(180 - 10 - 5);

/// The protocol's time and message limits, gathered so a test can compress them (a soak
/// that rekeys every few seconds). Production always uses [`Timing::default`], the
/// values of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub rekey_after_time: Duration,
    pub reject_after_time: Duration,
    pub rekey_timeout: Duration,
    pub keepalive_timeout: Duration,
    pub rekey_after_messages: u64,
    pub reject_after_messages: u64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            rekey_after_time: REKEY_AFTER_TIME,
            reject_after_time: REJECT_AFTER_TIME,
            rekey_timeout: REKEY_TIMEOUT,
            keepalive_timeout: KEEPALIVE_TIMEOUT,
            rekey_after_messages: crate::session::REKEY_AFTER_MESSAGES,
            reject_after_messages: crate::session::REJECT_AFTER_MESSAGES,
        }
    }
}

impl Timing {
    /// Every duration divided by `factor` (at least 1), message limits as given: for tests.
    pub fn compressed(factor: u32, rekey_after_messages: u64, reject_after_messages: u64) -> Self {
        let f = factor.max(1);
        Timing {
            rekey_after_time: REKEY_AFTER_TIME / f,
            reject_after_time: REJECT_AFTER_TIME / f,
            rekey_timeout: REKEY_TIMEOUT / f,
            keepalive_timeout: KEEPALIVE_TIMEOUT / f,
            rekey_after_messages,
            reject_after_messages,
        }
    }

    /// An initiator rekeys when a packet arrives on a session this old.
    pub fn last_minute_rekey_age(&self) -> Duration {
        self.reject_after_time
            .saturating_sub(self.keepalive_timeout)
            .saturating_sub(self.rekey_timeout)
    }
}
