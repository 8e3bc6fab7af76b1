//! The primitives WireGuard is built from (docs/PROTOCOL.md §1), as thin wrappers over well-kept
//! crates so the handshake code reads like the formulas.
//!
//! Handshake and cookie AEADs use RustCrypto (small, infrequent, zeroizing keys). The data
//! plane's [`TransportKey`] uses ring, chosen by `benches/crypto.rs`: its assembly ChaCha20-
//! Poly1305 is several times faster than the portable RustCrypto code on bulk packets.

use blake2::digest::consts::U16;
use blake2::digest::{FixedOutput, KeyInit, Mac, Update};
use blake2::{Blake2s256, Blake2sMac};
use chacha20poly1305::aead::{AeadInPlace, Nonce, Tag};
use chacha20poly1305::{ChaCha20Poly1305, XChaCha20Poly1305};
use hmac::SimpleHmac;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::keys::{PrivateKey, PublicKey};

pub const HASH_LEN: usize = 32;
pub const MAC_LEN: usize = 16;
pub const TAG_LEN: usize = 16;
pub const XNONCE_LEN: usize = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    #[error("X25519 produced the all-zero value (low-order public key)")]
    ZeroSharedSecret,
    #[error("AEAD authentication failed")]
    Authentication,
    #[error("buffer length does not fit the AEAD operation")]
    BufferLength,
}

/// BLAKE2s-256 of the concatenation of `parts`.
pub fn hash(parts: &[&[u8]]) -> [u8; HASH_LEN] {
    let mut h = Blake2s256::default();
    for p in parts {
        Update::update(&mut h, p);
    }
    h.finalize_fixed().into()
}

/// Keyed BLAKE2s with a 16-byte digest (a BLAKE2 parameter, not a truncation).
///
/// The key is a fixed-size array so that the only failure of the underlying constructor
/// (a key longer than 32 bytes) is ruled out at compile time.
pub fn mac<const N: usize>(key: &[u8; N], parts: &[&[u8]]) -> [u8; MAC_LEN] {
    const { assert!(N <= 32, "BLAKE2s keys are at most 32 bytes") };
    let Ok(mut m) = <Blake2sMac<U16> as KeyInit>::new_from_slice(key) else {
        unreachable!("key length is bounded at compile time")
    };
    for p in parts {
        Mac::update(&mut m, p);
    }
    m.finalize().into_bytes().into()
}

/// HMAC-BLAKE2s-256 (RFC 2104), the PRF inside [`kdf1`]..[`kdf3`].
pub fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; HASH_LEN] {
    // Padding the key to the 64-byte block ourselves is exactly what HMAC does and lets us
    // use the infallible fixed-size constructor.
    let mut block = Zeroizing::new([0u8; 64]);
    if key.len() > block.len() {
        block[..HASH_LEN].copy_from_slice(&hash(&[key]));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut m = <SimpleHmac<Blake2s256> as KeyInit>::new((&*block).into());
    for p in parts {
        Mac::update(&mut m, p);
    }
    m.finalize().into_bytes().into()
}

/// HKDF over HMAC-BLAKE2s returning the first `N` outputs; N is 1..=3 in WireGuard.
fn kdf<const N: usize>(key: &[u8], input: &[u8]) -> [[u8; HASH_LEN]; N] {
    let prk = Zeroizing::new(hmac(key, &[input]));
    let mut out = [[0u8; HASH_LEN]; N];
    let mut prev: &[u8] = &[];
    for (i, slot) in out.iter_mut().enumerate() {
        // i < N <= 3 so the counter byte cannot wrap.
        let counter = [u8::try_from(i + 1).unwrap_or(u8::MAX)];
        *slot = hmac(&*prk, &[prev, &counter]);
        prev = slot;
    }
    out
}

pub fn kdf1(key: &[u8; HASH_LEN], input: &[u8]) -> [u8; HASH_LEN] {
    let [t1] = kdf::<1>(key, input);
    t1
}

pub fn kdf2(key: &[u8; HASH_LEN], input: &[u8]) -> ([u8; HASH_LEN], [u8; HASH_LEN]) {
    let [t1, t2] = kdf::<2>(key, input);
    (t1, t2)
}

pub fn kdf3(
    key: &[u8; HASH_LEN],
    input: &[u8],
) -> ([u8; HASH_LEN], [u8; HASH_LEN], [u8; HASH_LEN]) {
    let [t1, t2, t3] = kdf::<3>(key, input);
    (t1, t2, t3)
}

/// WireGuard's 96-bit nonce: four zero bytes then the little-endian counter.
fn nonce(counter: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_le_bytes());
    n
}

