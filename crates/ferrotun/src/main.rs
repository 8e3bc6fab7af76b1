//! The ferrotun binary: the daemon, and `wg` / `wg-quick` when called by those names.

// Outside tests an error is reported, never a panic: no unwrap or expect in shipped code.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
// All unsafe code lives in crates/device.
#![forbid(unsafe_code)]

use std::path::Path;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let program = args
        .first()
        .map(|a| {
            Path::new(a)
                .file_name()
                .map_or(a.clone(), |f| f.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "ferrotun".into());
    let rest = args.get(1..).unwrap_or(&[]).to_vec();
    let code = ferrotun::dispatch(&program, rest);
    std::process::exit(code);
}
