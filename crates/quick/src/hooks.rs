//! PreUp/PostUp/PreDown/PostDown: each a bash snippet with `%i` replaced by the interface.

use std::process::Command;

use super::{step, QuickError};

/// Runs the hooks in order; the first that fails stops the rest (wg-quick runs under `set -e`).
pub fn run(hooks: &[String], ifname: &str) -> Result<(), QuickError> {
    for hook in hooks {
        let text = hook.replace("%i", ifname);
        step(&text);
        // wg-quick evaluates hooks in a subshell of its `set -e -o pipefail` script.
        let status = Command::new("bash")
            .args(["-e", "-o", "pipefail", "-c"])
            .arg(&text)
            .status()
            .map_err(QuickError::io(format!("cannot run bash for `{text}'")))?;
        if !status.success() {
            return Err(QuickError::Command {
                what: format!("hook `{text}'"),
                status,
            });
        }
    }
    Ok(())
}