/// Encrypts `plaintext` into `out` followed by the tag; `out` must be exactly
/// `plaintext.len() + 16` bytes. Shared by the handshake and cookie AEADs.
fn seal_detached<A: AeadInPlace>(
    cipher: &A,
    nonce: &Nonce<A>,
    plaintext: &[u8],
    ad: &[u8],
    out: &mut [u8],
) -> Result<(), CryptoError> {
    if out.len() != plaintext.len() + TAG_LEN {
        return Err(CryptoError::BufferLength);
    }
    let (body, tag_out) = out.split_at_mut(plaintext.len());
    body.copy_from_slice(plaintext);
    let tag = cipher
        .encrypt_in_place_detached(nonce, ad, body)
        .map_err(|_| CryptoError::BufferLength)?;
    tag_out.copy_from_slice(&tag);
    Ok(())
}

/// Opens `ciphertext_and_tag` into `out` (exactly 16 bytes shorter). On failure `out` is
/// wiped so no unauthenticated plaintext survives.
fn open_detached<A: AeadInPlace>(
    cipher: &A,
    nonce: &Nonce<A>,
    ciphertext_and_tag: &[u8],
    ad: &[u8],
    out: &mut [u8],
) -> Result<(), CryptoError> {
    let body_len = ciphertext_and_tag
        .len()
        .checked_sub(TAG_LEN)
        .ok_or(CryptoError::BufferLength)?;
    if out.len() != body_len {
        return Err(CryptoError::BufferLength);
    }
    let (body, tag) = ciphertext_and_tag.split_at(body_len);
    out.copy_from_slice(body);
    cipher
        .decrypt_in_place_detached(nonce, ad, out, Tag::<A>::from_slice(tag))
        .map_err(|_| {
            out.zeroize();
            CryptoError::Authentication
        })
}

/// Handshake AEAD (ChaCha20-Poly1305 with WireGuard's counter nonce); buffer contract of
/// [`seal_detached`].
pub fn aead_seal(
    key: &[u8; 32],
    counter: u64,
    plaintext: &[u8],
    ad: &[u8],
    out: &mut [u8],
) -> Result<(), CryptoError> {
    let cipher = ChaCha20Poly1305::new(key.into());
    seal_detached(&cipher, &nonce(counter).into(), plaintext, ad, out)
}

/// Handshake AEAD: opens into `out`, wiping it on failure (see [`open_detached`]).
pub fn aead_open(
    key: &[u8; 32],
    counter: u64,
    ciphertext_and_tag: &[u8],
    ad: &[u8],
    out: &mut [u8],
) -> Result<(), CryptoError> {
    let cipher = ChaCha20Poly1305::new(key.into());
    open_detached(&cipher, &nonce(counter).into(), ciphertext_and_tag, ad, out)
}

/// Cookie-reply AEAD (XChaCha20-Poly1305); same buffer contract as [`aead_seal`].
pub fn xaead_seal(
    key: &[u8; 32],
    nonce: &[u8; XNONCE_LEN],
    plaintext: &[u8],
    ad: &[u8],
    out: &mut [u8],
) -> Result<(), CryptoError> {
    let cipher = XChaCha20Poly1305::new(key.into());
    seal_detached(&cipher, nonce.into(), plaintext, ad, out)
}

