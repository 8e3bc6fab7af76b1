//! Starting the userspace device (our own binary as a daemon, as wg-quick starts wireguard-go)
//! and waiting for it to be gone after its link is deleted.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{step, QuickError};
use ferrotun_uapi::Client;

/// Runs `<this executable> IFNAME`, which returns once the TUN exists and the configuration
/// socket listens (the daemon itself carries on in the background). It inherits our
/// environment, as wg-quick's userspace daemon does: that is how FERROTUN_METRICS,
/// FERROTUN_USER and LOG_LEVEL reach it (wg-quick files have no key for them).
pub fn start(ifname: &str) -> Result<(), QuickError> {
    let exe = std::env::current_exe().map_err(QuickError::io("cannot find my own executable"))?;
    let shown = exe
        .file_name()
        .map_or_else(|| "ferrotun".into(), |n| n.to_string_lossy().into_owned());
    step(&format!("{shown} {ifname}"));
    let status = Command::new(&exe)
        .arg(ifname)
        .stdin(Stdio::null())
        .status()
        .map_err(QuickError::io(format!("cannot run {}", exe.display())))?;
    if !status.success() {
        return Err(QuickError::Command {
            what: format!("starting the {shown} daemon for {ifname}"),
            status,
        });
    }
    Ok(())
}

/// The daemon notices its TUN vanish and removes its socket on the way out; wait for that
/// (at most `timeout`) so a following `up` of the same name finds everything gone.
pub fn wait_gone(ifname: &str, timeout: Duration) -> bool {
    let Ok(path) = Client::new().socket_path(ifname) else {
        return true;
    };
    let deadline = Instant::now() + timeout;
    while Path::new(&path).exists() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    true
}
