//! Who is on the other end of a Unix socket connection (SO_PEERCRED).

use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use std::io;
use std::os::fd::AsFd;

/// The uid of the process that connected, as the kernel recorded it at connect time.
pub fn peer_uid(stream: &impl AsFd) -> io::Result<u32> {
    let cred = getsockopt(stream, PeerCredentials).map_err(io::Error::from)?;
    Ok(cred.uid())
}

/// This process' effective uid.
pub fn own_uid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// Whether a peer with `uid` may use the configuration socket: root, and the user the
/// daemon runs as (the one user that could take over the daemon anyway).
pub fn may_configure(uid: u32) -> bool {
    uid == 0 || uid == own_uid()
}