/// Cookie-reply AEAD; same buffer contract as [`aead_open`].
pub fn xaead_open(
    key: &[u8; 32],
    nonce: &[u8; XNONCE_LEN],
    ciphertext_and_tag: &[u8],
    ad: &[u8],
    out: &mut [u8],
) -> Result<(), CryptoError> {
    let cipher = XChaCha20Poly1305::new(key.into());
    open_detached(&cipher, nonce.into(), ciphertext_and_tag, ad, out)
}

/// X25519. An all-zero result means the peer sent a low-order point; WireGuard refuses it so a
/// malicious key cannot force a known shared secret.
pub fn dh(private: &PrivateKey, public: &PublicKey) -> Result<[u8; 32], CryptoError> {
    #[cfg(test)]
    crate::x25519_audit::note();
    let secret = x25519_dalek::StaticSecret::from(*private.as_bytes());
    let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(*public.as_bytes()));
    let bytes = *shared.as_bytes();
    if bool::from(bytes.ct_eq(&[0u8; 32])) {
        return Err(CryptoError::ZeroSharedSecret);
    }
    Ok(bytes)
}

/// One direction of a transport session's ChaCha20-Poly1305 key.
///
/// Shared by reference across worker threads; ring's key holds no per-call state. Unlike the
/// RustCrypto types, ring does not wipe its key copy on drop: the price of its speed, bounded
/// by sessions being rekeyed every two minutes.
pub struct TransportKey {
    key: ring::aead::LessSafeKey,
}

impl TransportKey {
    pub fn new(key: &[u8; 32]) -> Self {
        let unbound = match ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, key) {
            Ok(k) => k,
            // ring only refuses keys of the wrong length, which the array type rules out.
            Err(_) => unreachable!("ChaCha20-Poly1305 keys are 32 bytes"),
        };
        TransportKey {
            key: ring::aead::LessSafeKey::new(unbound),
        }
    }

    /// Encrypts `buf` in place with an empty AD and returns the tag to append after it.
    pub fn seal_in_place(&self, counter: u64, buf: &mut [u8]) -> [u8; TAG_LEN] {
        let nonce = ring::aead::Nonce::assume_unique_for_key(nonce(counter));
        match self
            .key
            .seal_in_place_separate_tag(nonce, ring::aead::Aad::empty(), buf)
        {
            Ok(tag) => {
                let mut out = [0u8; TAG_LEN];
                out.copy_from_slice(tag.as_ref());
                out
            }
            // ring fails only past ChaCha20's 256 GiB per-nonce limit, far above any datagram.
            Err(_) => unreachable!("datagram larger than 256 GiB"),
        }
    }

    /// Decrypts in place; on success the first returned-length bytes hold the plaintext.
    pub fn open_in_place(
        &self,
        counter: u64,
        ciphertext_and_tag: &mut [u8],
    ) -> Result<usize, CryptoError> {
        if ciphertext_and_tag.len() < TAG_LEN {
            return Err(CryptoError::BufferLength);
        }
        let nonce = ring::aead::Nonce::assume_unique_for_key(nonce(counter));
        self.key
            .open_in_place(nonce, ring::aead::Aad::empty(), ciphertext_and_tag)
            .map(|pt| pt.len())
            .map_err(|_| CryptoError::Authentication)
    }
}

impl std::fmt::Debug for TransportKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TransportKey(hidden)")
    }
}

#[cfg(test)]
pub(crate) fn unhex<const N: usize>(s: &str) -> [u8; N] {
    let v: Vec<u8> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect();
    v.try_into().unwrap()
}

