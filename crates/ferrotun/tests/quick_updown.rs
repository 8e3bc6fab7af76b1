//! `ferrotun up/down` against the real wg-quick (driving wireguard-go, as it does when the
//! kernel module is missing): the same configuration brought up by each in its own fresh
//! namespace must leave the same addresses, routes, rules, MTU and firewall tables behind.
//! Needs root, wg-quick, wg, wireguard-go and iproute2 (CI installs them).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use common::scratch::TempDir;
use common::{ferrotun_bin, text, unique_name, Netns};
use serde_json::Value;

/// A stand-in resolvconf(8) that logs its arguments and input to `<dir>/resolvconf.log`,
/// so DNS handling is checked without touching the host's resolv.conf. Returns the PATH
/// to run with.
fn fake_resolvconf(dir: &TempDir) -> String {
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).expect("create bin dir");
    let log = dir.path().join("resolvconf.log");
    let script = format!(
        "#!/bin/sh\necho \"resolvconf $*\" >> {log}\n[ \"$1\" = -a ] && cat >> {log}\nexit 0\n",
        log = log.display()
    );
    let path = bin.join("resolvconf");
    std::fs::write(&path, script).expect("write fake resolvconf");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// What the fake resolvconf was given (and forgets it).
fn take_resolvconf_log(dir: &TempDir) -> String {
    let log = dir.path().join("resolvconf.log");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    text
}

fn key_pair() -> (String, String) {
    let run = |args: &[&str], input: Option<&str>| -> String {
        use std::io::Write;
        let mut child = std::process::Command::new(ferrotun_bin())
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("run ferrotun");
        let mut stdin = child.stdin.take().expect("stdin");
        if let Some(text) = input {
            stdin.write_all(text.as_bytes()).expect("write key");
        }
        drop(stdin);
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let private = run(&["genkey"], None);
    let public = run(&["pubkey"], Some(&private));
    (private, public)
}

/// A fresh namespace with a veth pair of MTU 1400 and an address on 10.9.0.0/24 and
/// fd09::/64, so endpoints there (and a default route through it) give wg-quick's automatic
/// MTU something to find: 1400 - 80.
fn lab(prefix: &str, default_route: bool) -> Netns {
    let ns = Netns::new(prefix);
    ns.ip(&[
        "link", "add", "vx0", "mtu", "1400", "type", "veth", "peer", "name", "vx1",
    ]);
    ns.ip(&["addr", "add", "10.9.0.1/24", "dev", "vx0"]);
    ns.ip(&["addr", "add", "fd09::1/64", "dev", "vx0", "nodad"]);
    ns.ip(&["link", "set", "vx0", "up"]);
    ns.ip(&["link", "set", "vx1", "up"]);
    if default_route {
        ns.ip(&["route", "add", "default", "via", "10.9.0.2", "dev", "vx0"]);
    }
    ns
}

fn json(ns: &Netns, args: &[&str]) -> Value {
    let out = ns.exec("ip", args);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("ip {args:?}: {e}"))
}

/// Replaces the interface's name and the random part of link-local addresses, and drops
/// lifetimes, so two namespaces' states compare equal when they are equivalent.
fn normalise(value: &mut Value, ifname: &str) {
    match value {
        Value::String(s) => {
            if s == ifname {
                *s = "IF".into();
            } else if s.starts_with("fe80::") && !s.contains('/') {
                *s = "fe80::LL".into();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| normalise(v, ifname)),
        Value::Object(map) => {
            // Lifetimes and duplicate-address detection are moments in time, not state.
            for key in [
                "valid_life_time",
                "preferred_life_time",
                "ifindex",
                "expires",
                "tentative",
            ] {
                map.remove(key);
            }
            map.values_mut().for_each(|v| normalise(v, ifname));
        }
        _ => {}
    }
}

fn sorted(mut items: Vec<Value>) -> Vec<Value> {
    items.sort_by_key(|v| v.to_string());
    items
}

/// Whether `item` (an address or a route) is the kernel's IPv6 link-local one: wireguard-go's
/// TUN gets one, ours does not (as the kernel's wg interfaces do not: see quick_save_cycles),
/// and neither is wg-quick's doing.
fn kernel_link_local(item: &Value) -> bool {
    let kernel_route = item.get("protocol").and_then(Value::as_str) == Some("kernel")
        && item
            .get("dst")
            .and_then(Value::as_str)
            .is_some_and(|d| d.starts_with("fe80:"));
    let address = item.get("scope").and_then(Value::as_str) == Some("link")
        && item
            .get("local")
            .and_then(Value::as_str)
            .is_some_and(|a| a.starts_with("fe80:"));
    kernel_route || address
}

fn without_kernel_link_local(value: Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .filter(|v| !kernel_link_local(v))
                .collect(),
        ),
        other => other,
    }
}

