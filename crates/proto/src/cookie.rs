//! Responder side of WireGuard's DoS defence (docs/PROTOCOL.md §4): mac1 proves the sender knows
//! our public key, mac2 proves it can receive at its source address, and cookie replies hand
//! out what mac2 needs. All of it runs before any DH is spent on a message.
//!
//! The initiator side (storing a cookie, filling mac2) lives in `noise::Handshake`.

use std::net::{IpAddr, SocketAddr};

use rand_core::CryptoRngCore;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::crypto::{hash, mac, xaead_seal};
use crate::keys::PublicKey;
use crate::noise::{LocalStatic, COOKIE_LIFETIME, LABEL_COOKIE, LABEL_MAC1};
use crate::time::Instant;
use crate::wire::{
    COOKIE_REPLY_LEN, INITIATION_LEN, INITIATION_MAC1_OFFSET, INITIATION_MAC2_OFFSET, RESPONSE_LEN,
    RESPONSE_MAC1_OFFSET, RESPONSE_MAC2_OFFSET, TYPE_COOKIE_REPLY,
};

/// Offsets of mac1 and mac2 for the two message kinds that carry them, by exact length (the
/// caller may hand us raw datagrams).
fn mac_offsets(msg: &[u8]) -> Option<(usize, usize)> {
    match msg.len() {
        INITIATION_LEN => Some((INITIATION_MAC1_OFFSET, INITIATION_MAC2_OFFSET)),
        RESPONSE_LEN => Some((RESPONSE_MAC1_OFFSET, RESPONSE_MAC2_OFFSET)),
        _ => None,
    }
}

fn mac_at(msg: &[u8], offset: usize) -> Option<&[u8; 16]> {
    msg.get(offset..)?.first_chunk()
}

/// Source address as the cookie binds it: IP bytes then big-endian port. The port matters: a
/// cookie must not let other sockets on the same host skip the check.
fn source_bytes(src: SocketAddr) -> ([u8; 18], usize) {
    let mut out = [0u8; 18];
    let ip_len = match src.ip() {
        IpAddr::V4(ip) => {
            out[..4].copy_from_slice(&ip.octets());
            4
        }
        IpAddr::V6(ip) => {
            out[..16].copy_from_slice(&ip.octets());
            16
        }
    };
    out[ip_len..ip_len + 2].copy_from_slice(&src.port().to_be_bytes());
    (out, ip_len + 2)
}

pub struct CookieChecker {
    mac1_key: [u8; 32],
    cookie_key: [u8; 32],
    /// `Rm`: rotated lazily, so mac2 made from a cookie older than its lifetime stops working.
    secret: Zeroizing<[u8; 32]>,
    secret_born: Option<Instant>,
}

impl std::fmt::Debug for CookieChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieChecker")
            .field("secret_born", &self.secret_born)
            .finish_non_exhaustive()
    }
}

impl CookieChecker {
    pub fn new(local: &LocalStatic) -> Self {
        Self::from_public_key(local.public_key())
    }

    pub fn from_public_key(public: &PublicKey) -> Self {
        CookieChecker {
            mac1_key: hash(&[LABEL_MAC1, public.as_bytes()]),
            cookie_key: hash(&[LABEL_COOKIE, public.as_bytes()]),
            secret: Zeroizing::new([0; 32]),
            secret_born: None,
        }
    }

    /// True if `msg` is an initiation or response whose mac1 was made with our public key.
    pub fn verify_mac1(&self, msg: &[u8]) -> bool {
        let Some((mac1_at, _)) = mac_offsets(msg) else {
            return false;
        };
        match (msg.get(..mac1_at), mac_at(msg, mac1_at)) {
            (Some(covered), Some(got)) => mac(&self.mac1_key, &[covered]).ct_eq(got).into(),
            _ => false,
        }
    }

    fn live_secret(&self, now: Instant) -> Option<&[u8; 32]> {
        let born = self.secret_born?;
        (now.saturating_duration_since(born) < COOKIE_LIFETIME).then_some(&*self.secret)
    }

    fn cookie(secret: &[u8; 32], src: SocketAddr) -> Zeroizing<[u8; 16]> {
        let (bytes, len) = source_bytes(src);
        Zeroizing::new(mac(secret, &[bytes.get(..len).unwrap_or_default()]))
    }

    /// True if mac2 was made with the cookie we would currently give `src`. A stale secret
    /// validates nothing; it is only replaced when a new cookie is handed out.
    pub fn verify_mac2(&mut self, msg: &[u8], src: SocketAddr, now: Instant) -> bool {
        let Some((_, mac2_at)) = mac_offsets(msg) else {
            return false;
        };
        let Some(secret) = self.live_secret(now) else {
            return false;
        };
        let cookie = Self::cookie(secret, src);
        match (msg.get(..mac2_at), mac_at(msg, mac2_at)) {
            (Some(covered), Some(got)) => mac(&cookie, &[covered]).ct_eq(got).into(),
            _ => false,
        }
    }

