//! `wg set` argument lists through `cli::set::parse_set_args`, the parsing half of `wg set`
//! (it never touches the socket). Key files are always `/dev/stdin`, fed from the input, so a
//! run reads no real files. A request that parses must survive the socket's text form.

#![no_main]

use arbitrary::Arbitrary;
use ferrotun_fuzz::no_dns;
use ferrotun_uapi::format::format_set_request;
use ferrotun_uapi::parse::parse_set;
use ferrotun_uapi::{Client, PeerChange, SetRequest};
use ferrotun_wg::set::parse_set_args;
use ferrotun_wg::{Env, Io};
use libfuzzer_sys::fuzz_target;

const KEYWORDS: [&str; 9] = [
    "listen-port",
    "fwmark",
    "private-key",
    "peer",
    "remove",
    "endpoint",
    "allowed-ips",
    "persistent-keepalive",
    "preshared-key",
];

/// Plausible values, so the fuzzer reaches the checks after the keyword match quickly.
const VALUES: [&str; 12] = [
    "jMGj6XfckCqD+cuJV1XkrPPw66oBfUPndCyBTTmhZAo=",
    "WAmgVYXkbT2bCtdcDwolI88/iVi/aV3/PHcUBTQSYmo=",
    "51820",
    "0x10",
    "off",
    "0",
    "10.0.0.1/8, fd00::/64",
    "0.0.0.0/0,::/0",
    "[::1]:5",
    "192.0.2.1:51820",
    "",
    "/dev/stdin",
];

#[derive(Arbitrary, Debug)]
enum Arg {
    Keyword(u8),
    Value(u8),
    Free(String),
}

#[derive(Arbitrary, Debug)]
struct Input {
    args: Vec<Arg>,
    stdin: Vec<u8>,
}

fn to_strings(args: &[Arg]) -> Vec<String> {
    let mut out: Vec<String> = args
        .iter()
        .map(|a| match a {
            Arg::Keyword(k) => KEYWORDS[usize::from(*k) % KEYWORDS.len()].to_string(),
            Arg::Value(v) => VALUES[usize::from(*v) % VALUES.len()].to_string(),
            Arg::Free(s) => s.clone(),
        })
        .collect();
    // Whatever follows a key-file keyword may be read as a path: keep it to stdin.
    for i in 1..out.len() {
        if matches!(out[i - 1].as_str(), "private-key" | "preshared-key") {
            out[i] = "/dev/stdin".to_string();
        }
    }
    out
}

/// `wg set ... peer K remove preshared-key F` keeps the key in the request, where the socket
/// form (and `parse_set`) keep only the removal; both mean the same to the daemon.
fn canonical(mut request: SetRequest) -> SetRequest {
    for peer in &mut request.peers {
        if peer.remove {
            *peer = PeerChange::removal(peer.public_key);
        }
    }
    request
}

fuzz_target!(|input: Input| {
    let args = to_strings(&input.args);
    let mut stdin = input.stdin.as_slice();
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let mut io = Io {
        prog: "wg".into(),
        stdin: &mut stdin,
        stdout: &mut stdout,
        stderr: &mut stderr,
        env: Env::default(),
        client: Client::with_dir("/nonexistent"),
        resolve: &no_dns,
    };
    match parse_set_args(&mut io, &args) {
        Ok(request) => {
            let wire = format_set_request(&request);
            let body = wire.strip_prefix("set=1\n").expect("set=1 first");
            let parsed = parse_set(body)
                .unwrap_or_else(|e| panic!("request for the daemon does not parse: {e}\n{wire}"));
            assert_eq!(canonical(request), parsed, "request changed on the socket");
        }
        Err(message) => assert!(!message.is_empty()),
    }
    assert!(stdout.is_empty(), "parsing printed to stdout");
});
