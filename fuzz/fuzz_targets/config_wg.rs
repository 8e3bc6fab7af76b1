//! wg(8) config files: `WgConfig::parse_with` on any text (names never resolved). What parses
//! must read back the same from `showconf`'s layout, and the requests `setconf` and `addconf`
//! would send must survive the configuration socket's text form.

#![no_main]

use ferrotun_fuzz::{check_config_error, no_dns};
use ferrotun_uapi::config::WgConfig;
use ferrotun_uapi::format::format_set_request;
use ferrotun_uapi::parse::parse_set;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut config = match WgConfig::parse_with(text, "fuzz.conf", &no_dns) {
        Ok(c) => c,
        Err(e) => {
            check_config_error(&e, text);
            return;
        }
    };
    config.warnings.clear();

    let shown = config.to_text();
    let mut again = WgConfig::parse_with(&shown, "showconf", &no_dns)
        .unwrap_or_else(|e| panic!("showconf layout does not parse: {e}\n{shown}"));
    again.warnings.clear();
    assert_eq!(config, again, "config changed through showconf's layout");

    for replace in [true, false] {
        let request = config.to_set_request(replace);
        let wire = format_set_request(&request);
        let body = wire.strip_prefix("set=1\n").expect("set=1 first");
        let parsed = parse_set(body)
            .unwrap_or_else(|e| panic!("request for the daemon does not parse: {e}\n{wire}"));
        assert_eq!(request, parsed, "request changed on the socket");
    }
});
