//! The commands that read a running ferrotun interface's counters at a terminal:
//! `ferrotun stats` (once, readable or JSON) and `ferrotun top` (live, per peer). Both ask
//! the daemon through its configuration socket (`stats=1`, see [`crate::stats::wire`]), so
//! what `wg` sees on that socket is unchanged.

pub mod names;
pub mod rates;
pub mod render;
pub mod screen;
pub mod stats_cmd;
pub mod terminal;
pub mod top;

pub use stats_cmd::{stats, StatsOptions};
pub use top::top;
