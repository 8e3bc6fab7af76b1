//! Handshake messages forged as an attacker can forge them: the right type and length,
//! random contents, and macs made from nothing but public keys (and a cookie the attacker
//! was sent). They pass a receiver's cheap checks and fail at decryption, which is what
//! flood and drop-counter tests need. One copy here, so every such test forges alike.

use ferrotun_proto::crypto::{hash, mac, xaead_open};
use ferrotun_proto::noise::{LABEL_COOKIE, LABEL_MAC1};
use ferrotun_proto::wire::{
    COOKIE_REPLY_LEN, INITIATION_LEN, INITIATION_MAC1_OFFSET, INITIATION_MAC2_OFFSET, RESPONSE_LEN,
    RESPONSE_MAC1_OFFSET,
};
use rand::RngCore;

/// A well-sized initiation with random contents (its sender index too), a correct mac1 for
/// `responder` and a zero mac2: it passes the first check and fails at decryption.
pub fn initiation_with_mac1(responder: &[u8; 32], rng: &mut impl RngCore) -> Vec<u8> {
    let mut msg = vec![0u8; INITIATION_LEN];
    msg[0] = 1;
    rng.fill_bytes(&mut msg[4..INITIATION_MAC1_OFFSET]);
    put_mac1(&mut msg, INITIATION_MAC1_OFFSET, responder);
    msg
}

/// [`initiation_with_mac1`] with mac2 made from `cookie` as well: it passes every check
/// made under load and fails at decryption.
pub fn initiation_with_cookie(
    responder: &[u8; 32],
    cookie: &[u8; 16],
    rng: &mut impl RngCore,
) -> Vec<u8> {
    let mut msg = initiation_with_mac1(responder, rng);
    let mac2 = mac(cookie, &[&msg[..INITIATION_MAC2_OFFSET]]);
    msg[INITIATION_MAC2_OFFSET..].copy_from_slice(&mac2);
    msg
}

/// A response to `receiver_index` with a correct mac1 for `initiator` and random contents.
pub fn response_with_mac1(
    initiator: &[u8; 32],
    receiver_index: u32,
    rng: &mut impl RngCore,
) -> Vec<u8> {
    let mut msg = vec![0u8; RESPONSE_LEN];
    msg[0] = 2;
    rng.fill_bytes(&mut msg[4..8]);
    msg[8..12].copy_from_slice(&receiver_index.to_le_bytes());
    rng.fill_bytes(&mut msg[12..RESPONSE_MAC1_OFFSET]);
    put_mac1(&mut msg, RESPONSE_MAC1_OFFSET, initiator);
    msg
}

/// The sender index and mac1 of an initiation: what a cookie reply to it names and is
/// bound to.
pub fn initiation_index_and_mac1(msg: &[u8]) -> (u32, [u8; 16]) {
    let index = u32::from_le_bytes(msg[4..8].try_into().expect("4-byte index"));
    let mac1 = msg[INITIATION_MAC1_OFFSET..INITIATION_MAC2_OFFSET]
        .try_into()
        .expect("16-byte mac1");
    (index, mac1)
}

/// The cookie in `reply`, a cookie reply from `responder` to the message whose mac1 was
/// `mac1`; `None` unless it is a cookie reply's length and decrypts with that binding.
pub fn open_cookie_reply(responder: &[u8; 32], reply: &[u8], mac1: &[u8]) -> Option<[u8; 16]> {
    if reply.len() != COOKIE_REPLY_LEN {
        return None;
    }
    let key = hash(&[LABEL_COOKIE, responder]);
    let nonce: &[u8; 24] = reply[8..32].try_into().ok()?;
    let mut cookie = [0u8; 16];
    xaead_open(&key, nonce, &reply[32..], mac1, &mut cookie).ok()?;
    Some(cookie)
}

/// Writes the mac1 of `msg[..offset]` for `receiver` at `offset`.
fn put_mac1(msg: &mut [u8], offset: usize, receiver: &[u8; 32]) {
    let mac1 = mac(&hash(&[LABEL_MAC1, receiver]), &[&msg[..offset]]);
    msg[offset..offset + 16].copy_from_slice(&mac1);
}
