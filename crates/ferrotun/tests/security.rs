//! Hostile input and secrets: the configuration socket is root's alone, secret keys never
//! reach the daemon's log (even at trace level, even from a mistyped request) nor `show` or
//! error output, and configuration and key files that others may read draw the warnings
//! wg-quick and wg print. Needs root, wg, wg-quick, setpriv and nc.

mod common;

use common::raw_uapi::{exchange, wire_errno};
use common::scratch::TempDir;
use common::tunnel::{Keypair, WG_TIMEOUT};
use common::{ferrotun_bin, require_tool, text, unique_name, Daemon, Netns};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const SOCKET_DIR: &str = "/var/run/wireguard";

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn as_nobody(program: &str) -> Command {
    let mut c = Command::new(require_tool("setpriv"));
    c.args([
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        program,
    ]);
    c
}

#[test]
fn configuration_socket_is_root_only() {
    let ns = Netns::new("sso");
    let daemon = Daemon::start(&ns, ferrotun_bin(), &["-f"], &unique_name("sso"));
    let sock = common::netns::socket_path(&daemon.ifname);

    let meta = std::fs::metadata(&sock).expect("stat socket");
    let mode = meta.permissions().mode();
    assert_eq!(mode & 0o170000, 0o140000, "not a socket: {mode:o}");
    assert_eq!(
        mode & 0o7777,
        0o600,
        "socket mode {:o}, want 600",
        mode & 0o7777
    );
    assert_eq!(meta.uid(), 0, "socket owned by uid {}", meta.uid());

    // ferrotun makes the directory 0700 when it is missing; other daemons (wireguard-go
    // makes it 0755) may have made it first. Either way nobody else may write to it, or
    // they could put their own socket in the daemon's place.
    let dir = std::fs::metadata(SOCKET_DIR).expect("stat socket directory");
    let dir_mode = dir.permissions().mode() & 0o7777;
    eprintln!(
        "{SOCKET_DIR} has mode {dir_mode:o}, owner uid {}",
        dir.uid()
    );
    assert_eq!(dir.uid(), 0);
    assert_eq!(
        dir_mode & 0o022,
        0,
        "{SOCKET_DIR} is writable by others: {dir_mode:o}"
    );

    // Root gets an answer, so the refusals below are about who asks.
    let reply = exchange(&daemon.ifname, "get=1\n\n");
    assert_eq!(wire_errno(&reply), Some(0), "{reply:?}");

    let nc = require_tool("nc");
    let sock_str = sock.to_str().expect("utf-8");
    let mut child = as_nobody(&nc)
        .args(["-U", sock_str])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run nc as nobody");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        let _ = stdin.write_all(b"get=1\n\n");
    }
    let out = child.wait_with_output().expect("wait for nc");
    assert!(!out.status.success(), "nobody connected: {}", text(&out));
    assert!(
        stderr(&out).contains("Permission denied") && out.stdout.is_empty(),
        "{}",
        text(&out)
    );

    // Through a hard link in a directory anyone may enter, only the socket's own mode
    // stands in the way.
    let open_dir = TempDir::with_mode("fts", 0o755);
    let link = open_dir.path().join("link.sock");
    std::fs::hard_link(&sock, &link).expect("hard-link the socket");
    let out = as_nobody(&nc)
        .args(["-U", link.to_str().expect("utf-8")])
        .stdin(Stdio::null())
        .output()
        .expect("run nc as nobody");
    assert!(
        !out.status.success() && stderr(&out).contains("Permission denied"),
        "nobody connected through a link: {}",
        text(&out)
    );

    // ferrotun's own client, run as nobody, is refused the same way and says why.
    let out = as_nobody(ferrotun_bin())
        .args(["show", &daemon.ifname])
        .output()
        .expect("run ferrotun show as nobody");
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        stderr(&out).contains("Permission denied"),
        "ferrotun show as nobody: {}",
        text(&out)
    );
}

