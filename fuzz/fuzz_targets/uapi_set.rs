//! Configuration-socket text, as the daemon reads requests and `wg` reads replies: framing on
//! raw bytes, then `parse_set`, `parse_get_reply` and `parse_set_reply`. Whatever parses must
//! survive a trip through the formatter unchanged, and a get reply must also survive the trip
//! through `showconf`'s file format back into the config parser.

#![no_main]

use std::collections::HashSet;

use ferrotun_fuzz::no_dns;
use ferrotun_uapi::config::WgConfig;
use ferrotun_uapi::format::{format_get_reply, format_set_request};
use ferrotun_uapi::framing::read_message;
use ferrotun_uapi::parse::{parse_get_reply, parse_set, parse_set_reply};
use ferrotun_uapi::InterfaceStatus;
use libfuzzer_sys::fuzz_target;

/// Small, so the over-limit path is reached by short inputs too.
const FRAME_LIMIT: usize = 512;

fn framing(mut data: &[u8]) {
    // Each message consumes at least its blank line, so this ends within len + 1 reads.
    for _ in 0..=data.len() {
        match read_message(&mut data, FRAME_LIMIT) {
            Ok(Some(message)) => {
                assert!(message.ends_with("\n\n") || message == "\n");
                assert!(message.len() <= FRAME_LIMIT);
            }
            Ok(None) | Err(_) => return,
        }
    }
    panic!("read_message kept returning messages without consuming input");
}

fn set_round_trip(text: &str) {
    let Ok(request) = parse_set(text) else {
        return;
    };
    let formatted = format_set_request(&request);
    let body = formatted
        .strip_prefix("set=1\n")
        .expect("a set request starts with set=1");
    let again = parse_set(body)
        .unwrap_or_else(|e| panic!("formatted request does not parse: {e}\n{formatted}"));
    assert_eq!(request, again, "set request changed in a round trip");
}

fn get_round_trip(text: &str) {
    let Ok(status) = parse_get_reply(text) else {
        return;
    };
    let formatted = format_get_reply(&status);
    let again = parse_get_reply(&formatted)
        .unwrap_or_else(|e| panic!("formatted reply does not parse: {e}\n{formatted}"));
    assert_eq!(status, again, "get reply changed in a round trip");
    showconf_round_trip(&status);
}

/// `wg showconf` output fed to `wg setconf` must describe the same device.
fn showconf_round_trip(status: &InterfaceStatus) {
    let mut keys = HashSet::new();
    let distinct = status.peers.iter().all(|p| keys.insert(p.public_key));
    // A link-local endpoint prints with its interface's name as the zone, which only the
    // system resolver reads back; a repeated peer is an error in a file.
    let scoped = status
        .peers
        .iter()
        .any(|p| matches!(p.endpoint, Some(std::net::SocketAddr::V6(a)) if a.scope_id() != 0));
    if !distinct || scoped {
        return;
    }
    let config = WgConfig::from_status(status);
    let text = config.to_text();
    let mut parsed = WgConfig::parse_with(&text, "showconf", &no_dns)
        .unwrap_or_else(|e| panic!("showconf output does not parse: {e}\n{text}"));
    parsed.warnings.clear();
    assert_eq!(config, parsed, "showconf output read back differently");
}

fuzz_target!(|data: &[u8]| {
    framing(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    set_round_trip(text);
    get_round_trip(text);
    if let Err(e) = parse_set_reply(text) {
        assert!(e.errno() > 0, "error {e:?} maps to errno {}", e.errno());
    }
});
