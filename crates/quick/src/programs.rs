//! The outside programs wg-quick's steps call (nft, iptables-restore, resolvconf,
//! resolvectl): whether one is installed, and running one with the step printed first.

use std::io::Write;
use std::process::{Command, Stdio};

use super::{step, QuickError};

/// Whether `program` is on PATH, looked up as the shell does (wg-quick asks `type -p`).
pub fn on_path(program: &str) -> bool {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .any(|dir| std::path::Path::new(dir).join(program).is_file())
}

/// Runs `program ARGS` with `input` on its stdin (none: /dev/null); a failure is
/// reported as `what` failing.
pub fn run(
    program: &str,
    args: &[&str],
    input: Option<&str>,
    what: &str,
) -> Result<(), QuickError> {
    step(&format!("{program} {}", args.join(" ")));
    let mut child = Command::new(program)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .spawn()
        .map_err(QuickError::io(format!("cannot run {program}")))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .map_err(QuickError::io(format!("cannot write to {program}")))?;
    }
    let status = child
        .wait()
        .map_err(QuickError::io(format!("cannot run {program}")))?;
    if !status.success() {
        return Err(QuickError::Command {
            what: what.to_string(),
            status,
        });
    }
    Ok(())
}
