//! Shared helpers for tests that run real daemons in network namespaces.
//!
//! Every namespace, veth and daemon made here is removed by a Drop guard, also when the
//! test fails; names are unique per process so tests can run in parallel.

#![allow(dead_code)]

pub mod flood;
pub mod icmp_listener;
pub mod impair;
pub mod inside;
pub mod iperf;
pub mod netns;
pub mod paced_tcp;
pub mod process;
pub mod raw_uapi;
pub mod sampler;
pub mod transfer;
pub mod tunnel;
pub mod uapi_model;
pub mod udp_probe;

pub use netns::{unique_name, Daemon, Netns};

/// The ferrotun binary under test: the one built for these tests, or `FERROTUN_BIN` (so a
/// benchmark can point the same tests at a release build).
pub fn ferrotun_bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var("FERROTUN_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_ferrotun").to_string())
    })
}

/// Fails the test with a clear message when a required external tool is missing (CI
/// installs them; a silent skip would hide a broken set-up).
pub fn require_tool(name: &str) -> String {
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/root/.cargo/bin"])
    {
        let path = std::path::Path::new(dir).join(name);
        if path.is_file() {
            return path.to_string_lossy().into_owned();
        }
    }
    panic!("{name} is not installed; `.ci/run` installs it (see README)");
}
