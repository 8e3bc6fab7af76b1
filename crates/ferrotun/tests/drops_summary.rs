//! A flood of forged datagrams is never logged one line per packet: the daemon writes one
//! summary line for the interval it came in, with the right count, and nothing for an
//! interval without drops. Reads the daemon's log (at debug level). Needs root.

mod drops_common;

use drops_common::*;
use ferrotun_daemon::drop_summary::INTERVAL;
use std::time::{Duration, Instant};

const FLOOD: u64 = 3000;
const BURST: u64 = 100;

fn summary_lines(lab: &Lab) -> Vec<String> {
    lab.daemon
        .log_text()
        .lines()
        .filter(|l| l.contains("dropped in the last"))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_flood_of_forged_datagrams_is_one_summary_line() {
    let lab = Lab::start("dsm", &[]);
    lab.key_and_port();
    let tester = Tester::new(&lab, 1, TESTER_PORT);
    let before = lab.stats();
    let mut r = rng(11);
    // In bursts, each one counted before the next is sent, so the kernel's socket buffer
    // loses none of them.
    let mut sent = 0;
    while sent < FLOOD {
        for _ in 0..BURST {
            tester.send(&transport_to(random_index(&mut r), 48, &mut r));
        }
        sent += BURST;
        wait_moved(&lab, &before, "received_dropped.unknown_index", sent);
    }
    let flooded = assert_drops(&lab, &before, &[("received_dropped.unknown_index", FLOOD)]);
    let lines_after_flood = lab.daemon.log_text().lines().count();

    // The summary comes at the end of the daemon's first interval.
    let deadline = Instant::now() + INTERVAL * 2;
    while summary_lines(&lab).is_empty() {
        assert!(
            Instant::now() < deadline,
            "no drop summary within {:?}\n{}",
            INTERVAL * 2,
            lab.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let lines = summary_lines(&lab);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let want = format!(": {FLOOD} received (unknown_index {FLOOD})");
    assert!(
        lines[0].ends_with(&want),
        "{:?} does not end with {want:?}",
        lines[0]
    );
    assert!(lines[0].contains(" WARN "), "{:?}", lines[0]);
    assert!(
        lines_after_flood < 30,
        "{lines_after_flood} log lines for a flood of {FLOOD} datagrams\n{}",
        lab.log()
    );

    // An interval without drops says nothing.
    std::thread::sleep(INTERVAL + Duration::from_secs(1));
    assert_eq!(summary_lines(&lab).len(), 1, "{}", lab.log());
    assert_eq!(drop_delta(&flooded, &lab.stats()).len(), 0);
}
