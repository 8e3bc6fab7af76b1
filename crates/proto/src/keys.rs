//! Key material: X25519 private and public keys and preshared keys, with the base64 form
//! `wg genkey`/`wg pubkey` use and the hex form of the configuration protocol.
//!
//! Secrets zeroize on drop and compare in constant time; their `Debug` never prints them.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand_core::CryptoRngCore;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

pub const KEY_LEN: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("key is not valid base64 of 32 bytes (44 characters ending in '=')")]
    Base64,
    #[error("key is not 64 hexadecimal characters")]
    Hex,
}

/// Decodes exactly the 44-character canonical base64 that `wg` prints.
fn decode_base64(text: &str) -> Result<[u8; KEY_LEN], KeyError> {
    // wg(8) accepts only the canonical 44-character form: the encoding is checked by the
    // strict engine (which rejects non-zero trailing bits), the length here.
    if text.len() != 44 || !text.ends_with('=') {
        return Err(KeyError::Base64);
    }
    let bytes = STANDARD.decode(text).map_err(|_| KeyError::Base64)?;
    bytes.try_into().map_err(|_| KeyError::Base64)
}

fn decode_hex(text: &str) -> Result<[u8; KEY_LEN], KeyError> {
    let raw = text.as_bytes();
    if raw.len() != 2 * KEY_LEN {
        return Err(KeyError::Hex);
    }
    let mut out = [0u8; KEY_LEN];
    for (byte, pair) in out.iter_mut().zip(raw.chunks_exact(2)) {
        let hi = hex_digit(pair[0]).ok_or(KeyError::Hex)?;
        let lo = hex_digit(pair[1]).ok_or(KeyError::Hex)?;
        *byte = (hi << 4) | lo;
    }
    Ok(out)
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn encode_hex(bytes: &[u8; KEY_LEN]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 * KEY_LEN);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    s
}

/// Clamps a scalar as X25519 and `wg genkey` do.
pub fn clamp(mut k: [u8; KEY_LEN]) -> [u8; KEY_LEN] {
    k[0] &= 248;
    k[31] &= 127;
    k[31] |= 64;
    k
}

/// A public key: not secret, so it is `Copy`, hashable and ordered for use as a map key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey([u8; KEY_LEN]);

impl PublicKey {
    pub const fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        PublicKey(bytes)
    }
    pub const fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        decode_base64(text).map(PublicKey)
    }
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        decode_hex(text).map(PublicKey)
    }
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }
    pub fn to_hex(&self) -> String {
        encode_hex(&self.0)
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.to_base64())
    }
}

impl std::fmt::Display for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_base64())
    }
}

/// An X25519 private key, always stored clamped (as wg and wireguard-go store it).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct PrivateKey([u8; KEY_LEN]);

impl PrivateKey {
    /// Takes 32 bytes and clamps them.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        PrivateKey(clamp(bytes))
    }
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut bytes = [0u8; KEY_LEN];
        rng.fill_bytes(&mut bytes);
        let key = Self::from_bytes(bytes);
        bytes.zeroize();
        key
    }
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        decode_base64(text).map(Self::from_bytes)
    }
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        decode_hex(text).map(Self::from_bytes)
    }
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }
    pub fn to_hex(&self) -> String {
        encode_hex(&self.0)
    }
    /// X25519 base-point multiplication: what `wg pubkey` prints.
    pub fn public_key(&self) -> PublicKey {
        #[cfg(test)]
        crate::x25519_audit::note();
        let secret = x25519_dalek::StaticSecret::from(self.0);
        PublicKey(x25519_dalek::PublicKey::from(&secret).to_bytes())
    }
}

impl PartialEq for PrivateKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}
impl Eq for PrivateKey {}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKey(hidden)")
    }
}

/// A preshared key; all zeros means "none", as in the configuration protocol.
#[derive(Clone, Default, Zeroize, ZeroizeOnDrop)]
pub struct PresharedKey([u8; KEY_LEN]);

impl PresharedKey {
    pub const ZERO: PresharedKey = PresharedKey([0; KEY_LEN]);

    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        PresharedKey(bytes)
    }
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut k = PresharedKey([0; KEY_LEN]);
        rng.fill_bytes(&mut k.0);
        k
    }
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        decode_base64(text).map(PresharedKey)
    }
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        decode_hex(text).map(PresharedKey)
    }
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }
    pub fn to_hex(&self) -> String {
        encode_hex(&self.0)
    }
    pub fn is_zero(&self) -> bool {
        self.0.ct_eq(&[0u8; KEY_LEN]).into()
    }
}

impl PartialEq for PresharedKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}
impl Eq for PresharedKey {}

impl std::fmt::Debug for PresharedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PresharedKey(hidden)")
    }
}

/// Parses a 64-character hex key as the configuration protocol sends it, returning raw bytes
/// (the caller decides whether all-zero means "remove").
pub fn parse_hex_key(text: &str) -> Result<[u8; KEY_LEN], KeyError> {
    decode_hex(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> [u8; 32] {
        decode_hex(s).unwrap()
    }

    #[test]
    fn rfc7748_public_keys() {
        let alice = PrivateKey::from_bytes(hex(
            "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        ));
        assert_eq!(
            alice.public_key().to_hex(),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
        );
        let bob = PrivateKey::from_bytes(hex(
            "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
        ));
        assert_eq!(
            bob.public_key().to_hex(),
            "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
        );
    }

    #[test]
    fn base64_round_trip_and_strictness() {
        let k = PublicKey::from_bytes([7; 32]);
        let text = k.to_base64();
        assert_eq!(text.len(), 44);
        assert_eq!(PublicKey::from_base64(&text).unwrap(), k);
        // Wrong length, missing padding, bad alphabet, non-canonical trailing bits.
        assert_eq!(PublicKey::from_base64(&text[..43]), Err(KeyError::Base64));
        assert_eq!(
            PublicKey::from_base64(&format!("{text}=")),
            Err(KeyError::Base64)
        );
        assert_eq!(
            PublicKey::from_base64(&text.replace('B', "*")),
            Err(KeyError::Base64)
        );
        let mut noncanonical = text.clone().into_bytes();
        noncanonical[42] = b'x'; // 'x' leaves low bits set in the final symbol
        assert!(PublicKey::from_base64(std::str::from_utf8(&noncanonical).unwrap()).is_err());
    }

    #[test]
    fn hex_round_trip_accepts_upper_case() {
        let k = PresharedKey::from_bytes([0xab; 32]);
        assert_eq!(PresharedKey::from_hex(&k.to_hex()).unwrap(), k);
        assert_eq!(
            PresharedKey::from_hex(&k.to_hex().to_uppercase()).unwrap(),
            k
        );
        assert_eq!(PresharedKey::from_hex("abc"), Err(KeyError::Hex));
        assert_eq!(PresharedKey::from_hex(&"g".repeat(64)), Err(KeyError::Hex));
    }

    #[test]
    fn private_keys_are_clamped_and_hidden() {
        let k = PrivateKey::from_bytes([0xff; 32]);
        assert_eq!(k.as_bytes()[0] & 7, 0);
        assert_eq!(k.as_bytes()[31] & 0xc0, 0x40);
        assert_eq!(format!("{k:?}"), "PrivateKey(hidden)");
        assert!(PresharedKey::ZERO.is_zero());
    }
}
