//! Policy routing rules: the two wg-quick adds for a default route, listed and deleted again.

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::route::RouteHeader;
use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleFlags, RuleMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::{Netlink, NetlinkError};

/// A rule with only a table lookup and the selectors wg-quick uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub ipv6: bool,
    pub table: u32,
    /// Matches packets *without* this mark (`not fwmark M`).
    pub not_fwmark: Option<u32>,
    pub suppress_prefixlength: Option<u32>,
    /// Set by the kernel; `None` in a rule to add (the kernel then picks one).
    pub priority: Option<u32>,
    /// Any other selector or action: such a rule is never one of ours.
    pub other: bool,
}

impl Rule {
    /// `not fwmark MARK table TABLE`
    pub fn not_fwmark(ipv6: bool, mark: u32, table: u32) -> Rule {
        Rule {
            ipv6,
            table,
            not_fwmark: Some(mark),
            suppress_prefixlength: None,
            priority: None,
            other: false,
        }
    }

    /// `table main suppress_prefixlength 0`
    pub fn suppress_main(ipv6: bool) -> Rule {
        Rule {
            ipv6,
            table: u32::from(RouteHeader::RT_TABLE_MAIN),
            not_fwmark: None,
            suppress_prefixlength: Some(0),
            priority: None,
            other: false,
        }
    }

    /// Whether `self` (as listed) is the rule `wanted` describes, whatever its priority.
    pub fn same_as(&self, wanted: &Rule) -> bool {
        !self.other
            && self.ipv6 == wanted.ipv6
            && self.table == wanted.table
            && self.not_fwmark == wanted.not_fwmark
            && self.suppress_prefixlength == wanted.suppress_prefixlength
    }

    /// The text `ip rule` uses for it.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        if let Some(mark) = self.not_fwmark {
            out.push_str(&format!("not fwmark {mark} "));
        }
        if self.table == u32::from(RouteHeader::RT_TABLE_MAIN) {
            out.push_str("table main");
        } else {
            out.push_str(&format!("table {}", self.table));
        }
        if let Some(len) = self.suppress_prefixlength {
            out.push_str(&format!(" suppress_prefixlength {len}"));
        }
        out
    }

    fn to_message(&self) -> RuleMessage {
        let mut msg = RuleMessage::default();
        msg.header.family = if self.ipv6 {
            AddressFamily::Inet6
        } else {
            AddressFamily::Inet
        };
        msg.header.action = RuleAction::ToTable;
        match u8::try_from(self.table) {
            Ok(t) => msg.header.table = t,
            Err(_) => {
                msg.header.table = RouteHeader::RT_TABLE_UNSPEC;
                msg.attributes.push(RuleAttribute::Table(self.table));
            }
        }
        if let Some(p) = self.priority {
            msg.attributes.push(RuleAttribute::Priority(p));
        }
        if let Some(mark) = self.not_fwmark {
            msg.header.flags |= RuleFlags::Invert;
            msg.attributes.push(RuleAttribute::FwMark(mark));
        }
        if let Some(len) = self.suppress_prefixlength {
            msg.attributes.push(RuleAttribute::SuppressPrefixLen(len));
        }
        msg
    }

    fn from_message(m: &RuleMessage) -> Rule {
        let mut rule = Rule {
            ipv6: m.header.family == AddressFamily::Inet6,
            table: u32::from(m.header.table),
            not_fwmark: None,
            suppress_prefixlength: None,
            priority: None,
            other: m.header.action != RuleAction::ToTable
                || m.header.src_len != 0
                || m.header.dst_len != 0
                || m.header.tos != 0,
        };
        let invert = m.header.flags.contains(RuleFlags::Invert);
        let mut mark = None;
        for attr in &m.attributes {
            match attr {
                RuleAttribute::Table(t) => rule.table = *t,
                RuleAttribute::Priority(p) => rule.priority = Some(*p),
                RuleAttribute::FwMark(f) => mark = Some(*f),
                RuleAttribute::FwMask(mask) if *mask == u32::MAX || *mask == 0 => {}
                // The kernel reports a suppressor of -1 (none) on every rule.
                RuleAttribute::SuppressPrefixLen(len) if *len != u32::MAX => {
                    rule.suppress_prefixlength = Some(*len)
                }
                RuleAttribute::SuppressPrefixLen(_) | RuleAttribute::Protocol(_) => {}
                RuleAttribute::SuppressIfGroup(g) if *g == u32::MAX => {}
                _ => rule.other = true,
            }
        }
        match (invert, mark) {
            (true, Some(m)) => rule.not_fwmark = Some(m),
            (false, None) => {}
            _ => rule.other = true,
        }
        rule
    }
}

impl Netlink {
    /// Like `ip rule add ...`.
    pub fn add_rule(&mut self, rule: &Rule) -> Result<(), NetlinkError> {
        self.change(
            RouteNetlinkMessage::NewRule(rule.to_message()),
            NLM_F_CREATE | NLM_F_EXCL,
            || format!("cannot add rule `{}'", rule.describe()),
        )
    }

    /// Deletes a listed rule (its priority picks exactly that one).
    pub fn delete_rule(&mut self, rule: &Rule) -> Result<(), NetlinkError> {
        self.change(RouteNetlinkMessage::DelRule(rule.to_message()), 0, || {
            format!("cannot delete rule `{}'", rule.describe())
        })
    }

    /// Every rule of one family.
    pub fn rules(&mut self, ipv6: bool) -> Result<Vec<Rule>, NetlinkError> {
        let mut msg = RuleMessage::default();
        msg.header.family = if ipv6 {
            AddressFamily::Inet6
        } else {
            AddressFamily::Inet
        };
        let replies = self.dump(RouteNetlinkMessage::GetRule(msg), || {
            "cannot list rules".to_string()
        })?;
        Ok(replies
            .iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::GetRule(m) | RouteNetlinkMessage::NewRule(m) => {
                    Some(Rule::from_message(m))
                }
                _ => None,
            })
            .collect())
    }
}
