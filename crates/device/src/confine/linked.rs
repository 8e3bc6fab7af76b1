//! Noticing that a file was removed or replaced, without permission to look it up by name.
//!
//! Once confined, the daemon cannot search root's 0700 `/var/run/wireguard`, so it cannot
//! `stat` its socket's path. It holds an O_PATH descriptor on the socket's inode instead,
//! taken while it still could: when someone removes the file (or replaces it), the inode's
//! link count drops to 0.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

pub struct LinkedPath {
    file: File,
    dev: u64,
    ino: u64,
}

impl LinkedPath {
    pub fn open(path: &Path) -> io::Result<LinkedPath> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_NOFOLLOW)
            .open(path)?;
        let meta = file.metadata()?;
        Ok(LinkedPath {
            file,
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }

    /// Device and inode number: the identity of the file we watch.
    pub fn id(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }

    /// False once the file has no name left (removed, or replaced by another file).
    pub fn still_linked(&self) -> bool {
        // A failing fstat on a descriptor we hold says nothing about the file: treat it as
        // still there rather than shut down for it.
        self.file.metadata().map_or(true, |m| m.nlink() > 0)
    }
}
