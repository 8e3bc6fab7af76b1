//! `ping` from inside a namespace, and reading its summary lines.

use std::time::{Duration, Instant};

use ferrotun_device::Cancel;

use super::error::DemoError;
use super::run::{in_netns, run, SHORT};

#[derive(Debug, Clone, PartialEq)]
pub struct PingStats {
    pub transmitted: u32,
    pub received: u32,
    pub avg_rtt_ms: Option<f64>,
}

impl PingStats {
    pub fn loss_percent(&self) -> f64 {
        if self.transmitted == 0 {
            return 100.0;
        }
        100.0 * f64::from(self.transmitted.saturating_sub(self.received))
            / f64::from(self.transmitted)
    }
}

impl std::fmt::Display for PingStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{} replies, {:.0}% loss",
            self.received,
            self.transmitted,
            self.loss_percent()
        )?;
        match self.avg_rtt_ms {
            Some(avg) => write!(f, ", avg rtt {avg:.3} ms"),
            None => Ok(()),
        }
    }
}

/// Reads iputils' (and busybox's) closing lines:
/// `5 packets transmitted, 5 received, 0% packet loss, time 805ms` and
/// `rtt min/avg/max/mdev = 0.045/0.061/0.080/0.012 ms`.
pub fn parse(output: &str) -> Option<PingStats> {
    let mut stats = None;
    let mut avg = None;
    for line in output.lines() {
        if line.contains("packets transmitted") {
            let mut numbers = line
                .split(',')
                .filter_map(|part| part.split_whitespace().next()?.parse::<u32>().ok());
            stats = Some((numbers.next()?, numbers.next()?));
        } else if let Some((names, values)) = line.split_once('=') {
            if names.contains("min/avg/max") {
                avg = values
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.split('/').nth(1))
                    .and_then(|v| v.parse::<f64>().ok());
            }
        }
    }
    let (transmitted, received) = stats?;
    Some(PingStats {
        transmitted,
        received,
        avg_rtt_ms: avg,
    })
}

/// Pings `target` from `ns` `count` times; an error unless at least one reply came back.
pub fn ping(ns: &str, target: &str, count: u32, cancel: &Cancel) -> Result<PingStats, DemoError> {
    let count_text = count.to_string();
    // -w bounds the whole run even when every reply is lost.
    let deadline = (count / 5 + 3).to_string();
    let mut cmd = in_netns(
        ns,
        "ping",
        &[
            "-n",
            "-q",
            "-c",
            &count_text,
            "-i",
            "0.2",
            "-w",
            &deadline,
            target,
        ],
    );
    let done = run(&mut cmd, SHORT, Some(cancel))?;
    let stats = parse(&done.output).ok_or_else(|| {
        DemoError::Ping(format!(
            "ping {target}: unexpected output:\n    {}",
            done.output.trim_end().replace('\n', "\n    ")
        ))
    })?;
    if stats.received == 0 {
        return Err(DemoError::Ping(format!("no reply from {target} ({stats})")));
    }
    Ok(stats)
}

/// Pings once a second until `target` answers, for at most `limit`; returns how long it took
/// (the first packet sets off the handshake, so this is handshake plus one round trip).
pub fn first_reply(
    ns: &str,
    target: &str,
    limit: Duration,
    cancel: &Cancel,
) -> Result<Duration, DemoError> {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < limit {
        let mut cmd = in_netns(ns, "ping", &["-n", "-c", "1", "-W", "1", target]);
        let done = run(&mut cmd, SHORT, Some(cancel))?;
        if done.status.success() {
            return Ok(start.elapsed());
        }
        last = done.output;
        // A failure that came back at once (no route yet, say) must not spin.
        if cancel.wait(Some(Duration::from_millis(100))) {
            return Err(DemoError::Interrupted);
        }
    }
    Err(DemoError::Ping(format!(
        "no reply from {target} within {} s; last attempt said:\n    {}",
        limit.as_secs(),
        last.trim_end().replace('\n', "\n    ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_iputils_summary() {
        let out = "PING 10.0.0.2 (10.0.0.2) 56(84) bytes of data.\n\n\
                   --- 10.0.0.2 ping statistics ---\n\
                   5 packets transmitted, 4 received, 20% packet loss, time 805ms\n\
                   rtt min/avg/max/mdev = 0.045/0.061/0.080/0.012 ms\n";
        let stats = parse(out).expect("parsed");
        assert_eq!(stats.transmitted, 5);
        assert_eq!(stats.received, 4);
        assert_eq!(stats.avg_rtt_ms, Some(0.061));
        assert_eq!(stats.loss_percent(), 20.0);
        assert_eq!(stats.to_string(), "4/5 replies, 20% loss, avg rtt 0.061 ms");
    }

    #[test]
    fn reads_a_run_with_errors_and_no_replies() {
        let out = "--- 10.0.0.9 ping statistics ---\n\
                   3 packets transmitted, 0 received, +3 errors, 100% packet loss, time 2040ms\n";
        let stats = parse(out).expect("parsed");
        assert_eq!((stats.transmitted, stats.received), (3, 0));
        assert_eq!(stats.avg_rtt_ms, None);
        assert_eq!(stats.to_string(), "0/3 replies, 100% loss");
    }

    #[test]
    fn reads_busybox_summary() {
        let out = "2 packets transmitted, 2 packets received, 0% packet loss\n\
                   round-trip min/avg/max = 0.100/0.150/0.200 ms\n";
        let stats = parse(out).expect("parsed");
        assert_eq!((stats.transmitted, stats.received), (2, 2));
        assert_eq!(stats.avg_rtt_ms, Some(0.150));
    }

    #[test]
    fn no_summary_is_none() {
        assert_eq!(parse("ping: connect: Network is unreachable\n"), None);
    }
}
