//! What can stop `up`, `down` or `save`.

use ferrotun_netlink::NetlinkError;
use ferrotun_uapi::config::ConfigError;
use ferrotun_uapi::ClientError;

#[derive(Debug, thiserror::Error)]
pub enum QuickError {
    #[error("unknown command")]
    Usage,
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A refusal in wg-quick's own words (`` `wg0' already exists ``).
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error("{what}: {source}")]
    Uapi {
        what: String,
        #[source]
        source: ClientError,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} failed ({status})")]
    Command {
        what: String,
        status: std::process::ExitStatus,
    },
}

impl QuickError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> QuickError {
        let what = what.into();
        move |source| QuickError::Io { what, source }
    }

    pub(crate) fn uapi(what: impl Into<String>) -> impl FnOnce(ClientError) -> QuickError {
        let what = what.into();
        move |source| QuickError::Uapi { what, source }
    }
}
