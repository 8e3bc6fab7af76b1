//! Dropped packets in the log: never one line per packet (a flood of forged datagrams
//! would become a flood of log lines, on disk and in the journal), but at most one summary
//! line per [`INTERVAL`], and only when some drop counter moved, e.g.
//!
//! `dropped in the last 10 s: 1234 received (decrypt_failed 1200, unknown_index 34); 5 sent (no_peer 5)`
//!
//! The counts are the device's drop counters (`Counter::is_drop`), read once per interval
//! from the daemon's watch loop: nothing on the packet path knows about it.

use ferrotun_device::Device;
use ferrotun_proto::counters::{Counter, Counts, Family};
use std::time::{Duration, Instant};

/// At most one summary line this often.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// The counts at the last summary, and when that was.
pub struct DropSummary {
    last: Counts,
    since: Instant,
}

impl DropSummary {
    pub fn new(device: &Device) -> DropSummary {
        DropSummary {
            last: device.counts(),
            since: Instant::now(),
        }
    }

    /// Called often (every wake-up of the watch loop); logs a summary once an interval
    /// has passed and something was dropped in it.
    pub fn poll(&mut self, device: &Device) {
        let elapsed = self.since.elapsed();
        if elapsed < INTERVAL {
            return;
        }
        let now = device.counts();
        if let Some(line) = summary(&self.last, &now, elapsed) {
            tracing::warn!("{line}");
        }
        self.last = now;
        self.since = Instant::now();
    }
}

/// The words a family's drops are summed under.
fn heading(family: Family) -> &'static str {
    match family {
        Family::received_dropped => "received",
        Family::sent_dropped => "sent",
        Family::udp_send_errors => "refused by the UDP socket",
        _ => "refused by the TUN",
    }
}

/// One family's drops in a summary: the total and each reason's share.
struct Group {
    family: Family,
    total: u64,
    reasons: Vec<(u64, &'static str)>,
}

/// The summary line for what the drop counters did between `before` and `after`, `None`
/// when none moved. Within a family the reasons go largest first.
pub fn summary(before: &Counts, after: &Counts, elapsed: Duration) -> Option<String> {
    let mut groups: Vec<Group> = Vec::new();
    for c in Counter::ALL.iter().copied().filter(|c| c.is_drop()) {
        let moved = after.get(c).wrapping_sub(before.get(c));
        if moved == 0 {
            continue;
        }
        let reason = (moved, c.label().unwrap_or("other"));
        match groups.iter_mut().find(|g| g.family == c.family()) {
            Some(g) => {
                g.total += moved;
                g.reasons.push(reason);
            }
            None => groups.push(Group {
                family: c.family(),
                total: moved,
                reasons: vec![reason],
            }),
        }
    }
    if groups.is_empty() {
        return None;
    }
    let parts: Vec<String> = groups
        .into_iter()
        .map(|mut g| {
            g.reasons.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
            let reasons: Vec<String> = g.reasons.iter().map(|(n, l)| format!("{l} {n}")).collect();
            format!("{} {} ({})", g.total, heading(g.family), reasons.join(", "))
        })
        .collect();
    Some(format!(
        "dropped in the last {} s: {}",
        elapsed.as_secs_f64().round(),
        parts.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(values: &[(Counter, u64)]) -> Counts {
        let mut c = Counts::default();
        for (counter, v) in values {
            c.set(*counter, *v);
        }
        c
    }

    #[test]
    fn one_line_by_family_largest_first() {
        let before = counts(&[(Counter::DropDecrypt, 100), (Counter::RxPackets, 5)]);
        let after = counts(&[
            (Counter::DropDecrypt, 1300),
            (Counter::DropUnknownIndex, 34),
            (Counter::DropNoPeer, 5),
            (Counter::UdpEperm, 2),
            (Counter::TunEio, 1),
            (Counter::RxPackets, 500),
        ]);
        assert_eq!(
            summary(&before, &after, Duration::from_millis(10_200)).as_deref(),
            Some(
                "dropped in the last 10 s: 1234 received (decrypt_failed 1200, \
                 unknown_index 34); 5 sent (no_peer 5); 2 refused by the UDP socket \
                 (EPERM 2); 1 refused by the TUN (EIO 1)"
            )
        );
    }

    #[test]
    fn nothing_dropped_nothing_said() {
        // Counters that are not drops move all the time.
        let before = counts(&[(Counter::RxPackets, 1)]);
        let after = counts(&[(Counter::RxPackets, 9), (Counter::StagedNoSession, 3)]);
        assert_eq!(summary(&before, &after, INTERVAL), None);
    }
}
