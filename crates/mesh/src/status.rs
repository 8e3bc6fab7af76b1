//! What the agent tells `ferrotun mesh status`: a small JSON file in the state directory,
//! rewritten (atomically) whenever the agent's view changes.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Status {
    pub mesh: String,
    pub interface: String,
    pub pid: u32,
    pub node_name: String,
    pub public_key: String,
    pub address: String,
    #[serde(default)]
    pub address6: Option<String>,
    /// `connected`, or why not.
    pub etcd: String,
    pub peers: Vec<PeerLine>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerLine {
    pub name: String,
    pub public_key: String,
    pub address: String,
    pub endpoint: Option<String>,
}

pub fn path(dir: &Path) -> PathBuf {
    dir.join("status.json")
}

pub fn pid_path(dir: &Path) -> PathBuf {
    dir.join("agent.pid")
}

pub fn write(dir: &Path, status: &Status) {
    let tmp = dir.join("status.json.tmp");
    let result = serde_json::to_vec_pretty(status)
        .map_err(std::io::Error::other)
        .and_then(|bytes| std::fs::write(&tmp, bytes))
        .and_then(|()| std::fs::rename(&tmp, path(dir)));
    if let Err(e) = result {
        tracing::warn!("cannot write {}: {e}", path(dir).display());
    }
}

pub fn read(dir: &Path) -> Option<Status> {
    serde_json::from_slice(&std::fs::read(path(dir)).ok()?).ok()
}

/// The agent's pid from its pid file, if that process still runs ferrotun.
pub fn running_agent(dir: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pid_path(dir))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    // A zombie has an empty command line: it no longer counts.
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let text = String::from_utf8_lossy(&cmdline);
    (text.contains("ferrotun") && text.contains("mesh")).then_some(pid)
}
