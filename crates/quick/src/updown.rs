//! The three commands that act on a live interface: `up`, `down` and `save`.

use std::time::Duration;

use super::session::Session;
use super::undo::Undo;
use super::{daemon, dns, firewall, hooks, origin, save, step, Loaded, QuickError};
use ferrotun_netlink::Rule;
use ferrotun_uapi::config::Table;

/// How long `down` waits for the daemon to notice its link is gone and exit.
const DAEMON_EXIT: Duration = Duration::from_secs(5);

impl Session<'_> {
    fn bring_up(&mut self, resolver: Option<dns::Resolver>) -> Result<(), QuickError> {
        let config = &self.loaded.config;
        let ifname = self.ifname();
        hooks::run(&config.pre_up, ifname)?;
        daemon::start(ifname)?;
        self.journal.push(Undo::Link(ifname.to_string()));
        self.link = Some(self.nl.link_by_name(ifname)?.ok_or_else(|| {
            QuickError::Refused(format!("the daemon started but `{ifname}' does not exist"))
        })?);

        step(&format!("wg setconf {ifname} /dev/stdin"));
        for warning in &config.wg.warnings {
            eprintln!("{warning}");
        }
        self.client
            .set(ifname, &config.wg.to_set_request(true))
            .map_err(QuickError::uapi(format!("cannot configure {ifname}")))?;

        for address in &config.addresses {
            let family = if address.addr.is_ipv6() { "-6" } else { "-4" };
            step(&format!("ip {family} address add {address} dev {ifname}"));
            let link = self.link()?.clone();
            self.nl.add_address(&link, address)?;
        }

        let mtu = match config.mtu {
            Some(mtu) => mtu,
            None => self.auto_mtu()?,
        };
        step(&format!("ip link set mtu {mtu} up dev {ifname}"));
        let link = self.link()?.clone();
        self.nl.set_mtu_up(&link, mtu)?;

        if let Some(resolver) = resolver {
            // Recorded first: a resolver that fails half-way may hold part of it.
            self.journal.push(Undo::Dns(resolver, ifname.to_string()));
            dns::set(resolver, config, ifname)?;
        }
        self.add_routes()?;
        hooks::run(&config.post_up, ifname)
    }

    /// wg-quick's del_if: the policy rules of a default route, then the link (which takes the
    /// addresses and routes with it, and makes the daemon exit).
    fn delete_interface(&mut self) -> Result<(), QuickError> {
        let ifname = self.ifname();
        let auto = matches!(self.loaded.config.table, None | Some(Table::Auto));
        let status = self
            .client
            .get(ifname)
            .map_err(QuickError::uapi(format!("cannot read {ifname}")))?;
        let has_default = status
            .peers
            .iter()
            .any(|p| p.allowed_ips.iter().any(|ip| ip.cidr == 0));
        if auto && status.fwmark != 0 && has_default {
            self.delete_default_rules(status.fwmark)?;
        }
        step(&format!("ip link delete dev {ifname}"));
        let link = self
            .nl
            .link_by_name(ifname)?
            .ok_or_else(|| QuickError::Refused(format!("`{ifname}' does not exist")))?;
        self.nl.delete_link(&link)?;
        if !daemon::wait_gone(ifname, DAEMON_EXIT) {
            eprintln!("[!] the daemon for {ifname} is still running");
        }
        Ok(())
    }

    /// Every rule looking up `table`, and every `table main suppress_prefixlength 0`.
    fn delete_default_rules(&mut self, table: u32) -> Result<(), QuickError> {
        for ipv6 in [false, true] {
            let family = if ipv6 { "-6" } else { "-4" };
            let suppress = Rule::suppress_main(ipv6);
            for rule in self.nl.rules(ipv6)? {
                if rule.table == table {
                    step(&format!("ip {family} rule delete table {table}"));
                } else if rule.same_as(&suppress) {
                    step(&format!(
                        "ip {family} rule delete table main suppress_prefixlength 0"
                    ));
                } else {
                    continue;
                }
                self.nl.delete_rule(&rule)?;
            }
        }
        Ok(())
    }
}

pub fn up(loaded: &Loaded) -> Result<(), QuickError> {
    let mut s = Session::new(loaded)?;
    let ifname = s.ifname();
    if s.nl.link_by_name(ifname)?.is_some() {
        return Err(QuickError::Refused(format!("`{ifname}' already exists")));
    }
    // An unknown table name is a configuration error: refuse before changing anything.
    s.explicit_table()?;
    // So is DNS the host has no way to apply.
    let resolver = dns::Resolver::for_config(&loaded.config, ifname)?;
    let result = s.bring_up(resolver);
    match (&result, &s.link) {
        (Ok(()), Some(link)) => origin::record(ifname, link.index, &loaded.path),
        (Ok(()), None) => {}
        (Err(_), _) => s.journal.rollback(&mut s.nl),
    }
    result
}

pub fn down(loaded: &Loaded) -> Result<(), QuickError> {
    let mut s = Session::new(loaded)?;
    s.require_wireguard()?;
    let config = &loaded.config;
    hooks::run(&config.pre_down, s.ifname())?;
    if config.save_config {
        save::save_config(&mut s)?;
    }
    // Before the link goes (wg-quick does it after): resolvectl can only revert a link
    // that still exists. A failure here does not stop the rest, as in wg-quick.
    if !config.dns.is_empty() {
        if let Some(resolver) = dns::Resolver::find() {
            if let Err(e) = dns::unset(resolver, s.ifname()) {
                eprintln!("[!] {e}");
            }
        }
    }
    s.delete_interface()?;
    origin::forget(s.ifname());
    // Like wg-quick, later cleanup failures do not stop PostDown.
    if let Err(e) = firewall::remove(s.ifname()) {
        eprintln!("[!] {e}");
    }
    hooks::run(&config.post_down, s.ifname())
}

pub fn save(loaded: &Loaded) -> Result<(), QuickError> {
    let mut s = Session::new(loaded)?;
    s.require_wireguard()?;
    save::save_config(&mut s)
}
