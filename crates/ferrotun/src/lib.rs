//! The ferrotun binary's own code: the command line (`front`), which hands each command to
//! the crate that implements it, and the dispatch by program name.

// Outside tests an error is reported, never a panic: no unwrap or expect in shipped code.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
// All unsafe code lives in crates/device.
#![forbid(unsafe_code)]

pub mod front;

/// Top-level dispatch by program name: `wg` and `wg-quick` are those tools, with their
/// usage texts; any other name is ferrotun's own command line.
pub fn dispatch(program: &str, args: Vec<String>) -> i32 {
    match program {
        "wg" => ferrotun_wg::wg_main(&args),
        "wg-quick" => ferrotun_quick::main(program, &args),
        _ => front::main(&args),
    }
}
