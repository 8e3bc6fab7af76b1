//! The packet-filter rules wg-quick adds with a policy-routed default route: drop packets for
//! the tunnel's own addresses arriving on other interfaces (so nobody on the LAN can reach
//! them), and carry the fwmark of the tunnel's UDP over connection tracking so replies find
//! the main table. nftables when `nft` exists, else iptables-restore, as wg-quick chooses.

use std::net::IpAddr;
use std::process::{Command, Stdio};

use super::{programs, QuickError};

fn marker(ifname: &str) -> String {
    format!("-m comment --comment \"wg-quick(8) rule for {ifname}\"")
}

/// Adds the rules for one family; `addresses` are the interface's addresses of that family.
pub fn add(ifname: &str, ipv6: bool, table: u32, addresses: &[IpAddr]) -> Result<(), QuickError> {
    let pf = if ipv6 { "ip6" } else { "ip" };
    let nftable = format!("wg-quick-{ifname}");
    if programs::on_path("nft") {
        let mut nft = format!("add table {pf} {nftable}\n");
        nft += &format!(
            "add chain {pf} {nftable} preraw {{ type filter hook prerouting priority -300; }}\n"
        );
        nft += &format!(
            "add chain {pf} {nftable} premangle {{ type filter hook prerouting priority -150; }}\n"
        );
        nft += &format!("add chain {pf} {nftable} postmangle {{ type filter hook postrouting priority -150; }}\n");
        for addr in addresses {
            nft += &format!(
                "add rule {pf} {nftable} preraw iifname != \"{ifname}\" {pf} daddr {addr} fib saddr type != local drop\n"
            );
        }
        nft += &format!(
            "add rule {pf} {nftable} postmangle meta l4proto udp mark {table} ct mark set mark \n"
        );
        nft +=
            &format!("add rule {pf} {nftable} premangle meta l4proto udp meta mark set ct mark \n");
        return feed("nft", &["-f", "-"], &nft);
    }
    let iptables = if ipv6 {
        "ip6tables-restore"
    } else {
        "iptables-restore"
    };
    let marker = marker(ifname);
    let mut restore = String::from("*raw\n");
    for addr in addresses {
        restore += &format!(
            "-I PREROUTING ! -i {ifname} -d {addr} -m addrtype ! --src-type LOCAL -j DROP {marker}\n"
        );
    }
    restore += &format!(
        "COMMIT\n*mangle\n-I POSTROUTING -m mark --mark {table} -p udp -j CONNMARK --save-mark {marker}\n-I PREROUTING -p udp -j CONNMARK --restore-mark {marker}\nCOMMIT\n"
    );
    feed(iptables, &["-n"], &restore)
}

/// Removes whatever `add` added for the interface, in either family.
pub fn remove(ifname: &str) -> Result<(), QuickError> {
    if programs::on_path("nft") {
        let listed = Command::new("nft")
            .args(["list", "tables"])
            .stderr(Stdio::null())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let suffix = format!(" wg-quick-{ifname}");
        let nft: String = listed
            .lines()
            .filter(|l| l.ends_with(&suffix))
            .map(|l| format!("delete {l}\n"))
            .collect();
        if !nft.is_empty() {
            feed("nft", &["-f", "-"], &nft)?;
        }
    }
    let marker = marker(ifname);
    for (save, restore) in [
        ("iptables-save", "iptables-restore"),
        ("ip6tables-save", "ip6tables-restore"),
    ] {
        if !programs::on_path(save) {
            continue;
        }
        let Ok(out) = Command::new(save).stderr(Stdio::null()).output() else {
            continue;
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let mut script = String::new();
        let mut found = false;
        for line in text.lines() {
            match line.strip_prefix("-A ") {
                Some(rule) if line.contains(&marker) => {
                    found = true;
                    script += &format!("-D {rule}\n");
                }
                None if line.starts_with('*') || line == "COMMIT" => {
                    script += &format!("{line}\n");
                }
                _ => {}
            }
        }
        if found {
            feed(restore, &["-n"], &script)?;
        }
    }
    Ok(())
}

fn feed(program: &str, args: &[&str], input: &str) -> Result<(), QuickError> {
    programs::run(program, args, Some(input), program)
}
