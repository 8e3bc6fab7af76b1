//! Helpers shared by the fuzz targets in `fuzz_targets/`.

// All unsafe code lives in crates/device.
#![forbid(unsafe_code)]

pub use ferrotun_testkit::pair;

use std::net::{IpAddr, SocketAddr};

use ferrotun_uapi::config::{endpoint, ConfigError, ValueError};

/// The real endpoint resolver for numeric addresses, and a resolver failure for names: a fuzz
/// run must never wait on DNS, and a numeric host never reaches it anyway.
pub fn no_dns(text: &str) -> Result<SocketAddr, ValueError> {
    let (host, _) = endpoint::split(text)?;
    if host.parse::<IpAddr>().is_ok() {
        return endpoint::resolve(text);
    }
    Err(ValueError::Resolve {
        reason: "Name resolution is disabled while fuzzing".into(),
        value: text.into(),
    })
}

/// A configuration error must name the file (`fuzz.conf`) and a line that exists in `text`.
pub fn check_config_error(e: &ConfigError, text: &str) {
    let shown = e.to_string();
    assert!(shown.starts_with("fuzz.conf:"), "{shown}");
    assert!(e.line >= 1 && e.line <= text.split('\n').count(), "{shown}");
}
