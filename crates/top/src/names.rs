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

/// The first characters of a base64 public key, enough to tell peers apart on one screen.
pub fn short_key(key: &str) -> String {
    let mut short: String = printable(key).chars().take(8).collect();
    if key.chars().count() > 8 {
        short.push('…');
    }
    short
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
        assert_eq!(short_key("ABCDEFGHIJKL="), "ABCDEFGH…");
        assert_eq!(short_key("ABC"), "ABC");
        assert_eq!(short_age(None, 5), "never");
        assert_eq!(short_age(Some(100), 100), "0s ago");
        assert_eq!(short_age(Some(100), 166), "1m 6s ago");
        assert_eq!(short_age(Some(0), 3 * 3600 + 120), "3h 2m ago");
        assert_eq!(short_age(Some(0), 2 * 86400 + 3600), "2d 1h ago");
        assert_eq!(short_age(Some(10), 5), "clock went back");
    }
}