/// The ways a secret could be written: base64 (with and without padding), hex in either
/// case, or the first bytes as a Rust byte list.
fn spellings(base64: &str) -> Vec<String> {
    let bytes = ferrotun_proto::keys::PresharedKey::from_base64(base64)
        .expect("valid key")
        .as_bytes()
        .to_vec();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let list = format!("{:?}", &bytes[..8]);
    vec![
        base64.trim_end_matches('=').to_string(),
        base64[..20].to_string(),
        hex.clone(),
        hex[..32].to_string(),
        hex.to_uppercase()[..32].to_string(),
        list.trim_end_matches(']').to_string(),
    ]
}

/// One end of a tunnel whose daemon logs everything it can.
struct LoudSide {
    daemon: Daemon,
    ns: Netns,
    keys: Keypair,
}

impl LoudSide {
    fn wg(&self, args: &[&str]) -> Output {
        let mut full = vec![WG_TIMEOUT, "wg"];
        full.extend_from_slice(args);
        self.ns.exec("timeout", &full)
    }
}

#[test]
fn secrets_stay_out_of_logs_show_and_errors() {
    let ns_a = Netns::new("sla");
    let ns_b = Netns::new("slb");
    ns_a.connect(&ns_b, "192.168.242.1/24", "192.168.242.2/24");
    let start = |ns: Netns, tag: &str| {
        let ifname = unique_name(tag);
        let daemon = Daemon::start(
            &ns,
            "env",
            &["RUST_LOG=trace", ferrotun_bin(), "-f"],
            &ifname,
        );
        LoudSide {
            daemon,
            ns,
            keys: Keypair::generate(),
        }
    };
    let a = start(ns_a, "sla");
    let b = start(ns_b, "slb");
    let dir = TempDir::with_mode("fts", 0o700);
    let psk = String::from_utf8(
        Command::new(require_tool("wg"))
            .arg("genpsk")
            .output()
            .expect("wg genpsk")
            .stdout,
    )
    .expect("utf-8")
    .trim()
    .to_string();
    let psk_file = dir.file("psk", &format!("{psk}\n"), 0o600);
    let psk_path = psk_file.to_str().expect("utf-8");

    for (me, peer, port, inner, peer_inner, endpoint) in [
        (
            &a,
            &b,
            "51830",
            "10.242.0.1",
            "10.242.0.2",
            Some("192.168.242.2:51831"),
        ),
        (&b, &a, "51831", "10.242.0.2", "10.242.0.1", None),
    ] {
        let ifname = me.daemon.ifname.clone();
        let allowed = format!("{peer_inner}/32");
        let mut args = vec![
            "set",
            &ifname,
            "listen-port",
            port,
            "private-key",
            me.keys.path(),
            "peer",
            &peer.keys.public,
            "preshared-key",
            psk_path,
            "allowed-ips",
            &allowed,
        ];
        if let Some(e) = endpoint {
            args.extend(["endpoint", e]);
        }
        me.wg(&args);
        me.ns
            .ip(&["addr", "add", &format!("{inner}/24"), "dev", &ifname]);
        me.ns.ip(&["link", "set", &ifname, "up"]);
    }
    assert!(
        a.ns.ping_until("10.242.0.2", Duration::from_secs(15)),
        "no ping through the tunnel\n{}",
        a.daemon.log_text()
    );
    assert!(b.ns.ping_until("10.242.0.1", Duration::from_secs(5)));

    // Mistyped secrets sent straight to the socket: the wrong encoding, a typo, a key with
    // no `private_key=` in front (a base64 key ends in `=`, so it parses as an unknown key
    // named after the secret), and the same in a peer section.
    let hex_of = |b64: &str| spellings(b64)[2].clone();
    let mut typo = hex_of(&a.keys.private);
    typo.replace_range(5..6, "x");
    let bad_lines = [
        format!("private_key={}", a.keys.private),
        format!("private_key={typo}"),
        a.keys.private.clone(),
        format!("{}=", hex_of(&a.keys.private)),
        format!("public_key={}\npreshared_key={psk}", hex_of(&b.keys.public)),
        format!("public_key={}\n{psk}", hex_of(&b.keys.public)),
    ];
    for line in &bad_lines {
        let reply = exchange(&a.daemon.ifname, &format!("set=1\n{line}\n\n"));
        assert!(
            matches!(wire_errno(&reply), Some(e) if e < 0),
            "accepted {line:?}: {reply:?}"
        );
    }
    // The same through `wg set` with a key file holding a mistyped key.
    let mut bad_key = a.keys.private.clone();
    bad_key.replace_range(3..4, "!");
    let bad_file = dir.file("bad", &format!("{bad_key}\n"), 0o600);
    let out = a.ns.try_exec(
        "wg",
        &[
            "set",
            &a.daemon.ifname,
            "private-key",
            bad_file.to_str().expect("utf-8"),
        ],
    );
    assert!(!out.status.success());

    let log = format!("{}\n{}", a.daemon.log_text(), b.daemon.log_text());
    // Proof the daemons logged verbosely (ferrotun has no trace-level events yet).
    assert!(
        log.contains("DEBUG"),
        "no debug lines in the daemons' logs:\n{log}"
    );
    let secrets = [
        ("A's private key", a.keys.private.as_str()),
        ("B's private key", b.keys.private.as_str()),
        ("the preshared key", psk.as_str()),
        ("the mistyped private key", bad_key.as_str()),
    ];
    let mut leaks = Vec::new();
    for (what, secret) in secrets {
        for s in spellings_lossy(secret) {
            for line in log.lines().filter(|l| l.contains(&s)) {
                leaks.push(format!("{what} as {s:?} in: {line}"));
            }
        }
    }

    // `show` hides secrets unless told not to, like wg.
    let show = |hide: Option<&str>| -> String {
        let mut c = a.ns.command(ferrotun_bin());
        c.args(["show", &a.daemon.ifname]);
        match hide {
            Some(v) => c.env("WG_HIDE_KEYS", v),
            None => c.env_remove("WG_HIDE_KEYS"),
        };
        let out = c.output().expect("run ferrotun show");
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let hidden = show(None);
    assert!(hidden.contains("private key: (hidden)"), "{hidden}");
    assert!(hidden.contains("preshared key: (hidden)"), "{hidden}");
    for (what, secret) in &secrets[..3] {
        for s in spellings(secret) {
            assert!(!hidden.contains(&s), "{what} shown: {hidden}");
        }
    }
    let shown = show(Some("never"));
    assert!(
        shown.contains(&a.keys.private) && shown.contains(&psk),
        "{shown}"
    );

    // `ferrotun set` refuses a malformed key file without repeating what is in it (real wg
    // quotes the whole key in its message).
    for contents in [
        bad_key.clone(),
        a.keys.private[..43].to_string(),
        format!("{}x", a.keys.private),
        format!("{} {}", a.keys.private, b.keys.private),
    ] {
        let file = dir.file("malformed", &format!("{contents}\n"), 0o600);
        let path = file.to_str().expect("utf-8");
        let ifname = a.daemon.ifname.as_str();
        for args in [
            vec!["set", ifname, "private-key", path],
            vec![
                "set",
                ifname,
                "peer",
                b.keys.public.as_str(),
                "preshared-key",
                path,
            ],
        ] {
            let out = a.ns.try_exec(ferrotun_bin(), &args);
            let all = text(&out);
            assert!(!out.status.success(), "took {contents:?}: {all}");
            assert!(
                !all.contains(&contents[..20]) && !all.contains(&b.keys.private[..20]),
                "key file contents echoed: {all}"
            );
        }
    }
    // Nothing above changed the keys that were set.
    let conf = a.wg(&["showconf", &a.daemon.ifname]);
    let conf = String::from_utf8_lossy(&conf.stdout);
    assert!(
        conf.contains(&a.keys.private) && conf.contains(&psk),
        "{conf}"
    );
    // Checked last so that a leak does not hide a failure of the checks above.
    assert!(
        leaks.is_empty(),
        "secrets in the daemons' logs:\n{}",
        leaks.join("\n")
    );
}

/// [`spellings`] for a string that may not be a valid key (then only its own text counts).
fn spellings_lossy(secret: &str) -> Vec<String> {
    if ferrotun_proto::keys::PresharedKey::from_base64(secret).is_ok() {
        spellings(secret)
    } else {
        vec![
            secret.trim_end_matches('=').to_string(),
            secret[..20].to_string(),
        ]
    }
}

fn minimal_quick_config() -> String {
    let keys = Keypair::generate();
    format!(
        "[Interface]\nPrivateKey = {}\nAddress = 10.243.0.1/24\n",
        keys.private
    )
}

/// wg-quick warns when others may read a configuration (both the file and its directory
/// grant "other" some access); ferrotun prints the same line.
#[test]
fn world_readable_quick_config_draws_wg_quick_warning() {
    let wg_quick = require_tool("wg-quick");
    let dir = TempDir::with_mode("fts", 0o755);
    let ifname = unique_name("sq");
    let conf = dir.file(&format!("{ifname}.conf"), &minimal_quick_config(), 0o644);
    let conf_str = conf.to_str().expect("utf-8");
    let canonical = conf.canonicalize().expect("canonical path");
    let warning = format!("Warning: `{}' is world accessible", canonical.display());

    let run = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run {program}: {e}"))
    };
    let theirs = run(&wg_quick, &["strip", conf_str]);
    let ours = run(ferrotun_bin(), &["strip", conf_str]);
    assert!(
        theirs.status.success() && ours.status.success(),
        "{}\n{}",
        text(&theirs),
        text(&ours)
    );
    let first_line = |o: &Output| stderr(o).lines().next().unwrap_or("").to_string();
    assert_eq!(
        first_line(&theirs),
        warning,
        "wg-quick's own text changed: {}",
        text(&theirs)
    );
    assert_eq!(first_line(&ours), warning, "{}", text(&ours));
    assert_eq!(ours.stdout, theirs.stdout, "strip output differs");

    // `up` says it too, before bringing the interface up.
    let ns = Netns::new("sq");
    let up = ns.try_exec(ferrotun_bin(), &["up", conf_str]);
    let down = ns.try_exec(ferrotun_bin(), &["down", conf_str]);
    assert!(up.status.success(), "{}", text(&up));
    assert!(stderr(&up).contains(&warning), "{}", text(&up));
    assert!(down.status.success(), "{}", text(&down));

    // Private file, or private directory: no warning from either.
    for (file_mode, dir_mode) in [(0o600, 0o755), (0o644, 0o700)] {
        std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(file_mode)).expect("chmod");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(dir_mode))
            .expect("chmod");
        let theirs = run(&wg_quick, &["strip", conf_str]);
        let ours = run(ferrotun_bin(), &["strip", conf_str]);
        assert!(
            !stderr(&theirs).contains("world accessible"),
            "{}",
            text(&theirs)
        );
        assert!(
            !stderr(&ours).contains("world accessible"),
            "file {file_mode:o} dir {dir_mode:o}: {}",
            text(&ours)
        );
    }
}

