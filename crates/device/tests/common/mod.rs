//! The shared test helpers (crates/testkit), under the `common::` names these tests use.

#![allow(dead_code, unused_imports)]

pub use ferrotun_testkit::packet::{csum_add, csum_fold, ipv4_header, udp4 as udp4_packet};
pub use ferrotun_testkit::process::until;
pub use ferrotun_testkit::{have_root, sh, Netns};

/// `NetNs::new()`: a fresh testkit [`Netns`] named `ftd…`, as these tests make them.
pub struct NetNs;

impl NetNs {
    #[allow(clippy::new_ret_no_self)] // a constructor for the testkit's type, under the old name
    pub fn new() -> Netns {
        Netns::new("ftd")
    }
}
