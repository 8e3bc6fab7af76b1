//! The node's private key: made once, kept in the state directory (mode 0600, the directory
//! 0700), read back on every start so the node keeps its identity and its address.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{bail, Context, Result};
use ferrotun_proto::keys::PrivateKey;
use rand_core::OsRng;
use zeroize::Zeroizing;

pub fn load_or_create(dir: &Path) -> Result<PrivateKey> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("private.key");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let text = Zeroizing::new(text);
            let mode = std::fs::metadata(&path)?.permissions().mode();
            if mode & 0o077 != 0 {
                bail!(
                    "{} is readable by others (mode {:o}); chmod 600 it",
                    path.display(),
                    mode & 0o777
                );
            }
            PrivateKey::from_base64(text.trim())
                .map_err(|_| anyhow::anyhow!("{} does not hold a private key", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = PrivateKey::generate(&mut OsRng);
            // Written aside and renamed into place: nobody ever reads a half-written key.
            let tmp = dir.join("private.key.tmp");
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .with_context(|| format!("cannot create {}", tmp.display()))?;
            let text = Zeroizing::new(format!("{}\n", key.to_base64()));
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&tmp, &path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_made_private_and_read_back_the_same() {
        let dir = std::env::temp_dir().join(format!("ferrotun-keyfile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let a = load_or_create(&dir).unwrap();
        let mode = std::fs::metadata(dir.join("private.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let b = load_or_create(&dir).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        std::fs::set_permissions(
            dir.join("private.key"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        assert!(load_or_create(&dir).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
