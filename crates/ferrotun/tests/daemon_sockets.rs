//! The daemon's UDP sockets as the kernel sees them (`ss`): listen-port 0 picks a free
//! port and `wg show` reports it; fwmark reaches every socket, also after a port change;
//! a port another daemon holds is refused. Needs root, `wg`, `ss` and `wireguard-go`.

mod common;

use common::tunnel::Impl;
use common::{unique_name, Daemon, Netns};

/// This daemon's UDP sockets: (local address:port, the rest of the `ss -e` line).
fn udp_sockets(ns: &Netns, pid: u32) -> Vec<(String, String)> {
    let out = ns.exec_stdout("ss", &["-H", "-u", "-a", "-n", "-e", "-p"]);
    let owner = format!("pid={pid},");
    out.lines()
        .filter(|l| l.contains(&owner))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(3).unwrap_or(&"").to_string(), l.to_string())
        })
        .collect()
}

fn port_of(local: &str) -> u16 {
    local
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {local:?}"))
}

fn show(ns: &Netns, d: &Daemon, what: &str) -> String {
    let out = ns.wg(&["show", &d.ifname, what]);
    assert!(out.status.success(), "wg show {what}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn set(ns: &Netns, d: &Daemon, args: &[&str]) {
    let mut full = vec!["set", d.ifname.as_str()];
    full.extend_from_slice(args);
    let out = ns.wg(&full);
    assert!(
        out.status.success(),
        "wg {full:?}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.log_text()
    );
}

/// Every socket of the daemon is bound to `port`, and there is at least one per family.
fn assert_bound_to(ns: &Netns, d: &Daemon, port: u16) {
    let socks = udp_sockets(ns, d.pid());
    assert!(
        socks.iter().all(|(l, _)| port_of(l) == port),
        "sockets not all on port {port}: {socks:#?}"
    );
    assert!(
        socks.iter().any(|(l, _)| l.starts_with("0.0.0.0:"))
            && socks.iter().any(|(l, _)| l.starts_with("[::]:")),
        "no IPv4 and IPv6 socket on port {port}: {socks:#?}"
    );
}

#[test]
fn listen_port_zero_picks_a_free_port_and_wg_show_reports_it() {
    let ns = Netns::new("sp");
    let d = Impl::Ferrotun.start(&ns, &unique_name("sp"));
    set(&ns, &d, &["listen-port", "51830"]);
    assert_eq!(show(&ns, &d, "listen-port"), "51830");
    assert_bound_to(&ns, &d, 51830);

    set(&ns, &d, &["listen-port", "0"]);
    let reported: u16 = show(&ns, &d, "listen-port")
        .parse()
        .expect("listen-port is a number");
    assert!(
        reported != 0 && reported != 51830,
        "listen-port {reported} after 0"
    );
    assert_bound_to(&ns, &d, reported);

    // Again: a fresh pick, the old port released.
    set(&ns, &d, &["listen-port", "0"]);
    let again: u16 = show(&ns, &d, "listen-port").parse().expect("number");
    assert_ne!(again, 0);
    assert_bound_to(&ns, &d, again);
}

#[test]
fn fwmark_is_reported_and_set_on_every_socket() {
    let ns = Netns::new("sm");
    let d = Impl::Ferrotun.start(&ns, &unique_name("sm"));
    set(&ns, &d, &["fwmark", "0x42"]);
    assert_eq!(show(&ns, &d, "fwmark"), "0x42");
    let marked = |want: bool| {
        let socks = udp_sockets(&ns, d.pid());
        assert!(!socks.is_empty(), "no sockets");
        for (_, line) in &socks {
            assert_eq!(
                line.contains("fwmark:0x42"),
                want,
                "fwmark 0x42 {} expected: {line}",
                if want { "" } else { "not" }
            );
        }
    };
    marked(true);
    // New sockets for a new port keep the mark.
    set(&ns, &d, &["listen-port", "51831"]);
    assert_bound_to(&ns, &d, 51831);
    marked(true);
    set(&ns, &d, &["listen-port", "0"]);
    marked(true);
    set(&ns, &d, &["fwmark", "off"]);
    assert_eq!(show(&ns, &d, "fwmark"), "off");
    marked(false);
}

/// Moving to a port some other process holds must fail and leave the old port in use,
/// as wireguard-go does.
fn port_taken_by(other: Impl) {
    let ns = Netns::new("st");
    let holder = other.start(&ns, &unique_name("sth"));
    set(&ns, &holder, &["listen-port", "51840"]);
    let d = Impl::Ferrotun.start(&ns, &unique_name("st"));
    set(&ns, &d, &["listen-port", "51841"]);
    let out = ns.wg(&["set", &d.ifname, "listen-port", "51840"]);
    assert!(
        !out.status.success(),
        "ferrotun took port 51840, which {other:?} already holds; sockets now:\n{}",
        ns.exec_stdout("ss", &["-H", "-u", "-a", "-n", "-p"])
    );
    assert_eq!(show(&ns, &d, "listen-port"), "51841");
    assert_bound_to(&ns, &d, 51841);
}

#[test]
fn a_port_wireguard_go_holds_is_refused() {
    port_taken_by(Impl::WireguardGo);
}

#[test]
fn a_port_another_ferrotun_holds_is_refused() {
    port_taken_by(Impl::Ferrotun);
}
