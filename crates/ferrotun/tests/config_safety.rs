//! Hostile configuration input: a seeded random mix of valid and invalid `set=1` requests,
//! sent as raw text to a live daemon. After each one the daemon's `get=1` must match a model
//! of what is configured; a valid request must answer errno 0, an invalid one the right errno
//! having changed nothing at all (ferrotun applies a request all or nothing, stricter than
//! wireguard-go). The valid requests are replayed on wireguard-go, which must end up
//! configured the same. Needs root and wireguard-go.
//!
//! `CONFIG_SAFETY_SEED=N` replays a run (the seed is printed); `CONFIG_SAFETY_OPS=N` sets its
//! length.

mod common;

use common::raw_uapi::{exchange, get_config, wire_errno, Config};
use common::tunnel::Impl;
use common::uapi_model::{
    describe_difference, hex, set_text, DevLine, Model, PeerLine, Section, SetOp, EADDRINUSE,
    EINVAL, EPROTO,
};
use common::{unique_name, Daemon, Netns};
use ferrotun_proto::keys::PrivateKey;
use ferrotun_uapi::IpPrefix;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Held by a second daemon in the same namespace, so asking for it fails with EADDRINUSE.
const BUSY_PORT: u16 = 40999;
const PORTS: [u16; 5] = [40000, 40001, 40002, 40003, 40004];
/// The whole run must finish well inside CI's budget even on a loaded machine.
const RUN_LIMIT: Duration = Duration::from_secs(300);

/// Keys, prefixes and endpoints the requests draw from; small pools so that peers collide,
/// prefixes move between peers and the device's own key turns up as a peer key.
struct Pools {
    private: Vec<[u8; 32]>,
    peers: Vec<[u8; 32]>,
    psks: Vec<[u8; 32]>,
    prefixes: Vec<(String, IpPrefix)>,
    endpoints: Vec<SocketAddr>,
}

impl Pools {
    fn new(rng: &mut StdRng) -> Pools {
        // Raw, unclamped bytes: the daemon must clamp them as wireguard-go does.
        let private: Vec<[u8; 32]> = (0..6).map(|_| rng.gen()).collect();
        let mut peers: Vec<[u8; 32]> = private
            .iter()
            .take(4)
            .map(|raw| *PrivateKey::from_bytes(*raw).public_key().as_bytes())
            .collect();
        peers.extend((0..4).map(|_| rng.gen::<[u8; 32]>()));
        let mut psks: Vec<[u8; 32]> = (0..3).map(|_| rng.gen()).collect();
        psks.push([0; 32]);
        let prefixes = [
            "10.0.0.0/24",
            "10.0.0.77/24",
            "10.0.1.0/24",
            "10.1.0.0/16",
            "10.1.2.3/16",
            "10.0.0.5/32",
            "0.0.0.0/0",
            "203.0.113.9/0",
            "192.168.7.0/24",
            "fd00::/64",
            "fd00::1/64",
            "fd00:1::/48",
            "::/0",
            "fd00::5/128",
            "2001:db8::/32",
            "2001:db8:ffff::1/32",
        ]
        .iter()
        .map(|t| {
            let p = IpPrefix::parse(t)
                .expect("pool prefixes are valid")
                .masked();
            (t.to_string(), p)
        })
        .collect();
        // Loopback or unreachable inside the namespace: keepalives go nowhere.
        let endpoints = [
            "127.0.0.1:51001",
            "127.0.0.2:51002",
            "[::1]:51003",
            "[fd00::7]:51004",
        ]
        .iter()
        .map(|e| e.parse().expect("pool endpoints are valid"))
        .collect();
        Pools {
            private,
            peers,
            psks,
            prefixes,
            endpoints,
        }
    }
}

/// One request and what must come of it.
enum Op {
    /// A well-formed request; the model says whether it succeeds (a busy port fails it).
    Set(SetOp),
    /// A well-formed request with one bad line inserted at `at`.
    Bad {
        op: SetOp,
        at: usize,
        line: String,
        errno: i32,
    },
    /// `get=1` followed by something other than the blank line.
    GetJunk(String),
    /// Not an operation at all: the daemon closes the connection without a reply.
    Unknown(String),
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    items.choose(rng).expect("pools are not empty")
}

