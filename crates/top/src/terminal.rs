//! The terminal as `ferrotun top` borrows it: raw mode, the alternate screen, no cursor;
//! and given back exactly as it was however top ends: returning, failing (the guard's
//! Drop), panicking (a panic hook, which runs even where panics abort), or being told to
//! stop by SIGTERM, SIGHUP or SIGINT (flags the main loop checks).

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};

use crossterm::{cursor, execute, terminal};

/// Whether the terminal is borrowed now, so it is given back once and only once.
static BORROWED: AtomicBool = AtomicBool::new(false);
static PANIC_HOOK: Once = Once::new();

/// Holds the terminal in raw mode on the alternate screen until dropped.
pub struct Terminal {
    stop: Arc<AtomicBool>,
}

impl Terminal {
    /// Takes over the terminal on stdout.
    pub fn enter() -> io::Result<Terminal> {
        PANIC_HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                // The terminal first, so the panic message is readable.
                restore();
                previous(info);
            }));
        });
        let stop = Arc::new(AtomicBool::new(false));
        for signal in [
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGHUP,
            signal_hook::consts::SIGINT,
        ] {
            signal_hook::flag::register(signal, Arc::clone(&stop))?;
        }
        // From here on anything that fails gives the terminal back through Drop.
        BORROWED.store(true, Ordering::SeqCst);
        let guard = Terminal { stop };
        terminal::enable_raw_mode()?;
        execute!(io::stdout(), terminal::EnterAlternateScreen, cursor::Hide)?;
        Ok(guard)
    }

    /// Whether a signal asked top to stop.
    pub fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        restore();
    }
}

/// Gives the terminal back (cursor shown, main screen, cooked mode), if it is borrowed.
/// Errors are ignored: there is no better terminal to report them on.
fn restore() {
    if BORROWED.swap(false, Ordering::SeqCst) {
        let mut stdout = io::stdout();
        let _ = execute!(stdout, cursor::Show, terminal::LeaveAlternateScreen);
        let _ = terminal::disable_raw_mode();
        let _ = stdout.flush();
    }
}