/// What wg-quick changes, as `ip -j` reports it: the interface's link fields and addresses,
/// every route on it in every table, the policy rules, src_valid_mark, the nftables tables.
fn snapshot(ns: &Netns, ifname: &str) -> Value {
    let mut state = serde_json::Map::new();
    if !ifname.is_empty() {
        let addr = json(ns, &["-j", "addr", "show", "dev", ifname]);
        let link = addr.get(0).cloned().unwrap_or(Value::Null);
        for key in [
            "ifname",
            "flags",
            "mtu",
            "operstate",
            "link_type",
            "addr_info",
        ] {
            state.insert(
                format!("link.{key}"),
                without_kernel_link_local(link.get(key).cloned().unwrap_or(Value::Null)),
            );
        }
    }
    for family in ["-4", "-6"] {
        let routes = json(ns, &[family, "-j", "route", "show", "table", "all"]);
        let mine: Vec<Value> = routes
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|r| ifname.is_empty() || r.get("dev").and_then(Value::as_str) == Some(ifname))
            .filter(|r| !kernel_link_local(r))
            .collect();
        state.insert(format!("routes{family}"), Value::Array(sorted(mine)));
        state.insert(
            format!("rules{family}"),
            json(ns, &[family, "-j", "rule", "show"]),
        );
    }
    let mark = ns.exec_stdout("cat", &["/proc/sys/net/ipv4/conf/all/src_valid_mark"]);
    state.insert("src_valid_mark".into(), Value::String(mark.trim().into()));
    let nft = ns.try_exec("nft", &["list", "ruleset"]);
    let ruleset: Vec<String> = String::from_utf8_lossy(&nft.stdout)
        .replace(ifname, "IF")
        .split(' ')
        .map(|w| {
            if w.starts_with("fe80::") {
                "fe80::LL".to_string()
            } else {
                w.to_string()
            }
        })
        .collect();
    // wg-quick guards every address of the interface, the kernel's link-local one too.
    let ruleset: Vec<String> = ruleset
        .join(" ")
        .lines()
        .filter(|l| !l.contains("daddr fe80::LL "))
        .map(str::to_string)
        .collect();
    let ruleset = ruleset.join("\n");
    state.insert("nft".into(), Value::String(ruleset));
    let mut value = Value::Object(state);
    normalise(&mut value, ifname);
    value
}

/// The whole namespace, for before/after comparisons: all links' addresses, all routes.
fn whole_state(ns: &Netns) -> Value {
    let mut value = snapshot(ns, "");
    if let Value::Object(map) = &mut value {
        map.insert("addr".into(), json(ns, &["-j", "addr"]));
        normalise(map.get_mut("addr").expect("just inserted"), "");
    }
    value
}

fn ferrotun(ns: &Netns, path_env: &str, args: &[&str]) -> Output {
    ns.command(ferrotun_bin())
        .args(args)
        .env("PATH", path_env)
        .output()
        .expect("run ferrotun")
}

fn wg_quick(ns: &Netns, path_env: &str, args: &[&str]) -> Output {
    ns.command("wg-quick")
        .args(args)
        .env("PATH", path_env)
        .env("WG_QUICK_USERSPACE_IMPLEMENTATION", "wireguard-go")
        .output()
        .expect("run wg-quick")
}

