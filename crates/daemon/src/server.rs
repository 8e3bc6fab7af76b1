//! The configuration socket: `/var/run/wireguard/<iface>.sock`, served as wireguard-go does
//! (several `get=1`/`set=1` requests per connection, one reply each). The file is root's,
//! mode 0600, and each connection's credentials (SO_PEERCRED) are checked as well: only root
//! and the daemon's own user are served, whatever the file's mode says.

use super::apply::{apply, status};
use anyhow::{bail, Context};
use ferrotun_device::confine::peer::{may_configure, own_uid, peer_uid};
use ferrotun_device::Device;
use ferrotun_uapi::format::{format_errno, format_get_reply};
use ferrotun_uapi::framing::read_message;
use ferrotun_uapi::parse::parse_set;
use ferrotun_uapi::stats::wire::format_reply;
use parking_lot::Mutex;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub const SOCKET_DIR: &str = "/var/run/wireguard";
const EINVAL: i32 = 22;
const EIO: i32 = 5;
/// A `set` for tens of thousands of peers is a few MiB; this bounds what a client can make
/// the daemon buffer.
const MAX_REQUEST: usize = 128 << 20;
/// A client that stops talking mid-request is dropped after this long.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

pub fn socket_path(iface: &str) -> PathBuf {
    Path::new(SOCKET_DIR).join(format!("{iface}.sock"))
}

/// Creates the listening socket, refusing to steal one a live daemon still serves.
pub fn bind(iface: &str) -> anyhow::Result<UnixListener> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(SOCKET_DIR)
        .with_context(|| format!("cannot create {SOCKET_DIR}"))?;
    let path = socket_path(iface);
    if path.exists() {
        if UnixStream::connect(&path).is_ok() && !outlived(&path, iface) {
            bail!(
                "{} is in use: another daemon already serves interface {iface}",
                path.display()
            );
        }
        // Left behind by a daemon that died (or gone already, with one that just exited):
        // safe to replace.
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("cannot remove stale {}", path.display()))
            }
            _ => {}
        }
    }
    let listener = UnixListener::bind(&path)
        .with_context(|| format!("cannot listen on {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict {}", path.display()))?;
    Ok(listener)
}

/// How long a daemon whose interface is gone may take to notice and remove its socket.
const OUTGOING_DAEMON: Duration = Duration::from_secs(2);

/// Whether the daemon answering at `path` is on its way out: its interface no longer exists
/// here and its socket goes within [`OUTGOING_DAEMON`]. `wg-quick down` deletes the link and
/// returns at once, a few milliseconds before that daemon has exited, so `down` followed by
/// `up` of the same name would otherwise fail now and then. The socket directory is shared
/// by every network namespace: a daemon serving the name in another one keeps its socket,
/// and is refused after the wait as before.
fn outlived(path: &Path, iface: &str) -> bool {
    if ferrotun_device::interface_exists(iface) {
        return false;
    }
    let deadline = std::time::Instant::now() + OUTGOING_DAEMON;
    while std::time::Instant::now() < deadline {
        if !path.exists() || UnixStream::connect(path).is_err() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// Accepts connections until the process exits; each connection gets its own thread so a
/// slow client cannot hold up `wg show`. `set` requests are applied one at a time.
pub fn serve(listener: UnixListener, device: Arc<Device>) {
    let apply_lock = Arc::new(Mutex::new(()));
    for stream in listener.incoming() {
        let Ok(stream) = stream else {
            if device.cancel().is_triggered() {
                return;
            }
            continue;
        };
        if !peer_allowed(&stream) {
            continue;
        }
        let device = device.clone();
        let apply_lock = apply_lock.clone();
        let spawned = std::thread::Builder::new()
            .name("uapi-conn".into())
            .spawn(move || handle_connection(stream, &device, &apply_lock));
        if let Err(e) = spawned {
            tracing::error!("cannot start a configuration connection thread: {e}");
        }
    }
}

/// SO_PEERCRED check: the kernel's record of who connected, which a client cannot forge.
fn peer_allowed(stream: &UnixStream) -> bool {
    match peer_uid(stream) {
        Ok(uid) if may_configure(uid) => true,
        Ok(uid) => {
            tracing::warn!(
                "configuration connection from uid {uid} refused: only root and uid {} may \
                 configure this interface",
                own_uid()
            );
            false
        }
        Err(e) => {
            tracing::warn!("configuration connection refused: cannot read its credentials: {e}");
            false
        }
    }
}

fn handle_connection(stream: UnixStream, device: &Device, apply_lock: &Mutex<()>) {
    let _ = stream.set_read_timeout(Some(CLIENT_TIMEOUT));
    let _ = stream.set_write_timeout(Some(CLIENT_TIMEOUT));
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let mut writer = write_half;
    let mut reader = BufReader::new(stream);
    loop {
        let mut first = String::new();
        match reader.by_ref().take(64).read_line(&mut first) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let reply = match first.as_str() {
            "get=1\n" => {
                let mut blank = String::new();
                match reader.by_ref().take(2).read_line(&mut blank) {
                    Ok(_) if blank == "\n" => format_get_reply(&status(device)),
                    _ => format_errno(EINVAL),
                }
            }
            // ferrotun's own request (see ferrotun_uapi::stats::wire); wg never sends it.
            "stats=1\n" => {
                let mut blank = String::new();
                match reader.by_ref().take(2).read_line(&mut blank) {
                    Ok(_) if blank == "\n" => {
                        let reply = format_reply(&crate::reading::read_stats(device));
                        // A large interface's counters are megabytes of short-lived
                        // strings: give them back rather than keep the peak resident.
                        ferrotun_device::memory::release_free_memory();
                        reply
                    }
                    _ => format_errno(EINVAL),
                }
            }
            "set=1\n" => match read_message(&mut reader, MAX_REQUEST) {
                Ok(Some(body)) => handle_set(device, &body, apply_lock),
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!("configuration request unreadable: {e}");
                    format_errno(EIO)
                }
            },
            // wireguard-go closes the connection on anything else.
            _ => return,
        };
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

fn handle_set(device: &Device, body: &str, apply_lock: &Mutex<()>) -> String {
    let request = match parse_set(body) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("configuration rejected, nothing changed: {e}");
            return format_errno(e.errno());
        }
    };
    let _serialised = apply_lock.lock();
    match apply(device, &request) {
        Ok(()) => format_errno(0),
        Err(e) => {
            tracing::warn!("configuration failed, nothing changed: {e}");
            format_errno(e.errno())
        }
    }
}
