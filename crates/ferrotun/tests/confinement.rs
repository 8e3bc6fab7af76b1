//! Least privilege, as the kernel reports it: once up, every thread of the daemon runs as an
//! unprivileged user with exactly the documented capabilities, no_new_privs and a seccomp
//! filter; the configuration socket serves only root and that user whatever the file's
//! mode; the daemon refuses to start when it cannot confine itself, and the opt-out really
//! runs it unconfined. Needs root, `wg`, `ip`, `sysctl` and `setpriv`.

mod common;

use common::netns::socket_path;
use common::{ferrotun_bin, require_tool, unique_name, Daemon, Netns};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::process::Output;

const CAP_NET_BIND_SERVICE: u64 = 1 << 10;
const CAP_NET_ADMIN: u64 = 1 << 12;

/// The fields of /proc/PID/task/TID/status this test reads, per thread name.
fn thread_status(pid: u32) -> Vec<(String, BTreeMap<String, String>)> {
    let dir = format!("/proc/{pid}/task");
    let mut threads = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}")) {
        let path = entry.unwrap().path().join("status");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue; // the thread ended meanwhile
        };
        let fields: BTreeMap<String, String> = text
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.to_string(), v.trim().to_string()))
            .collect();
        threads.push((fields["Name"].clone(), fields));
    }
    threads
}

fn hex(v: &str) -> u64 {
    u64::from_str_radix(v, 16).unwrap_or_else(|_| panic!("not hex: {v}"))
}

fn wg(ns: &Netns, args: &[&str]) -> Output {
    ns.try_exec("wg", args)
}

/// Waits until the daemon serves `wg show` (its threads exist only once it is confined).
fn ready(ns: &Netns, d: &Daemon) {
    let out = wg(ns, &["show", &d.ifname, "listen-port"]);
    assert!(out.status.success(), "wg show: {out:?}\n{}", d.log_text());
}

/// Every thread: non-zero uids and gids (all four of each equal), `caps` as CapPrm, CapEff
/// and CapBnd, nothing inheritable or ambient, NoNewPrivs 1, Seccomp 2 (filter).
fn assert_confined(d: &Daemon, caps: u64) -> u32 {
    let threads = thread_status(d.pid());
    let names: Vec<&str> = threads.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.iter().any(|n| n.starts_with("worker-")) && names.contains(&"uapi"),
        "expected worker and uapi threads, found {names:?}"
    );
    let mut uid = None;
    for (name, f) in &threads {
        let ids = |k: &str| -> Vec<u32> {
            f[k].split_whitespace()
                .map(|v| v.parse().unwrap())
                .collect()
        };
        let (uids, gids) = (ids("Uid"), ids("Gid"));
        assert!(
            uids.iter().all(|&u| u != 0 && u == uids[0]),
            "thread {name}: Uid {uids:?}\n{}",
            d.log_text()
        );
        assert!(
            gids.iter().all(|&g| g != 0 && g == gids[0]),
            "thread {name}: Gid {gids:?}"
        );
        assert_eq!(f["Groups"], "", "thread {name}: supplementary groups");
        for set in ["CapPrm", "CapEff", "CapBnd"] {
            assert_eq!(hex(&f[set]), caps, "thread {name}: {set} {}", f[set]);
        }
        for set in ["CapInh", "CapAmb"] {
            assert_eq!(hex(&f[set]), 0, "thread {name}: {set} {}", f[set]);
        }
        assert_eq!(f["NoNewPrivs"], "1", "thread {name}: NoNewPrivs");
        assert_eq!(f["Seccomp"], "2", "thread {name}: Seccomp");
        uid = Some(uids[0]);
    }
    uid.expect("no threads")
}

