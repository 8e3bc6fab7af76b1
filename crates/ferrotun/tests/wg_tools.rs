//! ferrotun's `wg` commands against the real tools: a wireguard-go daemon configured with the
//! real `wg`, read back by both; and the same commands sent by both to two daemons, compared
//! through the real `wg showconf`. Needs root, `wireguard-go` and `wg` (CI installs them).

mod common;

use std::process::{Command, Output, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::scratch::TempDir;
use common::{unique_name, Netns};
use ferrotun_uapi::{AllowedIpChange, Client, IpPrefix, PeerChange, SetRequest};
use ferrotun_wg::{run_captured, Captured, Env};

/// A wireguard-go daemon in the foreground, in a namespace of its own (or one it shares with
/// the other daemons of a test); dropping it stops the daemon, and the last one out removes
/// the namespace with its interfaces (the testkit's guards).
struct Daemon {
    name: String,
    _daemon: common::Daemon,
    ns: Rc<Netns>,
}

impl Daemon {
    fn start(tag: &str) -> Daemon {
        Daemon::start_in(&Rc::new(Netns::new("ftw")), tag)
    }

    fn start_in(ns: &Rc<Netns>, tag: &str) -> Daemon {
        common::require_tools(&["wg", "wireguard-go", "ip"]);
        assert!(common::have_root(), "these tests must run as root");
        let name = unique_name(tag);
        let daemon = common::Daemon::start(ns, "wireguard-go", &["-f"], &name);
        Daemon {
            name,
            _daemon: daemon,
            ns: ns.clone(),
        }
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// The real wg, with only the given WG_* variables set.
fn wg(args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new("wg");
    cmd.args(args)
        .env_remove("WG_HIDE_KEYS")
        .env_remove("WG_COLOR_MODE")
        .stdin(Stdio::null());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.output().expect("run wg")
}

fn wg_ok(args: &[&str]) -> String {
    let out = wg(args, &[]);
    assert!(
        out.status.success(),
        "wg {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("wg output is UTF-8")
}

/// Our implementation, in-process, with the same variables; stdout is not a terminal.
fn ours(args: &[&str], vars: &[(&str, &str)]) -> Captured {
    let mut env = Env::default();
    for (k, v) in vars {
        env.vars.insert(k.to_string(), v.to_string());
    }
    run_captured("wg", &strings(args), b"", env, Client::new())
}

fn ours_ok(args: &[&str]) -> String {
    let out = ours(args, &[]);
    assert_eq!(out.code, 0, "ours {args:?} failed: {}", out.stderr);
    out.stdout
}

/// wireguard-go lists peers in Go map order, which changes from one request to the next, so
/// multi-peer outputs are compared as sorted blocks (peer paragraphs) or sorted lines.
fn sorted_blocks(text: &str) -> Vec<String> {
    let mut blocks: Vec<String> = text
        .split("\n\n")
        .map(|b| b.trim_end_matches('\n').to_string())
        .collect();
    blocks.sort();
    blocks
}

fn sorted_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

/// Compares one `show` form, retrying a few times in case a counter moved or a second
/// ticked over ("Now" vs "1 second ago") between the two requests; the pause lets a fresh
/// handshake's keepalives settle.
fn assert_same_show(args: &[&str], vars: &[(&str, &str)], exact: bool) {
    let mut last = (String::new(), String::new());
    for attempt in 0..5 {
        if attempt > 0 {
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        let theirs = wg(args, vars);
        let mine = ours(args, vars);
        assert_eq!(
            mine.code,
            theirs.status.code().unwrap_or(-1),
            "exit status of {args:?}: {}",
            mine.stderr
        );
        let theirs = String::from_utf8_lossy(&theirs.stdout).into_owned();
        let same = if exact {
            theirs == mine.stdout
        } else {
            sorted_blocks(&theirs) == sorted_blocks(&mine.stdout)
                || (!theirs.contains("\n\n") && sorted_lines(&theirs) == sorted_lines(&mine.stdout))
        };
        if same {
            return;
        }
        last = (theirs, mine.stdout);
    }
    panic!(
        "`show` output differs for {args:?} {vars:?}\n--- wg ---\n{}\n--- ferrotun ---\n{}",
        last.0, last.1
    );
}

const FIELDS: [&str; 12] = [
    "public-key",
    "private-key",
    "listen-port",
    "fwmark",
    "peers",
    "preshared-keys",
    "endpoints",
    "allowed-ips",
    "latest-handshakes",
    "transfer",
    "persistent-keepalive",
    "dump",
];

fn compare_every_show_form(name: &str, exact: bool) {
    for field in FIELDS {
        assert_same_show(&["show", name, field], &[], exact);
    }
    assert_same_show(&["show", name], &[], exact);
    assert_same_show(&["show", name], &[("WG_HIDE_KEYS", "never")], exact);
    assert_same_show(&["show", name], &[("WG_COLOR_MODE", "always")], exact);
    assert_same_show(&["showconf", name], &[], exact);
}

fn key_files(scratch: &TempDir, n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            let private = wg_ok(&["genkey"]);
            let path = scratch.file_str(&format!("key{i}"), &private);
            let public = Command::new("sh")
                .args(["-c", &format!("wg pubkey < {path}")])
                .output()
                .expect("wg pubkey");
            (
                path,
                String::from_utf8_lossy(&public.stdout).trim().to_string(),
            )
        })
        .collect()
}

#[test]
fn show_and_showconf_match_wg() {
    let daemon = Daemon::start("s");
    let name = daemon.name.as_str();
    let scratch = TempDir::new("d");
    let keys = key_files(&scratch, 4);
    let psk = scratch.file_str("psk", &wg_ok(&["genpsk"]));

    // An empty device first.
    compare_every_show_form(name, true);

    // One peer with everything set (no keepalive towards an endpoint, so no traffic moves
    // the counters), compared byte for byte.
    wg_ok(&[
        "set",
        name,
        "listen-port",
        "51961",
        "fwmark",
        "0x2a",
        "private-key",
        &keys[0].0,
        "peer",
        &keys[1].1,
        "preshared-key",
        &psk,
        "endpoint",
        "[fd00::1]:51962",
        "allowed-ips",
        "10.99.0.2/32,fd00::2/128,::ffff:10.0.0.0/104",
    ]);
    compare_every_show_form(name, true);

    // More peers: no allowed IPs, an IPv4 endpoint, a keepalive without an endpoint, a
    // link-local endpoint with a zone.
    wg_ok(&[
        "set",
        name,
        "peer",
        &keys[2].1,
        "endpoint",
        "127.0.0.1:51963",
    ]);
    wg_ok(&[
        "set",
        name,
        "peer",
        &keys[3].1,
        "persistent-keepalive",
        "3700",
        "allowed-ips",
        "192.168.7.0/24",
    ]);
    let mut keys = keys;
    keys.extend(key_files(&scratch, 1));
    wg_ok(&[
        "set",
        name,
        "peer",
        &keys[4].1,
        "endpoint",
        "[fe80::1%lo]:51964",
    ]);
    compare_every_show_form(name, false);
    let endpoints = ours_ok(&["show", name, "endpoints"]);
    // Debian's wireguard-go drops the zone; newer ones keep it by name. Either way both tools
    // agree (checked above) and the reply parsed.
    assert!(endpoints.contains("[fe80::1"), "{endpoints}");

    // `all` and `interfaces` include this interface the way wg shows it.
    let listed = ours_ok(&["show", "interfaces"]);
    assert!(listed.split_whitespace().any(|n| n == name), "{listed}");
    let theirs = wg_ok(&["show", "all", "dump"]);
    let mine = ours_ok(&["show", "all", "dump"]);
    let only = |t: &str| {
        sorted_lines(
            &t.lines()
                .filter(|l| l.starts_with(&format!("{name}\t")))
                .collect::<Vec<_>>()
                .join("\n"),
        )
    };
    assert_eq!(only(&theirs), only(&mine));
}

#[test]
fn reading_errors_and_keys() {
    let daemon = Daemon::start("e");
    let missing = ours(&["show", "ftcnosuchif0"], &[]);
    assert_eq!(missing.code, 1);
    assert_eq!(
        missing.stderr,
        "Unable to access interface: No such file or directory\n"
    );
    let bad = ours(&["show", &daemon.name, "nonsense"], &[]);
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr
            .starts_with("Invalid parameter: `nonsense'\nUsage: wg show {"),
        "{}",
        bad.stderr
    );

    // Our keys are keys to wg, and our pubkey agrees with wg's.
    let private = ours_ok(&["genkey"]);
    assert_eq!(private.len(), 45);
    let theirs = Command::new("sh")
        .args([
            "-c",
            &format!("printf '%s' '{}' | wg pubkey", private.trim()),
        ])
        .output()
        .expect("wg pubkey");
    let mine = run_captured(
        "wg",
        &strings(&["pubkey"]),
        private.as_bytes(),
        Env::default(),
        Client::new(),
    );
    assert_eq!(mine.stdout, String::from_utf8_lossy(&theirs.stdout));
    let bad = run_captured(
        "wg",
        &strings(&["pubkey"]),
        b"nonsense\n",
        Env::default(),
        Client::new(),
    );
    assert_eq!(
        (bad.code, bad.stderr.as_str()),
        (1, "wg: Key is not the correct length or format\n")
    );
    assert_eq!(ours_ok(&["genpsk"]).len(), 45);
}

/// Both daemons bind their listen ports, so each side gets its own: `P0`…`P9` in an argument
/// or config text becomes a port in the daemon's own range, and showconf compares them
/// relative to that range.
const PORTS_A: u16 = 52100;
const PORTS_B: u16 = 52200;

fn ports(text: &str, base: u16) -> String {
    (0..10u16).fold(text.to_string(), |t, i| {
        t.replace(&format!("P{i}"), &(base + i).to_string())
    })
}

fn unports(text: &str, base: u16) -> String {
    (0..10u16).fold(text.to_string(), |t, i| {
        t.replace(&(base + i).to_string(), &format!("P{i}"))
    })
}

/// Writes a config file for each side (with its ports) and returns the pair of paths.
fn conf_pair(scratch: &TempDir, name: &str, text: &str) -> (String, String) {
    (
        scratch.file_str(&format!("a-{name}"), &ports(text, PORTS_A)),
        scratch.file_str(&format!("b-{name}"), &ports(text, PORTS_B)),
    )
}

/// Runs the same command through wg on one daemon and through ferrotun on the other, then
/// compares the two configurations as the real `wg showconf` reports them. `IF` stands for
/// the interface, `CONF` for the side's config file.
fn both(a: &Daemon, b: &Daemon, args: &[&str], conf: Option<&(String, String)>) {
    let with = |name: &str, base: u16, file: Option<&String>| -> Vec<String> {
        args.iter()
            .map(|s| match *s {
                "IF" => name.to_string(),
                "CONF" => file.cloned().unwrap_or_default(),
                other => ports(other, base),
            })
            .collect()
    };
    let theirs_args = with(&a.name, PORTS_A, conf.map(|c| &c.0));
    let theirs = wg(
        &theirs_args.iter().map(String::as_str).collect::<Vec<_>>(),
        &[],
    );
    let mine_args = with(&b.name, PORTS_B, conf.map(|c| &c.1));
    let mine = run_captured("wg", &mine_args, b"", Env::default(), Client::new());
    assert_eq!(
        mine.code,
        theirs.status.code().unwrap_or(-1),
        "{args:?}: wg said {:?}, ferrotun said {:?}",
        String::from_utf8_lossy(&theirs.stderr),
        mine.stderr
    );
    let showconf =
        |d: &Daemon, base: u16| sorted_blocks(&unports(&wg_ok(&["showconf", &d.name]), base));
    assert_eq!(showconf(a, PORTS_A), showconf(b, PORTS_B), "after {args:?}");
}

#[test]
fn set_and_conf_commands_match_wg() {
    let a = Daemon::start("a");
    let b = Daemon::start("b");
    let scratch = TempDir::new("d");
    let keys = key_files(&scratch, 5);
    let psk = scratch.file_str("psk", &wg_ok(&["genpsk"]));
    let empty = scratch.file_str("empty", "");
    let (k1, k2, k3, k4) = (&keys[1].1, &keys[2].1, &keys[3].1, &keys[4].1);

    both(
        &a,
        &b,
        &[
            "set",
            "IF",
            "listen-port",
            "P1",
            "fwmark",
            "1234",
            "private-key",
            &keys[0].0,
        ],
        None,
    );
    both(
        &a,
        &b,
        &[
            "set",
            "IF",
            "peer",
            k1,
            "preshared-key",
            &psk,
            "endpoint",
            "localhost:51972",
            "allowed-ips",
            "10.1.0.0/16, fd01::/64",
            "peer",
            k2,
            "allowed-ips",
            "10.2.0.1/8",
        ],
        None,
    );
    both(
        &a,
        &b,
        &[
            "set",
            "IF",
            "peer",
            k2,
            "allowed-ips",
            "10.1.0.0/24",
            "persistent-keepalive",
            "off",
        ],
        None,
    );
    both(
        &a,
        &b,
        &[
            "set",
            "IF",
            "peer",
            k1,
            "preshared-key",
            &empty,
            "endpoint",
            "[::1]:51973",
        ],
        None,
    );
    both(
        &a,
        &b,
        &["set", "IF", "peer", k2, "remove", "fwmark", "off"],
        None,
    );
    both(&a, &b, &["set", "IF", "listen-port", "0x10"], None);
    both(&a, &b, &["set", "IF", "peer", "bogus"], None);
    both(&a, &b, &["set", "IF", "peer", k4, "allowed-ips", ""], None);

    let private = std::fs::read_to_string(&keys[0].0).unwrap_or_default();
    let psk_text = std::fs::read_to_string(&psk).unwrap_or_default();
    let conf1 = conf_pair(
        &scratch,
        "one.conf",
        &format!(
            "[Interface]\nListenPort = P2\nPrivateKey = {}\n\n[Peer]\nPublicKey = {k3}\n\
         AllowedIPs = 10.3.0.0/16\nAllowedIPs = 10.33.0.0/16\nEndpoint = 127.0.0.1:51975\n\n\
         [Peer] # second\nPublicKey = {k4}\nPresharedKey = {}\nPersistentKeepalive = 0\n",
            private.trim(),
            psk_text.trim()
        ),
    );
    both(&a, &b, &["setconf", "IF", "CONF"], Some(&conf1));
    let conf2 = conf_pair(
        &scratch,
        "two.conf",
        &format!(
            "[Interface]\nFwMark = 0x99\n[Peer]\nPublicKey = {k1}\nAllowedIPs = 10.3.1.0/24\n\
         [Peer]\nPublicKey = {k3}\nEndpoint = 127.0.0.1:51976\n"
        ),
    );
    both(&a, &b, &["addconf", "IF", "CONF"], Some(&conf2));
    let conf3 = conf_pair(
        &scratch,
        "three.conf",
        &format!(
            "[Interface]\nListenPort = P3\n[Peer]\nPublicKey = {k3}\nAllowedIPs = 10.3.0.0/16\n\
         [Peer]\nPublicKey = {k2}\n"
        ),
    );
    both(&a, &b, &["syncconf", "IF", "CONF"], Some(&conf3));
    let conf4 = conf_pair(&scratch, "four.conf", "[Interface]\nListenPort = P4\n");
    both(&a, &b, &["syncconf", "IF", "CONF"], Some(&conf4));
    both(&a, &b, &["setconf", "IF", "CONF"], Some(&conf1));
    both(&a, &b, &["setconf", "IF", "CONF"], Some(&conf4));
}

#[test]
fn syncconf_keeps_listed_peers_and_removes_others() {
    let d = Daemon::start("y");
    let scratch = TempDir::new("d");
    let keys = key_files(&scratch, 3);
    wg_ok(&[
        "set",
        &d.name,
        "peer",
        &keys[0].1,
        "peer",
        &keys[1].1,
        "allowed-ips",
        "10.5.0.0/16",
    ]);
    let conf = scratch.file_str(
        "sync.conf",
        &format!(
            "[Peer]\nPublicKey = {}\nAllowedIPs = 10.6.0.0/16\n[Peer]\nPublicKey = {}\n",
            keys[1].1, keys[2].1
        ),
    );
    assert_eq!(ours(&["syncconf", &d.name, &conf], &[]).code, 0);
    let status = Client::new().get(&d.name).expect("get");
    let mut peers: Vec<String> = status
        .peers
        .iter()
        .map(|p| p.public_key.to_base64())
        .collect();
    peers.sort();
    let mut want = vec![keys[1].1.clone(), keys[2].1.clone()];
    want.sort();
    assert_eq!(peers, want);
    let kept = status
        .peers
        .iter()
        .find(|p| p.public_key.to_base64() == keys[1].1)
        .expect("kept peer");
    assert_eq!(
        kept.allowed_ips,
        vec![IpPrefix::parse("10.6.0.0/16").expect("prefix")]
    );
}

#[test]
fn bad_config_files_name_file_and_line_and_change_nothing() {
    let d = Daemon::start("c");
    let scratch = TempDir::new("d");
    wg_ok(&["set", &d.name, "listen-port", "51981"]);
    let before = wg_ok(&["showconf", &d.name]);
    let cases = [
        ("[Interface]\nListenPort = 51982\nBogus = 1\n", ":3: Unknown key `Bogus' in [Interface] section"),
        ("ListenPort = 51982\n", ":1: `ListenPort' is outside of any [Interface] or [Peer] section"),
        ("[Peer]\nPublicKey = notakey\n", ":2: Key is not the correct length or format: `notakey'"),
        ("[Interface]\n\n[Peer]\nPublicKey = jMGj6XfckCqD+cuJV1XkrPPw66oBfUPndCyBTTmhZAo=\nAllowedIPs = 10.0.0.0/40\n", ":5: AllowedIP is not in the correct format: `10.0.0.0/40'"),
        ("[Peer]\nPublicKey = jMGj6XfckCqD+cuJV1XkrPPw66oBfUPndCyBTTmhZAo=\nEndpoint = 127.0.0.1\n", ":3: Unable to find port of endpoint: `127.0.0.1'"),
        ("[Peer]\nPublicKey = jMGj6XfckCqD+cuJV1XkrPPw66oBfUPndCyBTTmhZAo=\n[Peer]\nPublicKey = jMGj6XfckCqD+cuJV1XkrPPw66oBfUPndCyBTTmhZAo=\n", ":4: Duplicate peer with public key"),
        ("[Interface]\nListenPort = 99999\n", ":2: Port is not a number 0-65535: `99999'"),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let path = scratch.file_str(&format!("bad{i}.conf"), text);
        for cmd in ["setconf", "addconf", "syncconf"] {
            let out = ours(&[cmd, &d.name, &path], &[]);
            assert_eq!(out.code, 1, "{cmd} {text:?}");
            assert!(
                out.stderr.starts_with(&format!("{path}{want}")),
                "{cmd} {text:?}: {}",
                out.stderr
            );
        }
    }
    assert_eq!(wg_ok(&["showconf", &d.name]), before);
    let missing = ours(&["setconf", &d.name, "/nonexistent/x.conf"], &[]);
    assert_eq!(missing.stderr, "fopen: No such file or directory\n");
}

#[test]
fn daemon_errors_come_back_as_wg_prints_them() {
    let d = Daemon::start("r");
    // Debian's wireguard-go predates `allowed_ip=-…` and answers EINVAL.
    let mut peer = PeerChange::new(ferrotun_proto::keys::PublicKey::from_bytes([9; 32]));
    peer.allowed_ips = vec![AllowedIpChange::Remove(
        IpPrefix::parse("10.0.0.0/8").expect("prefix"),
    )];
    let req = SetRequest {
        peers: vec![peer],
        ..Default::default()
    };
    let err = Client::new()
        .set(&d.name, &req)
        .expect_err("old wireguard-go rejects removal");
    assert_eq!(err.to_string(), "Invalid argument");
    assert_eq!(err.errno(), 22);
}

#[test]
fn show_after_a_handshake_matches_wg() {
    // One namespace: the two talk over its loopback.
    let ns = Rc::new(Netns::new("ftw"));
    let x = Daemon::start_in(&ns, "x");
    let y = Daemon::start_in(&ns, "y");
    let scratch = TempDir::new("d");
    let keys = key_files(&scratch, 2);
    wg_ok(&[
        "set",
        &x.name,
        "listen-port",
        "52301",
        "private-key",
        &keys[0].0,
        "peer",
        &keys[1].1,
        "endpoint",
        "127.0.0.1:52302",
        "allowed-ips",
        "10.77.0.2/32",
        "persistent-keepalive",
        "25",
    ]);
    wg_ok(&[
        "set",
        &y.name,
        "listen-port",
        "52302",
        "private-key",
        &keys[1].0,
        "peer",
        &keys[0].1,
        "allowed-ips",
        "10.77.0.1/32",
    ]);
    for d in [&x, &y] {
        d.ns.ip(&["link", "set", "up", "dev", &d.name]);
    }
    // The keepalive makes x initiate at once; wait for both sides to record the handshake.
    let deadline = Instant::now() + Duration::from_secs(15);
    let handshaken = |d: &Daemon| {
        Client::new()
            .get(&d.name)
            .map(|s| s.peers.iter().all(|p| p.last_handshake.is_some()))
            .unwrap_or(false)
    };
    while !(handshaken(&x) && handshaken(&y)) {
        assert!(
            Instant::now() < deadline,
            "no handshake between the two wireguard-go daemons"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for d in [&x, &y] {
        compare_every_show_form(&d.name, true);
    }
    let pretty = ours_ok(&["show", &x.name]);
    assert!(pretty.contains("  latest handshake: "), "{pretty}");
    assert!(pretty.contains("  transfer: "), "{pretty}");
}
