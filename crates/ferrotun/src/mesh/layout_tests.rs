use super::*;
use crate::uapi::IpPrefix;
use ferrotun_proto::keys::PrivateKey;

fn pool() -> Pool {
    Pool::new(
        IpPrefix::parse("10.77.0.0/16").unwrap(),
        Some(IpPrefix::parse("fd77::/64").unwrap()),
    )
    .unwrap()
}

fn record(pk: &PublicKey) -> NodeRecord {
    NodeRecord {
        public_key: pk.to_base64(),
        name: "alpha".into(),
        address: "10.77.0.5".parse().unwrap(),
        address6: Some("fd77::5".parse().unwrap()),
        endpoints: vec![
            "203.0.113.1:51820".into(),
            "[2001:db8::1]:51820".into(),
            "vpn.example.org:4500".into(),
        ],
    }
}

fn key() -> PublicKey {
    PrivateKey::from_bytes([9; 32]).public_key()
}

#[test]
fn a_good_record_reads_back() {
    let pk = key();
    let json = serde_json::to_vec(&record(&pk)).unwrap();
    let node = parse_node(&pk.to_hex(), &json, &pool()).unwrap();
    assert_eq!(node.index, 5);
    assert_eq!(node.public_key, pk);
    assert_eq!(node.endpoints.len(), 3);
}

#[test]
fn bad_records_are_refused_whole() {
    let pk = key();
    let good = record(&pk);
    let p = pool();
    let check = |suffix: &str, value: &[u8], why: &str| {
        let r = parse_node(suffix, value, &p);
        assert!(r.is_err(), "{why}: accepted");
    };
    check(&pk.to_hex(), b"{not json", "malformed JSON");
    check(&pk.to_hex(), b"[]", "not an object");
    check("zz", &serde_json::to_vec(&good).unwrap(), "key not hex");
    let other = PrivateKey::from_bytes([3; 32]).public_key();
    check(
        &other.to_hex(),
        &serde_json::to_vec(&good).unwrap(),
        "stored under another key",
    );
    let mut r = good.clone();
    r.address = "10.78.0.5".parse().unwrap();
    check(
        &pk.to_hex(),
        &serde_json::to_vec(&r).unwrap(),
        "outside the CIDR",
    );
    let mut r = good.clone();
    r.address = "10.77.255.255".parse().unwrap();
    check(&pk.to_hex(), &serde_json::to_vec(&r).unwrap(), "broadcast");
    let mut r = good.clone();
    r.address6 = Some("fd77::6".parse().unwrap());
    check(
        &pk.to_hex(),
        &serde_json::to_vec(&r).unwrap(),
        "v6 of another host",
    );
    let mut r = good.clone();
    r.endpoints.push("nonsense".into());
    check(
        &pk.to_hex(),
        &serde_json::to_vec(&r).unwrap(),
        "bad endpoint",
    );
    let mut r = good.clone();
    r.endpoints = vec!["1.2.3.4:1".into(); 17];
    check(
        &pk.to_hex(),
        &serde_json::to_vec(&r).unwrap(),
        "too many endpoints",
    );
    let mut text = serde_json::to_value(&good).unwrap();
    text["private_key"] = "x".into();
    check(
        &pk.to_hex(),
        &serde_json::to_vec(&text).unwrap(),
        "unknown field",
    );
}

#[test]
fn claims_read_back() {
    let pk = key();
    assert_eq!(parse_claim("12", pk.to_hex().as_bytes()), Some((12, pk)));
    assert_eq!(parse_claim("x", pk.to_hex().as_bytes()), None);
    assert_eq!(parse_claim("12", b"nope"), None);
}

#[test]
fn mesh_names_stay_plain() {
    assert!(valid_mesh_name("mesh0"));
    for bad in ["", "a/b", "..", "averyveryverylongname", "a b"] {
        assert!(!valid_mesh_name(bad), "{bad}");
    }
}
