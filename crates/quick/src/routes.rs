//! Routes for the peers' AllowedIPs, as wg-quick adds them: into an explicit table as they
//! are; into the main table unless a route on the interface already covers them; and a
//! default route (`/0` with Table = auto) into its own table, reached through fwmark rules
//! so the tunnel's own packets still use the main table.

use std::cmp::Ordering;
use std::net::IpAddr;

use super::session::Session;
use super::src_valid_mark::{write_src_valid_mark, SRC_VALID_MARK};
use super::undo::Undo;
use super::{firewall, step, QuickError};
use ferrotun_netlink::route::TABLE_MAIN;
use ferrotun_netlink::Rule;
use ferrotun_uapi::config::Table;
use ferrotun_uapi::{IpPrefix, SetRequest};

/// The table wg-quick starts from when it picks one for a default route.
const FIRST_DEFAULT_TABLE: u32 = 51820;

/// wg-quick's `sort -nr -k 2 -t /`: longest prefix first; equal lengths in reverse text order.
pub fn sort_like_wg_quick(prefixes: &mut [IpPrefix]) {
    prefixes.sort_by(|a, b| match b.cidr.cmp(&a.cidr) {
        Ordering::Equal => b.to_string().cmp(&a.to_string()),
        other => other,
    });
}

fn family(addr: &IpAddr) -> &'static str {
    if addr.is_ipv6() {
        "-6"
    } else {
        "-4"
    }
}

impl Session<'_> {
    pub(super) fn add_routes(&mut self) -> Result<(), QuickError> {
        if self.loaded.config.table == Some(Table::Off) {
            return Ok(());
        }
        let ifname = self.ifname();
        let status = self
            .client
            .get(ifname)
            .map_err(QuickError::uapi(format!("cannot read {ifname}")))?;
        let mut prefixes: Vec<IpPrefix> = status
            .peers
            .iter()
            .flat_map(|p| p.allowed_ips.iter().map(|ip| ip.masked()))
            .collect();
        sort_like_wg_quick(&mut prefixes);
        let explicit = self.explicit_table()?;
        for prefix in prefixes {
            self.add_route(&prefix, explicit)?;
        }
        Ok(())
    }

    fn add_route(&mut self, prefix: &IpPrefix, explicit: Option<u32>) -> Result<(), QuickError> {
        let ifname = self.ifname();
        let fam = family(&prefix.addr);
        let link = self.link()?.clone();
        if let Some(table) = explicit {
            let shown = match &self.loaded.config.table {
                Some(Table::Name(name)) => name.clone(),
                _ => table.to_string(),
            };
            step(&format!(
                "ip {fam} route add {prefix} dev {ifname} table {shown}"
            ));
            self.nl.add_route(&link, prefix, table)?;
        } else if prefix.cidr == 0 {
            self.add_default(prefix)?;
        } else if !self.covered(prefix)? {
            step(&format!("ip {fam} route add {prefix} dev {ifname}"));
            self.nl.add_route(&link, prefix, TABLE_MAIN)?;
        }
        Ok(())
    }

    /// `ip route show dev IF match PREFIX` is not empty: a main-table route on the interface
    /// (such as an Address's prefix route) already contains the prefix.
    fn covered(&mut self, prefix: &IpPrefix) -> Result<bool, QuickError> {
        let index = self.link()?.index;
        let routes = self.nl.routes(prefix.addr.is_ipv6())?;
        Ok(routes.iter().any(|r| {
            let d = r.destination;
            r.table == TABLE_MAIN
                && r.oif == Some(index)
                && d.cidr <= prefix.cidr
                && IpPrefix {
                    addr: prefix.addr,
                    cidr: d.cidr,
                }
                .masked()
                    == d.masked()
        }))
    }

    /// The device's fwmark if it has one, else the first table from 51820 up that holds no
    /// route, which also becomes the device's fwmark.
    fn default_table(&mut self) -> Result<u32, QuickError> {
        let ifname = self.ifname();
        let status = self
            .client
            .get(ifname)
            .map_err(QuickError::uapi(format!("cannot read {ifname}")))?;
        if status.fwmark != 0 {
            return Ok(status.fwmark);
        }
        let mut used: Vec<u32> = self.nl.routes(false)?.iter().map(|r| r.table).collect();
        used.extend(self.nl.routes(true)?.iter().map(|r| r.table));
        let mut table = FIRST_DEFAULT_TABLE;
        while used.contains(&table) {
            table += 1;
        }
        step(&format!("wg set {ifname} fwmark {table}"));
        let request = SetRequest {
            fwmark: Some(table),
            ..SetRequest::default()
        };
        self.client
            .set(ifname, &request)
            .map_err(QuickError::uapi(format!(
                "cannot set the fwmark of {ifname}"
            )))?;
        Ok(table)
    }

    fn add_default(&mut self, prefix: &IpPrefix) -> Result<(), QuickError> {
        let ifname = self.ifname();
        let ipv6 = prefix.addr.is_ipv6();
        let fam = family(&prefix.addr);
        let table = self.default_table()?;
        let link = self.link()?.clone();
        step(&format!(
            "ip {fam} route add {prefix} dev {ifname} table {table}"
        ));
        self.nl.add_route(&link, prefix, table)?;
        for rule in [
            Rule::not_fwmark(ipv6, table, table),
            Rule::suppress_main(ipv6),
        ] {
            step(&format!("ip {fam} rule add {}", rule.describe()));
            self.nl.add_rule(&rule)?;
            self.journal.push(Undo::Rule(rule));
        }
        if !ipv6 {
            // Replies to the tunnel's marked packets must pass reverse-path filtering.
            let old = std::fs::read_to_string(SRC_VALID_MARK)
                .map_err(QuickError::io(format!("cannot read {SRC_VALID_MARK}")))?;
            step("sysctl -q net.ipv4.conf.all.src_valid_mark=1");
            write_src_valid_mark("1")
                .map_err(QuickError::io(format!("cannot write {SRC_VALID_MARK}")))?;
            let old = old.trim().to_string();
            if old != "1" {
                self.journal.push(Undo::SrcValidMark(old));
            }
        }
        let addresses: Vec<IpAddr> = self
            .nl
            .addresses(&link)?
            .iter()
            .map(|a| a.addr)
            .filter(|a| a.is_ipv6() == ipv6)
            .collect();
        self.journal.push(Undo::Firewall(ifname.to_string()));
        firewall::add(ifname, ipv6, table, &addresses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_first_ties_in_reverse_text_order() {
        let mut list: Vec<IpPrefix> = [
            "10.0.0.0/8",
            "fd00::/64",
            "10.1.0.0/16",
            "0.0.0.0/0",
            "10.2.0.0/16",
            "10.0.0.9/32",
        ]
        .iter()
        .map(|t| IpPrefix::parse(t).unwrap())
        .collect();
        sort_like_wg_quick(&mut list);
        let text: Vec<String> = list.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            text,
            [
                "fd00::/64",
                "10.0.0.9/32",
                "10.2.0.0/16",
                "10.1.0.0/16",
                "10.0.0.0/8",
                "0.0.0.0/0"
            ]
        );
    }
}
