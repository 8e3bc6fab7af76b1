//! Finding and reading the configuration, with wg-quick's rules and messages.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::QuickError;
use ferrotun_uapi::config::quick::{config_path, is_interface_name};
use ferrotun_uapi::config::QuickConfig;

/// A configuration read and checked, and the interface it is for.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The file, symlinks resolved (where `save` writes back).
    pub path: PathBuf,
    pub ifname: String,
    pub config: QuickConfig,
}

/// A bare interface name means `/etc/wireguard/NAME.conf`; anything else is a path whose file
/// name is `NAME.conf`. Warns, as wg-quick does, when other users may read the keys.
pub fn load(arg: &str) -> Result<Loaded, QuickError> {
    let given = if is_interface_name(arg) {
        Path::new("/etc/wireguard").join(format!("{arg}.conf"))
    } else {
        PathBuf::from(arg)
    };
    if !given.exists() {
        return Err(QuickError::Refused(format!(
            "`{}' does not exist",
            given.display()
        )));
    }
    let (_, ifname) = config_path(&given.to_string_lossy()).map_err(QuickError::Refused)?;
    let path = given.canonicalize().map_err(QuickError::io(format!(
        "cannot resolve {}",
        given.display()
    )))?;
    if world_accessible(&path) {
        eprintln!("Warning: `{}' is world accessible", path.display());
    }
    let text = std::fs::read_to_string(&path)
        .map_err(QuickError::io(format!("cannot read {}", path.display())))?;
    let config = QuickConfig::parse(&text, &path.to_string_lossy())?;
    Ok(Loaded {
        path,
        ifname,
        config,
    })
}

/// wg-quick's test: the file and its directory both grant "other" some access.
fn world_accessible(path: &Path) -> bool {
    let mode = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.permissions().mode());
    let dir = path.parent().unwrap_or(Path::new("/"));
    mode(path) & mode(dir) & 0o007 != 0
}
