//! `ferrotun mesh` against a real 3-member etcd cluster (Debian's etcd-server), with nodes in
//! their own namespaces. The TTL is 3 s to keep the tests short.

mod common;

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::mesh::{within, Etcd, Node};
use common::unique_name;

/// One cluster and a handful of daemons at a time: the machine is shared.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const TTL: Duration = Duration::from_secs(3);

fn start_nodes(etcd: &Etcd, mesh: &str, first: u32, count: u32) -> Vec<Node> {
    (first..first + count)
        .map(|n| {
            let mut node = Node::new(etcd, n, &unique_name("fm"));
            node.up(mesh, etcd, &[]);
            node
        })
        .collect()
}

/// Nodes 1..=`count` of `mesh`, started and waited for until each has every other as a peer.
fn start_full_mesh(etcd: &Etcd, mesh: &str, count: u32) -> Vec<Node> {
    let nodes = start_nodes(etcd, mesh, 1, count);
    let refs: Vec<&Node> = nodes.iter().collect();
    wait_full_mesh(&refs, Duration::from_secs(20));
    nodes
}

/// Waits until every node has every other as a peer; returns how long that took.
fn wait_full_mesh(nodes: &[&Node], timeout: Duration) -> Duration {
    let keys: Vec<String> = nodes.iter().map(|n| n.public_key()).collect();
    within(timeout, || {
        nodes.iter().enumerate().all(|(i, n)| {
            let peers: BTreeSet<String> = n.peers().into_iter().collect();
            keys.iter()
                .enumerate()
                .all(|(j, k)| i == j || peers.contains(k))
        })
    })
    .unwrap_or_else(|| {
        let logs: Vec<String> = nodes.iter().map(|n| n.log_text()).collect();
        panic!(
            "no full mesh within {timeout:?}:\n{}",
            logs.join("\n----\n")
        )
    })
}

fn assert_all_pairs_ping(nodes: &[&Node], v6: bool) {
    for a in nodes {
        for b in nodes {
            if a.ifname == b.ifname {
                continue;
            }
            let addr = if v6 {
                b.address6().unwrap()
            } else {
                b.address().unwrap()
            };
            assert!(
                a.ns.ping_until(&addr, Duration::from_secs(5)),
                "{} cannot ping {addr}",
                a.ifname
            );
        }
    }
}

#[test]
fn five_nodes_form_a_full_mesh_v4_and_v6() {
    let _guard = serial();
    let etcd = Etcd::start();
    let mesh = unique_name("mesh");
    let mut nodes = start_full_mesh(&etcd, &mesh, 4);
    // The fifth joins a running mesh: how long until all the others reach it.
    let start = Instant::now();
    nodes.extend(start_nodes(&etcd, &mesh, 5, 1));
    let newcomer = &nodes[4];
    let addr = newcomer.wait_address(Duration::from_secs(10));
    for other in &nodes[..4] {
        assert!(
            other.ns.ping_until(&addr, Duration::from_secs(10)),
            "{} never reached {addr}",
            other.ifname
        );
    }
    eprintln!(
        "FIGURE: 5-node mesh: newcomer reachable from all others after {:?}",
        start.elapsed()
    );
    let refs: Vec<&Node> = nodes.iter().collect();
    wait_full_mesh(&refs, Duration::from_secs(10));
    let addrs: BTreeSet<String> = nodes.iter().map(|n| n.address().unwrap()).collect();
    assert_eq!(addrs.len(), 5);
    assert_all_pairs_ping(&refs, false);
    assert_all_pairs_ping(&refs, true);
}

