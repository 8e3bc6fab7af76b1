//! Human-oriented pieces of `wg show`: colour sequences (wg's terminal.c), durations, byte
//! counts.

pub const RESET: &str = "\x1b[0m";
pub const BOLD: &str = "\x1b[1m";
pub const RED: &str = "\x1b[31m";
pub const GREEN: &str = "\x1b[32m";
pub const YELLOW: &str = "\x1b[33m";
pub const CYAN: &str = "\x1b[36m";

/// Removes ANSI sequences (`ESC [` up to and including the next letter), as wg does to all of
/// its pretty output when colours are off; that also neutralises escapes in device data.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `1 year, 2 days, 1 minute, 6 seconds`: zero units left out, empty for zero seconds.
pub fn duration(mut left: u64) -> String {
    const UNITS: [(&str, u64); 5] = [
        ("year", 365 * 24 * 60 * 60),
        ("day", 24 * 60 * 60),
        ("hour", 60 * 60),
        ("minute", 60),
        ("second", 1),
    ];
    let mut parts = Vec::new();
    for (name, size) in UNITS {
        let n = left / size;
        left %= size;
        if n != 0 {
            let plural = if n == 1 { "" } else { "s" };
            parts.push(format!("{n} {CYAN}{name}{plural}{RESET}"));
        }
    }
    parts.join(", ")
}

/// How long ago a handshake was, relative to `now` (both Unix seconds).
pub fn ago(then: u64, now: u64) -> String {
    if now == then {
        "Now".to_string()
    } else if now < then {
        format!("({RED}System clock wound backward; connection problems may ensue.{RESET})")
    } else {
        format!("{} ago", duration(now - then))
    }
}

/// `92 B`, `1.50 KiB`, … `TiB`, 1024-based with two decimals.
pub fn bytes(b: u64) -> String {
    const KIB: u64 = 1024;
    // Converting to f64 only for display; the rounding of huge counts does not matter here.
    let f = b as f64;
    if b < KIB {
        format!("{b} {CYAN}B{RESET}")
    } else if b < KIB.pow(2) {
        format!("{:.2} {CYAN}KiB{RESET}", f / 1024.0)
    } else if b < KIB.pow(3) {
        format!("{:.2} {CYAN}MiB{RESET}", f / (1024.0 * 1024.0))
    } else if b < KIB.pow(4) {
        format!("{:.2} {CYAN}GiB{RESET}", f / (1024.0 * 1024.0 * 1024.0))
    } else {
        format!(
            "{:.2} {CYAN}TiB{RESET}",
            f / (1024.0 * 1024.0 * 1024.0) / 1024.0
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(strip_ansi(&duration(66)), "1 minute, 6 seconds");
        assert_eq!(strip_ansi(&duration(25)), "25 seconds");
        assert_eq!(strip_ansi(&duration(1)), "1 second");
        assert_eq!(
            strip_ansi(&duration(365 * 86400 + 86400 + 3600)),
            "1 year, 1 day, 1 hour"
        );
        assert_eq!(duration(0), "");
        assert_eq!(strip_ansi(&ago(100, 166)), "1 minute, 6 seconds ago");
        assert_eq!(ago(100, 100), "Now");
        assert_eq!(
            strip_ansi(&ago(101, 100)),
            "(System clock wound backward; connection problems may ensue.)"
        );
    }

    #[test]
    fn byte_counts() {
        assert_eq!(strip_ansi(&bytes(92)), "92 B");
        assert_eq!(strip_ansi(&bytes(1023)), "1023 B");
        assert_eq!(strip_ansi(&bytes(1152)), "1.12 KiB");
        assert_eq!(strip_ansi(&bytes(1536 * 1024)), "1.50 MiB");
        assert_eq!(strip_ansi(&bytes(5 << 30)), "5.00 GiB");
        assert_eq!(strip_ansi(&bytes(3 << 40)), "3.00 TiB");
        assert_eq!(bytes(92), "92 \x1b[36mB\x1b[0m");
    }

    #[test]
    fn strips_only_sequences() {
        assert_eq!(strip_ansi("\x1b[1mbold\x1b[0m x \x1b[31"), "bold x ");
        assert_eq!(strip_ansi("a\x1bb"), "a\x1bb");
    }
}
