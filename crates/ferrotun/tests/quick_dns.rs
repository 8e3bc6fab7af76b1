//! `DNS =` is applied through what the host has, or the tunnel does not come up: with
//! resolvconf as wg-quick does (quick_updown.rs compares that with the real wg-quick), else
//! through systemd-resolved's resolvectl, else a refusal that changes nothing. A tunnel
//! whose names still go to the old resolver would leak every lookup without a word.
//!
//! resolvectl here is a stand-in that logs its arguments: the real one talks to
//! systemd-resolved over D-Bus, which needs systemd as init, and would change the host's
//! resolver for every test at once.
//! Needs root and iproute2.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Output;

use common::scratch::TempDir;
use common::{ferrotun_bin, require_tool, text, unique_name, Netns};

const PRIVATE: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
const PEER: &str = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";

fn config() -> String {
    format!(
        "[Interface]\nPrivateKey = {PRIVATE}\nAddress = 10.69.0.1/24\n\
         DNS = 10.69.0.53, fd69::53, corp.example, lab.example\n\n\
         [Peer]\nPublicKey = {PEER}\nAllowedIPs = 10.69.0.0/24, fd69::/64\n"
    )
}

/// Links and addresses of the namespace, to see that a refusal changed nothing.
fn links_and_addresses(ns: &Netns) -> String {
    ns.exec_stdout("ip", &["-j", "addr"])
}

/// `ferrotun VERB PATH` in `ns` with only `path_env` as PATH.
fn run(ns: &Netns, path_env: &str, verb: &str, config: &str) -> Output {
    std::process::Command::new(require_tool("ip"))
        .args(["netns", "exec", &ns.name, ferrotun_bin(), verb, config])
        .env("PATH", path_env)
        .output()
        .expect("run ferrotun")
}

/// A directory holding a resolvectl that appends `resolvectl ARGS` to `<dir>/log` and
/// exits with `status` (answering `resolvectl dns IF` as the real one does).
fn resolvectl(dir: &TempDir, status: i32) -> String {
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).expect("create bin dir");
    let log = dir.path().join("log");
    let script = format!(
        "#!/bin/sh\necho \"resolvectl $*\" >> {log}\n\
         if [ \"$1\" = dns ] && [ $# -eq 2 ]; then echo \"Link 9 ($2): 10.69.0.53 fd69::53\"; fi\n\
         exit {status}\n",
        log = log.display()
    );
    let path = bin.join("resolvectl");
    std::fs::write(&path, script).expect("write resolvectl");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    bin.display().to_string()
}

fn log(dir: &TempDir, ifname: &str) -> String {
    std::fs::read_to_string(dir.path().join("log"))
        .unwrap_or_default()
        .replace(ifname, "IF")
}

#[test]
fn dns_without_resolvconf_or_resolvectl_is_refused_and_changes_nothing() {
    require_tool("ip");
    let ns = Netns::new("qdn");
    let dir = TempDir::new("ftdn");
    let ifname = unique_name("qd");
    let path = dir.write(&ifname, &config());
    let path = path.to_str().expect("utf-8");
    let before = links_and_addresses(&ns);
    // An empty PATH: neither program can be found, and nothing else is needed.
    let out = run(&ns, "", "up", path);
    let said = text(&out);
    assert!(!out.status.success(), "up succeeded: {said}");
    for words in ["DNS = 10.69.0.53, fd69::53", "resolvconf", "resolvectl"] {
        assert!(said.contains(words), "no {words:?} in: {said}");
    }
    assert_eq!(links_and_addresses(&ns), before, "up changed the namespace");
    assert!(
        !std::path::Path::new(&format!("/var/run/wireguard/{ifname}.sock")).exists(),
        "a daemon was left running"
    );
}

#[test]
fn without_resolvconf_dns_goes_to_resolved_and_down_reverts_it() {
    require_tool("ip");
    let ns = Netns::new("qdr");
    let dir = TempDir::new("ftdr");
    let ifname = unique_name("qd");
    let path = dir.write(&ifname, &config());
    let path = path.to_str().expect("utf-8");
    let bin = resolvectl(&dir, 0);
    let out = run(&ns, &bin, "up", path);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        log(&dir, &ifname),
        "resolvectl dns IF 10.69.0.53 fd69::53\n\
         resolvectl domain IF corp.example lab.example ~.\n"
    );
    // `save` reads the servers back from resolved.
    let out = run(&ns, &bin, "save", path);
    assert!(out.status.success(), "{}", text(&out));
    let saved = std::fs::read_to_string(path).expect("read saved config");
    assert!(
        saved.contains("DNS = 10.69.0.53\nDNS = fd69::53\n"),
        "{saved}"
    );
    std::fs::remove_file(dir.path().join("log")).expect("clear log");
    std::fs::write(path, config()).expect("restore config");

    let out = run(&ns, &bin, "down", path);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(log(&dir, &ifname), "resolvectl revert IF\n");
    assert!(
        !ns.exec_stdout("ip", &["link"]).contains(&ifname),
        "the link is still there"
    );
}

#[test]
fn a_failing_resolvectl_rolls_everything_back() {
    require_tool("ip");
    let ns = Netns::new("qdf");
    let dir = TempDir::new("ftdf");
    let ifname = unique_name("qd");
    let path = dir.write(&ifname, &config());
    let path = path.to_str().expect("utf-8");
    let bin = resolvectl(&dir, 1);
    let before = links_and_addresses(&ns);
    let out = run(&ns, &bin, "up", path);
    let said = text(&out);
    assert!(!out.status.success(), "up succeeded: {said}");
    assert!(said.contains("resolvectl dns"), "{said}");
    assert_eq!(links_and_addresses(&ns), before, "not rolled back: {said}");
    // What was handed to resolved is taken back too.
    assert!(
        log(&dir, &ifname).ends_with("resolvectl revert IF\n"),
        "{}",
        log(&dir, &ifname)
    );
}
