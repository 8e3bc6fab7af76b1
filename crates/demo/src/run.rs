//! Running the helper programs (`ip`, `ping`, our own binary) with a time limit, an eye on
//! Ctrl-C, and their output captured.
//!
//! Output goes to an already-unlinked file rather than a pipe: a daemon started by the
//! command inherits its stdout/stderr, and a pipe would then never report end-of-file while
//! the daemon lives. A file is read once the command itself has exited, whoever else holds it.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ferrotun_device::Cancel;

use super::error::DemoError;

/// Every setup command returns in well under a second; this only bounds a hung one.
pub const SHORT: Duration = Duration::from_secs(10);

pub struct Finished {
    pub status: ExitStatus,
    /// Standard output and standard error, interleaved as they were written.
    pub output: String,
}

/// How a command is shown to the user: as it would be typed into a shell (arguments with
/// spaces or quotes single-quoted), so it can be copied and run again by hand.
pub fn describe(cmd: &Command) -> String {
    let mut text = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        let arg = arg.to_string_lossy();
        text.push(' ');
        if arg.is_empty() || arg.contains(|c: char| c.is_whitespace() || "'\"$;&|<>".contains(c)) {
            text.push('\'');
            text.push_str(&arg.replace('\'', "'\\''"));
            text.push('\'');
        } else {
            text.push_str(&arg);
        }
    }
    text
}

fn capture_file() -> Result<File, DemoError> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("ferrotun-demo-{}-out{n}", std::process::id()));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| DemoError::io(format!("cannot create {}", path.display()), e))?;
    // Unlinked at once, so not even a crash can leave it behind.
    let _ = std::fs::remove_file(&path);
    Ok(file)
}

/// Runs `cmd` to completion, killing it after `limit` or when `cancel` fires (cleanup passes
/// `None`: it must finish even after Ctrl-C).
pub fn run(
    cmd: &mut Command,
    limit: Duration,
    cancel: Option<&Cancel>,
) -> Result<Finished, DemoError> {
    let text = describe(cmd);
    let mut file = capture_file()?;
    let stdout = file
        .try_clone()
        .map_err(|e| DemoError::io("cannot duplicate a file descriptor", e))?;
    let stderr = file
        .try_clone()
        .map_err(|e| DemoError::io("cannot duplicate a file descriptor", e))?;
    let mut child = cmd
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .map_err(|source| DemoError::Spawn {
            cmd: text.clone(),
            source,
        })?;
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    let outcome = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) => {}
            Err(e) => break Err(DemoError::io(format!("cannot wait for `{text}`"), e)),
        }
        if cancel.is_some_and(Cancel::is_triggered) {
            break Err(DemoError::Interrupted);
        }
        if start.elapsed() >= limit {
            break Err(DemoError::Timeout {
                cmd: text.clone(),
                secs: limit.as_secs(),
                output: String::new(),
            });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    };
    if outcome.is_err() {
        // Already exited or never killable: either way there is nothing more to do with it.
        let _ = child.kill();
        let _ = child.wait();
    }
    let mut output = String::new();
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(0)).is_ok() && file.read_to_end(&mut bytes).is_ok() {
        output = String::from_utf8_lossy(&bytes).into_owned();
    }
    match outcome {
        Ok(status) => Ok(Finished { status, output }),
        Err(DemoError::Timeout { cmd, secs, .. }) => Err(DemoError::Timeout { cmd, secs, output }),
        Err(e) => Err(e),
    }
}

/// Runs `cmd` and insists on success; returns its output.
pub fn check(
    cmd: &mut Command,
    limit: Duration,
    cancel: Option<&Cancel>,
) -> Result<String, DemoError> {
    let text = describe(cmd);
    let done = run(cmd, limit, cancel)?;
    if done.status.success() {
        Ok(done.output)
    } else {
        Err(DemoError::Command {
            cmd: text,
            status: done.status.to_string(),
            output: done.output,
        })
    }
}

/// `ip ARGS…`
pub fn ip(args: &[&str]) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(args);
    cmd
}

/// `ip netns exec NS PROGRAM ARGS…`: a program run inside a namespace.
pub fn in_netns<P: AsRef<OsStr>, A: AsRef<OsStr>>(ns: &str, program: P, args: &[A]) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns]).arg(program).args(args);
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_commands_as_a_shell_would_take_them() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo it's; true", "plain", ""]);
        assert_eq!(describe(&cmd), r#"sh -c 'echo it'\''s; true' plain ''"#);
    }
}
