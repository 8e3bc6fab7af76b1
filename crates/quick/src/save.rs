//! SaveConfig / `save`: the running configuration written back to the file, with the
//! wg-quick fields taken from the live interface (addresses, DNS, MTU) or the file.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use super::session::Session;
use super::{dns, step, QuickError};
use ferrotun_uapi::config::{Table, WgConfig};

impl Session<'_> {
    /// The `[Interface]` lines wg-quick itself owns, as they are now.
    fn quick_interface_lines(&mut self) -> Result<String, QuickError> {
        let ifname = self.ifname();
        let config = &self.loaded.config;
        let link = self
            .nl
            .link_by_name(ifname)?
            .ok_or_else(|| QuickError::Refused(format!("`{ifname}' does not exist")))?;
        let mut out = String::from("[Interface]\n");
        for address in self.nl.addresses(&link)? {
            out += &format!("Address = {address}\n");
        }
        for server in dns::servers(ifname) {
            out += &format!("DNS = {server}\n");
        }
        if config.mtu.is_some() {
            out += &format!("MTU = {}\n", link.mtu);
        }
        match &config.table {
            None => {}
            Some(Table::Auto) => out += "Table = auto\n",
            Some(Table::Off) => out += "Table = off\n",
            Some(Table::Id(id)) => out += &format!("Table = {id}\n"),
            Some(Table::Name(name)) => out += &format!("Table = {name}\n"),
        }
        if config.save_config {
            out += "SaveConfig = true\n";
        }
        for (key, hooks) in [
            ("PreUp", &config.pre_up),
            ("PostUp", &config.post_up),
            ("PreDown", &config.pre_down),
            ("PostDown", &config.post_down),
        ] {
            for hook in hooks {
                out += &format!("{key} = {hook}\n");
            }
        }
        Ok(out)
    }
}

/// Writes `wg showconf` with its `[Interface]` header replaced by the wg-quick lines, through
/// a private temporary file renamed into place.
pub(super) fn save_config(s: &mut Session) -> Result<(), QuickError> {
    let ifname = s.ifname();
    let interface = s.quick_interface_lines()?;
    step(&format!("wg showconf {ifname}"));
    let status = s
        .client
        .get(ifname)
        .map_err(QuickError::uapi(format!("cannot read {ifname}")))?;
    let current = WgConfig::from_status(&status).to_text();
    let merged = current.replacen("[Interface]\n", &interface, 1);
    let text = format!("{}\n", merged.trim_end_matches('\n'));

    let path = &s.loaded.path;
    let tmp = path.with_file_name(format!(
        "{}.tmp",
        path.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    ));
    let write = || -> std::io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        QuickError::Io {
            what: format!("could not write configuration file {}", path.display()),
            source: e,
        }
    })
}
