//! `ferrotun top [INTERFACE]`: the interface's peers, redrawn every second with the rates
//! since the last reading.
//!
//! It needs a terminal: with stdout not one (a pipe, a file) it refuses and points at
//! `ferrotun stats --json`, which is what a script wants. It quits on `q`, `Q`, Esc or
//! Ctrl-C (status 0). When the daemon goes away it gives the terminal back and says so
//! (status 1).

use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use crossterm::{cursor, queue, style, terminal};

use super::screen::{frame, Sample};
use super::stats_cmd::fetch_message;
use super::terminal::Terminal;
use ferrotun_uapi::stats::{fetch, FetchError, Stats};
use ferrotun_uapi::Client;

/// How often the screen is redrawn with new readings.
const INTERVAL: Duration = Duration::from_secs(1);
/// How long top waits for keys at a time: also how soon it notices a signal.
const KEY_WAIT: Duration = Duration::from_millis(100);
/// A daemon that takes longer than this to answer counts as gone (top must stay responsive).
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);

// The options of `ferrotun top`, which the command line (front/) attaches to its command tree
// and reads back typed. `//` comments, not doc comments: clap would make those the
// command's about and the options' help.
#[derive(Debug, Clone, Default, clap::Args)]
#[group(skip)]
pub struct TopOptions {
    #[arg(
        id = "interface",
        value_name = "INTERFACE",
        help = "The interface to watch; the only one running when left out"
    )]
    pub interface: Option<String>,
}

/// Runs `ferrotun top`; returns the exit status.
pub fn top(client: &Client, interface: Option<&str>) -> i32 {
    let client = client.clone().with_timeout(FETCH_TIMEOUT);
    let name = match pick_interface(&client, interface) {
        Ok(n) => n,
        Err(message) => return fail(&message),
    };
    // The first reading before the terminal is taken, so a wrong name or a daemon without
    // counters is reported on a normal screen.
    let first = match fetch(&client, &name) {
        Ok(s) => s,
        Err(e) => return fail(&fetch_message(&e, None)),
    };
    if !io::stdout().is_terminal() {
        return fail(
            "top needs a terminal (stdout is not one); for scripts, \
             `ferrotun stats --json` prints the same counters once",
        );
    }
    let ended = match Terminal::enter() {
        Ok(terminal) => watch(&client, &name, first, &terminal),
        Err(e) => Ended::Failed(format!("cannot set up the terminal: {e}")),
    };
    // The guard has given the terminal back by now; messages go to the normal screen.
    match ended {
        Ended::Quit => 0,
        Ended::Failed(message) => fail(&message),
    }
}

fn fail(message: &str) -> i32 {
    eprintln!("ferrotun top: {message}");
    1
}

/// The interface to watch: the one named, or the only one there is.
fn pick_interface(client: &Client, interface: Option<&str>) -> Result<String, String> {
    if let Some(name) = interface {
        return Ok(name.to_string());
    }
    let names = client
        .list_interfaces()
        .map_err(|e| format!("Unable to list interfaces: {e}"))?;
    match names.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err("no WireGuard interface is running".to_string()),
        several => Err(format!(
            "{} interfaces are running ({}); name one: ferrotun top INTERFACE",
            several.len(),
            several.join(", ")
        )),
    }
}

enum Ended {
    Quit,
    Failed(String),
}

