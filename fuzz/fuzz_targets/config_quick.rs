//! wg-quick config files: `QuickConfig::parse_with` on any text (names never resolved). The
//! lines it hands to wg (what `wg-quick strip` prints) must parse on their own to the same
//! wg(8) config, as they do when wg-quick pipes them into `wg setconf`.

#![no_main]

use ferrotun_fuzz::{check_config_error, no_dns};
use ferrotun_uapi::config::{quick::config_path, QuickConfig, WgConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The first line doubles as a `wg-quick up` argument.
    let arg = text.split('\n').next().unwrap_or("");
    if let Ok((path, name)) = config_path(arg) {
        assert!((1..=15).contains(&name.len()), "{arg:?} gave name {name:?}");
        assert!(path.to_string_lossy().ends_with(&format!("{name}.conf")));
    }

    let config = match QuickConfig::parse_with(text, "fuzz.conf", &no_dns) {
        Ok(c) => c,
        Err(e) => {
            check_config_error(&e, text);
            return;
        }
    };
    if let Some(mtu) = config.mtu {
        assert!((68..=65535).contains(&mtu));
    }
    let stripped = config.strip();
    let mut wg = WgConfig::parse_with(&stripped, "stripped", &no_dns)
        .unwrap_or_else(|e| panic!("stripped text does not parse: {e}\n{stripped}"));
    let mut expected = config.wg.clone();
    // Warnings carry line numbers, which differ once the wg-quick lines are gone.
    wg.warnings.clear();
    expected.warnings.clear();
    assert_eq!(expected, wg, "stripped text means something else");
});