#[test]
fn ten_nodes_joining_at_once_get_distinct_addresses() {
    let _guard = serial();
    let etcd = Etcd::start();
    let mesh = unique_name("mesh");
    // Namespaces first, then every agent started back to back.
    let mut nodes: Vec<Node> = (1..=10)
        .map(|n| Node::new(&etcd, n, &unique_name("fm")))
        .collect();
    for node in &mut nodes {
        node.up(&mesh, &etcd, &[]);
    }
    let addrs: Vec<String> = nodes
        .iter()
        .map(|n| n.wait_address(Duration::from_secs(30)))
        .collect();
    let distinct: BTreeSet<&String> = addrs.iter().collect();
    assert_eq!(distinct.len(), 10, "addresses handed out twice: {addrs:?}");
    // And etcd agrees: ten claims, ten owners.
    let out = etcd.etcdctl(&["get", "--prefix", &format!("/ferrotun/mesh/{mesh}/addrs/")]);
    let text = String::from_utf8_lossy(&out.stdout);
    let owners: BTreeSet<&str> = text.lines().skip(1).step_by(2).collect();
    assert_eq!(owners.len(), 10, "{text}");
    let refs: Vec<&Node> = nodes.iter().collect();
    wait_full_mesh(&refs, Duration::from_secs(30));
}

#[test]
fn killed_node_leaves_within_the_ttl_and_returns_with_its_address() {
    let _guard = serial();
    let etcd = Etcd::start();
    let mesh = unique_name("mesh");
    let mut nodes = start_full_mesh(&etcd, &mesh, 3);
    let victim_key = nodes[2].public_key();
    let victim_addr = nodes[2].address().unwrap();
    let killed = Instant::now();
    nodes[2].kill_agent();
    for other in &nodes[..2] {
        let left = within(
            TTL + Duration::from_secs(2) - killed.elapsed().min(TTL),
            || !other.peers().contains(&victim_key),
        );
        assert!(
            left.is_some(),
            "{} still has the dead node after TTL + 2 s",
            other.ifname
        );
    }
    let gone_after = killed.elapsed();
    assert!(gone_after <= TTL + Duration::from_secs(2), "{gone_after:?}");
    eprintln!("FIGURE: SIGKILLed node gone from every peer after {gone_after:?} (TTL {TTL:?})");

    nodes[2].start();
    let refs: Vec<&Node> = nodes.iter().collect();
    wait_full_mesh(&refs, Duration::from_secs(20));
    assert_eq!(nodes[2].wait_address(Duration::from_secs(5)), victim_addr);
    for other in &nodes[..2] {
        assert!(
            other.ns.ping_until(&victim_addr, Duration::from_secs(10)),
            "{} cannot reach the restarted node",
            other.ifname
        );
    }
}

/// Pings `addr` every 100 ms for `duration`; returns (sent, answered).
fn ping_run(node: &Node, addr: &str, duration: Duration) -> (u32, u32) {
    let count = (duration.as_millis() / 100).to_string();
    let out = node
        .ns
        .try_exec("ping", &["-i", "0.1", "-W", "1", "-c", &count, addr]);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_default()
        .to_string();
    let nums: Vec<u32> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|t| t.parse().ok())
        .collect();
    (
        nums.first().copied().unwrap_or(0),
        nums.get(1).copied().unwrap_or(0),
    )
}

