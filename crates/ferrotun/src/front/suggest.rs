//! Telling a mistyped command from an interface name. `ferrotun WORD` starts the daemon for
//! interface WORD (wg-quick relies on that), so a typo such as `shwo` would quietly create an
//! interface; a word this close to a command is refused with a hint instead.

use super::definition::command_names;

/// The command `word` looks like a typo of, if any.
///
/// A word with a digit is taken as an interface name (interfaces are numbered: wg0, tun1),
/// never as a typo. Otherwise one edit (an insertion, deletion, substitution or swap of two
/// neighbours) from a command is a near miss, or two edits from a command of six letters
/// or more; case is ignored.
pub fn near_miss(word: &str) -> Option<String> {
    if word.chars().any(|c| c.is_ascii_digit()) {
        return None;
    }
    let lower = word.to_lowercase();
    command_names()
        .into_iter()
        .map(|name| (strsim::osa_distance(&lower, &name), name))
        .filter(|(distance, name)| {
            let allowed = if name.len() >= 6 { 2 } else { 1 };
            *distance <= allowed
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_are_near_misses() {
        for (typo, meant) in [
            ("shwo", "show"),
            ("Show", "show"),
            ("sho", "show"),
            ("hlep", "help"),
            ("dwon", "down"),
            ("upp", "up"),
            ("genkye", "genkey"),
            ("setconff", "setconf"),
            ("syncconfg", "syncconf"),
            ("deamon", "daemon"),
            ("dmeo", "demo"),
            ("completion", "completions"),
        ] {
            assert_eq!(near_miss(typo).as_deref(), Some(meant), "{typo}");
        }
    }

    #[test]
    fn interface_names_are_not() {
        for name in [
            "wg0", "wg", "tun0", "set0", "home", "office", "vpn", "eth1", "corp",
        ] {
            assert_eq!(near_miss(name), None, "{name}");
        }
    }
}
