//! What can go wrong in the demo, worded for the person watching it.

use std::io;

use ferrotun_uapi::config::ConfigError;
use ferrotun_uapi::ClientError;

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("interrupted")]
    Interrupted,
    #[error("cannot run `{cmd}`: {source}")]
    Spawn { cmd: String, source: io::Error },
    #[error("`{cmd}` failed ({status}){}", indent_output(.output))]
    Command {
        cmd: String,
        status: String,
        output: String,
    },
    #[error("`{cmd}` did not finish within {secs} s{}", indent_output(.output))]
    Timeout {
        cmd: String,
        secs: u64,
        output: String,
    },
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    #[error("network namespace {0} already exists (left over from an earlier run?); remove it with `ip netns del {0}`")]
    NamespaceExists(String),
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("interface {iface}: {source}")]
    Uapi { iface: String, source: ClientError },
    #[error("{0}")]
    Ping(String),
    #[error("throughput test: {0}")]
    Throughput(String),
    #[error("could not remove everything:\n{}", .0.join("\n"))]
    Cleanup(Vec<String>),
}

impl DemoError {
    pub fn io(what: impl Into<String>, source: io::Error) -> Self {
        DemoError::Io {
            what: what.into(),
            source,
        }
    }
}

/// A command's captured output under the error line, indented so it reads as belonging to it.
fn indent_output(output: &str) -> String {
    let trimmed = output.trim_end();
    if trimmed.is_empty() {
        return String::new();
    }
    let mut text = String::from(":");
    for line in trimmed.lines() {
        text.push_str("\n    ");
        text.push_str(line);
    }
    text
}
