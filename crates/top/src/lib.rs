//! The commands that read a running ferrotun interface's counters at a terminal:
//! `ferrotun stats` (once, readable or JSON) and `ferrotun top` (live, per peer). Both ask
//! the daemon through its configuration socket (`stats=1`, see [`ferrotun_uapi::stats::wire`]), so
//! what `wg` sees on that socket is unchanged.

// Outside tests an error is reported, never a panic: no unwrap or expect in shipped code.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
// All unsafe code lives in crates/device.
#![forbid(unsafe_code)]

pub(crate) mod columns;
pub(crate) mod header;
pub(crate) mod names;
pub(crate) mod rates;
pub(crate) mod render;
pub(crate) mod screen;
pub(crate) mod stats_cmd;
pub(crate) mod terminal;
pub mod top;

pub use stats_cmd::{stats, StatsOptions};
pub use top::{top, TopOptions};