    /// Builds the cookie reply to a handshake message from `src` whose sender index is
    /// `sender_index`. Call only for messages with a valid mac1: the reply is bound to it.
    pub fn create_reply(
        &mut self,
        msg: &[u8],
        sender_index: u32,
        src: SocketAddr,
        now: Instant,
        rng: &mut impl CryptoRngCore,
    ) -> [u8; COOKIE_REPLY_LEN] {
        if self.live_secret(now).is_none() {
            rng.fill_bytes(&mut *self.secret);
            self.secret_born = Some(now);
        }
        let cookie = Self::cookie(&self.secret, src);
        let mac1 = mac_offsets(msg)
            .and_then(|(at, _)| mac_at(msg, at))
            .copied()
            .unwrap_or_default();

        let mut reply = [0u8; COOKIE_REPLY_LEN];
        reply[..4].copy_from_slice(&TYPE_COOKIE_REPLY.to_le_bytes());
        reply[4..8].copy_from_slice(&sender_index.to_le_bytes());
        let (head, encrypted) = reply.split_at_mut(32);
        let nonce: &mut [u8; 24] = match head.get_mut(8..).and_then(|n| n.try_into().ok()) {
            Some(n) => n,
            None => return reply,
        };
        rng.fill_bytes(nonce);
        // Sizes are fixed (16-byte cookie into 32 bytes), so sealing cannot fail.
        let sealed = xaead_seal(&self.cookie_key, nonce, &*cookie, &mac1, encrypted);
        debug_assert!(sealed.is_ok());
        reply
    }
}

/// What to do with a handshake message after the cheap MAC checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacVerdict {
    /// Bad mac1 (or not a handshake message): drop silently.
    Reject,
    /// Under load without a valid mac2: answer with a cookie reply, do not process.
    SendCookie,
    /// Process it (under load the caller still applies the per-source rate limiter).
    Accept,
}

