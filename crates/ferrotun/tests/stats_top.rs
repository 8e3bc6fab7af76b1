//! `ferrotun stats` and `ferrotun top` against running daemons: the counters after a known
//! transfer agree with `wg show dump`; a wireguard-go daemon is reported as keeping no
//! counters (and `show` still works on it); `top` runs in a real terminal (tmux), shows
//! the peer's rates during a transfer, quits on q, Ctrl-C and Esc and leaves the terminal as
//! it found it, also when the daemon goes away; it keeps the rates, handshakes, drops and
//! the key that quits at 80x24 as at 200x50; bad arguments are usage errors.
//! Needs root, `wg`, `wireguard-go`, `tmux`, `iperf3`, `nc`, `ping` and `sha256sum`.

mod common;

use common::tunnel::{Impl, Keypair, Tunnel};
use common::{ferrotun_bin, have_root, require_tool, text, unique_name, Netns};
use ferrotun_testkit::iperf::listening;
use ferrotun_testkit::process::eventually;
use ferrotun_testkit::transfer::Reaper;
use serde_json::Value;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const FIRST_PING: Duration = Duration::from_secs(20);
const MB: u64 = 1 << 20;

/// `ferrotun ARGS` in `ns`, bounded in time.
fn ferrotun(ns: &Netns, args: &[&str]) -> Output {
    ns.command("timeout")
        .arg("30")
        .arg(ferrotun_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ferrotun")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `ferrotun stats IF --json`, parsed.
fn stats_json(ns: &Netns, ifname: &str) -> Value {
    let out = ferrotun(ns, &["stats", ifname, "--json"]);
    assert!(out.status.success(), "stats --json: {}", text(&out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stats --json is not JSON ({e}): {}", text(&out)))
}

fn peer_of<'a>(stats: &'a Value, public: &str) -> &'a Value {
    stats["peers"]
        .as_array()
        .and_then(|peers| peers.iter().find(|p| p["public_key"] == public))
        .unwrap_or_else(|| panic!("no peer {public} in {stats:#}"))
}

fn number(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// wg's byte format, written again here so the test does not check the code with itself.
fn wg_bytes(b: u64) -> String {
    let units = [
        (1u64 << 40, "TiB"),
        (1 << 30, "GiB"),
        (1 << 20, "MiB"),
        (1 << 10, "KiB"),
    ];
    for (size, unit) in units {
        if b >= size {
            return format!("{:.2} {unit}", b as f64 / size as f64);
        }
    }
    format!("{b} B")
}

/// A peer's (rx, tx, latest handshake) from `wg show IF dump`.
fn dump_peer(side: &common::tunnel::Side, public: &str) -> (u64, u64, u64) {
    let dump = side.show("dump");
    let line = dump
        .lines()
        .skip(1)
        .find(|l| l.starts_with(public))
        .unwrap_or_else(|| panic!("no peer {public} in dump: {dump}"));
    let f: Vec<&str> = line.split('\t').collect();
    let n = |i: usize| {
        f[i].parse::<u64>()
            .unwrap_or_else(|_| panic!("dump: {line}"))
    };
    (n(5), n(6), n(4))
}

#[test]
fn stats_match_wg_show_after_a_transfer() {
    if !have_root() {
        return;
    }
    let t = Tunnel::new(Impl::Ferrotun, Impl::Ferrotun);
    t.ping(&t.a, t.b.addrs.inner4, FIRST_PING);
    let done = common::transfer::tcp_transfer(
        &t.a.ns,
        &t.b.ns,
        t.b.addrs.inner4,
        5001,
        4 * MB,
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", t.logs()));
    assert_eq!(done.sent_sha256, done.received_sha256);

    for (side, other) in [(&t.a, &t.b), (&t.b, &t.a)] {
        let ifname = side.ifname().to_string();
        let public = other.keys.public.clone();
        // A keepalive may move the counters between two readings: compare a dump taken
        // between two identical readings of stats.
        let deadline = Instant::now() + Duration::from_secs(30);
        let (json, human) = loop {
            let first = stats_json(&side.ns, &ifname);
            let human = stdout(&ferrotun(&side.ns, &["stats", &ifname]));
            let (rx, tx, handshake) = dump_peer(side, &public);
            let second = stats_json(&side.ns, &ifname);
            let p = peer_of(&first, &public);
            if first == second {
                assert_eq!(
                    (number(&p["rx_bytes"]), number(&p["tx_bytes"])),
                    (rx, tx),
                    "stats and wg show dump disagree on {ifname}: {first:#}"
                );
                assert_eq!(number(&p["last_handshake"]), handshake);
                break (first, human);
            }
            assert!(Instant::now() < deadline, "counters never held still");
        };
        eprintln!("ferrotun stats {ifname}:\n{human}");
        assert_eq!(json["interface"], ifname.as_str());
        assert_eq!(number(&json["listen_port"]), u64::from(side.addrs.port));
        let p = peer_of(&json, &public);
        let (rx, tx) = (number(&p["rx_bytes"]), number(&p["tx_bytes"]));
        // 4 MiB went from a to b: each side counted it its way.
        let bulk = if std::ptr::eq(side, &t.a) { tx } else { rx };
        assert!(bulk >= 4 * MB, "{ifname}: {json:#}");
        for key in ["received_packets", "sent_packets"] {
            assert!(number(&p["counters"][key]) > 0, "peer {key}: {json:#}");
            assert!(number(&json["counters"][key]) > 0, "device {key}: {json:#}");
        }
        let completed = number(&json["counters"]["handshakes_completed.initiator"])
            + number(&json["counters"]["handshakes_completed.responder"]);
        assert!(completed >= 1, "{json:#}");

        // The readable form: the interface, the peer, its transfer as wg writes it.
        assert!(
            human.starts_with(&format!("interface: {ifname}\n")),
            "{human}"
        );
        assert!(human.contains(&format!("\npeer: {public}\n")), "{human}");
        let transfer = format!("transfer: {} received, {} sent", wg_bytes(rx), wg_bytes(tx));
        assert!(human.contains(&transfer), "no `{transfer}` in:\n{human}");
        assert!(human.contains("latest handshake: "), "{human}");
        assert!(!human.contains('\x1b'), "colours in a pipe: {human:?}");
    }

    // Without a name: every interface, both of ours among them (other tests' daemons may
    // be listed too: the socket directory is shared).
    let all = ferrotun(&t.a.ns, &["stats", "--json"]);
    assert!(all.status.success(), "{}", text(&all));
    let list: Value = serde_json::from_slice(&all.stdout).expect("JSON array");
    let names: Vec<&str> = list
        .as_array()
        .expect("an array")
        .iter()
        .filter_map(|s| s["interface"].as_str())
        .collect();
    for side in [&t.a, &t.b] {
        assert!(names.contains(&side.ifname()), "{names:?}");
    }
    let human = stdout(&ferrotun(&t.a.ns, &["stats"]));
    for side in [&t.a, &t.b] {
        assert!(
            human.contains(&format!("interface: {}\n", side.ifname())),
            "{human}"
        );
    }

    // top needs a terminal: with stdout a pipe it refuses and says what to use instead.
    let out = ferrotun(&t.a.ns, &["top", t.a.ifname()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(stderr(&out).contains("needs a terminal"), "{}", text(&out));
    assert!(stderr(&out).contains("stats --json"), "{}", text(&out));
}

#[test]
fn wireguard_go_keeps_no_counters_and_show_still_works() {
    if !have_root() {
        return;
    }
    let ns = Netns::new("stg");
    let ifname = unique_name("stgo");
    let _daemon = Impl::WireguardGo.start(&ns, &ifname);
    for args in [
        vec!["stats", ifname.as_str()],
        vec!["stats", ifname.as_str(), "--json"],
        vec!["top", ifname.as_str()],
    ] {
        let out = ferrotun(&ns, &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!(
                "the daemon serving {ifname} does not report counters"
            )) && err.contains("wireguard-go"),
            "{args:?}: {}",
            text(&out)
        );
    }
    // Every interface: this one is named as keeping no counters, the others still shown.
    let all = ferrotun(&ns, &["stats"]);
    assert!(
        stderr(&all).contains(&format!(
            "the daemon serving {ifname} does not report counters"
        )),
        "{}",
        text(&all)
    );
    assert!(
        !stdout(&all).contains(&format!("interface: {ifname}\n")),
        "{}",
        text(&all)
    );
    // The connection stats=1 closed did not upset the daemon: show and wg still work.
    let show = ferrotun(&ns, &["show", &ifname]);
    assert!(show.status.success(), "{}", text(&show));
    assert!(stdout(&show).starts_with(&format!("interface: {ifname}\n")));
    let wg = ns.wg_ok(&["show", &ifname, "listen-port"]);
    assert!(wg.parse::<u16>().is_ok(), "{wg}");
}

#[test]
fn no_daemon_and_bad_arguments() {
    let missing = unique_name("nodaemon");
    let here = |args: &[&str]| {
        Command::new(ferrotun_bin())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run ferrotun")
    };
    // The words wg uses for an interface that is not there.
    let show = here(&["show", &missing]);
    assert_eq!(show.status.code(), Some(1), "{}", text(&show));
    let stats = here(&["stats", &missing]);
    assert_eq!(stats.status.code(), Some(1), "{}", text(&stats));
    assert_eq!(stderr(&stats), stderr(&show));
    assert_eq!(
        stderr(&stats),
        "Unable to access interface: No such file or directory\n"
    );
    let top = here(&["top", &missing]);
    assert_eq!(top.status.code(), Some(1), "{}", text(&top));
    assert!(
        stderr(&top).contains(stderr(&show).trim()),
        "{}",
        text(&top)
    );

    // Usage errors: clap's status 2 and the command's usage line.
    for (args, usage) in [
        (
            vec!["stats", "--bogus"],
            "Usage: ferrotun stats [INTERFACE] [--json]",
        ),
        (
            vec!["stats", "a", "b"],
            "Usage: ferrotun stats [INTERFACE] [--json]",
        ),
        (
            vec!["stats", "--json=yes"],
            "Usage: ferrotun stats [INTERFACE] [--json]",
        ),
        (vec!["top", "--json"], "Usage: ferrotun top [INTERFACE]"),
        (vec!["top", "a", "b"], "Usage: ferrotun top [INTERFACE]"),
    ] {
        let out = here(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out));
        assert!(stderr(&out).contains(usage), "{args:?}: {}", text(&out));
    }

    // Listed in the help, with help of their own.
    let help = stdout(&here(&["help"]));
    for name in ["stats", "top"] {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{name} "))),
            "{name} missing from:\n{help}"
        );
        let own = here(&[name, "--help"]);
        assert!(own.status.success(), "{}", text(&own));
        assert!(stdout(&own).contains(&format!("Usage: ferrotun {name} [INTERFACE]")));
    }
}

/// A tmux server of the test's own (its own socket), killed on drop.
struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    /// Runs `script` (bash) in a 160x40 terminal; `ns` is the namespace it runs in.
    fn start(ns: &Netns, script: &str) -> Tmux {
        Tmux::sized(ns, script, 160, 40)
    }

    /// Runs `script` (bash) in a `width` x `height` terminal.
    fn sized(ns: &Netns, script: &str, width: u16, height: u16) -> Tmux {
        let tmux = Tmux {
            socket: unique_name("tmx"),
            session: unique_name("top"),
        };
        let command = format!(
            "ip netns exec {} bash --norc --noprofile -c {}",
            ns.name,
            shell_quote(script)
        );
        let out = tmux.run(&[
            "new-session",
            "-d",
            "-s",
            &tmux.session,
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            &command,
        ]);
        assert!(out.status.success(), "tmux new-session: {}", text(&out));
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("timeout")
            .arg("10")
            .arg(require_tool("tmux"))
            .args(["-L", &self.socket])
            .args(args)
            .env_remove("TMUX")
            .stdin(Stdio::null())
            .output()
            .expect("run tmux")
    }

    /// What the pane shows now.
    fn screen(&self) -> String {
        stdout(&self.run(&["capture-pane", "-p", "-t", &self.session]))
    }

    fn keys(&self, keys: &str) {
        let out = self.run(&["send-keys", "-t", &self.session, keys]);
        assert!(out.status.success(), "tmux send-keys: {}", text(&out));
    }

    /// A pane flag (`alternate_on`, `cursor_flag`).
    fn flag(&self, name: &str) -> String {
        let format = format!("#{{{name}}}");
        stdout(&self.run(&["display-message", "-p", "-t", &self.session, &format]))
            .trim()
            .to_string()
    }

    /// The pid of `ferrotun top`: the child of the pane's shell (`ip netns exec` execs
    /// bash, which runs top as its one child while it runs).
    fn top_pid(&self) -> u32 {
        let pane = self.flag("pane_pid");
        let children = std::fs::read_to_string(format!("/proc/{pane}/task/{pane}/children"))
            .unwrap_or_else(|e| panic!("children of the pane's shell {pane}: {e}"));
        let pids: Vec<u32> = children
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        let [pid] = pids[..] else {
            panic!("the pane's shell {pane} runs {pids:?}, not just top");
        };
        let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert!(cmdline.contains("top"), "{pid} is not top: {cmdline:?}");
        pid
    }

    /// Waits (at most `timeout`) for the screen to satisfy `cond`; returns the last screen.
    fn wait_for(&self, timeout: Duration, what: &str, cond: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.screen();
            if cond(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} within {timeout:?}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-session", "-t", &self.session]);
        let _ = self.run(&["kill-server"]);
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// top inside a shell that shows what came before and after it, and the terminal's modes
/// once top has ended (raw mode turns `icanon`, `isig` and `echo` off).
fn top_script(ifname: &str) -> String {
    format!(
        "echo BEFORE_TOP; {} top {ifname}; echo TOP_EXITED=$?; \
         echo \"MODES: $(stty -a | tr ' ;' '\\n\\n' | grep -xE -- '-?(isig|icanon|echo)' | tr '\\n' ' ')\"; \
         sleep 60",
        ferrotun_bin()
    )
}

/// After top ended with `status`: the shell's screen is back (not the alternate one), the
/// cursor shows, and the modes are cooked again.
fn assert_restored(tmux: &Tmux, status: i32) -> String {
    let exited = format!("TOP_EXITED={status}");
    let screen = tmux.wait_for(Duration::from_secs(10), &exited, |s| s.contains("MODES:"));
    assert!(screen.contains(&exited), "{screen}");
    assert!(
        screen.contains("BEFORE_TOP"),
        "the main screen is not back:\n{screen}"
    );
    assert!(
        !screen.contains("ferrotun top  ") && !screen.contains("q quits"),
        "top's screen is still shown:\n{screen}"
    );
    assert!(
        screen
            .lines()
            .any(|l| l.trim_end() == "MODES: isig icanon echo"),
        "the terminal is still raw:\n{screen}"
    );
    assert_eq!(
        tmux.flag("alternate_on"),
        "0",
        "still on the alternate screen"
    );
    assert_eq!(tmux.flag("cursor_flag"), "1", "the cursor is still hidden");
    screen
}

/// The columns of a top line (two or more spaces apart).
fn columns(line: &str) -> Vec<&str> {
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

/// An iperf3 server on b's tunnel address (`extra`: more of its options), ended with `procs`.
fn iperf_server(t: &Tunnel, iperf: &str, port: u16, extra: &[&str], procs: &mut Reaper) {
    let port = port.to_string();
    procs.0.push(
        t.b.ns
            .command(iperf)
            .arg("-s")
            .args(extra)
            .args(["-B", t.b.addrs.inner4, "-p", &port])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("iperf3 -s"),
    );
}

/// Once b's iperf3 server listens on `port`, a client in a sending to it for `secs`.
fn iperf_client(t: &Tunnel, iperf: &str, port: u16, secs: u32, procs: &mut Reaper) {
    assert!(
        eventually(Duration::from_secs(10), || listening(&t.b.ns, port)),
        "iperf3 never listened"
    );
    let (port, secs) = (port.to_string(), secs.to_string());
    procs.0.push(
        t.a.ns
            .command(iperf)
            .args(["-c", t.b.addrs.inner4, "-p", &port, "-t", &secs])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("iperf3 -c"),
    );
}

#[test]
fn top_shows_rates_in_a_terminal_and_gives_it_back() {
    if !have_root() {
        return;
    }
    require_tool("tmux");
    let iperf = require_tool("iperf3");
    let t = Tunnel::new(Impl::Ferrotun, Impl::Ferrotun);
    t.ping(&t.a, t.b.addrs.inner4, FIRST_PING);
    let short: String = t.b.keys.public.chars().take(8).collect();

    // A transfer that outlasts the test's look at the screen (killed when the test ends).
    let mut procs = Reaper(Vec::new());
    iperf_server(&t, &iperf, 5202, &["-1"], &mut procs);
    let tmux = Tmux::start(&t.a.ns, &top_script(t.a.ifname()));
    let first = tmux.wait_for(Duration::from_secs(10), "top's screen", |s| {
        s.contains("ferrotun top  ") && s.contains(&short)
    });
    assert_eq!(
        tmux.flag("alternate_on"),
        "1",
        "top is not on the alternate screen:\n{first}"
    );
    iperf_client(&t, &iperf, 5202, 60, &mut procs);
    // The peer's line: a non-zero send rate (bytes and packets) while the transfer runs.
    let screen = tmux.wait_for(Duration::from_secs(30), "a non-zero TX rate", |s| {
        s.lines().any(|l| {
            let c = columns(l);
            c.first() == Some(&format!("{short}…").as_str())
                && c.len() >= 7
                && c[4] != "0 B/s"
                && c[4].ends_with("/s")
                && c[5].parse::<u64>().is_ok_and(|p| p > 0)
        })
    });
    eprintln!("ferrotun top during the transfer:\n{screen}");
    let header = screen.lines().next().unwrap_or_default();
    assert!(header.contains(t.a.ifname()), "{screen}");
    assert!(
        screen.contains("PEER") && screen.contains("RX/s"),
        "{screen}"
    );
    assert!(
        screen.contains(&format!("{}:{}", t.b.addrs.outer, t.b.addrs.port)),
        "{screen}"
    );

    tmux.keys("q");
    assert_restored(&tmux, 0);
    drop(procs);
    drop(tmux);

    // SIGTERM (a `kill`, a closing session) gives the terminal back too.
    let tmux = Tmux::start(&t.a.ns, &top_script(t.a.ifname()));
    tmux.wait_for(Duration::from_secs(10), "top's screen", |s| {
        s.contains("ferrotun top  ") && s.contains(&short)
    });
    let top_pid = tmux.top_pid();
    let out = Command::new("kill")
        .args(["-TERM", &top_pid.to_string()])
        .output();
    assert!(
        out.is_ok_and(|o| o.status.success()),
        "kill -TERM {top_pid}"
    );
    assert_restored(&tmux, 0);
    drop(tmux);

    // Ctrl-C (a key in raw mode, not a signal), Q and Esc quit as well.
    for key in ["C-c", "Q", "Escape"] {
        let tmux = Tmux::start(&t.a.ns, &top_script(t.a.ifname()));
        tmux.wait_for(Duration::from_secs(10), "top's screen", |s| {
            s.contains("ferrotun top  ") && s.contains(&short)
        });
        tmux.keys(key);
        assert_restored(&tmux, 0);
    }
}

#[test]
fn top_says_when_the_daemon_goes_away() {
    if !have_root() {
        return;
    }
    require_tool("tmux");
    let ns = Netns::new("stq");
    let ifname = unique_name("stqf");
    let daemon = Impl::Ferrotun.start(&ns, &ifname);
    let tmux = Tmux::start(&ns, &top_script(&ifname));
    tmux.wait_for(Duration::from_secs(10), "top's screen", |s| {
        s.contains("ferrotun top  ")
    });
    // The daemon's guard stops it (SIGTERM, then SIGKILL) and removes its socket.
    drop(daemon);
    let screen = assert_restored(&tmux, 1);
    assert!(
        screen.contains(&format!(
            "ferrotun top: the daemon serving {ifname} went away"
        )),
        "{screen}"
    );
}

/// One request/reply on an open configuration connection: the reply up to its blank line.
fn ask(stream: &mut std::os::unix::net::UnixStream, request: &str) -> String {
    use std::io::{BufRead, BufReader, Write};
    stream.write_all(request.as_bytes()).expect("send request");
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut reply = String::new();
    while !reply.ends_with("\n\n") {
        let before = reply.len();
        reader.read_line(&mut reply).expect("read reply");
        if reply.len() == before {
            break;
        }
    }
    reply
}

/// `stats=1` on the configuration socket: a well-formed request is answered and the same
/// connection then serves `get=1` as before; a malformed one gets EINVAL, not counters,
/// and the daemon goes on serving everyone.
#[test]
fn stats_request_is_strict_and_leaves_the_connection_usable() {
    if !have_root() {
        return;
    }
    let ns = Netns::new("fsq");
    let ifname = unique_name("fsq");
    let _daemon = Impl::Ferrotun.start(&ns, &ifname);
    let path = common::netns::socket_path(&ifname);
    let connect = || {
        let s = std::os::unix::net::UnixStream::connect(&path).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s
    };
    let mut conn = connect();
    let stats = ask(&mut conn, "stats=1\n\n");
    assert!(
        stats.starts_with(&format!("interface={ifname}\n")) && stats.ends_with("errno=0\n\n"),
        "{stats}"
    );
    assert!(
        stats.contains("counter=received_dropped.decrypt_failed=0\n"),
        "{stats}"
    );
    let get = ask(&mut conn, "get=1\n\n");
    assert!(
        get.contains("listen_port=") && get.ends_with("errno=0\n\n"),
        "{get}"
    );
    // A body after stats=1 is refused with EINVAL.
    let bad = ask(&mut connect(), "stats=1\nprivate_key=00\n\n");
    assert_eq!(bad, "errno=-22\n\n");
    // And the daemon still answers a fresh client.
    let again = ask(&mut connect(), "stats=1\n\n");
    assert!(again.ends_with("errno=0\n\n"), "{again}");
}

/// The lines of a screen, trailing blanks dropped (tmux pads every line to the width).
fn screen_lines(screen: &str) -> Vec<&str> {
    screen.lines().map(str::trim_end).collect()
}

/// The table's peer line whose key starts with the first characters of `public`.
fn peer_row<'a>(screen: &'a str, public: &str) -> Option<&'a str> {
    screen_lines(screen).into_iter().find(|l| {
        l.split_once('…')
            .is_some_and(|(key, _)| key.len() >= 4 && public.starts_with(key))
    })
}

/// A byte rate top shows that is not zero (`1.21 MiB/s`, `1.21MiB/s`).
fn moving(rate: &str) -> bool {
    rate.ends_with("/s") && !rate.starts_with("0 B") && !rate.starts_with("0B") && rate != "-"
}

/// top at 80x24 and at 200x50, during a transfer, with a second (never reached) peer whose
/// IPv6 endpoint is as long as endpoints get: at 80 columns the header still has the tx
/// rate, the handshakes, the drops and the key that quits, the table HANDSHAKE and DROPS,
/// and no line is wider than the terminal; at 200 columns everything is there in full; a
/// terminal shrunk from 200x50 to 80x24 gets the narrow screen at once.
#[test]
fn top_is_useful_at_80x24_and_at_200x50() {
    if !have_root() {
        return;
    }
    require_tool("tmux");
    let iperf = require_tool("iperf3");
    let t = Tunnel::new(Impl::Ferrotun, Impl::Ferrotun);
    let far = Keypair::generate();
    let far_endpoint = "[fd00:1234:5678:9abc:def0:1234:5678:9abc]:51820";
    t.a.wg(&[
        "set",
        t.a.ifname(),
        "peer",
        &far.public,
        "endpoint",
        far_endpoint,
        "allowed-ips",
        "10.241.0.9/32",
    ]);
    t.ping(&t.a, t.b.addrs.inner4, FIRST_PING);
    let public = t.b.keys.public.clone();

    let mut procs = Reaper(Vec::new());
    iperf_server(&t, &iperf, 5203, &[], &mut procs);
    iperf_client(&t, &iperf, 5203, 120, &mut procs);

    // 80x24: wait for a frame with rates (the first has none), then read it.
    let tmux = Tmux::sized(&t.a.ns, &top_script(t.a.ifname()), 80, 24);
    let screen = tmux.wait_for(Duration::from_secs(30), "a moving TX rate at 80x24", |s| {
        peer_row(s, &public).is_some_and(|row| columns(row).get(3).is_some_and(|tx| moving(tx)))
    });
    eprintln!("ferrotun top at 80x24:\n{screen}");
    let lines = screen_lines(&screen);
    for line in &lines {
        assert!(
            line.chars().count() <= 80,
            "wider than 80: {line:?}\n{screen}"
        );
    }
    let header = lines[0];
    assert!(header.contains(t.a.ifname()), "{screen}");
    let words: Vec<&str> = header.split_whitespace().collect();
    let after = |word: &str| {
        words
            .iter()
            .position(|w| *w == word)
            .and_then(|i| words.get(i + 1))
            .copied()
            .unwrap_or_else(|| panic!("no `{word}' in the header:\n{screen}"))
    };
    assert!(moving(after("tx")), "no tx rate in the header:\n{screen}");
    assert!(moving(after("rx")), "no rx rate in the header:\n{screen}");
    assert!(after("hs").parse::<u64>().is_ok_and(|h| h >= 1), "{screen}");
    assert!(after("drops").parse::<u64>().is_ok(), "{screen}");
    assert!(header.ends_with("q quits"), "{screen}");
    let heading = lines
        .iter()
        .find(|l| l.starts_with("PEER"))
        .unwrap_or_else(|| panic!("no table heading:\n{screen}"));
    assert_eq!(
        columns(heading),
        ["PEER", "ENDPOINT", "RX/s", "TX/s", "HANDSHAKE", "DROPS"],
        "{screen}"
    );
    // The peer's line: endpoint, both rates, a handshake age and its drops.
    let row = peer_row(&screen, &public).expect("the peer's line");
    let cells = columns(row);
    assert_eq!(cells.len(), 6, "{row:?}\n{screen}");
    assert!(
        cells[4].ends_with('s') && cells[4].starts_with(|c: char| c.is_ascii_digit()),
        "no handshake age in {row:?}\n{screen}"
    );
    assert!(!cells[5].is_empty(), "no drops in {row:?}\n{screen}");
    // The far peer is there too, its long endpoint cut rather than the columns lost.
    let far_row = peer_row(&screen, &far.public).expect("the far peer's line");
    assert!(far_row.contains("[fd00:1234:"), "{far_row:?}\n{screen}");
    assert!(columns(far_row).contains(&"never"), "{far_row:?}\n{screen}");
    tmux.keys("q");
    assert_restored(&tmux, 0);
    drop(tmux);

    // 200x50: everything in full.
    let tmux = Tmux::sized(&t.a.ns, &top_script(t.a.ifname()), 200, 50);
    let screen = tmux.wait_for(Duration::from_secs(30), "a moving TX rate at 200x50", |s| {
        peer_row(s, &public).is_some_and(|row| columns(row).get(4).is_some_and(|tx| moving(tx)))
    });
    eprintln!("ferrotun top at 200x50:\n{screen}");
    let lines = screen_lines(&screen);
    let header = lines[0];
    for part in [
        "ferrotun top  ",
        &format!("port {}", t.a.addrs.port),
        "2 peers",
        " pkt/s   tx ",
        "handshakes ",
        "drops ",
        "(q quits)",
    ] {
        assert!(
            header.contains(part),
            "no {part:?} in the header:\n{screen}"
        );
    }
    let heading = lines
        .iter()
        .find(|l| l.starts_with("PEER"))
        .unwrap_or_else(|| panic!("no table heading:\n{screen}"));
    assert_eq!(
        columns(heading),
        [
            "PEER",
            "ENDPOINT",
            "RX/s",
            "RX pkt/s",
            "TX/s",
            "TX pkt/s",
            "HANDSHAKE",
            "DROPS"
        ],
        "{screen}"
    );
    let row = peer_row(&screen, &public).expect("the peer's line");
    assert!(row.contains(" ago  "), "{row:?}\n{screen}");
    let far_row = peer_row(&screen, &far.public).expect("the far peer's line");
    assert!(far_row.contains(far_endpoint), "{far_row:?}\n{screen}");

    // Shrunk to 80x24 while running: the next frame is the narrow one.
    let out = tmux.run(&["resize-window", "-t", &tmux.session, "-x", "80", "-y", "24"]);
    assert!(out.status.success(), "tmux resize-window: {}", text(&out));
    let screen = tmux.wait_for(Duration::from_secs(10), "the narrow screen", |s| {
        s.lines()
            .next()
            .is_some_and(|h| h.trim_end().ends_with("  q quits"))
    });
    assert!(
        screen_lines(&screen)
            .iter()
            .all(|l| l.chars().count() <= 80),
        "{screen}"
    );
    tmux.keys("q");
    assert_restored(&tmux, 0);
}