#[test]
fn etcd_outage_keeps_tunnels_and_the_mesh_resynchronises() {
    let _guard = serial();
    let mut etcd = Etcd::start();
    let mesh = unique_name("mesh");
    let mut nodes = start_full_mesh(&etcd, &mesh, 2);

    // One member down: a new node still joins and everyone sees it.
    etcd.kill_member(0);
    nodes.extend(start_nodes(&etcd, &mesh, 3, 1));
    let refs: Vec<&Node> = nodes.iter().collect();
    wait_full_mesh(&refs, Duration::from_secs(30));

    // Every member down: pings between existing nodes go on without a gap, for longer than
    // the TTL (the agents cannot renew; nothing may be torn down).
    let target = nodes[1].address().unwrap();
    assert!(nodes[0].ns.ping_until(&target, Duration::from_secs(5)));
    let b_key = nodes[1].public_key();
    let handshake_with_b = |n: &Node| {
        show_field(n, "latest-handshakes")
            .into_iter()
            .find(|(k, _)| *k == b_key)
            .map(|(_, v)| v)
    };
    let before = handshake_with_b(&nodes[0]);
    let pinger = std::thread::scope(|s| {
        let h = s.spawn(|| ping_run(&nodes[0], &target, Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(500));
        etcd.kill_member(1);
        etcd.kill_member(2);
        h.join().unwrap()
    });
    assert!(pinger.0 >= 90, "ping ran short: {pinger:?}");
    assert_eq!(
        pinger.0, pinger.1,
        "pings lost while etcd was down: {pinger:?}"
    );
    for n in &nodes {
        assert_eq!(
            n.peers().len(),
            2,
            "{} lost peers while etcd was down",
            n.ifname
        );
    }

    // Back: the agents resynchronise, and a node added now is seen by everyone.
    for i in 0..3 {
        etcd.start_member(i);
    }
    assert!(
        etcd.wait_healthy(Duration::from_secs(30)),
        "{}",
        etcd.logs()
    );
    nodes.extend(start_nodes(&etcd, &mesh, 4, 1));
    let refs: Vec<&Node> = nodes.iter().collect();
    wait_full_mesh(&refs, Duration::from_secs(30));
    let newcomer = nodes[3].address().unwrap();
    for other in &nodes[..3] {
        assert!(other.ns.ping_until(&newcomer, Duration::from_secs(10)));
    }
    // The resynchronisation did not redo the session between A and B.
    assert_eq!(
        before,
        handshake_with_b(&nodes[0]),
        "the A-B session was torn down:\n{}\n----\n{}",
        nodes[0].log_text(),
        nodes[1].log_text()
    );
}

/// Peers added and removed according to the agent's "peers: N (+A -R, ...)" lines in `log`.
fn peer_changes(log: &str) -> (u32, u32) {
    let mut total = (0, 0);
    for line in log.lines() {
        let Some((_, rest)) = line.split_once("peers: ") else {
            continue;
        };
        let Some((_, counts)) = rest.split_once('(') else {
            continue;
        };
        let mut it = counts.split([' ', ',']);
        let num = |t: Option<&str>, sign: char| -> u32 {
            t.and_then(|t| t.strip_prefix(sign)?.parse().ok())
                .unwrap_or(0)
        };
        total.0 += num(it.next(), '+');
        total.1 += num(it.next(), '-');
    }
    total
}

/// An etcd outage longer than the TTL expires every lease, so every record goes; the first
/// agent back must not drop the others before they re-register. A node that died during the
/// outage, or after it, still leaves every peer list.
#[test]
fn etcd_partition_longer_than_the_ttl_removes_only_dead_nodes() {
    let _guard = serial();
    let etcd = Etcd::start();
    let mesh = unique_name("mesh");
    let mut nodes = start_full_mesh(&etcd, &mesh, 5);
    let keys: Vec<String> = nodes.iter().map(|n| n.public_key()).collect();
    // Nodes 0-2 and 4 live through the outage (4 dies after it), node 3 dies during it.
    let live = [0, 1, 2, 4];
    // A session between every pair that lives, so there are handshakes to compare.
    let refs: Vec<&Node> = live.iter().map(|&i| &nodes[i]).collect();
    assert_all_pairs_ping(&refs, false);
    let handshakes = |nodes: &[Node]| -> Vec<Vec<(String, String)>> {
        live.iter()
            .map(|&i| {
                show_field(&nodes[i], "latest-handshakes")
                    .into_iter()
                    .filter(|(k, _)| live.iter().any(|&j| keys[j] == *k))
                    .collect()
            })
            .collect()
    };
    let before = handshakes(&nodes);
    let log_marks: Vec<usize> = nodes.iter().map(|n| n.log_text().len()).collect();

    let target = nodes[1].address().unwrap();
    let outage = Duration::from_secs(9);
    let (pings, dead_gone_after) = std::thread::scope(|s| {
        let pinger = s.spawn(|| ping_run(&nodes[0], &target, Duration::from_secs(19)));
        std::thread::sleep(Duration::from_millis(500));
        let frozen = etcd.freeze();
        std::thread::sleep(Duration::from_secs(3));
        // By pid: the node keeps its child, and reaps it when it goes.
        let victim = nodes[3].agent_pid().to_string();
        assert!(std::process::Command::new("kill")
            .args(["-KILL", &victim])
            .status()
            .unwrap()
            .success());
        std::thread::sleep(outage - Duration::from_secs(3));
        drop(frozen);
        // Removals wait TTL + 3 s after the agent reconnects, which takes it 0-2 s (an
        // attempt timing out, then a retry TTL/3 later), or more while etcd elects a leader.
        let gone = within(TTL + Duration::from_secs(3 + 4), || {
            live.iter().all(|&i| !nodes[i].peers().contains(&keys[3]))
        });
        // Timed from etcd's return, not from the pinger's end.
        (pinger.join().unwrap(), gone)
    });
    let logs = |nodes: &[Node]| {
        nodes
            .iter()
            .map(|n| n.log_text())
            .collect::<Vec<_>>()
            .join("\n----\n")
    };
    let Some(dead_gone_after) = dead_gone_after else {
        panic!(
            "the node killed during the outage stayed a peer:\n{}",
            logs(&nodes)
        );
    };
    eprintln!(
        "FIGURE: {outage:?} etcd outage (TTL {TTL:?}): node killed during it gone from every peer {dead_gone_after:?} after etcd returned; pings {}/{} answered",
        pings.1, pings.0
    );
    assert!(pings.0 >= 180, "ping ran short: {pings:?}");
    assert_eq!(pings.0, pings.1, "pings lost: {pings:?}\n{}", logs(&nodes));
    for &i in &live {
        let (added, removed) = peer_changes(&nodes[i].log_text()[log_marks[i]..]);
        assert_eq!(
            (added, removed),
            (0, 1),
            "{}: peers re-added or removed other than the dead one:\n{}",
            nodes[i].ifname,
            nodes[i].log_text()
        );
    }
    assert_eq!(
        before,
        handshakes(&nodes),
        "sessions were re-created:\n{}",
        logs(&nodes)
    );

    // After the outage a death is noticed within the TTL again.
    let killed = Instant::now();
    nodes[4].kill_agent();
    let gone = within(TTL + Duration::from_secs(2), || {
        nodes[..3].iter().all(|n| !n.peers().contains(&keys[4]))
    });
    assert!(
        gone.is_some(),
        "the node killed after the outage stayed a peer:\n{}",
        logs(&nodes)
    );
    eprintln!(
        "FIGURE: node killed after the outage gone from every peer after {:?}",
        killed.elapsed()
    );
}

#[test]
fn bad_records_in_etcd_are_ignored_and_never_crash_the_agent() {
    let _guard = serial();
    let etcd = Etcd::start();
    let mesh = unique_name("mesh");
    let mut nodes = start_full_mesh(&etcd, &mesh, 2);
    let prefix = format!("/ferrotun/mesh/{mesh}/");
    let key = "0101010101010101010101010101010101010101010101010101010101010101";
    let b64 = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
    let good = |addr: &str| {
        format!(
            r#"{{"public_key":"{b64}","name":"x","address":"{addr}","endpoints":["10.99.9.9:51820"]}}"#
        )
    };
    let puts = [
        (format!("{prefix}nodes/{key}"), "{not json".to_string()),
        (format!("{prefix}nodes/nothex"), good("10.77.0.200")),
        (format!("{prefix}addrs/200"), key.to_string()),
        // An address outside the CIDR, and one claimed by another node (1 and 2 are taken).
        (format!("{prefix}nodes/{key}"), good("10.78.0.200")),
        (format!("{prefix}nodes/{key}"), good("10.77.0.2")),
        (format!("{prefix}addrs/bad"), key.to_string()),
        (format!("{prefix}junk"), "\u{1}\u{2}".to_string()),
    ];
    for (k, v) in &puts {
        let out = etcd.etcdctl(&["put", k, v]);
        assert!(out.status.success(), "{out:?}");
        std::thread::sleep(Duration::from_millis(200));
        for n in &nodes {
            assert_eq!(
                n.peers().len(),
                1,
                "{} applied a bad record {k}={v}",
                n.ifname
            );
            assert!(n.agent.as_ref().is_some());
        }
    }
    for n in &mut nodes {
        assert!(
            n.agent.as_mut().unwrap().try_wait().unwrap().is_none(),
            "agent died: {}",
            n.log_text()
        );
        assert!(
            n.log_text().contains("ignoring"),
            "bad data not logged: {}",
            n.log_text()
        );
    }
    // The record claiming 10.77.0.2 is logged once, with the key and the claim's owner, also
    // after a resync (a pause longer than a renewal's bound makes every agent reconnect and
    // read the prefix again).
    let owner = nodes
        .iter()
        .find(|n| n.address().as_deref() == Some("10.77.0.2"))
        .unwrap()
        .public_key();
    let conflict = format!(
        "ignoring node record \"{prefix}nodes/{key}\": its address 10.77.0.2 is claimed by {owner}"
    );
    let sessions = |n: &Node| n.log_text().matches("watching from revision").count();
    let before: Vec<usize> = nodes.iter().map(sessions).collect();
    {
        let _frozen = etcd.freeze();
        std::thread::sleep(Duration::from_secs(2));
    }
    assert!(
        within(Duration::from_secs(10), || nodes
            .iter()
            .zip(&before)
            .all(|(n, &b)| sessions(n) > b))
        .is_some(),
        "no resync after the pause"
    );
    for n in &nodes {
        assert_eq!(
            n.log_text().matches(&conflict).count(),
            1,
            "{conflict:?} not logged exactly once: {}",
            n.log_text()
        );
    }
    // The same key with a valid record and its own claim is accepted.
    assert!(etcd
        .etcdctl(&["put", &format!("{prefix}nodes/{key}"), &good("10.77.0.200")])
        .status
        .success());
    assert!(
        within(Duration::from_secs(5), || nodes
            .iter()
            .all(|n| n.peers().len() == 2))
        .is_some(),
        "a valid record was not applied"
    );
}

fn rss_kib(pid: u32) -> u64 {
    ferrotun_testkit::sampler::rss_kib(pid).unwrap_or(0)
}

/// README figures (run by hand: `cargo test -p ferrotun --test mesh figures -- --ignored
/// --nocapture`): join time with 50 registrations (45 written by the test, 5 real agents),
/// the agent's memory, and etcd writes per node per minute at steady state.
#[test]
#[ignore]
fn figures_fifty_nodes() {
    use ferrotun_proto::keys::PublicKey;
    let _guard = serial();
    let etcd = Etcd::start();
    let mesh = unique_name("mesh");
    let prefix = format!("/ferrotun/mesh/{mesh}/");
    for i in 0..45u32 {
        let mut bytes = [0u8; 32];
        bytes[..4].copy_from_slice(&(i + 1000).to_le_bytes());
        let pk = PublicKey::from_bytes(bytes);
        let index = 100 + i;
        let record = format!(
            r#"{{"public_key":"{}","name":"fake{i}","address":"10.77.0.{index}","address6":"fd77::{index:x}","endpoints":["10.99.200.{}:51820"]}}"#,
            pk.to_base64(),
            i + 1
        );
        assert!(etcd
            .etcdctl(&["put", &format!("{prefix}addrs/{index}"), &pk.to_hex()])
            .status
            .success());
        assert!(etcd
            .etcdctl(&["put", &format!("{prefix}nodes/{}", pk.to_hex()), &record])
            .status
            .success());
    }
    let mut nodes = start_nodes(&etcd, &mesh, 1, 4);
    assert!(within(Duration::from_secs(30), || nodes
        .iter()
        .all(|n| n.peers().len() == 48))
    .is_some());
    let start = Instant::now();
    nodes.extend(start_nodes(&etcd, &mesh, 5, 1));
    let addr = nodes[4].wait_address(Duration::from_secs(10));
    for other in &nodes[..4] {
        assert!(other.ns.ping_until(&addr, Duration::from_secs(10)));
    }
    eprintln!(
        "FIGURE: 50-node mesh: newcomer reachable from all others after {:?}",
        start.elapsed()
    );
    assert!(within(Duration::from_secs(10), || nodes
        .iter()
        .all(|n| n.peers().len() == 49))
    .is_some());

    // Steady state: no joins, no leaves.
    std::thread::sleep(Duration::from_secs(3));
    let writes = |e: &Etcd| e.metric(0, "etcd_server_proposals_committed_total");
    let renewals = |e: &Etcd| {
        (0..3)
            .map(|i| e.metric(i, "etcd_debugging_lease_renewed_total"))
            .sum::<f64>()
    };
    let (w0, r0) = (writes(&etcd), renewals(&etcd));
    let window = Duration::from_secs(30);
    std::thread::sleep(window);
    let (w1, r1) = (writes(&etcd), renewals(&etcd));
    let per_min = 60.0 / window.as_secs_f64() / 5.0;
    eprintln!(
        "FIGURE: steady state, TTL 3 s: {:.1} raft proposals and {:.1} lease renewals per node per minute",
        (w1 - w0) * per_min,
        (r1 - r0) * per_min
    );
    for n in &nodes {
        eprintln!(
            "FIGURE: agent RSS with 49 peers: {} KiB",
            rss_kib(n.agent_pid())
        );
    }
}

/// `wg show IF DUMP-FIELD` as (peer, value) pairs.
fn show_field(node: &Node, field: &str) -> Vec<(String, String)> {
    let out = node
        .ns
        .try_exec(common::ferrotun_bin(), &["show", &node.ifname, field]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut it = l.splitn(2, '\t');
            Some((it.next()?.to_string(), it.next()?.to_string()))
        })
        .collect()
}