pub fn check_macs(
    checker: &mut CookieChecker,
    msg: &[u8],
    src: SocketAddr,
    under_load: bool,
    now: Instant,
) -> MacVerdict {
    if !checker.verify_mac1(msg) {
        MacVerdict::Reject
    } else if !under_load || checker.verify_mac2(msg, src, now) {
        MacVerdict::Accept
    } else {
        MacVerdict::SendCookie
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{PresharedKey, PrivateKey};
    use crate::noise::{open_initiation, Handshake};
    use crate::time::WallTime;
    use crate::wire;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use std::time::Duration;

    struct Setup {
        initiator: LocalStatic,
        responder: LocalStatic,
        hs: Handshake,
        peer_on_responder: Handshake,
        checker: CookieChecker,
        rng: StdRng,
    }

    fn setup() -> Setup {
        let initiator = LocalStatic::new(PrivateKey::from_bytes([1; 32]));
        let responder = LocalStatic::new(PrivateKey::from_bytes([2; 32]));
        let hs = Handshake::new(&initiator, *responder.public_key(), PresharedKey::ZERO);
        let peer_on_responder =
            Handshake::new(&responder, *initiator.public_key(), PresharedKey::ZERO);
        let checker = CookieChecker::new(&responder);
        Setup {
            initiator,
            responder,
            hs,
            peer_on_responder,
            checker,
            rng: StdRng::seed_from_u64(7),
        }
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn mac1_is_checked_with_our_key() {
        let mut s = setup();
        let msg =
            s.hs.create_initiation(
                &s.initiator,
                1,
                Instant::ZERO,
                WallTime::new(1, 0),
                &mut s.rng,
            )
            .unwrap();
        assert!(s.checker.verify_mac1(&msg));
        let mut bad = msg;
        bad[50] ^= 1;
        assert!(!s.checker.verify_mac1(&bad));
        assert!(!CookieChecker::new(&s.initiator).verify_mac1(&msg));
        assert!(!s.checker.verify_mac1(&msg[..100]));
        assert!(!s.checker.verify_mac1(&[]));
    }

    #[test]
    fn cookie_binds_ip_and_port() {
        let secret = [9u8; 32];
        let a = CookieChecker::cookie(&secret, addr("192.0.2.1:51820"));
        let b = CookieChecker::cookie(&secret, addr("192.0.2.1:51821"));
        let c = CookieChecker::cookie(&secret, addr("192.0.2.2:51820"));
        let d = CookieChecker::cookie(&secret, addr("[2001:db8::1]:51820"));
        assert_ne!(*a, *b, "different port must give a different cookie");
        assert_ne!(*a, *c);
        assert_ne!(*a, *d);
        assert_eq!(*a, *CookieChecker::cookie(&secret, addr("192.0.2.1:51820")));
    }

    #[test]
    fn verdicts_and_cookie_round_trip() {
        let mut s = setup();
        let src = addr("198.51.100.7:40000");
        let t0 = Instant::from_nanos(1_000_000_000);
        let wall = WallTime::new(1_700_000_000, 0);

        let first =
            s.hs.create_initiation(&s.initiator, 11, t0, wall, &mut s.rng)
                .unwrap();
        assert_eq!(&first[132..], &[0u8; 16], "no cookie yet, mac2 zero");
        assert_eq!(
            check_macs(&mut s.checker, &first, src, false, t0),
            MacVerdict::Accept
        );
        assert_eq!(
            check_macs(&mut s.checker, &first, src, true, t0),
            MacVerdict::SendCookie
        );
        let mut garbage = first;
        garbage[120] ^= 1;
        assert_eq!(
            check_macs(&mut s.checker, &garbage, src, true, t0),
            MacVerdict::Reject
        );

        let reply = s.checker.create_reply(&first, 11, src, t0, &mut s.rng);
        let wire::Message::CookieReply(reply_view) = wire::parse(&reply).unwrap() else {
            panic!("not a cookie reply")
        };
        assert_eq!(reply_view.receiver_index(), 11);
        s.hs.consume_cookie_reply(&reply_view, t0).unwrap();

        // The retransmission carries mac2 and passes while under load, from the same source.
        let t1 = t0 + Duration::from_secs(5);
        let second =
            s.hs.create_initiation(
                &s.initiator,
                12,
                t1,
                WallTime::new(1_700_000_005, 0),
                &mut s.rng,
            )
            .unwrap();
        assert_ne!(&second[132..], &[0u8; 16]);
        assert_eq!(
            check_macs(&mut s.checker, &second, src, true, t1),
            MacVerdict::Accept
        );
        assert_eq!(
            check_macs(
                &mut s.checker,
                &second,
                addr("198.51.100.7:40001"),
                true,
                t1
            ),
            MacVerdict::SendCookie,
            "cookie is bound to the source port"
        );
        // And the handshake itself then goes through.
        let view = wire::Initiation::new(&second).unwrap();
        let opened = open_initiation(&s.responder, &view).unwrap();
        s.peer_on_responder
            .accept_initiation(&s.responder, opened, t1)
            .unwrap();

        // After the secret's lifetime, old cookies stop validating.
        let late = t0 + COOKIE_LIFETIME + Duration::from_secs(1);
        assert!(!s.checker.verify_mac2(&second, src, late));
    }

    #[test]
    fn cookie_reply_is_bound_to_the_mac1_sent() {
        let mut s = setup();
        let src = addr("198.51.100.7:40000");
        let wall = WallTime::new(1_700_000_000, 0);
        let first =
            s.hs.create_initiation(&s.initiator, 1, Instant::ZERO, wall, &mut s.rng)
                .unwrap();
        let reply = s
            .checker
            .create_reply(&first, 1, src, Instant::ZERO, &mut s.rng);
        // A newer initiation replaced the mac1 we remember; the old reply no longer fits.
        s.hs.create_initiation(&s.initiator, 2, Instant::ZERO, wall, &mut s.rng)
            .unwrap();
        let view = wire::CookieReply::new(&reply).unwrap();
        assert_eq!(
            s.hs.consume_cookie_reply(&view, Instant::ZERO),
            Err(crate::noise::HandshakeError::Decrypt)
        );

        // A peer that never sent us anything has no use for a cookie.
        let mut fresh = Handshake::new(&s.initiator, *s.responder.public_key(), PresharedKey::ZERO);
        assert_eq!(
            fresh.consume_cookie_reply(&view, Instant::ZERO),
            Err(crate::noise::HandshakeError::UnexpectedCookie)
        );
    }

    #[test]
    fn responses_are_covered_too() {
        let mut s = setup();
        let wall = WallTime::new(1_700_000_000, 0);
        let init =
            s.hs.create_initiation(&s.initiator, 1, Instant::ZERO, wall, &mut s.rng)
                .unwrap();
        let opened = open_initiation(&s.responder, &wire::Initiation::new(&init).unwrap()).unwrap();
        let accepted = s
            .peer_on_responder
            .accept_initiation(&s.responder, opened, Instant::ZERO)
            .unwrap();
        let (resp, _) = s
            .peer_on_responder
            .create_response(&s.responder, accepted, 2, Instant::ZERO, &mut s.rng)
            .unwrap();
        let mut initiator_checker = CookieChecker::new(&s.initiator);
        assert!(initiator_checker.verify_mac1(&resp));
        assert!(!s.checker.verify_mac1(&resp));
        let src = addr("10.0.0.1:1");
        assert_eq!(
            check_macs(&mut initiator_checker, &resp, src, true, Instant::ZERO),
            MacVerdict::SendCookie
        );
    }
}
