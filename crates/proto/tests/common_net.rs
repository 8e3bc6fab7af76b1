//! The two-peer network on a virtual clock, from the shared test support (crates/testkit),
//! under the names these tests use (`mod common_net; use common_net::Net;`).

#![allow(unused_imports)]

pub use ferrotun_testkit::pair::{Logged, Node, Pair as Net, WALL_START};
