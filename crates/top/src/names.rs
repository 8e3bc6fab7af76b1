//! How counters, keys and times read at a terminal; shared by `stats` and `top`.

use ferrotun_proto::counters::{Counter, Family};

/// A counter key (`family` or `family.label`) for people: `received, decrypt failed`,
/// `UDP send error EPERM`. Unknown keys (a newer daemon) are shown as they come.
pub fn counter_name(key: &str) -> String {
    let Some(counter) = Counter::from_key(key) else {
        return printable(key);
    };
    let label = counter.label().map(|l| l.replace('_', " "));
    match (counter.family(), label) {
        (Family::received_dropped, Some(l)) => format!("received, {l}"),
        (Family::sent_dropped, Some(l)) => format!("sent, {l}"),
        (Family::udp_send_errors, Some(l)) => format!("UDP send error {l}"),
        (Family::tun_write_errors, Some(l)) => format!("TUN write error {l}"),
        (family, Some(l)) => format!("{}, {l}", family.name().replace('_', " ")),
        (family, None) => family.name().replace('_', " "),
    }
}

/// The short form `top` shows in its drops column: the label alone (`decrypt_failed`,
/// `EPERM`), or the family when it has none.
pub fn counter_short(key: &str) -> String {
    printable(key.rsplit_once('.').map_or(key, |(_, label)| label))
}

pub use ferrotun_uapi::stats::model::is_drop_key as is_drop;

/// Text from the daemon with control characters replaced, so a name or endpoint can never
/// move the cursor or change colours at the terminal.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// `text` cut to `keep` characters, with `…` after them when something was cut.
pub fn cut(text: &str, keep: usize) -> String {
    let mut short: String = text.chars().take(keep).collect();
    if text.chars().count() > keep {
        short.push('…');
    }
    short
}

/// A byte rate in at most 9 characters: `850B/s`, `1.21MiB/s`, `12.3KiB/s`, `124KiB/s`
/// (three significant digits are all a glance at a terminal needs).
pub fn compact_rate(rate: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = rate.max(0.0);
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let name = UNITS[unit];
    // The thresholds are where rounding would add a digit (9.996 shows as 10.0, not 10.00).
    if unit == 0 || value >= 99.95 {
        format!("{value:.0}{name}/s")
    } else if value >= 9.995 {
        format!("{value:.1}{name}/s")
    } else {
        format!("{value:.2}{name}/s")
    }
}

/// `12s ago`, `3m 4s ago`, `5h 6m ago`, `7d 8h ago`, `never`: a handshake's age in the width
/// of a column.
pub fn short_age(then: Option<u64>, now: u64) -> String {
    let Some(then) = then else {
        return "never".to_string();
    };
    let Some(age) = now.checked_sub(then) else {
        return "clock went back".to_string();
    };
    let (d, h, m, s) = (age / 86_400, age / 3_600 % 24, age / 60 % 60, age % 60);
    if d > 0 {
        format!("{d}d {h}h ago")
    } else if h > 0 {
        format!("{h}h {m}m ago")
    } else if m > 0 {
        format!("{m}m {s}s ago")
    } else {
        format!("{s}s ago")
    }
}

/// A handshake's age without `ago`, for a narrow column: `12s`, `3m 4s`, `never`,
/// `future` (the clock went back).
pub fn compact_age(then: Option<u64>, now: u64) -> String {
    match then {
        Some(then) if then > now => "future".to_string(),
        _ => short_age(then, now).trim_end_matches(" ago").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_names() {
        assert_eq!(
            counter_name("received_dropped.decrypt_failed"),
            "received, decrypt failed"
        );
        assert_eq!(counter_name("sent_dropped.no_peer"), "sent, no peer");
        assert_eq!(
            counter_name("udp_send_errors.EPERM"),
            "UDP send error EPERM"
        );
        assert_eq!(counter_name("tun_write_errors.EIO"), "TUN write error EIO");
        assert_eq!(
            counter_name("offload_fallbacks.udp_gso_refused"),
            "offload fallbacks, udp gso refused"
        );
        assert_eq!(counter_name("rekeys"), "rekeys");
        assert_eq!(counter_name("future.thing\x1b"), "future.thing?");
        assert_eq!(
            counter_short("received_dropped.replayed_counter"),
            "replayed_counter"
        );
        assert_eq!(counter_short("rekeys"), "rekeys");
        assert!(is_drop("received_dropped.unknown_index"));
        assert!(is_drop("tun_write_errors.other"));
        assert!(!is_drop("received_packets"));
        assert!(!is_drop("nonsense"));
    }

    #[test]
    fn keys_and_ages() {
        assert_eq!(cut("ABCDEFGHIJKL=", 8), "ABCDEFGH…");
        assert_eq!(cut("ABC", 8), "ABC");
        assert_eq!(short_age(None, 5), "never");
        assert_eq!(short_age(Some(100), 100), "0s ago");
        assert_eq!(short_age(Some(100), 166), "1m 6s ago");
        assert_eq!(short_age(Some(0), 3 * 3600 + 120), "3h 2m ago");
        assert_eq!(short_age(Some(0), 2 * 86400 + 3600), "2d 1h ago");
        assert_eq!(short_age(Some(10), 5), "clock went back");
        assert_eq!(compact_age(Some(100), 166), "1m 6s");
        assert_eq!(compact_age(None, 5), "never");
        assert_eq!(compact_age(Some(10), 5), "future");
        assert_eq!(cut("192.168.241.2:51821", 10), "192.168.24…");
        assert_eq!(cut("10.0.0.1:1", 10), "10.0.0.1:1");
    }

    #[test]
    fn compact_rates_fit_nine_characters() {
        assert_eq!(compact_rate(0.0), "0B/s");
        assert_eq!(compact_rate(850.4), "850B/s");
        assert_eq!(compact_rate(1023.0), "1023B/s");
        assert_eq!(compact_rate(1024.0), "1.00KiB/s");
        assert_eq!(compact_rate(1_268_777.0), "1.21MiB/s");
        assert_eq!(compact_rate(12.34 * 1024.0), "12.3KiB/s");
        assert_eq!(compact_rate(9.999 * 1024.0), "10.0KiB/s");
        assert_eq!(compact_rate(99.99 * 1024.0), "100KiB/s");
        assert_eq!(compact_rate(1023.9 * 1024.0), "1024KiB/s");
        for exp in 0..50 {
            let rate = 1.7f64.powi(exp);
            let text = compact_rate(rate);
            assert!(text.chars().count() <= 9, "{rate}: {text}");
        }
    }
}
