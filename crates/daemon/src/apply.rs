//! Applying a validated `set=1` request to the running device, and building the `get=1`
//! reply from it.
//!
//! The request was parsed in full before anything here runs, so the only failures left
//! are the operating system's (binding the port, setting the mark); those come first and
//! are undone on failure, so a `set` is all-or-nothing.

use ferrotun_device::Device;
use ferrotun_proto::keys::PresharedKey;
use ferrotun_uapi::{AllowedIpChange, InterfaceStatus, IpPrefix, PeerStatus, SetRequest};
use std::io;

/// errno values the configuration protocol replies with (sent negated).
pub const EADDRINUSE: i32 = 98;

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("cannot bind listen port {port}: {source}")]
    ListenPort { port: u16, source: io::Error },
    #[error("cannot set fwmark {mark:#x}: {source}")]
    Fwmark { mark: u32, source: io::Error },
}

impl ApplyError {
    pub fn errno(&self) -> i32 {
        EADDRINUSE
    }
}

pub fn apply(device: &Device, req: &SetRequest) -> Result<(), ApplyError> {
    let old_port = device.listen_port();
    if let Some(port) = req.listen_port {
        if port != old_port || port == 0 {
            device
                .set_listen_port(port)
                .map_err(|source| ApplyError::ListenPort { port, source })?;
        }
    }
    if let Some(mark) = req.fwmark {
        if let Err(source) = device.set_fwmark(mark) {
            if req.listen_port.is_some() {
                // Put the old port back so the failed request changes nothing.
                let _ = device.set_listen_port(old_port);
            }
            return Err(ApplyError::Fwmark { mark, source });
        }
    }

    let iface = device.interface();
    if let Some(key) = &req.private_key {
        iface.set_private_key(key.clone());
    }
    if req.replace_peers {
        iface.remove_all_peers();
    }
    let own_key = iface.public_key();
    // Whether where the peers' datagrams are routed may have changed.
    let mut moved = req.fwmark.is_some() || req.replace_peers;
    for change in &req.peers {
        if own_key == Some(change.public_key) {
            // wireguard-go accepts and ignores lines for our own key.
            continue;
        }
        if change.remove {
            iface.remove_peer(&change.public_key);
            moved = true;
            continue;
        }
        if change.update_only && iface.peer(&change.public_key).is_none() {
            continue;
        }
        let Some(peer) = iface.add_peer(change.public_key) else {
            continue;
        };
        if let Some(psk) = &change.preshared_key {
            iface.set_preshared_key(&peer, psk.clone().unwrap_or(PresharedKey::ZERO));
        }
        if let Some(endpoint) = change.endpoint {
            iface.set_endpoint(&peer, endpoint);
            moved = true;
        }
        if change.replace_allowed_ips {
            iface.clear_allowed_ips(&peer);
        }
        for ip in &change.allowed_ips {
            match ip {
                AllowedIpChange::Add(p) => {
                    iface.add_allowed_ip(&peer, p.addr, p.cidr);
                }
                AllowedIpChange::Remove(p) => {
                    iface.remove_allowed_ip(&peer, p.addr, p.cidr);
                }
            }
        }
        if let Some(secs) = change.persistent_keepalive {
            let out = iface.set_persistent_keepalive(&peer, secs, device.env());
            device.send(out);
        }
    }
    if moved {
        // The loop guard's question (see the device's route_watch.rs).
        device.endpoints_changed();
    }
    Ok(())
}

/// The device as a `get=1` reply describes it.
pub fn status(device: &Device) -> InterfaceStatus {
    let iface = device.interface();
    let mut peers: Vec<PeerStatus> = iface
        .peer_list()
        .iter()
        .map(|peer| {
            let snap = iface.snapshot(peer);
            PeerStatus {
                public_key: snap.public_key,
                preshared_key: (!snap.preshared_key.is_zero()).then_some(snap.preshared_key),
                endpoint: snap.endpoint,
                last_handshake: snap.stats.last_handshake.map(|w| (w.secs, w.nanos)),
                rx_bytes: snap.stats.rx_bytes,
                tx_bytes: snap.stats.tx_bytes,
                persistent_keepalive: snap.persistent_keepalive,
                allowed_ips: snap
                    .allowed_ips
                    .into_iter()
                    .filter_map(|(addr, cidr)| IpPrefix::new(addr, cidr).ok())
                    .collect(),
                protocol_version: 1,
            }
        })
        .collect();
    // A stable order makes `wg show dump` diffable between runs.
    peers.sort_by_key(|p| p.public_key);
    InterfaceStatus {
        private_key: iface.private_key(),
        listen_port: device.listen_port(),
        fwmark: device.fwmark(),
        peers,
    }
}
