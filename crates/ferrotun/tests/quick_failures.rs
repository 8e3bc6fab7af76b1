//! `ferrotun up` refusing bad configuration files (with `file:line:`) and undoing a failure
//! half-way, leaving the namespace as it found it; `strip` and SaveConfig.
//! Needs root, iproute2 and bash.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::scratch::TempDir;
use common::{ferrotun_bin, require_tool, text, unique_name, Netns};

// Fixed, valid keys: these tests are about everything around them.
const PRIVATE: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
const PEER_A: &str = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
const PEER_B: &str = "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=";

/// Every address, route, rule and link in the namespace, as `ip` reports them.
fn state(ns: &Netns) -> String {
    let mut out = String::new();
    for args in [
        &["-j", "addr"][..],
        &["-4", "-j", "route", "show", "table", "all"],
        &["-6", "-j", "route", "show", "table", "all"],
        &["-4", "-j", "rule"],
        &["-6", "-j", "rule"],
    ] {
        out += &ns.exec_stdout("ip", args);
        out.push('\n');
    }
    out += &ns.exec_stdout("cat", &["/proc/sys/net/ipv4/conf/all/src_valid_mark"]);
    out += &String::from_utf8_lossy(&ns.try_exec("nft", &["list", "ruleset"]).stdout);
    out
}

fn wait_no_socket(ifname: &str) -> bool {
    let path = format!("/var/run/wireguard/{ifname}.sock");
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::path::Path::new(&path).exists() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    true
}

fn good_config() -> String {
    format!(
        "[Interface]\nPrivateKey = {PRIVATE}\nAddress = 10.61.0.1/24\n\n\
         [Peer]\nPublicKey = {PEER_A}\nAllowedIPs = 10.61.0.0/24, 10.62.0.0/16\n"
    )
}

#[test]
fn bad_configs_name_the_line_and_change_nothing() {
    require_tool("ip");
    let ns = Netns::new("qbad");
    let dir = TempDir::new("ftx");
    let before = state(&ns);
    let cases: [(&str, String, usize, &str); 6] = [
        (
            "unknown key",
            format!("[Interface]\nPrivateKey = {PRIVATE}\nAddress = 10.61.0.1/24\nColour = blue\n"),
            4,
            "Colour",
        ),
        (
            "bad key",
            "[Interface]\nPrivateKey = not-a-key\nAddress = 10.61.0.1/24\n".to_string(),
            2,
            "",
        ),
        (
            "bad CIDR",
            format!("[Interface]\nPrivateKey = {PRIVATE}\n\n[Peer]\nPublicKey = {PEER_A}\nAllowedIPs = 10.61.0.0/33\n"),
            6,
            "",
        ),
        (
            "bad endpoint",
            format!("[Interface]\nPrivateKey = {PRIVATE}\n\n[Peer]\nPublicKey = {PEER_A}\nEndpoint = 10.61.0.9:99999\n"),
            6,
            "",
        ),
        (
            "duplicate peer",
            format!("[Interface]\nPrivateKey = {PRIVATE}\n\n[Peer]\nPublicKey = {PEER_A}\n\n[Peer]\nPublicKey = {PEER_A}\n"),
            8,
            "",
        ),
        (
            "missing section",
            format!("PrivateKey = {PRIVATE}\n[Peer]\nPublicKey = {PEER_B}\n"),
            1,
            "",
        ),
    ];
    for (what, config, line, mention) in cases {
        let ifname = unique_name("qb");
        let path = dir.write(&ifname, &config);
        let out = ns.try_exec(ferrotun_bin(), &["up", path.to_str().expect("utf-8")]);
        let said = text(&out);
        assert!(!out.status.success(), "{what}: up succeeded: {said}");
        let expected = format!("{}:{line}: ", path.display());
        assert!(
            said.contains(&expected),
            "{what}: expected an error at {expected}, got: {said}"
        );
        assert!(
            said.contains(mention),
            "{what}: error does not mention {mention}: {said}"
        );
        assert!(!said.contains("[#]"), "{what}: something was done: {said}");
        assert_eq!(state(&ns), before, "{what}: the namespace changed");
    }
}

/// Fails at `failing_at`; everything done before it must be undone.
fn assert_rolled_back(config: String, what: &str) {
    require_tool("ip");
    require_tool("bash");
    let ns = Netns::new("qrb");
    let dir = TempDir::new("ftx");
    let before = state(&ns);
    let ifname = unique_name("qr");
    let path = dir.write(&ifname, &config);
    let out = ns.try_exec(ferrotun_bin(), &["up", path.to_str().expect("utf-8")]);
    let said = text(&out);
    assert!(!out.status.success(), "{what}: up succeeded: {said}");
    assert!(
        said.contains("ferrotun: "),
        "{what}: no clear error: {said}"
    );
    assert!(wait_no_socket(&ifname), "{what}: the daemon is still there");
    assert_eq!(
        state(&ns),
        before,
        "{what}: not rolled back; ferrotun said: {said}"
    );
}