#[test]
fn joins_leave_running_sessions_alone_and_down_leaves_at_once() {
    let _guard = serial();
    let etcd = Etcd::start();
    let mesh = unique_name("mesh");
    let mut nodes = start_full_mesh(&etcd, &mesh, 2);
    let b_addr = nodes[1].address().unwrap();
    assert!(nodes[0].ns.ping_until(&b_addr, Duration::from_secs(5)));
    let b_key = nodes[1].public_key();
    let before_hs = show_field(&nodes[0], "latest-handshakes");
    let before_tx = show_field(&nodes[0], "transfer");

    // A third node joins: A's session with B is not touched (same handshake, counters kept).
    nodes.extend(start_nodes(&etcd, &mesh, 3, 1));
    let refs: Vec<&Node> = nodes.iter().collect();
    wait_full_mesh(&refs, Duration::from_secs(20));
    let after_hs = show_field(&nodes[0], "latest-handshakes");
    let after_tx = show_field(&nodes[0], "transfer");
    let pick = |v: &[(String, String)]| v.iter().find(|(k, _)| *k == b_key).map(|(_, x)| x.clone());
    assert_eq!(
        pick(&before_hs),
        pick(&after_hs),
        "the session with B was redone"
    );
    let bytes = |s: Option<String>| -> u64 {
        s.unwrap_or_default()
            .split_whitespace()
            .map(|t| t.parse::<u64>().unwrap_or(0))
            .sum()
    };
    assert!(
        bytes(pick(&after_tx)) >= bytes(pick(&before_tx)) && bytes(pick(&before_tx)) > 0,
        "counters reset"
    );

    // `mesh status` shows the node's view.
    let status = nodes[0].ns.exec_stdout(
        common::ferrotun_bin(),
        &[
            "mesh",
            "status",
            &mesh,
            "--state-dir",
            &nodes[0].state.to_string_lossy(),
        ],
    );
    assert!(
        status.contains("etcd: connected") && status.contains("peers: 2"),
        "{status}"
    );
    assert!(status.contains(&b_addr), "{status}");

    // `mesh down` on C: it deregisters at once (well before the TTL) and its interface goes.
    let c_key = nodes[2].public_key();
    let down = Instant::now();
    nodes[2].ns.exec(
        common::ferrotun_bin(),
        &[
            "mesh",
            "down",
            &mesh,
            "--state-dir",
            &nodes[2].state.to_string_lossy(),
        ],
    );
    let gone = within(Duration::from_secs(5), || {
        nodes[..2].iter().all(|n| !n.peers().contains(&c_key))
    });
    assert!(gone.is_some());
    assert!(down.elapsed() < TTL, "left only after {:?}", down.elapsed());
    let links = nodes[2].ns.exec_stdout("ip", &["-o", "link"]);
    assert!(!links.contains(&nodes[2].ifname), "{links}");
    let agent = nodes[2].agent.as_mut().unwrap();
    assert!(common::process::wait_exit(agent, Duration::from_secs(5)).is_some_and(|s| s.success()));
}