/// Waits (bounded) until no process is left in the namespace: the daemon has exited.
fn no_processes_within(ns: &Netns, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let out = std::process::Command::new("ip")
            .args(["netns", "pids", &ns.name])
            .output()
            .expect("ip netns pids");
        // A zombie still listed waits only for its reaper: it runs nothing.
        let live = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .map(|s| !s.contains(") Z "))
                    .unwrap_or(false)
            })
            .count();
        if live == 0 {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Brings the same configuration up with wg-quick and with ferrotun, each in a fresh
/// namespace, compares what results, then takes ferrotun's down again and checks the
/// namespace is as it was and the daemon gone.
fn compare(make_config: impl Fn() -> String, default_route: bool) {
    common::require_tools(&["wg-quick", "wg", "wireguard-go", "ip", "bash"]);
    let config = make_config();
    let dir = TempDir::new("ftq");
    let path_env = fake_resolvconf(&dir);

    let ns_ref = lab("qcw", default_route);
    let if_ref = unique_name("qw");
    let path_ref = dir.write(&if_ref, &config);
    let out = wg_quick(
        &ns_ref,
        &path_env,
        &["up", path_ref.to_str().expect("utf-8")],
    );
    assert!(out.status.success(), "wg-quick up failed: {}", text(&out));
    let expected = snapshot(&ns_ref, &if_ref);
    let expected_dns = take_resolvconf_log(&dir).replace(&if_ref, "IF");

    let ns = lab("qcf", default_route);
    let pristine = whole_state(&ns);
    let ifname = unique_name("qf");
    let path = dir.write(&ifname, &config);
    let out = ferrotun(&ns, &path_env, &["up", path.to_str().expect("utf-8")]);
    assert!(out.status.success(), "ferrotun up failed: {}", text(&out));
    let got = snapshot(&ns, &ifname);
    let got_dns = take_resolvconf_log(&dir).replace(&ifname, "IF");
    assert_eq!(got_dns, expected_dns, "resolvconf was called differently");
    assert_eq!(
        got,
        expected,
        "ferrotun up differs from wg-quick up\nferrotun said: {}",
        text(&out)
    );

    let out = ferrotun(&ns, &path_env, &["down", path.to_str().expect("utf-8")]);
    assert!(out.status.success(), "ferrotun down failed: {}", text(&out));
    if !expected_dns.is_empty() {
        assert_eq!(
            take_resolvconf_log(&dir).replace(&ifname, "IF"),
            "resolvconf -d IF -f\n",
            "down did not remove the DNS settings"
        );
    }
    assert!(
        no_processes_within(&ns, Duration::from_secs(5)),
        "the daemon is still running after down"
    );
    assert!(
        !Path::new(&format!("/var/run/wireguard/{ifname}.sock")).exists(),
        "the socket is still there after down"
    );
    let mut after = whole_state(&ns);
    // wg-quick leaves src_valid_mark set on down; so does ferrotun.
    if let (Value::Object(a), Value::Object(p)) = (&mut after, &pristine) {
        a.insert("src_valid_mark".into(), p["src_valid_mark"].clone());
    }
    assert_eq!(after, pristine, "down did not restore the namespace");
}

fn plain_peer() -> String {
    let (private, _) = key_pair();
    let (_, peer) = key_pair();
    format!(
        "[Interface]\nPrivateKey = {private}\nAddress = 10.71.0.1/24, fd71::1/64\n\n\
         [Peer]\nPublicKey = {peer}\nEndpoint = 10.9.0.2:51820\n\
         AllowedIPs = 10.71.0.2/32, 10.72.0.0/16, fd71::2/128, fd72::/48\n"
    )
}

#[test]
fn plain_peer_matches_wg_quick() {
    compare(plain_peer, false);
}

#[test]
fn multi_peer_server_matches_wg_quick() {
    compare(
        || {
            let (private, _) = key_pair();
            let mut config = format!(
                "[Interface]\nPrivateKey = {private}\nListenPort = 51820\n\
                 Address = 10.80.0.1/24\nAddress = fd80::1/64\n"
            );
            for n in 2..5 {
                let (_, peer) = key_pair();
                config += &format!(
                    "\n[Peer]\nPublicKey = {peer}\n\
                     AllowedIPs = 10.80.0.{n}/32, 10.8{n}.0.0/16, fd80::{n}/128, fd8{n}::/56\n"
                );
            }
            config
        },
        true,
    );
}

#[test]
fn default_route_client_matches_wg_quick() {
    compare(
        || {
            let (private, _) = key_pair();
            let (_, peer) = key_pair();
            format!(
                "[Interface]\nPrivateKey = {private}\nAddress = 10.90.0.2/32, fd90::2/128\n\
                 DNS = 10.90.0.1, fd90::1, lan.example\n\n\
                 [Peer]\nPublicKey = {peer}\nEndpoint = 10.9.0.2:51820\n\
                 AllowedIPs = 0.0.0.0/0, ::/0\nPersistentKeepalive = 25\n"
            )
        },
        true,
    );
}

#[test]
fn table_off_matches_wg_quick() {
    compare(
        || {
            let (private, _) = key_pair();
            let (_, peer) = key_pair();
            format!(
                "[Interface]\nPrivateKey = {private}\nAddress = 10.73.0.1/24\nTable = off\n\
                 MTU = 1380\n\n\
                 [Peer]\nPublicKey = {peer}\nAllowedIPs = 10.73.0.0/24, 10.74.0.0/16, 0.0.0.0/0\n"
            )
        },
        false,
    );
}

#[test]
fn numbered_table_matches_wg_quick() {
    compare(
        || {
            let (private, _) = key_pair();
            let (_, peer) = key_pair();
            format!(
                "[Interface]\nPrivateKey = {private}\nAddress = 10.75.0.1/24\nTable = 1234\n\n\
                 [Peer]\nPublicKey = {peer}\nEndpoint = 10.9.0.2:51820\n\
                 AllowedIPs = 10.75.0.0/24, 10.76.0.0/16, 0.0.0.0/0\n"
            )
        },
        false,
    );
}

#[test]
fn ipv6_only_matches_wg_quick() {
    compare(
        || {
            let (private, _) = key_pair();
            let (_, peer) = key_pair();
            format!(
                "[Interface]\nPrivateKey = {private}\nAddress = fd77::1/64\n\n\
                 [Peer]\nPublicKey = {peer}\nEndpoint = [fd09::2]:51820\n\
                 AllowedIPs = fd77::/64, fd78::/48, fd79::5/128\n"
            )
        },
        false,
    );
}