#[test]
fn failing_post_up_hook_rolls_everything_back() {
    assert_rolled_back(
        format!(
            "[Interface]\nPrivateKey = {PRIVATE}\nAddress = 10.63.0.2/32, fd63::2/128\n\
             PostUp = echo about to fail on %i; exit 1\n\n\
             [Peer]\nPublicKey = {PEER_A}\nAllowedIPs = 0.0.0.0/0, ::/0, 10.64.0.0/16\n"
        ),
        "PostUp exit 1 after a default route",
    );
}

#[test]
fn conflicting_address_rolls_everything_back() {
    assert_rolled_back(
        format!(
            "[Interface]\nPrivateKey = {PRIVATE}\nAddress = 10.65.0.1/24, 10.65.0.1/24\n\n\
             [Peer]\nPublicKey = {PEER_A}\nAllowedIPs = 10.65.0.0/24\n"
        ),
        "the same Address twice",
    );
}

#[test]
fn up_refuses_an_existing_interface() {
    require_tool("ip");
    let ns = Netns::new("qex");
    let dir = TempDir::new("ftx");
    let ifname = unique_name("qe");
    ns.ip(&[
        "link",
        "add",
        &ifname,
        "type",
        "veth",
        "peer",
        "name",
        &unique_name("qp"),
    ]);
    let before = state(&ns);
    let path = dir.write(&ifname, &good_config());
    let out = ns.try_exec(ferrotun_bin(), &["up", path.to_str().expect("utf-8")]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains(&format!("`{ifname}' already exists")),
        "{}",
        text(&out)
    );
    assert_eq!(state(&ns), before);
}

#[test]
fn strip_prints_what_wg_quick_strip_prints() {
    require_tool("wg-quick");
    let dir = TempDir::new("ftx");
    let ifname = unique_name("qs");
    let config = format!(
        "[Interface]\n# keys\nPrivateKey = {PRIVATE}\nAddress = 10.61.0.1/24\nDNS = 1.1.1.1, lan\n\
         PostUp = echo up # comment\nSaveConfig = false\nMTU = 1400\n\n\
         [Peer]\n  PublicKey = {PEER_A}  \nAllowedIPs = 10.61.0.0/24\n"
    );
    let path = dir.write(&ifname, &config);
    let ours = std::process::Command::new(ferrotun_bin())
        .args(["strip", path.to_str().expect("utf-8")])
        .output()
        .expect("run ferrotun strip");
    let theirs = std::process::Command::new("wg-quick")
        .args(["strip", path.to_str().expect("utf-8")])
        .output()
        .expect("run wg-quick strip");
    assert!(ours.status.success(), "{}", text(&ours));
    assert!(theirs.status.success(), "{}", text(&theirs));
    assert_eq!(
        String::from_utf8_lossy(&ours.stdout),
        String::from_utf8_lossy(&theirs.stdout)
    );
}

#[test]
fn save_config_writes_the_running_state_back_on_down() {
    require_tool("ip");
    let ns = Netns::new("qsv");
    let dir = TempDir::new("ftx");
    let ifname = unique_name("qv");
    let config = format!(
        "[Interface]\nPrivateKey = {PRIVATE}\nAddress = 10.66.0.1/24\nListenPort = 41999\n\
         MTU = 1380\nSaveConfig = true\nPostUp = true %i\n\n\
         [Peer]\nPublicKey = {PEER_A}\nAllowedIPs = 10.66.0.0/24\n"
    );
    let path = dir.write(&ifname, &config);
    let arg = path.to_str().expect("utf-8");
    let out = ns.try_exec(ferrotun_bin(), &["up", arg]);
    assert!(out.status.success(), "{}", text(&out));
    // Change the running state the way a user would between up and down.
    ns.ip(&["addr", "add", "fd66::1/64", "dev", &ifname]);
    let out = ns.try_exec(
        ferrotun_bin(),
        &[
            "set",
            &ifname,
            "peer",
            PEER_B,
            "allowed-ips",
            "10.67.0.0/16",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    // wg-quick's own `save` on the same interface is the reference (it reads our daemon
    // through the real `wg showconf`).
    let out = ns
        .command("wg-quick")
        .args(["save", arg])
        .output()
        .expect("run wg-quick");
    assert!(out.status.success(), "{}", text(&out));
    let reference = std::fs::read_to_string(&path).expect("read saved config");
    assert!(
        reference.contains(PEER_B) && reference.contains("fd66::1/64"),
        "{reference}"
    );
    std::fs::write(&path, &config).expect("restore config");

    let out = ns.try_exec(ferrotun_bin(), &["save", arg]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        reference,
        "save differs"
    );
    std::fs::write(&path, &config).expect("restore config");

    // SaveConfig = true: down saves the same.
    let out = ns.try_exec(ferrotun_bin(), &["down", arg]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        reference,
        "down saved otherwise"
    );
    let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // And what was saved comes up again.
    let out = ns.try_exec(ferrotun_bin(), &["up", arg]);
    assert!(out.status.success(), "{}", text(&out));
    let routes = ns.exec_stdout("ip", &["-4", "route", "show", "dev", &ifname]);
    assert!(routes.contains("10.67.0.0/16"), "{routes}");
    let out = ns.try_exec(ferrotun_bin(), &["down", arg]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn down_refuses_what_is_not_a_wireguard_interface() {
    let dir = TempDir::new("ftx");
    let ifname = unique_name("qn");
    let path = dir.write(&ifname, &good_config());
    let out = std::process::Command::new(ferrotun_bin())
        .args(["down", path.to_str().expect("utf-8")])
        .output()
        .expect("run ferrotun down");
    assert!(!out.status.success());
    assert!(
        text(&out).contains(&format!("`{ifname}' is not a WireGuard interface")),
        "{}",
        text(&out)
    );
}

#[test]
fn world_readable_config_is_warned_about() {
    let dir = TempDir::new("ftx");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let ifname = unique_name("qw");
    let path = dir.write(&ifname, &good_config());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = std::process::Command::new(ferrotun_bin())
        .args(["strip", path.to_str().expect("utf-8")])
        .output()
        .expect("run ferrotun strip");
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "Warning: `{}' is world accessible",
            path.display()
        )),
        "{}",
        text(&out)
    );
}

#[test]
fn called_as_wg_quick_it_is_wg_quick() {
    let dir = TempDir::new("ftx");
    let link = dir.path().join("wg-quick");
    std::os::unix::fs::symlink(ferrotun_bin(), &link).expect("symlink");
    let ifname = unique_name("qa");
    let path = dir.write(&ifname, &good_config());
    let out = std::process::Command::new(&link)
        .args(["strip", path.to_str().expect("utf-8")])
        .output()
        .expect("run as wg-quick");
    assert!(out.status.success(), "{}", text(&out));
    let stripped = String::from_utf8_lossy(&out.stdout);
    assert!(
        stripped.contains(PEER_A) && !stripped.contains("Address"),
        "{stripped}"
    );
    let out = std::process::Command::new(&link)
        .output()
        .expect("run as wg-quick");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .starts_with("Usage: wg-quick [ up | down | save | strip ]"),
        "{}",
        text(&out)
    );
}

