//! The client's error: what failed, with the gRPC status code and message when etcd (or the
//! gRPC layer) answered with one.

use std::error::Error as StdError;

pub use tonic::Code;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The endpoint is not a usable URL, or does not fit the TLS options.
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint { endpoint: String, reason: String },
    /// The CA certificate or client identity was refused.
    #[error("invalid TLS configuration: {0}")]
    Tls(String),
    /// No connection could be made, or it broke (the causes, joined).
    #[error("transport: {0}")]
    Transport(String),
    /// etcd (or the gRPC layer) answered a request with an error status.
    #[error("{message} (gRPC status {code:?})")]
    Status { code: Code, message: String },
    /// A stream (watch, lease keep-alive) ended, or could not take a request.
    #[error("{0}")]
    StreamClosed(String),
    /// The lease keep-alive stream answered that the lease no longer exists.
    #[error("lease {id:x} not found (expired or revoked)")]
    LeaseNotFound { id: i64 },
    /// etcd answered with a token that cannot be sent as gRPC metadata.
    #[error("etcd sent an unusable auth token")]
    InvalidToken,
}

impl Error {
    /// The gRPC status code, when the error is an answer with one.
    pub fn code(&self) -> Option<Code> {
        match self {
            Error::Status { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The transport error and its causes on one line (tonic's own text is only
    /// "transport error"; the reason is in its sources).
    pub(crate) fn transport(e: impl StdError) -> Error {
        Error::Transport(chain(&e))
    }

    /// True for the answers that mean "authenticate again": the token expired or is unknown
    /// to this member, or the auth store changed since it was issued.
    pub(crate) fn is_stale_token(&self) -> bool {
        match self {
            Error::Status { code, message } => {
                (*code == Code::Unauthenticated && message.contains(INVALID_TOKEN))
                    || (*code == Code::InvalidArgument && message.contains(OLD_AUTH_REVISION))
            }
            _ => false,
        }
    }
}

/// etcd's words for a token that expired or that it does not know (status Unauthenticated).
const INVALID_TOKEN: &str = "invalid auth token";
/// etcd's words for a token issued before a change to users or roles (InvalidArgument).
const OLD_AUTH_REVISION: &str = "revision of auth store is old";

/// Whether a watch's cancel reason says its token is no longer good: a watch reports in
/// its cancel reason what a request gets as an error status (see `is_stale_token`).
pub(crate) fn names_stale_token(reason: &str) -> bool {
    reason.contains(INVALID_TOKEN) || reason.contains(OLD_AUTH_REVISION)
}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Error {
        let mut message = status.message().to_string();
        // A status made from a transport failure carries the cause as its source.
        if let Some(source) = status.source() {
            let cause = chain(source);
            if !cause.is_empty() && !message.contains(&cause) {
                if !message.is_empty() {
                    message.push_str(": ");
                }
                message.push_str(&cause);
            }
        }
        Error::Status {
            code: status.code(),
            message,
        }
    }
}

/// `e` and its sources, joined with ": ", each only once.
pub(crate) fn chain(e: &dyn StdError) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}
