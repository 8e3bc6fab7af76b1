//! A configuration with `SaveConfig = true` survives being brought up and down again and
//! again byte for byte: the TUN gets no IPv6 link-local address of the kernel's making
//! (which `save` would write back as one more `Address = fe80::…/64` each time), and a
//! quiet interface sends nothing into the tunnel that no peer takes (the router
//! solicitations from such an address were counted as drops).
//! Needs root and iproute2.

mod common;

use std::time::Duration;

use common::scratch::TempDir;
use common::{ferrotun_bin, require_tool, text, unique_name, Netns};
use ferrotun_uapi::stats::fetch;
use ferrotun_uapi::Client;

const PRIVATE: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
const PEER: &str = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
const CYCLES: usize = 10;

fn up_down(ns: &Netns, path: &str, quiet_check: bool) {
    let out = ns.try_exec(ferrotun_bin(), &["up", path]);
    assert!(out.status.success(), "up: {}", text(&out));
    let ifname = std::path::Path::new(path)
        .file_stem()
        .and_then(|s| s.to_str())
        .expect("named file");
    if quiet_check {
        // Router solicitations leave about a second after the link comes up (once the
        // link-local address has passed duplicate detection); wait past that.
        std::thread::sleep(Duration::from_secs(3));
        let stats = ns
            .run(|| fetch(&Client::new(), ifname))
            .unwrap_or_else(|e| panic!("stats: {e}"));
        assert_eq!(
            stats.dropped(),
            0,
            "a quiet interface dropped packets: {:?}",
            stats.counters
        );
    }
    let addrs = ns.exec_stdout("ip", &["-6", "addr", "show", "dev", ifname]);
    assert!(
        !addrs.contains("fe80:"),
        "the kernel gave the TUN a link-local address:\n{addrs}"
    );
    let out = ns.try_exec(ferrotun_bin(), &["down", path]);
    assert!(out.status.success(), "down: {}", text(&out));
}

#[test]
fn ten_up_save_down_cycles_leave_the_file_unchanged() {
    require_tool("ip");
    let ns = Netns::new("qcy");
    let dir = TempDir::new("ftcy");
    let ifname = unique_name("qc");
    let config = format!(
        "[Interface]\nPrivateKey = {PRIVATE}\nAddress = 10.68.0.1/24, fd68::1/64\n\
         ListenPort = 41968\nSaveConfig = true\n\n\
         [Peer]\nPublicKey = {PEER}\nAllowedIPs = 10.68.0.0/24, fd68::/64\n"
    );
    let path = dir.write(&ifname, &config);
    let path = path.to_str().expect("utf-8");

    up_down(&ns, path, true);
    let first = std::fs::read_to_string(path).expect("read saved config");
    assert!(
        first.contains("10.68.0.1/24") && first.contains("fd68::1/64") && first.contains(PEER),
        "the first save lost something:\n{first}"
    );
    assert!(!first.contains("fe80:"), "{first}");
    for cycle in 2..=CYCLES {
        up_down(&ns, path, false);
        let now = std::fs::read_to_string(path).expect("read saved config");
        assert_eq!(now, first, "cycle {cycle} changed the file");
    }
}
