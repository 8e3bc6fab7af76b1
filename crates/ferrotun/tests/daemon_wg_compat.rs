//! The same `wg set` / `setconf` / `addconf` / `syncconf` commands, sent by the real `wg`
//! to ferrotun and to wireguard-go, must leave both reporting the same `wg show dump`;
//! a bad `wg set` must fail and change nothing. Needs root, `wg` and `wireguard-go`.

mod common;

use common::scratch::TempFile;
use common::tunnel::{Impl, Keypair, WG_TIMEOUT};
use common::{ferrotun_bin, text, unique_name, Daemon, Netns};
use std::process::Output;

/// One daemon of each kind, each in its own namespace so both can use the same port.
/// Fields drop in order: daemons before namespaces.
struct Pair {
    ft: Daemon,
    go: Daemon,
    ft_ns: Netns,
    go_ns: Netns,
}

/// The parts of a dump line that two daemons given the same commands must agree on:
/// handshake times and byte counters depend on what each happened to send.
fn normalise(dump: &str) -> Vec<String> {
    let mut lines: Vec<String> = dump
        .lines()
        .map(|line| {
            let mut f: Vec<&str> = line.split('\t').collect();
            if f.len() == 8 {
                f[4] = "*";
                f[5] = "*";
                f[6] = "*";
            }
            f.join("\t")
        })
        .collect();
    // `wg` orders peers by latest handshake; with none, the order is arbitrary.
    if lines.len() > 1 {
        lines[1..].sort();
    }
    lines
}

impl Pair {
    fn new() -> Pair {
        let ft_ns = Netns::new("cft");
        let go_ns = Netns::new("cgo");
        let ft = Impl::Ferrotun.start(&ft_ns, &unique_name("cft"));
        let go = Impl::WireguardGo.start(&go_ns, &unique_name("cgo"));
        Pair {
            ft,
            go,
            ft_ns,
            go_ns,
        }
    }

    /// Runs `wg ARGS` against both, with "IF" standing for each one's interface.
    fn both(&self, args: &[&str]) -> (Output, Output) {
        let on = |d: &Daemon| -> Vec<String> {
            args.iter()
                .map(|a| {
                    if *a == "IF" {
                        d.ifname.clone()
                    } else {
                        a.to_string()
                    }
                })
                .collect()
        };
        (self.ft_ns.wg(&on(&self.ft)), self.go_ns.wg(&on(&self.go)))
    }

    fn dumps(&self) -> (Vec<String>, Vec<String>) {
        let (ft, go) = self.both(&["show", "IF", "dump"]);
        assert!(ft.status.success(), "ferrotun: wg show dump: {}", text(&ft));
        assert!(
            go.status.success(),
            "wireguard-go: wg show dump: {}",
            text(&go)
        );
        (
            normalise(&String::from_utf8_lossy(&ft.stdout)),
            normalise(&String::from_utf8_lossy(&go.stdout)),
        )
    }

    /// Applies a command that must succeed on both, then compares the dumps.
    fn step(&self, args: &[&str]) {
        let (ft, go) = self.both(args);
        assert!(
            go.status.success(),
            "wireguard-go: wg {args:?}: {}",
            text(&go)
        );
        assert!(
            ft.status.success(),
            "ferrotun: wg {args:?}: {}\n{}",
            text(&ft),
            self.ft.log_text()
        );
        let (ft_dump, go_dump) = self.dumps();
        assert_eq!(
            ft_dump, go_dump,
            "after wg {args:?}: ferrotun's dump (left) differs from wireguard-go's (right)"
        );
    }
}

fn key_file(k: &Keypair) -> &str {
    k.path()
}

