//! What a command may touch besides its arguments: standard streams, the few environment
//! facts wg consults, the clock and the UAPI client. Tests build one from buffers; the binary
//! builds one from the process.

use std::collections::HashMap;
use std::io::{IsTerminal, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::time::{SystemTime, UNIX_EPOCH};

use ferrotun_uapi::config::endpoint;
use ferrotun_uapi::Client;

/// Environment facts, captured once so tests can set them without touching the process.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// `WG_HIDE_KEYS`, `WG_COLOR_MODE`.
    pub vars: HashMap<String, String>,
    pub stdout_is_tty: bool,
    /// Stdout is a regular file others may read: `genkey` warns then.
    pub stdout_world_accessible_file: bool,
    /// Unix seconds; `None` reads the system clock.
    pub now: Option<u64>,
}

impl Env {
    pub fn from_process() -> Self {
        let vars = ["WG_HIDE_KEYS", "WG_COLOR_MODE"]
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
            .collect();
        Env {
            vars,
            stdout_is_tty: std::io::stdout().is_terminal(),
            stdout_world_accessible_file: stdout_world_accessible_file(),
            now: None,
        }
    }

    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    pub fn now(&self) -> u64 {
        self.now.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        })
    }

    /// Colours as wg decides: `WG_COLOR_MODE=always|never`, else only on a terminal.
    pub fn color(&self) -> bool {
        match self.var("WG_COLOR_MODE") {
            Some("always") => true,
            Some("never") => false,
            _ => self.stdout_is_tty,
        }
    }

    /// Secret keys print as `(hidden)` unless `WG_HIDE_KEYS=never`.
    pub fn hide_keys(&self) -> bool {
        self.var("WG_HIDE_KEYS") != Some("never")
    }
}

/// `fstat` on stdout through a duplicated descriptor, which std allows without `unsafe`.
fn stdout_world_accessible_file() -> bool {
    let Ok(fd) = std::io::stdout().as_fd().try_clone_to_owned() else {
        return false;
    };
    let file = std::fs::File::from(fd);
    file.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o007 != 0)
        .unwrap_or(false)
}

pub struct Io<'a> {
    /// The program name used in messages (`wg`, `ferrotun`).
    pub prog: String,
    pub stdin: &'a mut dyn Read,
    pub stdout: &'a mut dyn Write,
    pub stderr: &'a mut dyn Write,
    pub env: Env,
    pub client: Client,
    pub resolve: endpoint::Resolver<'a>,
}

impl Io<'_> {
    /// Writes to stdout; a closed pipe is not worth a second error message, so failures are
    /// reported once by the caller's exit status only.
    pub fn out(&mut self, text: &str) -> bool {
        self.stdout.write_all(text.as_bytes()).is_ok()
    }

    /// Writes to stderr, ignoring failure: there is nowhere left to report it.
    pub fn err(&mut self, text: &str) {
        let _ = self.stderr.write_all(text.as_bytes());
    }
}
