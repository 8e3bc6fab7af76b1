//! What `up` has done so far, so a failure half-way can take it back in reverse order.

use std::time::Duration;

use super::src_valid_mark::write_src_valid_mark;
use super::{daemon, dns, firewall, step};
use ferrotun_netlink::{Netlink, Rule};

pub enum Undo {
    /// The daemon and its link (deleting the link also drops its addresses and routes).
    Link(String),
    Dns(dns::Resolver, String),
    Rule(Rule),
    /// The previous value of net.ipv4.conf.all.src_valid_mark.
    SrcValidMark(String),
    Firewall(String),
}

#[derive(Default)]
pub struct Journal {
    steps: Vec<Undo>,
}

impl Journal {
    pub fn push(&mut self, step: Undo) {
        self.steps.push(step);
    }

    /// Undoes every recorded step, newest first. Failures are reported and skipped: the rest
    /// still has to go.
    pub fn rollback(&mut self, nl: &mut Netlink) {
        while let Some(undo) = self.steps.pop() {
            if let Err(e) = undo_one(undo, nl) {
                eprintln!("[!] while undoing: {e}");
            }
        }
    }
}

fn undo_one(undo: Undo, nl: &mut Netlink) -> Result<(), String> {
    match undo {
        Undo::Link(name) => {
            step(&format!("ip link delete dev {name}"));
            if let Some(link) = nl.link_by_name(&name).map_err(|e| e.to_string())? {
                nl.delete_link(&link).map_err(|e| e.to_string())?;
            }
            if !daemon::wait_gone(&name, Duration::from_secs(5)) {
                return Err(format!("the daemon for {name} did not exit"));
            }
            Ok(())
        }
        Undo::Dns(resolver, name) => dns::unset(resolver, &name).map_err(|e| e.to_string()),
        Undo::Rule(rule) => {
            let family = if rule.ipv6 { "-6" } else { "-4" };
            step(&format!("ip {family} rule delete {}", rule.describe()));
            let listed = nl.rules(rule.ipv6).map_err(|e| e.to_string())?;
            if let Some(found) = listed.iter().find(|r| r.same_as(&rule)) {
                nl.delete_rule(found).map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        Undo::SrcValidMark(old) => {
            step(&format!("sysctl -q net.ipv4.conf.all.src_valid_mark={old}"));
            write_src_valid_mark(&old).map_err(|e| e.to_string())
        }
        Undo::Firewall(name) => firewall::remove(&name).map_err(|e| e.to_string()),
    }
}
