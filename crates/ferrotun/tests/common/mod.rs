//! The shared test helpers (crates/testkit), under the `common::` paths these tests use.
//!
//! `icmp_listener` (a raw ICMP socket, with `unsafe`) stays here until it has a home in
//! crates/device, where the project's `unsafe` lives; the testkit forbids it.

#![allow(dead_code, unused_imports)]

pub mod icmp_listener;
pub mod mesh;

pub use ferrotun_testkit::*;
