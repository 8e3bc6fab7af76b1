//! The node's own interface, set up the way `ferrotun up` sets one up (the userspace daemon,
//! then key and port over the configuration socket, then addresses, MTU and link state over
//! netlink), and the host facts the agent publishes or needs: its endpoints, and which of a
//! peer's endpoints it can route to.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use anyhow::{anyhow, bail, Context, Result};
use ferrotun_proto::keys::PrivateKey;

use super::layout::{parse_endpoint, Endpoint};
use ferrotun_netlink::{Link, Netlink};
use ferrotun_quick::daemon;
use ferrotun_uapi::{Client, IpPrefix, SetRequest};

/// Starts the daemon for `ifname` unless it runs already (an agent restarting after a crash
/// adopts the interface and its sessions as they are), then makes key, port, addresses,
/// MTU and link state what they should be, touching only what differs.
pub fn bring_up(
    nl: &mut Netlink,
    uapi: &Client,
    ifname: &str,
    key: &PrivateKey,
    port: u16,
    addresses: &[IpPrefix],
    mtu: u32,
) -> Result<Link> {
    if !uapi.has_interface(ifname) {
        if nl.link_by_name(ifname)?.is_some() {
            bail!("`{ifname}' exists and is not a WireGuard interface");
        }
        daemon::start(ifname).map_err(|e| anyhow!("{e}"))?;
    }
    let link = nl
        .link_by_name(ifname)?
        .ok_or_else(|| anyhow!("the daemon started but `{ifname}' does not exist"))?;
    let status = uapi
        .get(ifname)
        .with_context(|| format!("cannot read {ifname}"))?;
    let mut request = SetRequest::default();
    if status.public_key() != Some(key.public_key()) {
        request.private_key = Some(Some(key.clone()));
    }
    if status.listen_port != port {
        request.listen_port = Some(port);
    }
    if request != SetRequest::default() {
        uapi.set(ifname, &request)
            .with_context(|| format!("cannot configure {ifname}"))?;
    }
    let have = nl.addresses(&link)?;
    for address in addresses {
        if !have.contains(address) {
            nl.add_address(&link, address)?;
        }
    }
    if !link.up || link.mtu != mtu {
        nl.set_mtu_up(&link, mtu)?;
    }
    Ok(link)
}

/// This host's addresses that others might reach it at, with the listen port: every global
/// address of every other link (no loopback, no IPv6 link-local, not the mesh itself).
pub fn local_endpoints(nl: &mut Netlink, mesh_index: u32, port: u16) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (index, a) in nl.all_addresses()? {
        let usable = match a.addr {
            IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_link_local() && !v4.is_unspecified(),
            IpAddr::V6(v6) => {
                !v6.is_loopback() && !v6.is_unspecified() && (v6.segments()[0] & 0xffc0) != 0xfe80
            }
        };
        if index != mesh_index && usable {
            out.push(SocketAddr::new(a.addr, port).to_string());
        }
    }
    Ok(out)
}

/// The first of a peer's endpoints this host has a route to (other than through the mesh
/// itself). Host names are resolved here; one that does not resolve is skipped.
pub fn choose_endpoint(
    nl: &mut Netlink,
    mesh_index: u32,
    endpoints: &[String],
) -> Option<SocketAddr> {
    for text in endpoints {
        let addrs: Vec<SocketAddr> = match parse_endpoint(text) {
            Some(Endpoint::Addr(a)) => vec![a],
            Some(Endpoint::Host(host, port)) => match (host.as_str(), port).to_socket_addrs() {
                Ok(it) => it.collect(),
                Err(e) => {
                    tracing::debug!("cannot resolve {text}: {e}");
                    continue;
                }
            },
            None => continue,
        };
        for addr in addrs {
            if let Ok(Some(route)) = nl.route_get(addr.ip()) {
                if route.oif != Some(mesh_index) {
                    return Some(addr);
                }
            }
        }
    }
    None
}
