//! The shared test helpers (crates/testkit), under the `common::` names these tests use.

#![allow(unused_imports)]

pub use ferrotun_testkit::packet::{csum_add, csum_fold, ipv4_header, udp4 as udp4_packet};
pub use ferrotun_testkit::process::until;
pub use ferrotun_testkit::{have_root, sh, Netns as NetNs};