#[cfg(test)]
pub(crate) fn unhex_vec(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUNSCREEN: &[u8] = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";

    fn seq<const N: usize>(start: u8) -> [u8; N] {
        std::array::from_fn(|i| start + i as u8)
    }

    #[test]
    fn x25519_rfc7748() {
        let scalar = PrivateKey::from_bytes(unhex(
            "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
        ));
        let u = PublicKey::from_bytes(unhex(
            "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
        ));
        assert_eq!(
            dh(&scalar, &u).unwrap(),
            unhex::<32>("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")
        );

        let alice = PrivateKey::from_bytes(unhex(
            "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        ));
        let bob = PrivateKey::from_bytes(unhex(
            "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
        ));
        let shared =
            unhex::<32>("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
        assert_eq!(dh(&alice, &bob.public_key()).unwrap(), shared);
        assert_eq!(dh(&bob, &alice.public_key()).unwrap(), shared);
    }

    #[test]
    fn x25519_rejects_low_order_points() {
        let k = PrivateKey::from_bytes([7; 32]);
        assert_eq!(
            dh(&k, &PublicKey::from_bytes([0; 32])),
            Err(CryptoError::ZeroSharedSecret)
        );
        let mut one = [0u8; 32];
        one[0] = 1;
        assert_eq!(
            dh(&k, &PublicKey::from_bytes(one)),
            Err(CryptoError::ZeroSharedSecret)
        );
    }

    #[test]
    fn chacha20poly1305_rfc8439() {
        // The RFC's nonce is not WireGuard-shaped, so drive the crate directly here and check
        // our wrappers agree on a WireGuard nonce below.
        let key: [u8; 32] = seq(0x80);
        let nonce = unhex::<12>("070000004041424344454647");
        let aad = unhex_vec("50515253c0c1c2c3c4c5c6c7");
        let mut buf = SUNSCREEN.to_vec();
        let tag = ChaCha20Poly1305::new((&key).into())
            .encrypt_in_place_detached((&nonce).into(), &aad, &mut buf)
            .unwrap();
        assert_eq!(&buf[..16], &unhex::<16>("d31a8d34648e60db7b86afbc53ef7ec2"));
        assert_eq!(
            tag.as_slice(),
            &unhex::<16>("1ae10b594f09e26a7e902ecbd0600691")
        );

        // The RFC nonce starts with a non-zero word, which WireGuard's nonces never do; our
        // wrappers are checked by round trip here and against ring below.
        let mut sealed = vec![0u8; SUNSCREEN.len() + 16];
        aead_seal(&key, 42, SUNSCREEN, &aad, &mut sealed).unwrap();
        let mut opened = vec![0u8; SUNSCREEN.len()];
        aead_open(&key, 42, &sealed, &aad, &mut opened).unwrap();
        assert_eq!(opened, SUNSCREEN);
        sealed[3] ^= 1;
        assert_eq!(
            aead_open(&key, 42, &sealed, &aad, &mut opened),
            Err(CryptoError::Authentication)
        );
        assert!(opened.iter().all(|&b| b == 0));
    }

    #[test]
    fn transport_key_matches_handshake_aead() {
        let key: [u8; 32] = seq(0x10);
        for len in [0usize, 1, 16, 100, 1420] {
            let pt: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut expected = vec![0u8; len + 16];
            aead_seal(&key, 7, &pt, &[], &mut expected).unwrap();

            let tk = TransportKey::new(&key);
            let mut buf = pt.clone();
            let tag = tk.seal_in_place(7, &mut buf);
            buf.extend_from_slice(&tag);
            assert_eq!(buf, expected);

            assert_eq!(tk.open_in_place(7, &mut buf), Ok(len));
            assert_eq!(&buf[..len], &pt[..]);
            assert_eq!(
                tk.open_in_place(8, &mut expected),
                Err(CryptoError::Authentication)
            );
        }
        assert_eq!(
            TransportKey::new(&key).open_in_place(0, &mut [0u8; 15]),
            Err(CryptoError::BufferLength)
        );
    }

    #[test]
    fn xchacha20poly1305_draft_a31() {
        let key: [u8; 32] = seq(0x80);
        let nonce: [u8; 24] = seq(0x40);
        let aad = unhex_vec("50515253c0c1c2c3c4c5c6c7");
        let mut out = vec![0u8; SUNSCREEN.len() + 16];
        xaead_seal(&key, &nonce, SUNSCREEN, &aad, &mut out).unwrap();
        assert_eq!(&out[..16], &unhex::<16>("bd6d179d3e83d43b9576579493c0e939"));
        assert_eq!(
            &out[SUNSCREEN.len()..],
            &unhex::<16>("c0875924c1c7987947deafd8780acf49")
        );
        let mut back = vec![0u8; SUNSCREEN.len()];
        xaead_open(&key, &nonce, &out, &aad, &mut back).unwrap();
        assert_eq!(back, SUNSCREEN);
        assert_eq!(
            xaead_open(&key, &nonce, &out, b"other", &mut back),
            Err(CryptoError::Authentication)
        );
        assert_eq!(
            xaead_open(&key, &nonce, &out[..10], &aad, &mut back),
            Err(CryptoError::BufferLength)
        );
    }

    #[test]
    fn blake2s_vectors() {
        assert_eq!(
            hash(&[b"abc"]),
            unhex::<32>("508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982")
        );
        assert_eq!(hash(&[b"a", b"", b"bc"]), hash(&[b"abc"]));
        // The official keyed KAT is for a 32-byte digest; check the crate's keyed mode with it,
        // then that our 16-byte MAC is a distinct parameterisation, not a truncation.
        let key: [u8; 32] = seq(0);
        let full = <Blake2sMac<blake2::digest::consts::U32> as KeyInit>::new_from_slice(&key)
            .unwrap()
            .finalize()
            .into_bytes();
        assert_eq!(
            full.as_slice(),
            &unhex::<32>("48a8997da407876b3d79c0d92325ad3b89cbb754d86ab71aee047ad345fd2c49")
        );
        assert_ne!(&mac(&key, &[])[..], &full[..16]);
    }

    #[test]
    fn kdf_wireguard_go_vectors() {
        let cases: [(&[u8], &[u8], [&str; 3]); 3] = [
            (
                b"test-key",
                b"test-input",
                [
                    "6f0e5ad38daba1bea8a0d213688736f19763239305e0f58aba697f9ffc41c633",
                    "df1194df20802a4fe594cde27e92991c8cae66c366e8106aaa937a55fa371e8a",
                    "fac6e2745a325f5dc5d11a5b165aad08b0ada28e7b4e666b7c077934a4d76c24",
                ],
            ),
            (
                b"wireguard",
                b"wireguard",
                [
                    "491d43bbfdaa8750aaf535e334ecbfe5129967cd64635101c566d4caefda96e8",
                    "1e71a379baefd8a79aa4662212fcafe19a23e2b609a3db7d6bcba8f560e3d25f",
                    "31e1ae48bddfbe5de38f295e5452b1909a1b4e38e183926af3780b0c1e1f0160",
                ],
            ),
            (
                b"",
                b"",
                [
                    "8387b46bf43eccfcf349552a095d8315c4055beb90208fb1be23b894bc2ed5d0",
                    "58a0e5f6faefccf4807bff1f05fa8a9217945762040bcec2f4b4a62bdfe0e86e",
                    "0ce6ea98ec548f8e281e93e32db65621c45eb18dc6f0a7ad94178610a2f7338e",
                ],
            ),
        ];
        for (key, input, expected) in cases {
            let got = kdf::<3>(key, input);
            for (g, e) in got.iter().zip(expected) {
                assert_eq!(*g, unhex::<32>(e));
            }
            assert_eq!(kdf::<1>(key, input)[0], got[0]);
        }
        // The fixed-size entry points agree with the generic one.
        let k = [9u8; 32];
        let (a, b, c) = kdf3(&k, b"x");
        assert_eq!(kdf2(&k, b"x"), (a, b));
        assert_eq!(kdf1(&k, b"x"), a);
        assert_eq!([a, b, c], kdf::<3>(&k, b"x"));
    }

    #[test]
    fn hmac_long_key_is_hashed_first() {
        let long = [3u8; 100];
        assert_eq!(hmac(&long, &[b"m"]), hmac(&hash(&[&long]), &[b"m"]));
    }

    #[test]
    fn construction_constants() {
        let c0 = hash(&[b"Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"]);
        assert_eq!(
            c0,
            unhex::<32>("60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36")
        );
        assert_eq!(
            hash(&[&c0, b"WireGuard v1 zx2c4 Jason@zx2c4.com"]),
            unhex::<32>("2211b361081ac566691243db458ad5322d9c6c662293e8b70ee19c65ba079ef3")
        );
    }
}