/// The loop: wait for keys until the next reading is due, read, draw.
fn watch(client: &Client, name: &str, first: Stats, terminal: &Terminal) -> Ended {
    let mut before: Option<Stats> = None;
    let mut after = first;
    let mut elapsed = Duration::ZERO;
    let mut read_at = Instant::now();
    loop {
        let sample = Sample {
            before: before.as_ref(),
            after: &after,
            elapsed,
            now: unix_now(),
        };
        if let Err(e) = draw(&sample) {
            return Ended::Failed(format!("cannot draw: {e}"));
        }
        // Keys until the next reading; a resize redraws at once.
        let due = read_at + INTERVAL;
        loop {
            if terminal.stop_requested() {
                return Ended::Quit;
            }
            let left = due.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match event::poll(left.min(KEY_WAIT)) {
                Ok(false) => {}
                Ok(true) => match event::read() {
                    Ok(Event::Key(key)) if quits(&key) => return Ended::Quit,
                    Ok(Event::Resize(..)) => {
                        if let Err(e) = draw(&sample) {
                            return Ended::Failed(format!("cannot draw: {e}"));
                        }
                    }
                    Ok(_) => {}
                    Err(e) => return Ended::Failed(format!("cannot read the keyboard: {e}")),
                },
                Err(e) => return Ended::Failed(format!("cannot read the keyboard: {e}")),
            }
        }
        match fetch(client, name) {
            Ok(next) => {
                let now = Instant::now();
                elapsed = now.duration_since(read_at);
                read_at = now;
                before = Some(std::mem::replace(&mut after, next));
            }
            // The socket gone or dead: the daemon stopped.
            Err(e @ FetchError::Client(_)) => {
                return Ended::Failed(format!(
                    "the daemon serving {name} went away: {}",
                    fetch_message(&e, None)
                ))
            }
            Err(e) => return Ended::Failed(fetch_message(&e, None)),
        }
    }
}

/// `q`, `Q`, Esc and Ctrl-C (which arrives as a key in raw mode).
fn quits(key: &KeyEvent) -> bool {
    key.kind != KeyEventKind::Release
        && match key.code {
            KeyCode::Char('q' | 'Q') | KeyCode::Esc => true,
            KeyCode::Char('c' | 'C') => key.modifiers.contains(KeyModifiers::CONTROL),
            _ => false,
        }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Draws a frame over the whole screen: each line cleared to its end, the rest below it
/// cleared, so nothing of the previous frame remains and nothing flickers.
fn draw(sample: &Sample<'_>) -> io::Result<()> {
    let (width, height) = terminal::size()?;
    let lines = frame(sample, usize::from(width), usize::from(height));
    let mut out = io::stdout().lock();
    queue!(out, cursor::MoveTo(0, 0))?;
    for (row, line) in lines.iter().enumerate() {
        let row = u16::try_from(row).unwrap_or(u16::MAX);
        queue!(
            out,
            cursor::MoveTo(0, row),
            style::Print(line),
            terminal::Clear(terminal::ClearType::UntilNewLine)
        )?;
    }
    let below = u16::try_from(lines.len()).unwrap_or(u16::MAX);
    if below < height {
        queue!(
            out,
            cursor::MoveTo(0, below),
            terminal::Clear(terminal::ClearType::FromCursorDown)
        )?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_only_interface_or_a_name() {
        let dir = ferrotun_testkit::scratch::TempDir::new("toppick");
        let client = Client::with_dir(dir.path());
        let none = pick_interface(&client, None);
        assert_eq!(none, Err("no WireGuard interface is running".to_string()));
        // Listening sockets are live daemons to the client; they need not answer.
        let _a = std::os::unix::net::UnixListener::bind(dir.path().join("wga.sock")).unwrap();
        assert_eq!(pick_interface(&client, None), Ok("wga".to_string()));
        let _b = std::os::unix::net::UnixListener::bind(dir.path().join("wgb.sock")).unwrap();
        let several = pick_interface(&client, None).unwrap_err();
        assert!(
            several.starts_with("2 interfaces are running ("),
            "{several}"
        );
        assert!(
            several.contains("wga") && several.contains("wgb"),
            "{several}"
        );
        assert!(
            several.ends_with("name one: ferrotun top INTERFACE"),
            "{several}"
        );
        assert_eq!(pick_interface(&client, Some("x")), Ok("x".to_string()));
    }

    #[test]
    fn quitting_keys() {
        let key = |code, modifiers| KeyEvent::new(code, modifiers);
        assert!(quits(&key(KeyCode::Char('q'), KeyModifiers::NONE)));
        assert!(quits(&key(KeyCode::Char('Q'), KeyModifiers::SHIFT)));
        assert!(quits(&key(KeyCode::Esc, KeyModifiers::NONE)));
        assert!(quits(&key(KeyCode::Char('c'), KeyModifiers::CONTROL)));
        assert!(!quits(&key(KeyCode::Char('c'), KeyModifiers::NONE)));
        assert!(!quits(&key(KeyCode::Char('x'), KeyModifiers::NONE)));
    }
}