#[test]
fn wg_commands_leave_ferrotun_and_wireguard_go_reporting_the_same() {
    let p = Pair::new();
    let me = Keypair::generate();
    let other = Keypair::generate();
    let (p1, p2, p3, p4) = (
        Keypair::generate(),
        Keypair::generate(),
        Keypair::generate(),
        Keypair::generate(),
    );
    let psk = {
        let out = std::process::Command::new("wg")
            .arg("genpsk")
            .output()
            .expect("wg genpsk");
        TempFile::new(&String::from_utf8_lossy(&out.stdout))
    };
    let empty = TempFile::new("");

    // A fresh interface.
    let (ft, go) = p.dumps();
    assert_eq!(ft[1..], go[1..], "fresh interfaces differ");
    p.step(&[
        "set",
        "IF",
        "listen-port",
        "51820",
        "private-key",
        key_file(&me),
    ]);
    p.step(&[
        "set",
        "IF",
        "peer",
        &p1.public,
        "allowed-ips",
        "10.1.0.0/24,fd01::/64,10.9.0.0/16",
        "endpoint",
        "192.168.77.1:51820",
        "persistent-keepalive",
        "25",
    ]);
    p.step(&[
        "set",
        "IF",
        "peer",
        &p2.public,
        "preshared-key",
        psk.path(),
        "allowed-ips",
        "10.2.0.1/32",
        "endpoint",
        "[fd77::1]:1234",
    ]);
    // Replacing a peer's list, then taking a prefix from one peer for another.
    p.step(&[
        "set",
        "IF",
        "peer",
        &p1.public,
        "allowed-ips",
        "10.1.0.0/16,fd01::/64",
    ]);
    p.step(&[
        "set",
        "IF",
        "peer",
        &p3.public,
        "allowed-ips",
        "10.1.0.0/16,0.0.0.0/0",
    ]);
    p.step(&[
        "set",
        "IF",
        "peer",
        &p2.public,
        "persistent-keepalive",
        "off",
        "preshared-key",
        empty.path(),
        "endpoint",
        "192.168.77.2:9",
    ]);
    p.step(&["set", "IF", "peer", &p1.public, "allowed-ips", ""]);
    p.step(&["set", "IF", "fwmark", "0x42"]);
    p.step(&["set", "IF", "peer", &p2.public, "remove"]);
    // Removing a peer that is not there is not an error.
    p.step(&["set", "IF", "peer", &p4.public, "remove"]);
    p.step(&["set", "IF", "fwmark", "off"]);

    let setconf = TempFile::new(&format!(
        "[Interface]\nPrivateKey = {}\nListenPort = 51821\nFwMark = 7\n\n\
         [Peer]\nPublicKey = {}\nAllowedIPs = 10.4.0.0/24, fd04::/64\nEndpoint = 192.168.77.4:4444\n\n\
         [Peer]\nPublicKey = {}\nPresharedKey = {}\nAllowedIPs = 10.5.0.0/24\nPersistentKeepalive = 10\n",
        other.private,
        p4.public,
        p1.public,
        std::fs::read_to_string(psk.path()).expect("psk").trim(),
    ));
    p.step(&["setconf", "IF", setconf.path()]);
    let addconf = TempFile::new(&format!(
        "[Peer]\nPublicKey = {}\nAllowedIPs = 10.6.0.0/24\n\n\
         [Peer]\nPublicKey = {}\nAllowedIPs = 10.7.0.0/24\n",
        p2.public, p4.public
    ));
    p.step(&["addconf", "IF", addconf.path()]);
    let syncconf = TempFile::new(&format!(
        "[Interface]\nPrivateKey = {}\nListenPort = 51821\n\n\
         [Peer]\nPublicKey = {}\nAllowedIPs = 10.5.0.0/24, 10.8.0.0/24\nEndpoint = 192.168.77.5:5555\n\n\
         [Peer]\nPublicKey = {}\nAllowedIPs = 10.3.0.0/24\n",
        other.private, p1.public, p3.public
    ));
    p.step(&["syncconf", "IF", syncconf.path()]);
    let (after_sync, _) = p.dumps();
    assert_eq!(
        after_sync.len(),
        3,
        "syncconf should leave two peers: {after_sync:#?}"
    );
    // An empty key file clears the private key.
    p.step(&["set", "IF", "private-key", empty.path()]);
}

/// The configuration as `wg showconf` prints it, and bad `wg set`s that must change none
/// of it. Both the real `wg` and ferrotun's own must refuse, with the same words.
#[test]
fn a_bad_wg_set_fails_and_changes_nothing() {
    let ns = Netns::new("cbad");
    let d = Impl::Ferrotun.start(&ns, &unique_name("cbad"));
    let me = Keypair::generate();
    let peer = Keypair::generate();
    let other = Keypair::generate();
    let showconf = || {
        let out = ns.wg(&["showconf".into(), d.ifname.clone()]);
        assert!(out.status.success(), "wg showconf: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let args: Vec<String> = [
        "set",
        &d.ifname,
        "listen-port",
        "51820",
        "private-key",
        me.path(),
        "peer",
        &peer.public,
        "allowed-ips",
        "10.1.0.0/24",
        "endpoint",
        "192.168.77.1:51820",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = ns.wg(&args);
    assert!(out.status.success(), "wg set: {}", text(&out));
    let before = showconf();
    assert!(before.contains(&peer.public), "{before}");

    let bad_key = "x".repeat(44);
    // Each bad command, and whether ferrotun must use wg's own words (wg passes some
    // errors straight from getaddrinfo, whose wording is libc's, not wg's).
    let bad: Vec<(Vec<&str>, bool)> = vec![
        (vec!["peer", &bad_key, "allowed-ips", "10.2.0.0/24"], true),
        (vec!["peer", "notakey"], true),
        (
            vec!["peer", &other.public, "allowed-ips", "10.2.0.0/33"],
            true,
        ),
        (
            vec!["peer", &other.public, "allowed-ips", "10.2.0.300/24"],
            true,
        ),
        (
            vec!["peer", &peer.public, "allowed-ips", "10.1.0.0/24,nonsense"],
            true,
        ),
        (vec!["peer", &peer.public, "frobnicate", "1"], true),
        (vec!["peer", &peer.public, "endpoint", "192.168.77.1"], true),
        (
            vec!["peer", &peer.public, "endpoint", "[fd77::1:51820"],
            true,
        ),
        (
            vec!["peer", &peer.public, "persistent-keepalive", "70000"],
            true,
        ),
        (vec!["listen-port", "port"], false),
        (vec!["fwmark", "0xnope"], true),
    ];
    for (args, same_words) in bad {
        let mut real = vec!["set".to_string(), d.ifname.clone()];
        real.extend(args.iter().map(|s| s.to_string()));
        let wg_out = ns.wg(&real);
        let ours = ns
            .command("timeout")
            .arg(WG_TIMEOUT)
            .arg(ferrotun_bin())
            .args(&real)
            .output()
            .expect("run ferrotun set");
        assert!(!wg_out.status.success(), "wg {real:?} succeeded");
        assert!(!ours.status.success(), "ferrotun {real:?} succeeded");
        assert_eq!(
            showconf(),
            before,
            "wg/ferrotun {real:?} changed the configuration"
        );
        let theirs = String::from_utf8_lossy(&wg_out.stderr);
        let mine = String::from_utf8_lossy(&ours.stderr);
        assert!(!theirs.trim().is_empty(), "wg {real:?} said nothing");
        // wg's first line names what was wrong; ferrotun must say the same.
        let first = theirs.lines().next().unwrap_or_default();
        assert!(!mine.trim().is_empty(), "ferrotun {real:?} said nothing");
        assert!(
            !same_words || mine.contains(first),
            "for {real:?} wg says {theirs:?} but ferrotun says {mine:?}"
        );
    }
}
