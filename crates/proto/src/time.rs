//! Time as the core sees it: a monotonic instant handed in by the caller.
//!
//! The core never reads a clock. The device layer maps its own monotonic clock onto
//! [`Instant`] (nanoseconds since an arbitrary origin) and tests drive it by hand, so every
//! timer in the protocol can be exercised under virtual time.

use std::ops::{Add, Sub};
use std::time::Duration;

/// A point on the caller's monotonic clock, in nanoseconds since an arbitrary origin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(u64);

impl Instant {
    /// The origin of the clock. Tests usually start here.
    pub const ZERO: Instant = Instant(0);

    pub const fn from_nanos(nanos: u64) -> Self {
        Instant(nanos)
    }

    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        let nanos = u64::try_from(rhs.as_nanos()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_add(nanos))
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, rhs: Duration) -> Instant {
        let nanos = u64::try_from(rhs.as_nanos()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_sub(nanos))
    }
}

/// Wall-clock time as seconds and nanoseconds since the Unix epoch, handed in by the caller.
/// Used for the TAI64N timestamp in initiations and the "latest handshake" a user sees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct WallTime {
    pub secs: u64,
    pub nanos: u32,
}

impl WallTime {
    pub const fn new(secs: u64, nanos: u32) -> Self {
        WallTime { secs, nanos }
    }

    pub fn from_duration_since_epoch(d: Duration) -> Self {
        WallTime {
            secs: d.as_secs(),
            nanos: d.subsec_nanos(),
        }
    }
}

/// The caller's two clocks read at the same moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Env {
    pub now: Instant,
    pub wall: WallTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Instant::from_nanos(5);
        assert_eq!(t - Duration::from_secs(1), Instant::ZERO);
        assert_eq!((t + Duration::from_nanos(10)).as_nanos(), 15);
        assert_eq!(Instant::ZERO.saturating_duration_since(t), Duration::ZERO);
        assert_eq!(
            t.saturating_duration_since(Instant::ZERO),
            Duration::from_nanos(5)
        );
    }
}
