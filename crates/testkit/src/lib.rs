//! ferrotun-testkit: the one set of helpers every crate's tests and the fuzz harness share.
//!
//! - namespaces, veths and daemons ([`netns`], [`inside`], [`tunnel`], [`process`]), each
//!   removed by a Drop guard, also when the test fails; names are unique per process so
//!   tests can run in parallel;
//! - packet builders ([`packet`]) and a two-peer protocol pair on a virtual clock ([`pair`]);
//! - traffic and measurement ([`transfer`], [`iperf`], [`paced_tcp`], [`udp_probe`],
//!   [`flood`], [`impair`], [`sampler`]) and the configuration protocol ([`raw_uapi`],
//!   [`uapi_model`]);
//! - handshake messages forged with valid macs, and cookie replies opened ([`forge`]);
//! - a throw-away CA and certificates for tests of etcd over TLS ([`certs`]);
//! - small things tests kept writing again: [`text`], [`sock`], [`require_tool`].

// All unsafe code lives in crates/device.
#![forbid(unsafe_code)]

pub mod certs;
pub mod flood;
pub mod forge;
pub mod impair;
pub mod inside;
pub mod iperf;
pub mod netns;
pub mod paced_tcp;
pub mod packet;
pub mod pair;
pub mod process;
pub mod raw_uapi;
pub mod sampler;
pub mod scratch;
pub mod transfer;
pub mod tunnel;
pub mod uapi_model;
pub mod udp_probe;

pub use netns::{have_root, sh, unique_name, Daemon, Netns};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Output;

/// The ferrotun binary under test: `FERROTUN_BIN` (so a benchmark can point the tests at a
/// release build), else the one cargo built beside the running test executable
/// (`target/<profile>/ferrotun`, the test being in `target/<profile>/deps/`).
pub fn ferrotun_bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(bin) = std::env::var("FERROTUN_BIN") {
            return bin;
        }
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .map(PathBuf::from)
            .expect("test executable in target/<profile>/deps");
        let bin = profile_dir.join("ferrotun");
        assert!(
            bin.is_file(),
            "{} not built: run the test through cargo test -p ferrotun",
            bin.display()
        );
        bin.to_string_lossy().into_owned()
    })
}

/// A command's status, stdout and stderr in one string, for assertion messages and for
/// searching what it printed wherever it printed it.
pub fn text(out: &Output) -> String {
    format!(
        "status {}; stdout: {}; stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `addr:port` as a socket address (`addr` an IPv4 address or a bracketed IPv6 one).
pub fn sock(addr: &str, port: u16) -> SocketAddr {
    format!("{addr}:{port}").parse().expect("socket address")
}

/// Fails the test unless every tool in `names` is installed (see [`require_tool`]).
pub fn require_tools(names: &[&str]) {
    for name in names {
        require_tool(name);
    }
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
