//! The client side of the configuration socket, as wg(8) uses it: one connection per request
//! to `/var/run/wireguard/<iface>.sock`, stale sockets removed when their daemon is gone.

use std::io::{self, BufReader, Write};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use super::format::format_set_request;
use super::framing::read_message;
use super::model::{InterfaceStatus, SetRequest};
use super::parse::{parse_get_reply, parse_set_reply, ReplyError, EINVAL};

pub const DEFAULT_SOCKET_DIR: &str = "/var/run/wireguard";
const SOCKET_SUFFIX: &str = ".sock";
/// Replies of a device with tens of thousands of peers fit well within this.
const MAX_REPLY: usize = 64 << 20;
const EBADF: i32 = 9;

/// Errors carry an errno so they print as wg prints them (`strerror`).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Reaching the socket failed, or the connection broke.
    #[error("{}", io_message(.0))]
    Io(#[from] io::Error),
    /// The daemon answered with a non-zero errno.
    #[error("{}", errno_message(*.0))]
    Daemon(i32),
    /// The reply could not be understood.
    #[error("{}: {}", errno_message(super::parse::EPROTO), .0)]
    Protocol(ReplyError),
    /// Not a usable interface name (wg answers EINVAL for a name with `/`).
    #[error("{}", errno_message(EINVAL))]
    InvalidName,
}

impl ClientError {
    /// The errno wg would have set for this failure.
    pub fn errno(&self) -> i32 {
        match self {
            ClientError::Io(e) => e.raw_os_error().unwrap_or(super::parse::EPROTO),
            ClientError::Daemon(e) => *e,
            ClientError::Protocol(_) => super::parse::EPROTO,
            ClientError::InvalidName => EINVAL,
        }
    }
}

impl From<ReplyError> for ClientError {
    fn from(e: ReplyError) -> Self {
        match e {
            ReplyError::Errno(n) => ClientError::Daemon(n),
            other => ClientError::Protocol(other),
        }
    }
}