#[test]
fn etcd_authentication_is_the_access_control() {
    let _guard = serial();
    let etcd = Etcd::start();
    let mesh = unique_name("mesh");
    let role = format!("{mesh}-node");
    let password = "correct-horse-battery";
    // The README's set-up, command for command.
    let setup: Vec<Vec<String>> = vec![
        vec![
            "user".into(),
            "add".into(),
            "root".into(),
            "--new-user-password=rootpw".into(),
        ],
        vec!["role".into(), "add".into(), role.clone()],
        vec![
            "role".into(),
            "grant-permission".into(),
            role.clone(),
            "--prefix=true".into(),
            "readwrite".into(),
            format!("/ferrotun/mesh/{mesh}/"),
        ],
        vec![
            "user".into(),
            "add".into(),
            role.clone(),
            format!("--new-user-password={password}"),
        ],
        vec![
            "user".into(),
            "grant-role".into(),
            role.clone(),
            role.clone(),
        ],
        vec!["auth".into(), "enable".into()],
    ];
    for args in &setup {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = etcd.etcdctl(&args);
        assert!(out.status.success(), "etcdctl {args:?}: {out:?}");
    }
    let dir = std::env::temp_dir().join(unique_name("mpw"));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good");
    let bad = dir.join("bad");
    std::fs::write(&good, format!("{password}\n")).unwrap();
    std::fs::write(&bad, "wrong\n").unwrap();
    let with = |file: &std::path::Path| -> Vec<String> {
        vec![
            "--etcd-user".into(),
            role.clone(),
            "--etcd-password-file".into(),
            file.to_string_lossy().into_owned(),
        ]
    };
    let mut nodes: Vec<Node> = (1..=3)
        .map(|n| Node::new(&etcd, n, &unique_name("fm")))
        .collect();
    for (i, node) in nodes.iter_mut().enumerate() {
        let args = with(if i < 2 { &good } else { &bad });
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        node.up(&mesh, &etcd, &args);
    }
    let refs: Vec<&Node> = nodes[..2].iter().collect();
    wait_full_mesh(&refs, Duration::from_secs(20));
    // The node with the wrong password never gets in, and says why.
    std::thread::sleep(Duration::from_secs(2));
    for n in &nodes[..2] {
        assert_eq!(
            n.peers().len(),
            1,
            "{} took in a node without credentials",
            n.ifname
        );
    }
    assert!(nodes[2].address().is_none());
    let log = nodes[2].log_text();
    assert!(
        log.contains("authentication failed") || log.contains("invalid"),
        "{log}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn etcd_over_tls_with_client_certificates() {
    let _guard = serial();
    let etcd = Etcd::start_with(true);
    let mesh = unique_name("mesh");
    let tls = etcd.tls_args("etcd-");
    let tls: Vec<&str> = tls.iter().map(String::as_str).collect();
    let mut nodes: Vec<Node> = (1..=2)
        .map(|n| Node::new(&etcd, n, &unique_name("fm")))
        .collect();
    for node in &mut nodes {
        node.up(&mesh, &etcd, &tls);
    }
    let refs: Vec<&Node> = nodes.iter().collect();
    wait_full_mesh(&refs, Duration::from_secs(20));
    let b = nodes[1].address().unwrap();
    assert!(nodes[0].ns.ping_until(&b, Duration::from_secs(5)));
    // Without the client certificate the cluster refuses the agent.
    let mut stranger = Node::new(&etcd, 3, &unique_name("fm"));
    stranger.up(&mesh, &etcd, &tls[..1]);
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        stranger.address().is_none(),
        "joined without a client certificate"
    );
    assert_eq!(nodes[0].peers().len(), 1);
}
