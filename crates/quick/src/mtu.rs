//! wg-quick's MTU when none is configured: the largest MTU on the way to any peer's endpoint
//! (else of the default route's device, else 1500), less 80 bytes of WireGuard overhead
//! (the IPv6 + UDP + WireGuard headers).

use std::net::SocketAddr;

use super::session::Session;
use super::QuickError;
use ferrotun_netlink::route::TABLE_MAIN;

const OVERHEAD: u32 = 80;
const FALLBACK: u32 = 1500;

impl Session<'_> {
    pub(super) fn auto_mtu(&mut self) -> Result<u32, QuickError> {
        let ifname = self.ifname();
        let status = self
            .client
            .get(ifname)
            .map_err(QuickError::uapi(format!("cannot read {ifname}")))?;
        let mut mtu = 0;
        for endpoint in status.peers.iter().filter_map(|p| p.endpoint) {
            // wg-quick's pattern skips scoped (link-local %dev) endpoints.
            if matches!(endpoint, SocketAddr::V6(v6) if v6.scope_id() != 0) {
                continue;
            }
            if let Some(found) = self.nl.route_get(endpoint.ip())? {
                mtu = mtu.max(self.path_mtu(found.mtu, found.oif)?);
            }
        }
        if mtu == 0 {
            let first_default = self
                .nl
                .routes(false)?
                .into_iter()
                .find(|r| r.table == TABLE_MAIN && r.destination.cidr == 0);
            if let Some(route) = first_default {
                mtu = self.path_mtu(route.mtu, route.oif)?;
            }
        }
        if mtu == 0 {
            mtu = FALLBACK;
        }
        Ok(mtu.saturating_sub(OVERHEAD).max(68))
    }

    /// A route's own MTU, else its device's.
    fn path_mtu(&mut self, route_mtu: Option<u32>, oif: Option<u32>) -> Result<u32, QuickError> {
        if let Some(mtu) = route_mtu {
            return Ok(mtu);
        }
        match oif {
            Some(index) => Ok(self.nl.link_by_index(index)?.map_or(0, |l| l.mtu)),
            None => Ok(0),
        }
    }
}