/// The C library's text for an errno, without std's ` (os error N)` suffix.
pub fn errno_message(errno: i32) -> String {
    let text = io::Error::from_raw_os_error(errno).to_string();
    match text.rfind(" (os error ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

fn io_message(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => errno_message(n),
        None => e.to_string(),
    }
}

#[derive(Debug, Clone)]
pub struct Client {
    dir: PathBuf,
    timeout: Duration,
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

impl Client {
    /// A client for the standard socket directory.
    pub fn new() -> Self {
        Client::with_dir(DEFAULT_SOCKET_DIR)
    }

    /// A client for sockets in another directory (tests, other run-state layouts).
    pub fn with_dir(dir: impl Into<PathBuf>) -> Self {
        Client {
            dir: dir.into(),
            timeout: Duration::from_secs(10),
        }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn socket_path(&self, iface: &str) -> Result<PathBuf, ClientError> {
        if iface.is_empty() || iface.contains('/') || iface.contains('\0') {
            return Err(ClientError::InvalidName);
        }
        Ok(self.dir.join(format!("{iface}{SOCKET_SUFFIX}")))
    }

    /// Connects as wg does: the path must be a socket (else EBADF); a refused connection means
    /// the daemon died, so its socket file is removed.
    fn connect(&self, iface: &str) -> Result<UnixStream, ClientError> {
        let path = self.socket_path(iface)?;
        let meta = std::fs::metadata(&path)?;
        if !meta.file_type().is_socket() {
            return Err(io::Error::from_raw_os_error(EBADF).into());
        }
        let stream = UnixStream::connect(&path).inspect_err(|e| {
            if e.kind() == io::ErrorKind::ConnectionRefused {
                // Best effort, like wg: failing to clean up does not change the answer.
                let _ = std::fs::remove_file(&path);
            }
        })?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;
        Ok(stream)
    }

    fn exchange(&self, iface: &str, request: &str) -> Result<String, ClientError> {
        let mut stream = self.connect(iface)?;
        stream.write_all(request.as_bytes())?;
        stream.flush()?;
        let mut reader = BufReader::new(stream);
        read_message(&mut reader, MAX_REPLY)?.ok_or_else(|| {
            io::Error::new(io::ErrorKind::UnexpectedEof, "daemon closed the connection").into()
        })
    }

    /// Sends one request and returns the reply as read up to its blank line (for requests
    /// other than `get` and `set`, such as ferrotun's `stats=1`).
    pub fn request(&self, iface: &str, request: &str) -> Result<String, ClientError> {
        self.exchange(iface, request)
    }

    pub fn get(&self, iface: &str) -> Result<InterfaceStatus, ClientError> {
        let reply = self.exchange(iface, "get=1\n\n")?;
        Ok(parse_get_reply(&reply)?)
    }

    pub fn set(&self, iface: &str, request: &SetRequest) -> Result<(), ClientError> {
        let reply = self.exchange(iface, &format_set_request(request))?;
        Ok(parse_set_reply(&reply)?)
    }

    /// Whether a live daemon serves `iface`, decided as wg decides it: a socket file whose
    /// connect is not refused (a refused one is stale and removed; any other failure still
    /// counts as present, so the later request reports the real error).
    pub fn has_interface(&self, iface: &str) -> bool {
        let Ok(path) = self.socket_path(iface) else {
            return false;
        };
        match std::fs::metadata(&path) {
            Ok(meta) if meta.file_type().is_socket() => {}
            _ => return false,
        }
        match UnixStream::connect(&path) {
            Ok(_) => true,
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                let _ = std::fs::remove_file(&path);
                false
            }
            Err(_) => true,
        }
    }

    /// Names of the interfaces with a socket in the directory, in directory order as wg lists
    /// them. A missing directory means none.
    pub fn list_interfaces(&self) -> Result<Vec<String>, ClientError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let Some(iface) = name.strip_suffix(SOCKET_SUFFIX) else {
                continue;
            };
            if !iface.is_empty() && self.has_interface(iface) {
                names.push(iface.to_string());
            }
        }
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::os::unix::net::UnixListener;
    use std::path::Path;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn temp_dir() -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ferrotun-client-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A one-shot fake daemon: reads one request, hands it back, answers `reply`.
    fn serve_once(path: &Path, reply: &'static str) -> std::thread::JoinHandle<String> {
        let listener = UnixListener::bind(path).unwrap();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut op = String::new();
            reader.read_line(&mut op).unwrap();
            let body = read_message(&mut reader, 1 << 20)
                .unwrap()
                .unwrap_or_default();
            (&stream).write_all(reply.as_bytes()).unwrap();
            op + &body
        })
    }

    #[test]
    fn get_and_set_against_a_fake_daemon() {
        let dir = temp_dir();
        let client = Client::with_dir(&dir);
        let server = serve_once(&dir.join("ft0.sock"), "listen_port=7\nerrno=0\n\n");
        assert_eq!(client.get("ft0").unwrap().listen_port, 7);
        assert_eq!(server.join().unwrap(), "get=1\n\n");

        std::fs::remove_file(dir.join("ft0.sock")).unwrap();
        let server = serve_once(&dir.join("ft0.sock"), "errno=-22\n\n");
        let req = SetRequest {
            listen_port: Some(9),
            ..Default::default()
        };
        let err = client.set("ft0", &req).unwrap_err();
        assert_eq!(err.to_string(), "Invalid argument");
        assert_eq!(err.errno(), 22);
        assert_eq!(server.join().unwrap(), "set=1\nlisten_port=9\n\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_bad_and_stale_sockets() {
        let dir = temp_dir();
        let client = Client::with_dir(&dir);
        assert_eq!(
            client.get("nope").unwrap_err().to_string(),
            "No such file or directory"
        );
        assert_eq!(
            client.get("a/b").unwrap_err().to_string(),
            "Invalid argument"
        );
        std::fs::write(dir.join("plain.sock"), b"").unwrap();
        assert_eq!(client.get("plain").unwrap_err().errno(), 9);

        // A socket nobody listens on any more: refused, then removed, then not listed.
        drop(UnixListener::bind(dir.join("stale.sock")).unwrap());
        let _live = UnixListener::bind(dir.join("live.sock")).unwrap();
        assert_eq!(client.list_interfaces().unwrap(), vec!["live".to_string()]);
        assert!(!dir.join("stale.sock").exists());
        assert!(dir.join("plain.sock").exists());
        std::fs::remove_dir_all(&dir).unwrap();

        assert!(Client::with_dir(dir.join("missing"))
            .list_interfaces()
            .unwrap()
            .is_empty());
    }

    #[test]
    fn protocol_errors() {
        let dir = temp_dir();
        let client = Client::with_dir(&dir);
        let server = serve_once(&dir.join("ft1.sock"), "listen_port=7\n\n");
        let err = client.get("ft1").unwrap_err();
        assert!(err.to_string().starts_with("Protocol error"), "{err}");
        server.join().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn errno_text() {
        assert_eq!(errno_message(98), "Address already in use");
    }
}