#[test]
fn every_thread_runs_unprivileged_with_the_documented_capabilities_and_filter() {
    let ns = Netns::new("cfa");
    let ifname = unique_name("cfa");
    let d = Daemon::start(&ns, ferrotun_bin(), &["-f"], &ifname);
    ready(&ns, &d);
    let uid = assert_confined(&d, CAP_NET_ADMIN | CAP_NET_BIND_SERVICE);
    assert!(
        d.log_text().contains("confined: user "),
        "no confinement line in the log:\n{}",
        d.log_text()
    );

    // What the kept capabilities are for keeps working: fwmark (CAP_NET_ADMIN) and a
    // listen port below 1024 (CAP_NET_BIND_SERVICE), each a new set of sockets.
    let key = String::from_utf8(wg(&ns, &["genkey"]).stdout).unwrap();
    let keyfile = std::env::temp_dir().join(format!("{ifname}.key"));
    std::fs::write(&keyfile, key.trim()).unwrap();
    let out = wg(
        &ns,
        &[
            "set",
            &ifname,
            "private-key",
            keyfile.to_str().unwrap(),
            "listen-port",
            "500",
            "fwmark",
            "0x51",
        ],
    );
    let _ = std::fs::remove_file(&keyfile);
    assert!(out.status.success(), "wg set: {out:?}\n{}", d.log_text());
    let shown = String::from_utf8(wg(&ns, &["show", &ifname, "dump"]).stdout).unwrap();
    let first: Vec<&str> = shown.lines().next().unwrap().split('\t').collect();
    assert_eq!(&first[2..4], &["500", "0x51"], "dump: {shown}");
    // New threads (a configuration connection's, the new workers) inherit all of it.
    assert_eq!(
        assert_confined(&d, CAP_NET_ADMIN | CAP_NET_BIND_SERVICE),
        uid
    );
    assert!(
        !d.log_text().contains("seccomp refused"),
        "a call was refused:\n{}",
        d.log_text()
    );
}

#[test]
fn no_bind_capability_where_every_port_is_unprivileged() {
    let ns = Netns::new("cfb");
    ns.exec(
        "sysctl",
        &["-q", "-w", "net.ipv4.ip_unprivileged_port_start=0"],
    );
    let ifname = unique_name("cfb");
    let d = Daemon::start(&ns, ferrotun_bin(), &["-f"], &ifname);
    ready(&ns, &d);
    assert_confined(&d, CAP_NET_ADMIN);
    let out = wg(&ns, &["set", &ifname, "listen-port", "501"]);
    assert!(out.status.success(), "wg set: {out:?}\n{}", d.log_text());
}

#[test]
fn the_opt_out_runs_unconfined_as_root() {
    let ns = Netns::new("cfc");
    let ifname = unique_name("cfc");
    let d = Daemon::start(
        &ns,
        ferrotun_bin(),
        &["-f", "--disable-drop-privileges"],
        &ifname,
    );
    ready(&ns, &d);
    for (name, f) in thread_status(d.pid()) {
        assert!(
            f["Uid"].starts_with("0\t"),
            "thread {name}: Uid {}",
            f["Uid"]
        );
        assert_eq!(f["Seccomp"], "0", "thread {name}");
        assert_ne!(hex(&f["CapEff"]), 0, "thread {name}");
    }
    assert!(
        d.log_text().contains("running unconfined"),
        "{}",
        d.log_text()
    );
}

#[test]
fn a_daemon_that_cannot_confine_itself_refuses_to_start_and_names_the_opt_out() {
    let ns = Netns::new("cfd");
    let ifname = unique_name("cfd");
    let out = ns.try_exec(
        ferrotun_bin(),
        &["-f", "--user", "no-such-user-ferrotun-test", &ifname],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started anyway: {err}");
    assert!(
        err.contains("no-such-user-ferrotun-test") && err.contains("--disable-drop-privileges"),
        "unclear refusal: {err}"
    );
    assert!(!socket_path(&ifname).exists(), "socket left behind");
    // The background form refuses in the foreground, where wg-quick shows it.
    let out = ns
        .command(ferrotun_bin())
        .arg(&ifname)
        .env("FERROTUN_USER", "no-such-user-ferrotun-test")
        .output()
        .unwrap();
    assert!(!out.status.success(), "background start did not refuse");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("FERROTUN_DISABLE_DROP_PRIVILEGES=1"),
        "{out:?}"
    );
    assert!(!socket_path(&ifname).exists(), "socket left behind");
}

/// `wg show IFACE` as `uid`, which may search root's 0700 /var/run/wireguard
/// (CAP_DAC_READ_SEARCH) and so reaches the socket whenever the socket's mode lets it.
fn show_as(ns: &Netns, uid: u32, ifname: &str) -> Output {
    let id = uid.to_string();
    ns.try_exec(
        "setpriv",
        &[
            &format!("--reuid={id}"),
            &format!("--regid={id}"),
            "--clear-groups",
            "--inh-caps=+dac_read_search",
            "--ambient-caps=+dac_read_search",
            "wg",
            "show",
            ifname,
            "listen-port",
        ],
    )
}

