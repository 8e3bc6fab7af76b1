//! The demo's little network: three fresh namespaces joined by veth pairs.
//!
//! ```text
//!  ns A                       ns B                                  ns LAN
//!  ftdemoNa 10.0.0.1  ~~~~~~  ftdemoNb 10.0.0.2
//!  to-b 192.0.2.1  ──veth──  to-a 192.0.2.2   lan0 192.168.100.1 ──veth── eth0 192.168.100.2
//! ```
//!
//! The veths are created from inside the namespaces (`ip -n`), so the host's own namespace
//! never holds one, not even for a moment. Names inside a fresh namespace cannot collide;
//! only the namespaces and the WireGuard interfaces (whose control sockets share
//! /var/run/wireguard across all namespaces) carry the process id.

use std::path::PathBuf;

use ferrotun_device::Cancel;

use super::error::DemoError;
use super::run::{check, ip, SHORT};

pub const PORT: u16 = 51820;
pub const TUNNEL_A: &str = "10.0.0.1";
pub const TUNNEL_B: &str = "10.0.0.2";
/// 192.0.2.0/24 is reserved for documentation: it cannot clash with anything real.
pub const A_UNDERLAY: &str = "192.0.2.1";
pub const B_UNDERLAY: &str = "192.0.2.2";
pub const LAN_NET: &str = "192.168.100.0/24";
pub const B_LAN: &str = "192.168.100.1";
pub const LAN_HOST: &str = "192.168.100.2";
pub const B_LAN_DEV: &str = "lan0";
const A_TO_B: &str = "to-b";
const B_TO_A: &str = "to-a";
const LAN_DEV: &str = "eth0";

/// Everything the demo names, derived from its process id.
#[derive(Debug, Clone)]
pub struct Names {
    pub ns_a: String,
    pub ns_b: String,
    pub ns_lan: String,
    pub if_a: String,
    pub if_b: String,
    pub dir: PathBuf,
}

impl Names {
    pub fn for_pid(pid: u32) -> Names {
        Names {
            ns_a: format!("ftdemo-{pid}-a"),
            ns_b: format!("ftdemo-{pid}-b"),
            ns_lan: format!("ftdemo-{pid}-lan"),
            // "ftdemo" + at most 7 digits (pid_max is 2^22) + 1 = 14 bytes, within IFNAMSIZ.
            if_a: format!("ftdemo{pid}a"),
            if_b: format!("ftdemo{pid}b"),
            dir: std::env::temp_dir().join(format!("ferrotun-demo-{pid}")),
        }
    }

    pub fn namespaces(&self) -> [&str; 3] {
        [&self.ns_a, &self.ns_b, &self.ns_lan]
    }

    pub fn config_path(&self, iface: &str) -> PathBuf {
        self.dir.join(format!("{iface}.conf"))
    }
}

/// Where `ip netns` keeps a namespace it names.
pub fn netns_path(ns: &str) -> PathBuf {
    PathBuf::from("/run/netns").join(ns)
}

/// Adds one namespace with its loopback up; `created` learns of it before anything else can
/// fail, so cleanup removes it whatever happens next.
pub fn add_namespace(
    ns: &str,
    created: &mut Vec<String>,
    cancel: &Cancel,
) -> Result<(), DemoError> {
    if netns_path(ns).exists() {
        return Err(DemoError::NamespaceExists(ns.to_string()));
    }
    check(&mut ip(&["netns", "add", ns]), SHORT, Some(cancel))?;
    created.push(ns.to_string());
    check(
        &mut ip(&["-n", ns, "link", "set", "lo", "up"]),
        SHORT,
        Some(cancel),
    )?;
    Ok(())
}

/// The veths and their addresses, once the three namespaces exist.
pub fn wire(names: &Names, cancel: &Cancel) -> Result<(), DemoError> {
    let (a, b, lan) = (
        names.ns_a.as_str(),
        names.ns_b.as_str(),
        names.ns_lan.as_str(),
    );
    let steps: [&[&str]; 10] = [
        &[
            "-n", a, "link", "add", A_TO_B, "type", "veth", "peer", "name", B_TO_A, "netns", b,
        ],
        &[
            "-n", b, "link", "add", B_LAN_DEV, "type", "veth", "peer", "name", LAN_DEV, "netns",
            lan,
        ],
        &[
            "-n",
            a,
            "address",
            "add",
            &format!("{A_UNDERLAY}/24"),
            "dev",
            A_TO_B,
        ],
        &[
            "-n",
            b,
            "address",
            "add",
            &format!("{B_UNDERLAY}/24"),
            "dev",
            B_TO_A,
        ],
        &[
            "-n",
            b,
            "address",
            "add",
            &format!("{B_LAN}/24"),
            "dev",
            B_LAN_DEV,
        ],
        &[
            "-n",
            lan,
            "address",
            "add",
            &format!("{LAN_HOST}/24"),
            "dev",
            LAN_DEV,
        ],
        &["-n", a, "link", "set", A_TO_B, "up"],
        &["-n", b, "link", "set", B_TO_A, "up"],
        &["-n", b, "link", "set", B_LAN_DEV, "up"],
        // The LAN host gets no route to 10.0.0.0/24: replies reach A only because B
        // masquerades, which is the point of the example.
        &["-n", lan, "link", "set", LAN_DEV, "up"],
    ];
    for args in steps {
        check(&mut ip(args), SHORT, Some(cancel))?;
    }
    Ok(())
}
