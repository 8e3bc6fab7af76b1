//! Where a daemon started in the background writes its log. `ferrotun up` starts it that
//! way, and so does the systemd unit through `ferrotun up`: the operator reads what went
//! wrong (refused system calls, drop summaries, a routing loop, a crash) in `journalctl -u`
//! or in whatever file a supervisor captures stderr to, so the daemon keeps that stderr.
//!
//! wireguard-go keeps stderr only when LOG_LEVEL is set, and then a unit without it logs
//! nothing at all. Not kept: a pipe or socket that is not the journal. Whoever holds its
//! other end may wait for end-of-file to know `ferrotun up` has finished (`$(ferrotun up
//! wg0 2>&1)`, a program collecting the output), and the daemon would hold it open for as
//! long as it runs.

use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

/// The level a background daemon logs at when LOG_LEVEL does not say: what needs the
/// operator, not the daemon's every step.
pub const BACKGROUND_LEVEL: &str = "warn";

/// Whether the background daemon should inherit our stderr.
pub fn keep_stderr() -> bool {
    if std::env::var_os("LOG_LEVEL").is_some() {
        return true;
    }
    let stderr = std::io::stderr();
    if stderr.is_terminal() {
        return true;
    }
    let Ok(meta) = stderr
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .and_then(|f| f.metadata())
    else {
        return false;
    };
    meta.is_file() || is_journal(meta.dev(), meta.ino(), std::env::var("JOURNAL_STREAM").ok())
}

/// systemd connects a unit's stderr to the journal and names that socket in JOURNAL_STREAM
/// (`DEVICE:INODE`); a process whose stderr went elsewhere may still carry the variable.
fn is_journal(dev: u64, ino: u64, journal_stream: Option<String>) -> bool {
    let Some(value) = journal_stream else {
        return false;
    };
    let Some((d, i)) = value.split_once(':') else {
        return false;
    };
    d.parse() == Ok(dev) && i.parse() == Ok(ino)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_is_the_stream_journal_stream_names() {
        assert!(is_journal(64, 1234, Some("64:1234".into())));
        assert!(!is_journal(64, 1234, Some("64:1235".into())));
        assert!(!is_journal(64, 1234, Some("65:1234".into())));
        assert!(!is_journal(64, 1234, Some("garbage".into())));
        assert!(!is_journal(64, 1234, Some(String::new())));
        assert!(!is_journal(64, 1234, None));
    }
}
