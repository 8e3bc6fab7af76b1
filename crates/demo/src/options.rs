//! What `ferrotun demo` was asked to do; the command line that fills it in is part of the
//! one definition of the commands (`front::definition`).

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Length of the throughput test.
    pub seconds: Duration,
    /// Leave everything up afterwards.
    pub keep: bool,
    /// Bring the peers up by hand instead of with `ferrotun up`.
    pub no_up: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seconds: Duration::from_secs(3),
            keep: false,
            no_up: false,
        }
    }
}
