//! Configuration files: the wg(8) format (`setconf`/`addconf`/`syncconf`) and the wg-quick
//! format built on it. Every error names the file and line: `file:line: what is wrong`.

pub mod endpoint;
pub mod quick;
pub mod values;
pub mod wg;

pub use quick::{QuickConfig, Table};
pub use values::ValueError;
pub use wg::{PeerConfig, WgConfig};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {kind}")]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub kind: ConfigErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigErrorKind {
    #[error(transparent)]
    Value(#[from] ValueError),
    #[error("Unknown key `{key}' in [{section}] section")]
    UnknownKey { key: String, section: &'static str },
    #[error("`{0}' is outside of any [Interface] or [Peer] section")]
    OutsideSection(String),
    #[error("Unknown section `{0}'")]
    UnknownSection(String),
    #[error("Line is not of the form `Key = Value': `{0}'")]
    Malformed(String),
    #[error("`{0}' has no value")]
    EmptyValue(String),
    #[error("Duplicate peer with public key `{0}'")]
    DuplicatePeer(String),
    #[error("Peer section has no PublicKey")]
    MissingPublicKey,
    #[error("`{0}' is neither true nor false")]
    Bool(String),
    #[error("MTU is not a number 68-65535: `{0}'")]
    Mtu(String),
    #[error("Table is neither auto, off, a number nor a table name: `{0}'")]
    Table(String),
    #[error("Address is not an IP address with an optional prefix: `{0}'")]
    Address(String),
}

/// Where a warning or error is: kept with each parsed line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Place<'a> {
    pub file: &'a str,
    pub line: usize,
}

impl Place<'_> {
    pub fn error(&self, kind: impl Into<ConfigErrorKind>) -> ConfigError {
        ConfigError {
            file: self.file.to_string(),
            line: self.line,
            kind: kind.into(),
        }
    }
    pub fn warning(&self, text: &str) -> String {
        format!("{}:{}: {text}", self.file, self.line)
    }
}
