//! The command line as a user types it: the built binary, its help, its mistakes, and the
//! `wg` / `wg-quick` names it answers to. Help and typos must create nothing: checked inside
//! a fresh network namespace (no new link, no socket, no process left).

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;

use common::scratch::TempDir;
use common::{ferrotun_bin, require_tool, text, Netns};
use ferrotun::front::definition::command_names;

/// The commands the issue names; the definition may add more, never fewer.
const EXPECTED: [&str; 19] = [
    "show",
    "showconf",
    "set",
    "setconf",
    "addconf",
    "syncconf",
    "genkey",
    "genpsk",
    "pubkey",
    "up",
    "down",
    "save",
    "strip",
    "daemon",
    "demo",
    "completions",
    "man",
    "help",
    "version",
];

fn ferrotun(args: &[&str]) -> Output {
    Command::new(ferrotun_bin())
        .args(args)
        .output()
        .expect("run ferrotun")
}

fn all_commands() -> Vec<String> {
    let names = command_names();
    for expected in EXPECTED {
        assert!(names.iter().any(|n| n == expected), "{expected} missing");
    }
    names
}

#[test]
fn help_lists_every_command_one_line_each() {
    let names = all_commands();
    for args in [&[][..], &["help"], &["--help"], &["-h"]] {
        let out = ferrotun(args);
        let expected_status = if args.is_empty() { 1 } else { 0 };
        assert_eq!(
            out.status.code(),
            Some(expected_status),
            "{args:?}: {}",
            text(&out)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        for name in &names {
            let lines = stdout
                .lines()
                .filter(|l| l.split_whitespace().next() == Some(name))
                .count();
            assert_eq!(lines, 1, "`ferrotun {}`: {name}\n{stdout}", args.join(" "));
        }
        for heading in ["wg(8)", "wg-quick(8)", "daemon", "Trying it out"] {
            assert!(stdout.contains(heading), "{heading}\n{stdout}");
        }
    }
}

#[test]
fn help_for_each_command() {
    for name in all_commands() {
        for args in [vec!["help", name.as_str()], vec![name.as_str(), "--help"]] {
            let out = ferrotun(&args);
            assert!(out.status.success(), "{args:?}: {}", text(&out));
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                stdout.contains(&format!("Usage: ferrotun {name}")),
                "{args:?}:\n{stdout}"
            );
            assert!(stdout.contains("-h, --help"), "{args:?}:\n{stdout}");
        }
    }
    let out = ferrotun(&["help", "shwo"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("did you mean `show'?"),
        "{}",
        text(&out)
    );
}

/// What a run inside `ns` may have left: links other than lo, processes, socket files.
fn leftovers(ns: &Netns, names: &[&str], since: SystemTime) -> Vec<String> {
    let mut found = Vec::new();
    let links = ns.exec_stdout("ip", &["-o", "link", "show"]);
    for line in links.lines() {
        if !line.contains(": lo:") {
            found.push(format!("link: {line}"));
        }
    }
    let pids = Command::new("ip")
        .args(["netns", "pids", &ns.name])
        .output()
        .expect("ip netns pids");
    let pids = String::from_utf8_lossy(&pids.stdout).trim().to_string();
    if !pids.is_empty() {
        found.push(format!("processes: {pids}"));
    }
    for name in names {
        let sock = socket(name);
        if let Ok(meta) = std::fs::symlink_metadata(&sock) {
            if meta.modified().map_or(true, |m| m >= since) {
                found.push(format!("socket: {}", sock.display()));
            }
        }
    }
    found
}

fn socket(name: &str) -> PathBuf {
    Path::new("/var/run/wireguard").join(format!("{name}.sock"))
}

#[test]
fn help_and_typos_create_nothing() {
    let cases: [(&[&str], Option<&str>); 7] = [
        (&["help"], None),
        (&["shwo"], Some("did you mean `show'?")),
        (&["--help"], None),
        (&["-h"], None),
        (&["help", "up"], None),
        (&["up", "--help"], None),
        (&[], None),
    ];
    for (args, hint) in cases {
        let ns = Netns::new("clih");
        let since = SystemTime::now();
        let out = ns.try_exec(ferrotun_bin(), args);
        // Anything a daemon would do happens within moments of its start.
        std::thread::sleep(std::time::Duration::from_millis(300));
        let left = leftovers(&ns, &["help", "-h", "--help", "shwo", "up"], since);
        assert!(
            left.is_empty(),
            "ferrotun {args:?} left {left:?}\n{}",
            text(&out)
        );
        match hint {
            Some(hint) => {
                assert!(!out.status.success(), "{args:?}: {}", text(&out));
                assert!(text(&out).contains(hint), "{args:?}: {}", text(&out));
                assert!(
                    text(&out).contains("ferrotun daemon shwo"),
                    "says how to mean it: {}",
                    text(&out)
                );
            }
            None => assert!(
                String::from_utf8_lossy(&out.stdout).contains("Usage: ferrotun"),
                "{args:?}: {}",
                text(&out)
            ),
        }
    }
}

#[test]
fn interface_names_still_start_the_daemon() {
    // wg-quick runs `$WG_QUICK_USERSPACE_IMPLEMENTATION wg0`: plain and -f forms both work,
    // and `daemon NAME` takes even a name that looks like a command.
    let ns = Netns::new("clid");
    for (i, args) in [vec![], vec!["-f"], vec!["daemon"]].into_iter().enumerate() {
        let name = if i == 2 {
            // A near miss by design, but not the one `help_and_typos_create_nothing` checks
            // for leftovers at the same time (/var/run/wireguard is shared by every test).
            let near_miss = "shoe";
            let refused = ns
                .command(ferrotun_bin())
                .arg(near_miss)
                .output()
                .expect("run");
            assert!(
                !refused.status.success() && text(&refused).contains("did you mean `show'?"),
                "`{near_miss}' should be refused as a near miss: {}",
                text(&refused)
            );
            near_miss.to_string()
        } else {
            common::unique_name("cli")
        };
        let mut cmd = ns.command(ferrotun_bin());
        cmd.args(&args).arg(&name);
        let mut child = cmd.spawn().expect("start daemon");
        let up = common::process::eventually(std::time::Duration::from_secs(10), || {
            socket(&name).exists()
        });
        assert!(up, "ferrotun {args:?} {name}: no socket");
        ns.exec("ip", &["link", "show", &name]);
        ns.exec("ip", &["link", "del", &name]);
        let gone = common::process::eventually(std::time::Duration::from_secs(10), || {
            !socket(&name).exists()
        });
        assert!(gone, "daemon for {name} did not end with its interface");
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Runs `tool args` as the real tool and as the link `dir/tool` to our binary, both with
/// argv[0] = `tool`, and asserts identical stdout, stderr and status.
fn same_as_real(dir: &Path, tool: &str, args: &[&str]) {
    let real = require_tool(tool);
    let run = |path: &str| {
        Command::new(path)
            .arg0(tool)
            .args(args)
            .env("WG_COLOR_MODE", "never")
            .output()
            .expect("run")
    };
    let theirs = run(&real);
    let ours = run(dir.join(tool).to_str().expect("utf-8"));
    assert_eq!(
        (
            String::from_utf8_lossy(&ours.stdout),
            String::from_utf8_lossy(&ours.stderr),
            ours.status.code()
        ),
        (
            String::from_utf8_lossy(&theirs.stdout),
            String::from_utf8_lossy(&theirs.stderr),
            theirs.status.code()
        ),
        "{tool} {args:?}: ours (left) differs from {real} (right)"
    );
}

#[test]
fn wg_and_wg_quick_links_keep_the_real_usage_texts() {
    let scratch = TempDir::new("clilinks");
    let dir = scratch.path();
    for tool in ["wg", "wg-quick"] {
        std::os::unix::fs::symlink(ferrotun_bin(), dir.join(tool)).expect("link");
    }
    for args in [&["--help"][..], &["-h"], &["help"], &["nonsense"]] {
        same_as_real(dir, "wg", args);
        same_as_real(dir, "wg-quick", args);
    }
    same_as_real(dir, "wg-quick", &[]);
    for cmd in [
        "show", "set", "setconf", "addconf", "syncconf", "genkey", "genpsk", "pubkey",
    ] {
        same_as_real(dir, "wg", &[cmd, "--help"]);
    }
    for verb in ["up", "down", "save", "strip"] {
        same_as_real(dir, "wg-quick", &[verb]);
        same_as_real(dir, "wg-quick", &[verb, "a", "b"]);
    }
}

#[test]
fn completions_and_man_pages_cover_every_command() {
    let names = all_commands();
    let script = |shell: &str| {
        let out = ferrotun(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let (bash, zsh, fish) = (script("bash"), script("zsh"), script("fish"));
    for name in &names {
        assert!(bash.contains(&format!("ferrotun,{name})")), "bash: {name}");
        assert!(zsh.contains(&format!("'{name}:")), "zsh: {name}");
        assert!(fish.contains(&format!("-a \"{name}\"")), "fish: {name}");
    }
    // The bash script really completes: `ferrotun sh<TAB>` offers show and showconf.
    let bash_bin = require_tool("bash");
    let out = Command::new(bash_bin)
        .arg("-c")
        .arg(format!(
            "{bash}\nCOMP_WORDS=(ferrotun sh); COMP_CWORD=1; _ferrotun ferrotun sh ferrotun; \
             echo \"${{COMPREPLY[*]}}\""
        ))
        .output()
        .expect("bash");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "show showconf",
        "{}",
        text(&out)
    );

    let page = ferrotun(&["man"]);
    assert!(page.status.success(), "{}", text(&page));
    let page = String::from_utf8_lossy(&page.stdout);
    assert!(page.contains(".TH ferrotun 1"), "{page}");
    let scratch = TempDir::new("climan");
    let dir = scratch.path();
    let out = ferrotun(&["man", dir.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", text(&out));
    for name in &names {
        let escaped = name.replace('-', "\\-");
        assert!(
            page.contains(&format!("ferrotun\\-{escaped}(1)")),
            "man page: no section entry for {name}"
        );
        let sub = std::fs::read_to_string(dir.join(format!("ferrotun-{name}.1")))
            .unwrap_or_else(|e| panic!("ferrotun-{name}.1: {e}"));
        assert!(sub.contains(&format!(".TH ferrotun-{name} 1")), "{sub}");
        assert!(sub.contains(".SH SYNOPSIS"), "{sub}");
    }
}

#[test]
fn help_command_and_help_flag_print_the_same() {
    for name in all_commands() {
        let by_help = ferrotun(&["help", &name]);
        let by_flag = ferrotun(&[&name, "--help"]);
        assert!(by_help.status.success(), "help {name}: {}", text(&by_help));
        assert!(
            by_flag.status.success(),
            "{name} --help: {}",
            text(&by_flag)
        );
        assert_eq!(
            String::from_utf8_lossy(&by_help.stdout),
            String::from_utf8_lossy(&by_flag.stdout),
            "`ferrotun help {name}` (left) and `ferrotun {name} --help` (right) differ"
        );
    }
    // The mesh's own commands answer `mesh help CMD` as `mesh CMD --help`.
    for words in [
        &["mesh", "help"][..],
        &["mesh", "help", "up"],
        &["mesh", "help", "status"],
    ] {
        let by_help = ferrotun(words);
        let mut flagged: Vec<&str> = words.iter().copied().filter(|w| *w != "help").collect();
        flagged.push("--help");
        let by_flag = ferrotun(&flagged);
        assert!(by_help.status.success(), "{words:?}: {}", text(&by_help));
        assert_eq!(
            String::from_utf8_lossy(&by_help.stdout),
            String::from_utf8_lossy(&by_flag.stdout),
            "{words:?} and {flagged:?} differ"
        );
    }
}

/// Every argument of every command, nested ones too, as `ferrotun CMD ... --OPTION`.
fn every_argument(cmd: &clap::Command, path: &str, found: &mut Vec<(String, clap::Arg)>) {
    for arg in cmd.get_arguments() {
        found.push((path.to_string(), arg.clone()));
    }
    for sub in cmd.get_subcommands() {
        every_argument(sub, &format!("{path} {}", sub.get_name()), found);
    }
}

#[test]
fn every_option_of_every_command_has_a_help_text() {
    let mut root = ferrotun::front::definition::command();
    root.build();
    let mut args = Vec::new();
    every_argument(&root, "ferrotun", &mut args);
    assert!(
        args.len() > 50,
        "the walk missed the tree: {} arguments",
        args.len()
    );
    let silent: Vec<String> = args
        .iter()
        .filter(|(_, arg)| !arg.is_hide_set())
        .filter(|(_, arg)| {
            let help = arg.get_help().or(arg.get_long_help());
            help.is_none_or(|h| h.to_string().trim().is_empty())
        })
        .map(|(path, arg)| match arg.get_long() {
            Some(long) => format!("{path} --{long}"),
            None => format!("{path} <{}>", arg.get_id()),
        })
        .collect();
    assert!(silent.is_empty(), "no help text: {silent:?}");
    // The three the mesh lacked, as a user sees them.
    let out = ferrotun(&["mesh", "up", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    for option in ["--etcd-password-file", "--etcd-key", "--mtu"] {
        let line = help
            .lines()
            .position(|l| l.trim_start().starts_with(option));
        let next = line.and_then(|i| help.lines().nth(i + 1)).unwrap_or("");
        assert!(!next.trim().is_empty(), "{option} has no help:\n{help}");
    }
}

/// Where a text quotes `like this` (a backtick closed by a backtick) rather than `like
/// this' as the rest of the front door's messages do.
fn backtick_pairs(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('`') {
        let after = &rest[open + 1..];
        match after.find(['`', '\'']) {
            Some(close) if after[close..].starts_with('`') => {
                found.push(after[..close].to_string());
                rest = &after[close + 1..];
            }
            Some(close) => rest = &after[close + 1..],
            None => break,
        }
    }
    found
}

#[test]
fn the_front_door_quotes_one_way() {
    assert_eq!(backtick_pairs("`a' and `b` and `c'"), vec!["b".to_string()]);
    let mut texts = Vec::new();
    for args in [
        &["shwo"][..],
        &["help", "shwo"],
        &["help", "a", "b"],
        &["--bogus"],
        &["--user"],
        &["a", "b"],
        &["up"],
        &["daemon", "--bogus"],
    ] {
        let out = ferrotun(args);
        assert!(!out.status.success(), "{args:?}: {}", text(&out));
        texts.push((format!("ferrotun {}", args.join(" ")), text(&out)));
    }
    let mut root = ferrotun::front::definition::command();
    root.build();
    let mut commands = vec![root.clone()];
    while let Some(cmd) = commands.pop() {
        for about in [cmd.get_about(), cmd.get_long_about(), cmd.get_after_help()]
            .into_iter()
            .flatten()
        {
            texts.push((cmd.get_name().to_string(), about.to_string()));
        }
        for arg in cmd.get_arguments() {
            if let Some(help) = arg.get_help() {
                texts.push((
                    format!("{} {}", cmd.get_name(), arg.get_id()),
                    help.to_string(),
                ));
            }
        }
        commands.extend(cmd.get_subcommands().cloned());
    }
    let mixed: Vec<(String, Vec<String>)> = texts
        .into_iter()
        .map(|(what, text)| (what, backtick_pairs(&text)))
        .filter(|(_, pairs)| !pairs.is_empty())
        .collect();
    assert!(
        mixed.is_empty(),
        "quoted `like this` instead of `like this': {mixed:?}"
    );
}

/// Runs `ferrotun ARGS` with stdout a pipe whose reader is already gone: what `| head`
/// does to a long output once it has read enough.
fn into_a_closed_pipe(args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    Command::new(ferrotun_bin())
        .args(args)
        .stdout(writer)
        .output()
        .expect("run ferrotun")
}

#[test]
fn a_reader_that_stops_early_is_no_error() {
    for args in [
        &["man"][..],
        &["completions", "bash"],
        &["completions", "zsh"],
        &["completions", "fish"],
        &["help"],
        &["help", "up"],
        &["up", "--help"],
    ] {
        let out = into_a_closed_pipe(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
        assert!(out.stderr.is_empty(), "{args:?}: {}", text(&out));
    }
}

#[test]
fn fish_completes_the_shell_names_of_completions() {
    let out = ferrotun(&["completions", "fish"]);
    assert!(out.status.success(), "{}", text(&out));
    let scratch = TempDir::new("clifish");
    let script = scratch.path().join("ferrotun.fish");
    std::fs::write(&script, &out.stdout).expect("write the script");
    // Run where files exist, so offering files instead would show.
    std::fs::write(scratch.path().join("a-file"), "").expect("write a file");
    let complete = |line: &str| {
        let out = Command::new(require_tool("fish"))
            .args(["--no-config", "-c"])
            .arg(format!(
                "source {}; complete -C '{line}'",
                script.to_str().expect("utf-8")
            ))
            .current_dir(scratch.path())
            .output()
            .expect("run fish");
        assert!(out.status.success(), "fish: {}", text(&out));
        let mut words: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.split('\t').next().unwrap_or("").to_string())
            .collect();
        words.sort();
        words
    };
    assert_eq!(complete("ferrotun completions "), ["bash", "fish", "zsh"]);
    assert_eq!(complete("ferrotun completions z"), ["zsh"]);
    // Subcommands still complete as before.
    assert!(complete("ferrotun comp").contains(&"completions".to_string()));
}