#[test]
fn the_configuration_socket_serves_only_root_and_its_own_user_whatever_its_mode() {
    require_tool("setpriv");
    let ns = Netns::new("cfe");
    let ifname = unique_name("cfe");
    let d = Daemon::start(&ns, ferrotun_bin(), &["-f"], &ifname);
    ready(&ns, &d);
    let own = assert_confined(&d, CAP_NET_ADMIN | CAP_NET_BIND_SERVICE);
    // Open the file to everyone: only the credential check stands in the way now.
    std::fs::set_permissions(socket_path(&ifname), std::fs::Permissions::from_mode(0o666)).unwrap();
    let stranger = if own == 4242 { 4243 } else { 4242 };
    let out = show_as(&ns, stranger, &ifname);
    assert!(
        !out.status.success() && out.stdout.is_empty(),
        "uid {stranger} was served: {out:?}"
    );
    let log = d.log_text();
    assert!(
        log.contains(&format!(
            "configuration connection from uid {stranger} refused"
        )),
        "refusal not logged with the uid:\n{log}"
    );
    // The daemon's own user and root are served.
    let out = show_as(&ns, own, &ifname);
    assert!(
        out.status.success(),
        "own uid {own} refused: {out:?}\n{log}"
    );
    assert!(wg(&ns, &["show", &ifname]).status.success(), "root refused");
}

/// The daemon's pid in `ns` (the only process there once wg-quick has returned).
fn only_process(ns: &Netns) -> u32 {
    let out = std::process::Command::new("ip")
        .args(["netns", "pids", &ns.name])
        .output()
        .expect("ip netns pids");
    let pids: Vec<u32> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 1, "processes in the namespace: {pids:?}");
    pids[0]
}

#[test]
fn the_real_wg_quick_drives_the_confined_daemon_with_a_default_route() {
    require_tool("wg-quick");
    let ns = Netns::new("cfq");
    let ifname = unique_name("cfq");
    let dir = std::env::temp_dir().join(unique_name("cfqd"));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join(format!("{ifname}.conf"));
    let key = String::from_utf8(wg(&ns, &["genkey"]).stdout).unwrap();
    let peer_key = String::from_utf8(wg(&ns, &["genkey"]).stdout).unwrap();
    let peer = ns
        .command("wg")
        .arg("pubkey")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(peer_key.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    let text = format!(
        "[Interface]\nPrivateKey = {}\nAddress = 10.66.0.1/24\nListenPort = 443\n\n\
         [Peer]\nPublicKey = {}\nAllowedIPs = 0.0.0.0/0\nEndpoint = 192.0.2.1:51820\n",
        key.trim(),
        String::from_utf8_lossy(&peer.stdout).trim()
    );
    std::fs::write(&conf, text).unwrap();
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o600)).unwrap();
    let quick = |verb: &str| {
        ns.command("wg-quick")
            .args([verb, conf.to_str().unwrap()])
            .env("WG_QUICK_USERSPACE_IMPLEMENTATION", ferrotun_bin())
            .output()
            .expect("run wg-quick")
    };
    let up = quick("up");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&up.stdout),
        String::from_utf8_lossy(&up.stderr)
    );
    let pid = (up.status.success()).then(|| only_process(&ns));
    let status = pid.map(|p| std::fs::read_to_string(format!("/proc/{p}/status")).unwrap());
    // wg-quick set a listen port below 1024 and, for the default route, an fwmark: the
    // two things the kept capabilities are for.
    let dump = String::from_utf8(wg(&ns, &["show", &ifname, "dump"]).stdout).unwrap();
    let down = quick("down");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(up.status.success(), "wg-quick up: {said}");
    let status = status.unwrap();
    assert!(
        status.contains("\nSeccomp:\t2\n") && status.contains("\nNoNewPrivs:\t1\n"),
        "daemon not confined:\n{status}"
    );
    assert!(
        !status.contains("\nUid:\t0\t"),
        "daemon still root:\n{status}"
    );
    let first: Vec<&str> = dump
        .lines()
        .next()
        .unwrap_or_default()
        .split('\t')
        .collect();
    assert_eq!(first.get(2), Some(&"443"), "dump: {dump}");
    assert!(
        first.get(3).is_some_and(|m| *m != "off"),
        "no fwmark: {dump}\n{said}"
    );
    assert!(
        down.status.success(),
        "wg-quick down: {}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert!(
        common::process::wait_gone(pid.unwrap(), std::time::Duration::from_secs(5)),
        "daemon still running after wg-quick down"
    );
    assert!(
        common::process::eventually(std::time::Duration::from_secs(5), || !socket_path(&ifname)
            .exists()),
        "socket left behind"
    );
}
