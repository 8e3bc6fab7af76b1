//! ferrotun's control plane as a library: the configuration protocol (UAPI), config files, and
//! the `wg` commands, so the binary and the integration tests share them.

// Outside tests an error is reported, never a panic: no unwrap or expect in shipped code.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
// All unsafe code lives in crates/device.
#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod front;
pub mod mesh;
pub mod metrics;
pub mod netlink;
pub mod quick;
pub mod stats;
pub mod term;
pub mod uapi;

/// Top-level dispatch by program name: `wg` and `wg-quick` are those tools, with their
/// usage texts; any other name is ferrotun's own command line.
pub fn dispatch(program: &str, args: Vec<String>) -> i32 {
    match program {
        "wg" => cli::wg_main(&args),
        "wg-quick" => quick::main(program, &args),
        _ => front::main(&args),
    }
}
