//! One command's view of the system, shared by `up`, `down`, `save` and the steps they take.

use super::undo::Journal;
use super::{tables, Loaded, QuickError};
use ferrotun_netlink::{Link, Netlink};
use ferrotun_uapi::Client;

/// One command's view of the system: the netlink socket, the device's configuration socket,
/// and (for `up`) what has been done so far.
pub struct Session<'a> {
    pub nl: Netlink,
    pub client: Client,
    pub loaded: &'a Loaded,
    pub journal: Journal,
    pub link: Option<Link>,
}

impl<'a> Session<'a> {
    pub fn new(loaded: &'a Loaded) -> Result<Self, QuickError> {
        Ok(Session {
            nl: Netlink::open()?,
            client: Client::new(),
            loaded,
            journal: Journal::default(),
            link: None,
        })
    }

    pub fn ifname(&self) -> &'a str {
        &self.loaded.ifname
    }

    /// The interface's link; every step after the daemon starts has one.
    pub fn link(&self) -> Result<&Link, QuickError> {
        self.link
            .as_ref()
            .ok_or_else(|| QuickError::Refused(format!("`{}' does not exist", self.ifname())))
    }

    /// The table id for an explicit `Table =` (not auto/off).
    pub fn explicit_table(&self) -> Result<Option<u32>, QuickError> {
        match &self.loaded.config.table {
            None => Ok(None),
            Some(t) => tables::table_id(t).map_err(QuickError::Refused),
        }
    }

    /// True if the device is one of ours (has a live configuration socket).
    pub fn is_wireguard(&self) -> Result<bool, QuickError> {
        let names = self
            .client
            .list_interfaces()
            .map_err(QuickError::uapi("cannot list WireGuard interfaces"))?;
        Ok(names.iter().any(|n| n == self.ifname()))
    }

    pub fn require_wireguard(&self) -> Result<(), QuickError> {
        if !self.is_wireguard()? {
            return Err(QuickError::Refused(format!(
                "`{}' is not a WireGuard interface",
                self.ifname()
            )));
        }
        Ok(())
    }
}
