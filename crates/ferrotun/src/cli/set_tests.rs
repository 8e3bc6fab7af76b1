use super::*;
use crate::cli::{Env, Io};
use crate::config::values::ValueError;
use crate::uapi::Client;
use std::net::SocketAddr;

const PK1: &str = "jMGj6XfckCqD+cuJV1XkrPPw66oBfUPndCyBTTmhZAo=";

fn no_dns(text: &str) -> Result<SocketAddr, ValueError> {
    crate::config::endpoint::split(text)?;
    text.parse().map_err(|_| ValueError::Resolve {
        reason: "no DNS".into(),
        value: text.into(),
    })
}

fn parse(args: &[&str], stdin: &[u8]) -> (Result<SetRequest, String>, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let mut input = stdin;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut io = Io {
        prog: "wg".into(),
        stdin: &mut input,
        stdout: &mut out,
        stderr: &mut err,
        env: Env::default(),
        client: Client::with_dir("/nonexistent"),
        resolve: &no_dns,
    };
    let r = parse_set_args(&mut io, &args);
    (r, String::from_utf8(err).unwrap())
}

#[test]
fn full_command_line() {
    let psk = "WAmgVYXkbT2bCtdcDwolI88/iVi/aV3/PHcUBTQSYmo=\n";
    let (req, warn) = parse(
        &[
            "listen-port",
            "51820",
            "fwmark",
            "0x10",
            "peer",
            PK1,
            "preshared-key",
            "/dev/stdin",
            "endpoint",
            "[::1]:5",
            "persistent-keepalive",
            "off",
            "allowed-ips",
            "10.0.0.1/8, fd00::/64",
            "peer",
            PK1,
            "remove",
        ],
        psk.as_bytes(),
    );
    let req = req.unwrap();
    assert_eq!(
        warn,
        "Warning: AllowedIP has nonzero host part: 10.0.0.1/8\n"
    );
    assert_eq!((req.listen_port, req.fwmark), (Some(51820), Some(16)));
    let p = &req.peers[0];
    assert!(matches!(p.preshared_key, Some(Some(_))));
    assert_eq!(p.persistent_keepalive, Some(0));
    assert!(p.replace_allowed_ips);
    assert_eq!(p.allowed_ips[0].prefix().to_string(), "10.0.0.0/8");
    assert!(req.peers[1].remove);
}

#[test]
fn empty_key_file_removes() {
    let (req, _) = parse(&["private-key", "/dev/null"], b"");
    assert_eq!(req.unwrap().private_key, Some(None));
    let (req, _) = parse(&["peer", PK1, "preshared-key", "/dev/stdin"], b"");
    assert_eq!(req.unwrap().peers[0].preshared_key, Some(None));
}

#[test]
fn argument_errors_like_wg() {
    let cases: [(&[&str], &str); 7] = [
        (
            &["peer", PK1, "listen-port", "1"],
            "Invalid argument: listen-port",
        ),
        (&["remove"], "Invalid argument: remove"),
        (&["listen-port"], "Invalid argument: listen-port"),
        (
            &["peer", "xyz"],
            "Key is not the correct length or format: `xyz'",
        ),
        (
            &["fwmark", "big"],
            "Fwmark is neither 0/off nor 0-0xffffffff: `big'",
        ),
        (
            &["private-key", "/nonexistent/key"],
            "fopen: No such file or directory",
        ),
        (
            &["peer", PK1, "endpoint", "1.2.3.4"],
            "Unable to find port of endpoint: `1.2.3.4'",
        ),
    ];
    for (args, want) in cases {
        assert_eq!(parse(args, b"").0.unwrap_err(), want, "{args:?}");
    }
}
