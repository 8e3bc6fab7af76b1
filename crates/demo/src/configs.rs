//! The two wg-quick files of the demo: the classic point-to-point pair, with peer B also
//! routing for the LAN behind it (forwarding plus masquerading in its PostUp/PostDown).

use ferrotun_proto::keys::{PrivateKey, KEY_LEN};
use rand_core::{OsRng, RngCore};
use zeroize::Zeroize;

use super::error::DemoError;
use super::topology::{Names, A_UNDERLAY, LAN_NET, PORT, TUNNEL_A, TUNNEL_B};

pub struct Keys {
    pub a: PrivateKey,
    pub b: PrivateKey,
}

impl Keys {
    pub fn generate() -> Result<Keys, DemoError> {
        Ok(Keys {
            a: random_key()?,
            b: random_key()?,
        })
    }
}

fn random_key() -> Result<PrivateKey, DemoError> {
    let mut bytes = [0u8; KEY_LEN];
    OsRng.try_fill_bytes(&mut bytes).map_err(|e| {
        DemoError::io(
            "cannot read random bytes",
            std::io::Error::other(e.to_string()),
        )
    })?;
    let key = PrivateKey::from_bytes(bytes);
    bytes.zeroize();
    Ok(key)
}

/// Peer A: listens on the well-known port and reaches B's tunnel address and, through B,
/// the LAN behind it. It has no Endpoint for B: it learns it from B's first handshake.
pub fn config_a(keys: &Keys, names: &Names) -> String {
    format!(
        "# ferrotun demo, peer A (namespace {ns})\n\
         [Interface]\n\
         PrivateKey = {private}\n\
         Address = {TUNNEL_A}/24\n\
         ListenPort = {PORT}\n\
         \n\
         [Peer]\n\
         # peer B, and the LAN behind it\n\
         PublicKey = {peer}\n\
         AllowedIPs = {TUNNEL_B}/32, {LAN_NET}\n",
        ns = names.ns_a,
        private = keys.a.to_base64(),
        peer = keys.b.public_key().to_base64(),
    )
}

/// Peer B: dials A, keeps the path warm, and forwards and masquerades tunnel traffic onto
/// its LAN, so the LAN host needs no route back to the tunnel network.
pub fn config_b(keys: &Keys, names: &Names) -> String {
    let lan = super::topology::B_LAN_DEV;
    format!(
        "# ferrotun demo, peer B (namespace {ns})\n\
         [Interface]\n\
         PrivateKey = {private}\n\
         Address = {TUNNEL_B}/24\n\
         PostUp = iptables -A FORWARD -i %i -j ACCEPT; iptables -t nat -A POSTROUTING -o {lan} -j MASQUERADE\n\
         PostDown = iptables -D FORWARD -i %i -j ACCEPT; iptables -t nat -D POSTROUTING -o {lan} -j MASQUERADE\n\
         \n\
         [Peer]\n\
         # peer A\n\
         PublicKey = {peer}\n\
         AllowedIPs = {TUNNEL_A}/32\n\
         Endpoint = {A_UNDERLAY}:{PORT}\n\
         PersistentKeepalive = 25\n",
        ns = names.ns_b,
        private = keys.b.to_base64(),
        peer = keys.a.public_key().to_base64(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrotun_uapi::config::QuickConfig;
    use ferrotun_uapi::IpPrefix;

    fn parsed() -> (Keys, QuickConfig, QuickConfig) {
        let keys = Keys::generate().expect("random");
        let names = Names::for_pid(4242);
        let a = QuickConfig::parse(&config_a(&keys, &names), "a.conf").expect("a parses");
        let b = QuickConfig::parse(&config_b(&keys, &names), "b.conf").expect("b parses");
        (keys, a, b)
    }

    fn prefix(text: &str) -> IpPrefix {
        IpPrefix::parse_or_host(text).expect("prefix")
    }

    #[test]
    fn peers_name_each_other_as_in_the_point_to_point_example() {
        let (keys, a, b) = parsed();
        assert_eq!(a.addresses, vec![prefix("10.0.0.1/24")]);
        assert_eq!(b.addresses, vec![prefix("10.0.0.2/24")]);
        assert_eq!(a.wg.listen_port, Some(51820));
        assert_eq!(a.wg.peers.len(), 1);
        assert_eq!(b.wg.peers.len(), 1);
        assert_eq!(a.wg.peers[0].public_key, keys.b.public_key());
        assert_eq!(b.wg.peers[0].public_key, keys.a.public_key());
        assert_eq!(a.wg.peers[0].endpoint, None);
        assert_eq!(
            b.wg.peers[0].endpoint,
            Some("192.0.2.1:51820".parse().expect("addr"))
        );
        assert_eq!(b.wg.peers[0].allowed_ips, vec![prefix("10.0.0.1/32")]);
    }

    #[test]
    fn a_routes_the_lan_through_b_which_masquerades() {
        let (_, a, b) = parsed();
        assert_eq!(
            a.wg.peers[0].allowed_ips,
            vec![prefix("10.0.0.2/32"), prefix("192.168.100.0/24")]
        );
        assert_eq!(b.post_up.len(), 1);
        assert!(b.post_up[0].contains("-o lan0 -j MASQUERADE"));
        assert!(b.post_down[0].contains("-D FORWARD -i %i"));
        assert!(a.post_up.is_empty());
    }
}
