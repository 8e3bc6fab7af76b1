//! Protocol timing constants (PROTOCOL.md §5), shared by the timer and session logic.

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
