//! Private scratch directories for the files a test writes (keys, configurations, fake
//! tools), removed on drop, also when the test fails.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::unique_name;

pub struct TempDir(PathBuf);

impl TempDir {
    /// A new directory `/tmp/<prefix><unique>` with mode 700.
    pub fn new(prefix: &str) -> TempDir {
        TempDir::with_mode(prefix, 0o700)
    }

    /// A new directory with the given permission bits.
    pub fn with_mode(prefix: &str, mode: u32) -> TempDir {
        let dir = std::env::temp_dir().join(unique_name(prefix));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        chmod(&dir, mode);
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `name` with `contents` and permission bits `mode`; returns its path.
    pub fn file(&self, name: &str, contents: &str, mode: u32) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write file");
        chmod(&path, mode);
        path
    }

    /// Writes `<ifname>.conf` (mode 600, as wg-quick wants keys kept); returns its path.
    pub fn write(&self, ifname: &str, text: &str) -> PathBuf {
        self.file(&format!("{ifname}.conf"), text, 0o600)
    }

    /// [`TempDir::file`] with mode 600, as a string (to hand to a command line).
    pub fn file_str(&self, name: &str, contents: &str) -> String {
        self.file(name, contents, 0o600)
            .to_string_lossy()
            .into_owned()
    }
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One file (a key, a configuration handed to `wg`), removed on drop.
pub struct TempFile(PathBuf);

impl TempFile {
    pub fn new(text: &str) -> TempFile {
        let path = std::env::temp_dir().join(unique_name("wgc"));
        std::fs::write(&path, text).expect("write temp file");
        TempFile(path)
    }

    pub fn path(&self) -> &str {
        self.0.to_str().expect("temp paths are UTF-8")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