fn gen_set(rng: &mut StdRng, pools: &Pools) -> SetOp {
    let mut dev = Vec::new();
    if rng.gen_bool(0.15) {
        let raw = if rng.gen_bool(0.1) {
            [0; 32]
        } else {
            *pick(rng, &pools.private)
        };
        dev.push(DevLine::PrivateKey {
            raw,
            upper: rng.gen_bool(0.3),
        });
    }
    if rng.gen_bool(0.12) {
        let port = if rng.gen_bool(0.1) {
            0
        } else {
            *pick(rng, &PORTS)
        };
        dev.push(DevLine::ListenPort(port));
    }
    if rng.gen_bool(0.12) {
        dev.push(DevLine::Fwmark(*pick(rng, &[0, 1, 0x51820, u32::MAX])));
    }
    if rng.gen_bool(0.03) {
        dev.push(DevLine::ReplacePeers);
    }
    dev.shuffle(rng);
    let sections = (0..rng.gen_range(0..=3))
        .map(|_| gen_section(rng, pools))
        .collect();
    SetOp { dev, sections }
}

fn gen_section(rng: &mut StdRng, pools: &Pools) -> Section {
    let mut lines = Vec::new();
    let roll = rng.gen_range(0..100);
    if roll < 8 {
        lines.push(PeerLine::Remove);
    } else if roll < 20 {
        lines.push(PeerLine::UpdateOnly);
    }
    // Lines after `remove` must be ignored; give them something to get wrong sometimes.
    if roll >= 8 || rng.gen_bool(0.5) {
        if rng.gen_bool(0.15) {
            lines.push(PeerLine::ReplaceAllowedIps);
        }
        let mut attrs = Vec::new();
        if rng.gen_bool(0.3) {
            attrs.push(PeerLine::PresharedKey(*pick(rng, &pools.psks)));
        }
        if rng.gen_bool(0.3) {
            attrs.push(PeerLine::Endpoint(*pick(rng, &pools.endpoints)));
        }
        if rng.gen_bool(0.2) {
            attrs.push(PeerLine::Keepalive(*pick(rng, &[0, 1, 25, 65535])));
        }
        if rng.gen_bool(0.1) {
            attrs.push(PeerLine::ProtocolVersion);
        }
        for _ in 0..rng.gen_range(0..=3) {
            let (text, p) = pick(rng, &pools.prefixes).clone();
            attrs.push(PeerLine::Allow(text, p));
        }
        if rng.gen_bool(0.12) {
            let (text, p) = pick(rng, &pools.prefixes).clone();
            attrs.push(PeerLine::Unallow(text, p));
        }
        attrs.shuffle(rng);
        lines.extend(attrs);
    }
    Section {
        public_key: *pick(rng, &pools.peers),
        lines,
    }
}

/// A bad line and the errno it must draw. Each is bad in either scope (device or peer).
fn gen_bad_line(rng: &mut StdRng, pools: &Pools) -> (String, i32) {
    let key_hex = hex(pick::<[u8; 32]>(rng, &pools.private));
    let b64 = PrivateKey::from_bytes(*pick(rng, &pools.private)).to_base64();
    let mut typo = key_hex.clone();
    typo.replace_range(10..11, "g");
    let candidates: Vec<(String, i32)> = vec![
        (format!("private_key={}", &key_hex[..63]), EINVAL),
        (format!("private_key={b64}"), EINVAL),
        (format!("private_key={typo}"), EINVAL),
        (format!("private_key={key_hex}0"), EINVAL),
        ("listen_port=65536".into(), EINVAL),
        ("listen_port=-1".into(), EINVAL),
        ("listen_port=+5".into(), EINVAL),
        ("listen_port=".into(), EINVAL),
        ("listen_port=12ab".into(), EINVAL),
        ("fwmark=4294967296".into(), EINVAL),
        ("fwmark=0x10".into(), EINVAL),
        ("fwmark=1\0".into(), EINVAL),
        ("replace_peers=false".into(), EINVAL),
        ("replace_peers=1".into(), EINVAL),
        (format!("public_key={}", &key_hex[..62]), EINVAL),
        (format!("public_key={b64}"), EINVAL),
        (format!("preshared_key={typo}"), EINVAL),
        ("endpoint=127.0.0.1".into(), EINVAL),
        ("endpoint=[::1]:65536".into(), EINVAL),
        ("endpoint=localhost:5".into(), EINVAL),
        ("endpoint=::1:5".into(), EINVAL),
        ("persistent_keepalive_interval=65536".into(), EINVAL),
        ("persistent_keepalive_interval=-1".into(), EINVAL),
        ("persistent_keepalive_interval=ten".into(), EINVAL),
        ("allowed_ip=10.0.0.0/33".into(), EINVAL),
        ("allowed_ip=10.0.0.1".into(), EINVAL),
        ("allowed_ip=::/129".into(), EINVAL),
        ("allowed_ip=10.0.0.256/8".into(), EINVAL),
        ("allowed_ip=-10.0.0.0".into(), EINVAL),
        ("allowed_ip=fd00::/-1".into(), EINVAL),
        ("allowed_ip=10.0.0.0/ 8".into(), EINVAL),
        ("allowed_ip=--10.0.0.0/8".into(), EINVAL),
        ("protocol_version=2".into(), EINVAL),
        ("protocol_version=0".into(), EINVAL),
        ("remove=false".into(), EINVAL),
        ("update_only=yes".into(), EINVAL),
        ("replace_allowed_ips=TRUE".into(), EINVAL),
        ("bogus_key=1".into(), EINVAL),
        ("=5".into(), EINVAL),
        (format!("{}=1", "x".repeat(100_000)), EINVAL),
        ("no_equals_here".into(), EPROTO),
        ("listen_port 40001".into(), EPROTO),
        (key_hex, EPROTO),
    ];
    pick(rng, &candidates).clone()
}

