//! The demo's output: one progress line per step, then the summary.

use std::time::{Duration, Instant};

use super::error::DemoError;
use super::ping::PingStats;
use super::throughput::Throughput;

pub struct Progress {
    total: usize,
    done: usize,
    /// Shown instead of the step count, for steps outside the numbered run (cleanup).
    tag: Option<&'static str>,
}

impl Progress {
    pub fn new(total: usize) -> Progress {
        Progress {
            total,
            done: 0,
            tag: None,
        }
    }

    pub fn tagged(tag: &'static str) -> Progress {
        Progress {
            total: 0,
            done: 0,
            tag: Some(tag),
        }
    }

    /// Prints `[i/N] title ... ok (12 ms)` around `work`; what `work` returns beside its value
    /// is appended to the line. A failure's message follows on indented lines.
    pub fn step<T>(
        &mut self,
        title: &str,
        work: impl FnOnce() -> Result<(T, String), DemoError>,
    ) -> Result<T, DemoError> {
        self.done += 1;
        match self.tag {
            Some(tag) => say_partial!("[{tag}] {title} ... "),
            None => say_partial!("[{}/{}] {title} ... ", self.done, self.total),
        }
        let start = Instant::now();
        let result = work();
        let took = format_duration(start.elapsed());
        match result {
            Ok((value, detail)) if detail.is_empty() => {
                say!("ok ({took})");
                Ok(value)
            }
            Ok((value, detail)) => {
                say!("ok ({took}): {detail}");
                Ok(value)
            }
            Err(DemoError::Interrupted) => {
                say!("interrupted ({took})");
                Err(DemoError::Interrupted)
            }
            Err(e) => {
                say!("FAILED ({took})");
                say!("      {}", e.to_string().replace('\n', "\n      "));
                Err(e)
            }
        }
    }
}

pub fn note(text: &str) {
    say!("      note: {text}");
}

pub fn format_duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else if ms < 10_000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// What the handshake looked like from the outside.
pub struct Handshake {
    /// From both peers being up to the first ping that came back through the tunnel.
    pub first_reply: Duration,
    /// From the start of bringing up peer B (the one that dials) to the latest handshake
    /// time the daemons report; `None` if the clock says it came before (it was stepped).
    pub after_up: Option<Duration>,
}

#[derive(Default)]
pub struct Summary {
    pub handshake: Option<Handshake>,
    pub ping_a_b: Option<Result<PingStats, String>>,
    pub ping_lan: Option<Result<PingStats, String>>,
    pub throughput: Option<Result<Throughput, String>>,
}

fn row(label: &str, value: &str) {
    say!("  {label:<30} {value}");
}

fn outcome<T: std::fmt::Display>(value: &Option<Result<T, String>>) -> String {
    match value {
        None => "not run".into(),
        Some(Ok(v)) => v.to_string(),
        Some(Err(e)) => format!("FAILED: {}", e.lines().next().unwrap_or("")),
    }
}

impl Summary {
    pub fn print(&self) {
        say!();
        say!("summary");
        let (handshake, first_reply) = match &self.handshake {
            None => ("not completed".to_string(), "none".to_string()),
            Some(h) => (
                match h.after_up {
                    Some(d) => format!("completed {} after peer B's start", format_duration(d)),
                    None => "completed".to_string(),
                },
                format!(
                    "{} after both peers were up",
                    format_duration(h.first_reply)
                ),
            ),
        };
        row("handshake", &handshake);
        row("first reply through tunnel", &first_reply);
        row("ping A -> B (10.0.0.2)", &outcome(&self.ping_a_b));
        row("ping A -> LAN (192.168.100.2)", &outcome(&self.ping_lan));
        row("throughput A -> B (TCP)", &outcome(&self.throughput));
    }
}