/// Removes `up`'s note of where an interface came from, should a test end before `down`.
struct ForgetOrigin(String);

impl Drop for ForgetOrigin {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(std::path::Path::new("/run/ferrotun/quick").join(&self.0));
    }
}

#[test]
fn down_by_name_says_how_an_interface_from_elsewhere_was_brought_up() {
    require_tool("ip");
    let ns = Netns::new("qorg");
    let dir = TempDir::new("ftx");
    let ifname = unique_name("qo");
    let _forget = ForgetOrigin(ifname.clone());
    let path = dir.write(&ifname, &good_config());
    let path = path.canonicalize().expect("canonical path");
    let path = path.to_str().expect("utf-8");
    let missing = format!("ferrotun: `/etc/wireguard/{ifname}.conf' does not exist\n");
    let stderr = |out: &std::process::Output| String::from_utf8_lossy(&out.stderr).into_owned();

    // Nothing running: wg-quick's words, nothing more.
    let out = ns.try_exec(ferrotun_bin(), &["down", &ifname]);
    assert!(!out.status.success(), "{}", text(&out));
    assert_eq!(stderr(&out), missing);

    let out = ns.try_exec(ferrotun_bin(), &["up", path]);
    assert!(out.status.success(), "{}", text(&out));
    for (verb, doing) in [("down", "take it down"), ("save", "save it")] {
        let out = ns.try_exec(ferrotun_bin(), &[verb, &ifname]);
        assert!(!out.status.success(), "{verb}: {}", text(&out));
        assert_eq!(
            stderr(&out),
            format!(
                "{missing}{ifname} was brought up from `{path}': {doing} with \
                 `ferrotun {verb} {path}'\n"
            ),
            "{verb}"
        );
    }
    // Only words: the interface is still up, and the command named takes it down.
    ns.ip(&["link", "show", "dev", &ifname]);
    let out = ns.try_exec(ferrotun_bin(), &["down", path]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        wait_no_socket(&ifname),
        "the daemon for {ifname} is still there"
    );
    let out = ns.try_exec(ferrotun_bin(), &["down", &ifname]);
    assert_eq!(
        stderr(&out),
        missing,
        "a hint for an interface that is gone"
    );

    // Running without a note (started by the daemon command, or by the real wg-quick):
    // still says it runs, and how a file elsewhere is taken down.
    let out = ns.try_exec(ferrotun_bin(), &["daemon", &ifname]);
    assert!(out.status.success(), "{}", text(&out));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::path::Path::new(&format!("/var/run/wireguard/{ifname}.sock")).exists() {
        assert!(Instant::now() < deadline, "no socket for {ifname}");
        std::thread::sleep(Duration::from_millis(25));
    }
    let out = ns.try_exec(ferrotun_bin(), &["down", &ifname]);
    assert_eq!(
        stderr(&out),
        format!(
            "{missing}{ifname} is running, brought up from a file elsewhere: take it down \
             with `ferrotun down /path/to/{ifname}.conf'\n"
        )
    );
    ns.ip(&["link", "delete", "dev", &ifname]);
    assert!(
        wait_no_socket(&ifname),
        "the daemon for {ifname} is still there"
    );
}