fn gen_op(rng: &mut StdRng, pools: &Pools) -> Op {
    match rng.gen_range(0..100) {
        0..=54 => Op::Set(gen_set(rng, pools)),
        55..=59 => {
            // A request that is fine but for a port someone else holds.
            let mut op = gen_set(rng, pools);
            op.dev.retain(|l| !matches!(l, DevLine::ListenPort(_)));
            let at = rng.gen_range(0..=op.dev.len());
            op.dev.insert(at, DevLine::ListenPort(BUSY_PORT));
            Op::Set(op)
        }
        60..=89 => {
            let op = gen_set(rng, pools);
            let len = op.lines().len();
            // Mostly after several valid lines: those must not be applied either.
            let at = if len >= 3 && rng.gen_bool(0.7) {
                rng.gen_range(3..=len)
            } else {
                rng.gen_range(0..=len)
            };
            let (line, errno) = gen_bad_line(rng, pools);
            Op::Bad {
                op,
                at,
                line,
                errno,
            }
        }
        90..=94 => Op::GetJunk(
            pick(
                rng,
                &[
                    "get=1\njunk\n\n",
                    "get=1\n=\n\n",
                    "get=1\nset=1\nfwmark=7\n\n",
                ],
            )
            .to_string(),
        ),
        _ => Op::Unknown(
            pick(
                rng,
                &[
                    "get=2\n\n",
                    "set=0\nfwmark=7\n\n",
                    "GET=1\n\n",
                    "hello\n\n",
                    "get=1 \n\n",
                    "set=1 \nfwmark=7\n\n",
                ],
            )
            .to_string(),
        ),
    }
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// A ferrotun daemon, a second one holding [`BUSY_PORT`] in the same namespace, and a
/// wireguard-go daemon in another. Fields drop in order: daemons before namespaces.
struct Rig {
    ft: Daemon,
    _blocker: Daemon,
    go: Daemon,
    _ft_ns: Netns,
    _go_ns: Netns,
}

impl Rig {
    fn new() -> Rig {
        let ft_ns = Netns::new("csf");
        let go_ns = Netns::new("csg");
        let ft = Impl::Ferrotun.start(&ft_ns, &unique_name("csf"));
        let blocker = Impl::Ferrotun.start(&ft_ns, &unique_name("csb"));
        let go = Impl::WireguardGo.start(&go_ns, &unique_name("csg"));
        let reply = exchange(
            &blocker.ifname,
            &format!("set=1\nlisten_port={BUSY_PORT}\n\n"),
        );
        assert_eq!(wire_errno(&reply), Some(0), "blocker: {reply:?}");
        Rig {
            ft,
            _blocker: blocker,
            go,
            _ft_ns: ft_ns,
            _go_ns: go_ns,
        }
    }
}

/// A request that gives a daemon exactly `config` (and `port`, if given and not 0).
fn sync_text(config: &Config, port: Option<u16>) -> String {
    let zero = "0".repeat(64);
    let mut t = String::from("set=1\n");
    t += &format!(
        "private_key={}\nfwmark={}\nreplace_peers=true\n",
        config.private_key.as_deref().unwrap_or(&zero),
        config.fwmark
    );
    if let Some(p) = port.filter(|p| *p != 0) {
        t += &format!("listen_port={p}\n");
    }
    for (key, peer) in &config.peers {
        t += &format!(
            "public_key={key}\npreshared_key={}\npersistent_keepalive_interval={}\nreplace_allowed_ips=true\n",
            peer.preshared_key.as_deref().unwrap_or(&zero),
            peer.keepalive
        );
        if let Some(e) = peer.endpoint {
            t += &format!("endpoint={e}\n");
        }
        for ip in &peer.allowed_ips {
            t += &format!("allowed_ip={ip}\n");
        }
    }
    t + "\n"
}

fn config_or_panic(ifname: &str, context: &str) -> Config {
    get_config(ifname).unwrap_or_else(|e| panic!("{context}: get=1 failed: {e}"))
}

#[test]
fn random_set_operations_match_model_and_wireguard_go() {
    let seed = env_number("CONFIG_SAFETY_SEED").unwrap_or_else(|| rand::thread_rng().gen());
    let count = env_number("CONFIG_SAFETY_OPS").unwrap_or(1000);
    eprintln!("config_safety: seed {seed} ({count} ops; replay with CONFIG_SAFETY_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let pools = Pools::new(&mut rng);
    let rig = Rig::new();
    let ft = rig.ft.ifname.clone();
    let go = rig.go.ifname.clone();

    let mut model = Model::new();
    model
        .check(&config_or_panic(&ft, "start"))
        .unwrap_or_else(|d| panic!("fresh daemon is not empty: {d}"));
    // wireguard-go reports no port until one is set explicitly (and again after port 0).
    let mut go_port_comparable = false;
    let mut history: Vec<String> = Vec::new();
    let (mut valid, mut refused, mut busy, mut sent_to_go, mut resynced) = (0, 0, 0, 0, 0);
    let started = Instant::now();

    for i in 0..count {
        assert!(
            started.elapsed() < RUN_LIMIT,
            "seed {seed}: only {i} of {count} ops done in {RUN_LIMIT:?}"
        );
        let op = gen_op(&mut rng, &pools);
        let (text, expected, replay_on_go) = match &op {
            Op::Set(set) => {
                let outcome = model.apply(set, BUSY_PORT);
                let replay = outcome.is_ok();
                (set_text(&set.lines()), outcome, replay)
            }
            Op::Bad {
                op,
                at,
                line,
                errno,
            } => {
                let mut lines = op.lines();
                lines.insert(*at, line.clone());
                (set_text(&lines), Err(*errno), false)
            }
            Op::GetJunk(t) => (t.clone(), Err(EINVAL), false),
            Op::Unknown(t) => (t.clone(), Err(0), false),
        };
        let shown: String = text.chars().take(2000).collect();
        history.push(format!("op {i}: {shown:?}"));
        let context = || {
            let from = history.len().saturating_sub(6);
            format!(
                "seed {seed}, op {i} (replay with CONFIG_SAFETY_SEED={seed})\nlast ops:\n{}\nferrotun log: {}",
                history[from..].join("\n"),
                rig.ft.log
                    .display()
            )
        };

        let reply = exchange(&ft, &text);
        let got_errno = wire_errno(&reply);
        match (&op, &expected) {
            (Op::Unknown(_), _) => assert_eq!(
                reply,
                "",
                "{}\nan unknown operation must close the connection without a reply",
                context()
            ),
            (_, Ok(_)) => assert_eq!(got_errno, Some(0), "{}\nreply {reply:?}", context()),
            (_, Err(e)) => assert_eq!(
                got_errno,
                Some(-e),
                "{}\nreply {reply:?}: want errno=-{e}",
                context()
            ),
        }
        match expected {
            Ok(next) => {
                valid += 1;
                model = next;
            }
            Err(EADDRINUSE) => busy += 1,
            Err(_) => refused += 1,
        }
        let actual = config_or_panic(&ft, &context());
        if let Err(diff) = model.check(&actual) {
            panic!("{}\nferrotun differs from the model:\n{diff}", context());
        }

        if replay_on_go {
            if let Op::Set(set) = &op {
                // The packaged wireguard-go predates `allowed_ip=-`: instead of such a
                // request it gets ferrotun's resulting configuration, and comparing goes on.
                let go_text = if text.contains("\nallowed_ip=-") {
                    resynced += 1;
                    sync_text(&actual, set.listen_port())
                } else {
                    sent_to_go += 1;
                    text.clone()
                };
                let reply = exchange(&go, &go_text);
                assert_eq!(
                    wire_errno(&reply),
                    Some(0),
                    "{}\nwireguard-go refused a request ferrotun took: {go_text:?}: {reply:?}",
                    context()
                );
                if let Some(port) = set.listen_port() {
                    go_port_comparable = port != 0;
                }
                let mut go_config = config_or_panic(&go, &context());
                let mut ft_config = actual.clone();
                if !go_port_comparable {
                    go_config.listen_port = 0;
                    ft_config.listen_port = 0;
                }
                if go_config != ft_config {
                    panic!(
                        "{}\nwireguard-go (want) and ferrotun (got) differ:\n{}",
                        context(),
                        describe_difference(&go_config, &ft_config)
                    );
                }
            }
        }
    }
    let last = config_or_panic(&ft, "end");
    eprintln!(
        "config_safety: {count} ops in {:?}: {valid} applied, {refused} refused, {busy} EADDRINUSE, \
         {sent_to_go} replayed on wireguard-go ({resynced} resynced); {} peers, {} allowed IPs at the end",
        started.elapsed(),
        last.peers.len(),
        last.peers.values().map(|p| p.allowed_ips.len()).sum::<usize>()
    );
    // A run that never exercised the interesting paths would prove little.
    assert!(
        valid > count / 3 && refused > count / 5 && busy > 0,
        "seed {seed}: op mix too thin"
    );
}

/// Allowed IPs are reported in last-insertion order, as the kernel and wireguard-go report
/// them: re-adding a prefix moves it to the end, and so does taking it from another peer.
#[test]
fn allowed_ips_are_listed_in_last_insertion_order() {
    let rig = Rig::new();
    let a = hex(&[0x11; 32]);
    let b = hex(&[0x22; 32]);
    let steps = [
        format!("public_key={a}\nallowed_ip=10.0.0.0/24\nallowed_ip=10.0.1.0/24\nallowed_ip=fd00::/64\nallowed_ip=10.0.2.0/24\n"),
        // Re-adding (with host bits set) moves it to the end.
        format!("public_key={a}\nallowed_ip=10.0.0.9/24\n"),
        // Taken by b, then given back: to the end of a's list again.
        format!("public_key={b}\nallowed_ip=10.0.1.0/24\nallowed_ip=10.9.0.0/16\n"),
        format!("public_key={a}\nallowed_ip=10.0.1.0/24\nallowed_ip=fd00::1/64\n"),
        // Removal, by a prefix with host bits; a's removal of b's prefix does nothing.
        // (Only ferrotun: the packaged wireguard-go predates `allowed_ip=-`.)
        format!("public_key={a}\nallowed_ip=-10.0.0.3/24\nallowed_ip=-10.9.0.0/16\n"),
    ];
    for (ifname, step_count, want_a) in [
        (
            &rig.ft.ifname,
            steps.len(),
            &["10.0.2.0/24", "10.0.1.0/24", "fd00::/64"][..],
        ),
        (
            &rig.go.ifname,
            steps.len() - 1,
            &["10.0.2.0/24", "10.0.0.0/24", "10.0.1.0/24", "fd00::/64"][..],
        ),
    ] {
        for step in &steps[..step_count] {
            let reply = exchange(ifname, &format!("set=1\n{step}\n"));
            assert_eq!(wire_errno(&reply), Some(0), "{ifname}: {step:?}: {reply:?}");
        }
        let config = config_or_panic(ifname, ifname);
        let list = |key: &str| -> Vec<String> {
            config.peers[key]
                .allowed_ips
                .iter()
                .map(|p| p.to_string())
                .collect()
        };
        assert_eq!(list(&a), want_a, "{ifname}");
        assert_eq!(list(&b), ["10.9.0.0/16"], "{ifname}");
    }
}

/// A request that fails, whether on a bad line after many good ones or on a port in use,
/// leaves everything as it was. (wireguard-go would keep the lines before the bad one.)
#[test]
fn failed_request_changes_nothing() {
    let rig = Rig::new();
    let ft = &rig.ft.ifname;
    let key = hex(&[0x48; 32]);
    let (a, b) = (hex(&[0x11; 32]), hex(&[0x22; 32]));
    let psk = hex(&[0x33; 32]);
    let setup = format!(
        "set=1\nprivate_key={key}\nlisten_port=40001\nfwmark=5\npublic_key={a}\npreshared_key={psk}\n\
         endpoint=127.0.0.1:51001\nallowed_ip=10.0.0.0/24\npublic_key={b}\nallowed_ip=fd00::/64\n\n"
    );
    assert_eq!(wire_errno(&exchange(ft, &setup)), Some(0));
    let before = config_or_panic(ft, "setup");
    assert_eq!(before.peers.len(), 2);

    let good = format!(
        "private_key={}\nlisten_port=40002\nfwmark=9\nreplace_peers=true\npublic_key={a}\n\
         allowed_ip=0.0.0.0/0\nendpoint=[::1]:9\npublic_key={}\nallowed_ip=fd00::/64\n\
         public_key={b}\nremove=true",
        hex(&[0x49; 32]),
        hex(&[0x44; 32])
    );
    let cases = [
        (format!("set=1\n{good}\nprotocol_version=2\n\n"), -EINVAL),
        (
            format!("set=1\n{good}\nallowed_ip=10.0.0.0/33\n\n"),
            -EINVAL,
        ),
        (format!("set=1\n{good}\nnonsense\n\n"), -EPROTO),
        (
            format!(
                "set=1\n{}\n\n",
                good.replace("listen_port=40002", &format!("listen_port={BUSY_PORT}"))
            ),
            -EADDRINUSE,
        ),
    ];
    for (request, errno) in &cases {
        let reply = exchange(ft, request);
        assert_eq!(wire_errno(&reply), Some(*errno), "{request:?}: {reply:?}");
        let after = config_or_panic(ft, request);
        assert!(
            after == before,
            "{request:?} changed the configuration:\n{}",
            describe_difference(&before, &after)
        );
    }
    // The same request without the bad line goes through, so the cases above did test
    // something that would have changed the configuration.
    assert_eq!(
        wire_errno(&exchange(ft, &format!("set=1\n{good}\n\n"))),
        Some(0)
    );
    let applied = config_or_panic(ft, "good");
    assert_eq!(applied.listen_port, 40002);
    assert_eq!(applied.fwmark, 9);
    assert_eq!(applied.peers.len(), 2, "{applied:?}");
}

/// With lines in an order `wg` never sends, ferrotun keeps the kernel's flag semantics:
/// `remove`, `update_only` on a missing peer and `replace_allowed_ips` undo the whole
/// section's allowed IPs, so prefixes named before them stay with their owners. (wireguard-go
/// applies such lines one by one, and the prefixes are lost from their owners.)
#[test]
fn late_remove_or_replace_leaves_other_peers_prefixes_alone() {
    let rig = Rig::new();
    let ft = &rig.ft.ifname;
    let (a, b, c) = (hex(&[0x11; 32]), hex(&[0x22; 32]), hex(&[0x33; 32]));
    let steps = [
        format!("public_key={a}\nallowed_ip=10.0.0.0/24\nallowed_ip=10.0.1.0/24\nallowed_ip=10.0.2.0/24\n"),
        format!("public_key={b}\nallowed_ip=10.0.0.0/24\nremove=true\npublic_key={c}\nallowed_ip=10.0.1.0/24\nupdate_only=true\n"),
        format!("public_key={c}\nallowed_ip=10.0.2.0/24\nreplace_allowed_ips=true\n"),
    ];
    for step in &steps {
        let reply = exchange(ft, &format!("set=1\n{step}\n"));
        assert_eq!(wire_errno(&reply), Some(0), "{step:?}: {reply:?}");
    }
    let config = config_or_panic(ft, "after");
    let list: Vec<String> = config.peers[&a]
        .allowed_ips
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert_eq!(list, ["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"]);
    assert!(!config.peers.contains_key(&b));
    assert!(config.peers[&c].allowed_ips.is_empty(), "{config:?}");
}
