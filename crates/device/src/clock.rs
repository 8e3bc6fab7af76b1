//! The device's clocks, mapped onto the core's injected time.

use ferrotun_proto::interface::Env;
use ferrotun_proto::time::{Instant, WallTime};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: std::time::Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Clock {
            origin: std::time::Instant::now(),
        }
    }
}

impl Clock {
    pub fn now(&self) -> Instant {
        Instant::from_nanos(u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    pub fn env(&self) -> Env {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Env {
            now: self.now(),
            wall: WallTime::from_duration_since_epoch(wall),
        }
    }
}