/// `genkey`/`genpsk` into a file others may read warns exactly as wg does.
#[test]
fn genkey_into_world_readable_file_warns_like_wg() {
    let wg = require_tool("wg");
    let dir = TempDir::with_mode("fts", 0o700);
    let run = |umask: &str, program: &str, cmd: &str, out: &Path| -> (String, u32) {
        let script = format!("umask {umask}; exec \"$0\" {cmd} > \"$1\"");
        let o = Command::new("sh")
            .args(["-c", &script, program, out.to_str().expect("utf-8")])
            .output()
            .expect("run sh");
        assert!(o.status.success(), "{program} {cmd}: {}", text(&o));
        let mode = std::fs::metadata(out).expect("stat").permissions().mode() & 0o777;
        let _ = std::fs::remove_file(out);
        (stderr(&o), mode)
    };
    for cmd in ["genkey", "genpsk"] {
        let (theirs, their_mode) = run("022", &wg, cmd, &dir.path().join("wg"));
        let (ours, our_mode) = run("022", ferrotun_bin(), cmd, &dir.path().join("ft"));
        assert_eq!((their_mode, our_mode), (0o644, 0o644));
        assert!(
            theirs.starts_with("Warning: writing to world accessible file."),
            "{theirs:?}"
        );
        assert_eq!(ours, theirs, "{cmd} with umask 022");

        let (theirs, _) = run("077", &wg, cmd, &dir.path().join("wg"));
        let (ours, _) = run("077", ferrotun_bin(), cmd, &dir.path().join("ft"));
        assert_eq!(
            (ours.as_str(), theirs.as_str()),
            ("", ""),
            "{cmd} with umask 077"
        );
    }
}
