//! The Noise IKpsk2 handshake as WireGuard uses it (docs/PROTOCOL.md §3), both roles.
//!
//! The responder side is split in two so the caller can find the peer in between:
//! [`open_initiation`] needs only our static key and recovers the initiator's static key;
//! [`Handshake::accept_initiation`] then finishes with that peer's state (preshared DH,
//! timestamp replay and flood checks). mac1/mac2 of incoming messages are checked earlier,
//! by `cookie.rs`, before any DH is spent on them.

use std::time::Duration;

use rand_core::CryptoRngCore;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::crypto::{self, aead_open, aead_seal, dh, hash, kdf1, kdf2, kdf3, mac, CryptoError};
use crate::keys::{PresharedKey, PrivateKey, PublicKey};
pub use crate::session::SessionKeys;
use crate::time::{Instant, WallTime};
use crate::wire::{self, INITIATION_LEN, RESPONSE_LEN};

pub const LABEL_MAC1: &[u8] = b"mac1----";
pub const LABEL_COOKIE: &[u8] = b"cookie--";
/// A cookie may be used for mac2 this long after it arrived (go's value; kernel uses 115 s).
pub const COOKIE_LIFETIME: Duration = Duration::from_secs(120);
/// Minimum spacing of accepted initiations from one peer (50 per second).
pub const INITIATION_MIN_INTERVAL: Duration = Duration::from_millis(20);

/// HASH(CONSTRUCTION) and HASH(C0 || IDENTIFIER): the state every handshake starts from.
const C0: [u8; 32] = hex32("60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36");
const H0: [u8; 32] = hex32("2211b361081ac566691243db458ad5322d9c6c662293e8b70ee19c65ba079ef3");

const fn hex32(s: &str) -> [u8; 32] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("bad hex in constant"),
        }
    }
    let b = s.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (nibble(b[2 * i]) << 4) | nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    #[error("peer public key is a low-order point; the peer is unusable")]
    InvalidPeerKey,
    #[error("ephemeral key in the message is a low-order point")]
    InvalidEphemeral,
    #[error("handshake message failed to decrypt")]
    Decrypt,
    #[error("initiation is from a different static key than this peer's")]
    WrongPeer,
    #[error("initiation timestamp is not newer than the last accepted one")]
    Replay,
    #[error("initiation arrived less than 20 ms after the previous accepted one")]
    Flood,
    #[error("response does not answer a pending initiation")]
    UnexpectedResponse,
    #[error("cookie reply received but no message was sent to this peer")]
    UnexpectedCookie,
    #[error("precomputed key agreement belongs to another peer or message")]
    StalePrecomputation,
}

/// TAI64N label of `wall`, with the nanoseconds coarsened to 2^24 ns so the timestamp does not
/// leak fine-grained timer behaviour (as kernel and go do).
pub fn tai64n(wall: WallTime) -> [u8; 12] {
    let mut out = [0u8; 12];
    let secs = 0x4000_0000_0000_000au64.wrapping_add(wall.secs);
    out[..8].copy_from_slice(&secs.to_be_bytes());
    out[8..].copy_from_slice(&(wall.nanos & !0x00ff_ffff).to_be_bytes());
    out
}

/// Our static identity plus the values derived from its public key that every message
/// addressed to us needs.
pub struct LocalStatic {
    private: PrivateKey,
    public: PublicKey,
    mac1_key: [u8; 32],
    cookie_key: [u8; 32],
    initial_hash: [u8; 32],
}

impl LocalStatic {
    pub fn new(private: PrivateKey) -> Self {
        let public = private.public_key();
        LocalStatic {
            mac1_key: hash(&[LABEL_MAC1, public.as_bytes()]),
            cookie_key: hash(&[LABEL_COOKIE, public.as_bytes()]),
            initial_hash: hash(&[&H0, public.as_bytes()]),
            private,
            public,
        }
    }
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }
    pub fn private_key(&self) -> &PrivateKey {
        &self.private
    }
    /// Key for checking mac1 of messages sent to us.
    pub fn mac1_key(&self) -> &[u8; 32] {
        &self.mac1_key
    }
    /// Key for encrypting cookie replies we send.
    pub fn cookie_key(&self) -> &[u8; 32] {
        &self.cookie_key
    }
}

impl std::fmt::Debug for LocalStatic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalStatic")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// An initiation whose static key decrypted: the initiator is identified but not yet
/// authenticated (that needs the peer's preshared DH in [`Handshake::accept_initiation`]).
#[derive(ZeroizeOnDrop)]
pub struct OpenedInitiation {
    #[zeroize(skip)]
    remote_static: PublicKey,
    remote_index: u32,
    remote_ephemeral: [u8; 32],
    chaining: [u8; 32],
    hash: [u8; 32],
    encrypted_timestamp: [u8; 28],
}

impl OpenedInitiation {
    pub fn remote_static(&self) -> &PublicKey {
        &self.remote_static
    }
    /// The initiator's sender index.
    pub fn remote_index(&self) -> u32 {
        self.remote_index
    }
}

/// An authenticated, fresh initiation, ready to be answered with [`Handshake::create_response`].
#[derive(ZeroizeOnDrop)]
pub struct AcceptedInitiation {
    remote_index: u32,
    remote_ephemeral: [u8; 32],
    chaining: [u8; 32],
    hash: [u8; 32],
}

impl AcceptedInitiation {
    pub fn remote_index(&self) -> u32 {
        self.remote_index
    }
}

/// The X25519 work of an initiation, done before the peer's state is touched: a fresh
/// ephemeral key and its agreement with the peer's static key, which depend on nothing
/// but the peer's public key. Used for exactly one initiation.
#[derive(ZeroizeOnDrop)]
pub struct InitiationEphemeral {
    #[zeroize(skip)]
    remote: PublicKey,
    private: PrivateKey,
    #[zeroize(skip)]
    public: PublicKey,
    es: [u8; 32],
}

impl InitiationEphemeral {
    /// Costs two X25519 operations. Fails for a low-order peer key.
    pub fn generate(
        remote: &PublicKey,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, HandshakeError> {
        Self::new(PrivateKey::generate(rng), remote)
    }

    /// As [`generate`](Self::generate), from an ephemeral key the caller drew.
    pub fn new(private: PrivateKey, remote: &PublicKey) -> Result<Self, HandshakeError> {
        let es = dh(&private, remote).map_err(|_| HandshakeError::InvalidPeerKey)?;
        Ok(InitiationEphemeral {
            remote: *remote,
            public: private.public_key(),
            private,
            es,
        })
    }
}

/// The X25519 work of answering one opened initiation: a fresh ephemeral key and its
/// agreements with the initiator's ephemeral and static keys, all taken from the message.
#[derive(ZeroizeOnDrop)]
pub struct ResponseEphemeral {
    #[zeroize(skip)]
    remote: PublicKey,
    remote_ephemeral: [u8; 32],
    private: PrivateKey,
    #[zeroize(skip)]
    public: PublicKey,
    ee: [u8; 32],
    se: [u8; 32],
}

impl ResponseEphemeral {
    /// Costs three X25519 operations.
    pub fn generate(
        opened: &OpenedInitiation,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, HandshakeError> {
        Self::new(PrivateKey::generate(rng), opened)
    }

    /// As [`generate`](Self::generate), from an ephemeral key the caller drew.
    pub fn new(private: PrivateKey, opened: &OpenedInitiation) -> Result<Self, HandshakeError> {
        Self::agree(private, opened.remote_ephemeral, &opened.remote_static)
    }

    fn from_accepted(
        private: PrivateKey,
        accepted: &AcceptedInitiation,
        remote: &PublicKey,
    ) -> Result<Self, HandshakeError> {
        Self::agree(private, accepted.remote_ephemeral, remote)
    }

    fn agree(
        private: PrivateKey,
        remote_ephemeral: [u8; 32],
        remote: &PublicKey,
    ) -> Result<Self, HandshakeError> {
        let ee = dh(&private, &PublicKey::from_bytes(remote_ephemeral)).map_err(to_handshake)?;
        let se = dh(&private, remote).map_err(|_| HandshakeError::InvalidPeerKey)?;
        Ok(ResponseEphemeral {
            remote: *remote,
            remote_ephemeral,
            public: private.public_key(),
            private,
            ee,
            se,
        })
    }
}

/// The X25519 work of consuming one response: our pending ephemeral key's and our static
/// key's agreements with the responder's ephemeral key. Computed from a copy of the
/// pending ephemeral key; consuming checks that it is still the pending one.
#[derive(ZeroizeOnDrop)]
pub struct ResponseAgreement {
    ephemeral: PrivateKey,
    remote_ephemeral: [u8; 32],
    ee: [u8; 32],
    se: [u8; 32],
}

impl ResponseAgreement {
    /// Costs two X25519 operations.
    pub fn compute(
        local: &LocalStatic,
        ephemeral: PrivateKey,
        msg: &wire::Response<'_>,
    ) -> Result<Self, HandshakeError> {
        let e_r = PublicKey::from_bytes(*msg.ephemeral());
        let ee = dh(&ephemeral, &e_r).map_err(to_handshake)?;
        let se = dh(&local.private, &e_r).map_err(to_handshake)?;
        Ok(ResponseAgreement {
            ephemeral,
            remote_ephemeral: *msg.ephemeral(),
            ee,
            se,
        })
    }
}

/// Initiator state between sending an initiation and consuming its response.
#[derive(ZeroizeOnDrop)]
struct PendingInitiation {
    local_index: u32,
    ephemeral: PrivateKey,
    chaining: [u8; 32],
    hash: [u8; 32],
}

#[derive(Zeroize, ZeroizeOnDrop)]
struct Cookie {
    value: [u8; 16],
    #[zeroize(skip)]
    received: Instant,
}

/// Per-peer handshake state.
pub struct Handshake {
    remote: PublicKey,
    psk: PresharedKey,
    /// DH(our static, their static); `None` if it came out all-zero, which disables the peer.
    static_static: Option<Zeroizing<[u8; 32]>>,
    remote_mac1_key: [u8; 32],
    remote_cookie_key: [u8; 32],
    remote_initial_hash: [u8; 32],
    /// Kept across a response we send, so simultaneous initiations both complete.
    pending: Option<PendingInitiation>,
    greatest_timestamp: [u8; 12],
    last_initiation_accepted: Option<Instant>,
    cookie: Option<Cookie>,
    /// Additional data a cookie reply from this peer must be bound to.
    last_mac1_sent: Option<[u8; 16]>,
}

impl std::fmt::Debug for Handshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handshake")
            .field("remote", &self.remote)
            .field("pending", &self.pending_initiation_index())
            .finish_non_exhaustive()
    }
}

/// Writes mac1 and mac2 of an outgoing message whose mac1 starts at `mac1_at`, returning mac1.
fn write_macs(
    msg: &mut [u8],
    mac1_at: usize,
    mac1_key: &[u8; 32],
    cookie: Option<&[u8; 16]>,
) -> [u8; 16] {
    let mac1_end = mac1_at + 16;
    let mac1 = mac(mac1_key, &[msg.get(..mac1_at).unwrap_or_default()]);
    if let Some(slot) = msg.get_mut(mac1_at..mac1_end) {
        slot.copy_from_slice(&mac1);
    }
    let mac2 = match cookie {
        Some(c) => mac(c, &[msg.get(..mac1_end).unwrap_or_default()]),
        None => [0; 16],
    };
    if let Some(slot) = msg.get_mut(mac1_end..mac1_end + 16) {
        slot.copy_from_slice(&mac2);
    }
    mac1
}

fn to_handshake(e: CryptoError) -> HandshakeError {
    match e {
        CryptoError::ZeroSharedSecret => HandshakeError::InvalidEphemeral,
        _ => HandshakeError::Decrypt,
    }
}

/// Responder's stateless half: recovers the initiator's static key. Costs one DH.
pub fn open_initiation(
    local: &LocalStatic,
    msg: &wire::Initiation<'_>,
) -> Result<OpenedInitiation, HandshakeError> {
    let ephemeral = msg.ephemeral();
    let chaining = Zeroizing::new(kdf1(&C0, ephemeral));
    let h = hash(&[&local.initial_hash, ephemeral]);
    let es = Zeroizing::new(
        dh(&local.private, &PublicKey::from_bytes(*ephemeral)).map_err(to_handshake)?,
    );
    let (c, k) = kdf2(&chaining, &*es);
    let (c, k) = (Zeroizing::new(c), Zeroizing::new(k));
    let mut remote_static = [0u8; 32];
    aead_open(&k, 0, msg.encrypted_static(), &h, &mut remote_static).map_err(to_handshake)?;
    Ok(OpenedInitiation {
        remote_static: PublicKey::from_bytes(remote_static),
        remote_index: msg.sender_index(),
        remote_ephemeral: *ephemeral,
        chaining: *c,
        hash: hash(&[&h, msg.encrypted_static()]),
        encrypted_timestamp: *msg.encrypted_timestamp(),
    })
}

impl Handshake {
    /// Precomputes everything that depends only on the two static keys, so a change of our
    /// private key means building a new `Handshake`.
    pub fn new(local: &LocalStatic, remote: PublicKey, psk: PresharedKey) -> Self {
        let static_static = dh(&local.private, &remote).ok().map(Zeroizing::new);
        Handshake {
            remote_mac1_key: hash(&[LABEL_MAC1, remote.as_bytes()]),
            remote_cookie_key: hash(&[LABEL_COOKIE, remote.as_bytes()]),
            remote_initial_hash: hash(&[&H0, remote.as_bytes()]),
            remote,
            psk,
            static_static,
            pending: None,
            greatest_timestamp: [0; 12],
            last_initiation_accepted: None,
            cookie: None,
            last_mac1_sent: None,
        }
    }

    pub fn remote_static(&self) -> &PublicKey {
        &self.remote
    }

    pub fn set_preshared_key(&mut self, psk: PresharedKey) {
        self.psk = psk;
    }

    /// False when the peer's key is a low-order point: no handshake can ever succeed.
    pub fn is_usable(&self) -> bool {
        self.static_static.is_some()
    }

    pub fn pending_initiation_index(&self) -> Option<u32> {
        self.pending.as_ref().map(|p| p.local_index)
    }

    /// Erases handshake progress and ephemeral keys; keeps configuration, the replay
    /// timestamp and any cookie.
    pub fn clear(&mut self) {
        self.pending = None;
    }

    fn static_static(&self) -> Result<&[u8; 32], HandshakeError> {
        self.static_static
            .as_deref()
            .ok_or(HandshakeError::InvalidPeerKey)
    }

    fn fresh_cookie(&self, now: Instant) -> Option<&[u8; 16]> {
        self.cookie
            .as_ref()
            .filter(|c| now.saturating_duration_since(c.received) < COOKIE_LIFETIME)
            .map(|c| &c.value)
    }

    /// Builds message 1 with a fresh ephemeral key. Every call (retries included) starts a new
    /// handshake and replaces any pending one.
    pub fn create_initiation(
        &mut self,
        local: &LocalStatic,
        local_index: u32,
        now: Instant,
        wall: WallTime,
        rng: &mut impl CryptoRngCore,
    ) -> Result<[u8; INITIATION_LEN], HandshakeError> {
        self.static_static()?;
        let ephemeral = InitiationEphemeral::generate(&self.remote, rng)?;
        self.initiation_with(local, local_index, ephemeral, tai64n(wall), now)
    }

    /// [`create_initiation`](Self::create_initiation) with its X25519 work done beforehand
    /// (no X25519 here).
    pub fn create_initiation_prepared(
        &mut self,
        local: &LocalStatic,
        local_index: u32,
        ephemeral: InitiationEphemeral,
        now: Instant,
        wall: WallTime,
    ) -> Result<[u8; INITIATION_LEN], HandshakeError> {
        self.initiation_with(local, local_index, ephemeral, tai64n(wall), now)
    }

    fn initiation_with(
        &mut self,
        local: &LocalStatic,
        local_index: u32,
        ephemeral: InitiationEphemeral,
        timestamp: [u8; 12],
        now: Instant,
    ) -> Result<[u8; INITIATION_LEN], HandshakeError> {
        let ss = self.static_static()?;
        if ephemeral.remote != self.remote {
            return Err(HandshakeError::StalePrecomputation);
        }
        let e_pub = ephemeral.public;
        let mut msg = [0u8; INITIATION_LEN];
        msg[..4].copy_from_slice(&wire::TYPE_INITIATION.to_le_bytes());
        msg[4..8].copy_from_slice(&local_index.to_le_bytes());
        msg[8..40].copy_from_slice(e_pub.as_bytes());

        let c = Zeroizing::new(kdf1(&C0, e_pub.as_bytes()));
        let h = hash(&[&self.remote_initial_hash, e_pub.as_bytes()]);
        let (c, k) = kdf2(&c, &ephemeral.es);
        let (c, k) = (Zeroizing::new(c), Zeroizing::new(k));
        aead_seal(&k, 0, local.public.as_bytes(), &h, &mut msg[40..88]).map_err(to_handshake)?;
        let h = hash(&[&h, &msg[40..88]]);

        let (c, k) = kdf2(&c, ss);
        let (c, k) = (Zeroizing::new(c), Zeroizing::new(k));
        aead_seal(&k, 0, &timestamp, &h, &mut msg[88..116]).map_err(to_handshake)?;
        let h = hash(&[&h, &msg[88..116]]);

        let mac1 = write_macs(
            &mut msg,
            wire::INITIATION_MAC1_OFFSET,
            &self.remote_mac1_key,
            self.fresh_cookie(now),
        );
        self.last_mac1_sent = Some(mac1);
        self.pending = Some(PendingInitiation {
            local_index,
            ephemeral: ephemeral.private.clone(),
            chaining: *c,
            hash: h,
        });
        Ok(msg)
    }

    /// Completes our initiation with the peer's response. Nothing changes unless it succeeds.
    pub fn consume_response(
        &mut self,
        local: &LocalStatic,
        msg: &wire::Response<'_>,
        now: Instant,
    ) -> Result<SessionKeys, HandshakeError> {
        let ephemeral = self
            .pending_ephemeral(msg.receiver_index())
            .ok_or(HandshakeError::UnexpectedResponse)?;
        let agreement = ResponseAgreement::compute(local, ephemeral, msg)?;
        self.consume_response_prepared(msg, agreement, now)
    }

    /// A copy of the ephemeral key of the pending initiation with this index, for
    /// [`ResponseAgreement::compute`].
    pub fn pending_ephemeral(&self, local_index: u32) -> Option<PrivateKey> {
        self.pending
            .as_ref()
            .filter(|p| p.local_index == local_index)
            .map(|p| p.ephemeral.clone())
    }

    /// [`consume_response`](Self::consume_response) with its X25519 work done beforehand
    /// (no X25519 here). Refused unless the agreement used the initiation still pending.
    pub fn consume_response_prepared(
        &mut self,
        msg: &wire::Response<'_>,
        agreement: ResponseAgreement,
        _now: Instant,
    ) -> Result<SessionKeys, HandshakeError> {
        self.static_static()?;
        let pending = match &self.pending {
            Some(p) if p.local_index == msg.receiver_index() => p,
            _ => return Err(HandshakeError::UnexpectedResponse),
        };
        if pending.ephemeral != agreement.ephemeral
            || *msg.ephemeral() != agreement.remote_ephemeral
        {
            return Err(HandshakeError::StalePrecomputation);
        }
        let e_r = msg.ephemeral();
        let c = Zeroizing::new(kdf1(&pending.chaining, e_r));
        let h = hash(&[&pending.hash, e_r]);
        let c = Zeroizing::new(kdf1(&c, &agreement.ee));
        let c = Zeroizing::new(kdf1(&c, &agreement.se));
        let (c, tau, k) = kdf3(&c, self.psk.as_bytes());
        let (c, tau, k) = (Zeroizing::new(c), Zeroizing::new(tau), Zeroizing::new(k));
        let h = hash(&[&h, &*tau]);
        aead_open(&k, 0, msg.encrypted_nothing(), &h, &mut []).map_err(to_handshake)?;

        let (t1, t2) = kdf2(&c, &[]);
        let keys = SessionKeys {
            send: t1,
            recv: t2,
            local_index: pending.local_index,
            remote_index: msg.sender_index(),
            is_initiator: true,
        };
        self.pending = None;
        Ok(keys)
    }

    /// Authenticates an opened initiation against this peer and enforces freshness: the
    /// timestamp must beat the greatest accepted one and initiations must be 20 ms apart.
    pub fn accept_initiation(
        &mut self,
        _local: &LocalStatic,
        opened: OpenedInitiation,
        now: Instant,
    ) -> Result<AcceptedInitiation, HandshakeError> {
        let (c, timestamp) = self.check_initiation(&opened, now)?;
        self.greatest_timestamp = timestamp;
        self.last_initiation_accepted = Some(now);
        Ok(AcceptedInitiation {
            remote_index: opened.remote_index,
            remote_ephemeral: opened.remote_ephemeral,
            chaining: *c,
            hash: hash(&[&opened.hash, &opened.encrypted_timestamp]),
        })
    }

    /// Whether [`accept_initiation`](Self::accept_initiation) would accept `opened` now;
    /// changes nothing and costs no X25519.
    pub fn would_accept_initiation(
        &self,
        opened: &OpenedInitiation,
        now: Instant,
    ) -> Result<(), HandshakeError> {
        self.check_initiation(opened, now).map(|_| ())
    }

    /// Authenticates `opened` and checks its freshness; returns the chaining key and the
    /// timestamp to record.
    fn check_initiation(
        &self,
        opened: &OpenedInitiation,
        now: Instant,
    ) -> Result<(Zeroizing<[u8; 32]>, [u8; 12]), HandshakeError> {
        let ss = self.static_static()?;
        if opened.remote_static != self.remote {
            return Err(HandshakeError::WrongPeer);
        }
        let (c, k) = kdf2(&opened.chaining, ss);
        let (c, k) = (Zeroizing::new(c), Zeroizing::new(k));
        let mut timestamp = [0u8; 12];
        aead_open(
            &k,
            0,
            &opened.encrypted_timestamp,
            &opened.hash,
            &mut timestamp,
        )
        .map_err(to_handshake)?;
        // Arrays compare lexicographically, which is the big-endian order TAI64N needs.
        if timestamp <= self.greatest_timestamp {
            return Err(HandshakeError::Replay);
        }
        if let Some(last) = self.last_initiation_accepted {
            if now.saturating_duration_since(last) < INITIATION_MIN_INTERVAL {
                return Err(HandshakeError::Flood);
            }
        }
        Ok((c, timestamp))
    }

    /// Builds message 2 for an accepted initiation and derives the responder's keys.
    pub fn create_response(
        &mut self,
        local: &LocalStatic,
        accepted: AcceptedInitiation,
        local_index: u32,
        now: Instant,
        rng: &mut impl CryptoRngCore,
    ) -> Result<([u8; RESPONSE_LEN], SessionKeys), HandshakeError> {
        self.static_static()?;
        let private = PrivateKey::generate(rng);
        let ephemeral = ResponseEphemeral::from_accepted(private, &accepted, &self.remote)?;
        self.response_with(local, accepted, local_index, ephemeral, now)
    }

    /// [`create_response`](Self::create_response) with its X25519 work done beforehand
    /// (no X25519 here).
    pub fn create_response_prepared(
        &mut self,
        local: &LocalStatic,
        accepted: AcceptedInitiation,
        local_index: u32,
        ephemeral: ResponseEphemeral,
        now: Instant,
    ) -> Result<([u8; RESPONSE_LEN], SessionKeys), HandshakeError> {
        self.response_with(local, accepted, local_index, ephemeral, now)
    }

    fn response_with(
        &mut self,
        _local: &LocalStatic,
        accepted: AcceptedInitiation,
        local_index: u32,
        ephemeral: ResponseEphemeral,
        now: Instant,
    ) -> Result<([u8; RESPONSE_LEN], SessionKeys), HandshakeError> {
        self.static_static()?;
        if ephemeral.remote != self.remote
            || ephemeral.remote_ephemeral != accepted.remote_ephemeral
        {
            return Err(HandshakeError::StalePrecomputation);
        }
        let e_pub = ephemeral.public;
        let mut msg = [0u8; RESPONSE_LEN];
        msg[..4].copy_from_slice(&wire::TYPE_RESPONSE.to_le_bytes());
        msg[4..8].copy_from_slice(&local_index.to_le_bytes());
        msg[8..12].copy_from_slice(&accepted.remote_index.to_le_bytes());
        msg[12..44].copy_from_slice(e_pub.as_bytes());

        let c = Zeroizing::new(kdf1(&accepted.chaining, e_pub.as_bytes()));
        let h = hash(&[&accepted.hash, e_pub.as_bytes()]);
        let c = Zeroizing::new(kdf1(&c, &ephemeral.ee));
        let c = Zeroizing::new(kdf1(&c, &ephemeral.se));
        let (c, tau, k) = kdf3(&c, self.psk.as_bytes());
        let (c, tau, k) = (Zeroizing::new(c), Zeroizing::new(tau), Zeroizing::new(k));
        let h = hash(&[&h, &*tau]);
        aead_seal(&k, 0, &[], &h, &mut msg[44..60]).map_err(to_handshake)?;

        let mac1 = write_macs(
            &mut msg,
            wire::RESPONSE_MAC1_OFFSET,
            &self.remote_mac1_key,
            self.fresh_cookie(now),
        );
        self.last_mac1_sent = Some(mac1);

        let (t1, t2) = kdf2(&c, &[]);
        let keys = SessionKeys {
            send: t2,
            recv: t1,
            local_index,
            remote_index: accepted.remote_index,
            is_initiator: false,
        };
        Ok((msg, keys))
    }

    /// Stores the cookie from a reply to our last initiation or response. It is used for mac2
    /// from the next message on; nothing is resent here.
    pub fn consume_cookie_reply(
        &mut self,
        msg: &wire::CookieReply<'_>,
        now: Instant,
    ) -> Result<(), HandshakeError> {
        let ad = self
            .last_mac1_sent
            .ok_or(HandshakeError::UnexpectedCookie)?;
        let mut value = [0u8; 16];
        crypto::xaead_open(
            &self.remote_cookie_key,
            msg.nonce(),
            msg.encrypted_cookie(),
            &ad,
            &mut value,
        )
        .map_err(to_handshake)?;
        self.cookie = Some(Cookie {
            value,
            received: now,
        });
        value.zeroize();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{unhex, unhex_vec};
    use crate::session::Keypair;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn seq(start: u8) -> [u8; 32] {
        std::array::from_fn(|i| start + i as u8)
    }

    struct Pair {
        init: LocalStatic,
        resp: LocalStatic,
        /// Initiator's state for the responder, and the responder's for the initiator.
        i_hs: Handshake,
        r_hs: Handshake,
    }

    fn pair(psk: PresharedKey) -> Pair {
        let init = LocalStatic::new(PrivateKey::from_bytes(seq(0)));
        let resp = LocalStatic::new(PrivateKey::from_bytes(seq(0x20)));
        let i_hs = Handshake::new(&init, *resp.public_key(), psk.clone());
        let r_hs = Handshake::new(&resp, *init.public_key(), psk);
        Pair {
            init,
            resp,
            i_hs,
            r_hs,
        }
    }

    const T0: Instant = Instant::from_nanos(1_000_000_000_000);
    const WALL: WallTime = WallTime::new(1_577_836_800, 0);

    #[test]
    fn tai64n_layout() {
        assert_eq!(tai64n(WALL), unhex::<12>("400000005e0be10a00000000"));
        let t = tai64n(WallTime::new(1_577_836_800, 123_456_789));
        assert_eq!(&t[8..], &[0x07, 0, 0, 0], "low 24 bits of nanos cleared");
    }

    /// docs/PROTOCOL.md §9 "Full handshake vector", byte for byte, both roles.
    #[test]
    fn full_handshake_vector() {
        let mut p = pair(PresharedKey::from_bytes(seq(0x60)));
        assert_eq!(
            p.init.public_key().to_hex(),
            "8f40c5adb68f25624ae5b214ea767a6ec94d829d3d7b5e1ad1ba6f3e2138285f"
        );
        assert_eq!(
            p.resp.public_key().to_hex(),
            "358072d6365880d1aeea329adf9121383851ed21a28e3b75e965d0d2cd166254"
        );
        assert_eq!(
            p.i_hs.remote_initial_hash,
            unhex::<32>("c017c50fad770642d47d601a25189f8194b3f8c0e0c71d608a2df62eb445baeb")
        );
        assert_eq!(
            p.resp.mac1_key,
            unhex::<32>("027b1cb8c420c32c942bea8ddb43ca7d20779ec4bd55578bfa5c3d7936c91d2f")
        );
        assert_eq!(p.i_hs.remote_mac1_key, p.resp.mac1_key);
        assert_eq!(
            p.resp.cookie_key,
            unhex::<32>("e0153755cb4ee60ed472fa40fa20e1220446cc458fce98536ef506f2786eefc2")
        );

        let ei = PrivateKey::from_bytes(seq(0x40));
        let init = p
            .i_hs
            .initiation_with(
                &p.init,
                0x1122_3344,
                InitiationEphemeral::new(ei, p.resp.public_key()).unwrap(),
                tai64n(WALL),
                T0,
            )
            .unwrap();
        let expected_init = unhex_vec(concat!(
            "010000004433221179a631eede1bf9c98f12032cdeadd0e7a079398fc786b88cc846ec89af85a51a",
            "f0225eb421886af8f54fb31289d49dcd82b0f6f3279d40d7cff913fece0c64ad226eef3320755b39",
            "3b72f16842c8d7ee78a74e9345673a828ff4ecc1e82ce9058e8f7ae048e5413e242cf8184d403532",
            "68d562664e6faf139134ddc100000000000000000000000000000000",
        ));
        assert_eq!(init.to_vec(), expected_init);
        let pending = p.i_hs.pending.as_ref().unwrap();
        assert_eq!(
            pending.chaining,
            unhex::<32>("5b3722a25c7c69706cfbbef606c70681a400fd1b6dab82533b1266606d6ede42")
        );
        assert_eq!(
            pending.hash,
            unhex::<32>("e128e390b58c7301d55182bd5463022ee1197ad5efdbe1f5fd8ae2e3039a861d")
        );

        let view = wire::Initiation::new(&init).unwrap();
        let opened = open_initiation(&p.resp, &view).unwrap();
        assert_eq!(opened.remote_static(), p.init.public_key());
        assert_eq!(opened.remote_index(), 0x1122_3344);
        let er = PrivateKey::from_bytes(seq(0x80));
        let prepared = ResponseEphemeral::new(er, &opened).unwrap();
        let accepted = p.r_hs.accept_initiation(&p.resp, opened, T0).unwrap();
        assert_eq!(accepted.chaining, pending.chaining);
        assert_eq!(accepted.hash, pending.hash);

        let (resp, r_keys) = p
            .r_hs
            .response_with(&p.resp, accepted, 0x5566_7788, prepared, T0)
            .unwrap();
        let expected_resp = unhex_vec(concat!(
            "020000008877665544332211493e82fc74464a59268817623d2053c5eb8e2cc4a988b4fee179ec6b",
            "010d531d4119625898a15ffcb5f1b7e27e101889b41c667a99a286454be9e1958c80e449",
            "00000000000000000000000000000000",
        ));
        assert_eq!(resp.to_vec(), expected_resp);

        let i_keys = p
            .i_hs
            .consume_response(&p.init, &wire::Response::new(&resp).unwrap(), T0)
            .unwrap();
        let t1 = unhex::<32>("65423cd41de2482efcdbe6f87a20fc0da51bb55c71b6f69e3149e024130bbefb");
        let t2 = unhex::<32>("6f025c593d13b50ea4ca8a4eff68aa8a6e73e23487c03ad75a7baf60e63cfca5");
        assert_eq!((i_keys.send, i_keys.recv), (t1, t2));
        assert_eq!((r_keys.send, r_keys.recv), (t2, t1));
        assert_eq!(
            (i_keys.local_index, i_keys.remote_index),
            (0x1122_3344, 0x5566_7788)
        );
        assert_eq!(
            (r_keys.local_index, r_keys.remote_index),
            (0x5566_7788, 0x1122_3344)
        );
        assert!(i_keys.is_initiator && !r_keys.is_initiator);
        assert_eq!(
            p.i_hs.pending_initiation_index(),
            None,
            "ephemeral state erased"
        );

        let ik = Keypair::new(i_keys, T0);
        let rk = Keypair::new(r_keys, T0);
        let mut keepalive = [0u8; 32];
        let counter = ik.next_send_counter().unwrap();
        assert_eq!(ik.seal(counter, 0, &mut keepalive), Ok(32));
        assert_eq!(
            keepalive.to_vec(),
            unhex_vec("040000008877665500000000000000009fb9617c2f3bc56fb623ca1771fdbf07")
        );
        assert_eq!(rk.open(&mut keepalive).unwrap().len(), 0);
    }

    fn round_trip(p: &mut Pair, rng: &mut StdRng, now: Instant, wall: WallTime) {
        let init = p
            .i_hs
            .create_initiation(&p.init, 1, now, wall, rng)
            .unwrap();
        let opened = open_initiation(&p.resp, &wire::Initiation::new(&init).unwrap()).unwrap();
        let accepted = p.r_hs.accept_initiation(&p.resp, opened, now).unwrap();
        let (resp, r_keys) = p
            .r_hs
            .create_response(&p.resp, accepted, 2, now, rng)
            .unwrap();
        let i_keys = p
            .i_hs
            .consume_response(&p.init, &wire::Response::new(&resp).unwrap(), now)
            .unwrap();
        assert_eq!(i_keys.send, r_keys.recv);
        assert_eq!(i_keys.recv, r_keys.send);
        assert_ne!(i_keys.send, i_keys.recv);
    }

    #[test]
    fn round_trips_with_and_without_psk() {
        let mut rng = StdRng::seed_from_u64(1);
        round_trip(&mut pair(PresharedKey::ZERO), &mut rng, T0, WALL);
        round_trip(
            &mut pair(PresharedKey::from_bytes([5; 32])),
            &mut rng,
            T0,
            WALL,
        );
    }

    #[test]
    fn psk_mismatch_fails_at_the_initiator() {
        let mut rng = StdRng::seed_from_u64(2);
        let mut p = pair(PresharedKey::from_bytes([5; 32]));
        p.r_hs.set_preshared_key(PresharedKey::from_bytes([6; 32]));
        let init = p
            .i_hs
            .create_initiation(&p.init, 1, T0, WALL, &mut rng)
            .unwrap();
        let opened = open_initiation(&p.resp, &wire::Initiation::new(&init).unwrap()).unwrap();
        // The PSK only enters at message 2, so the responder cannot tell yet.
        let accepted = p.r_hs.accept_initiation(&p.resp, opened, T0).unwrap();
        let (resp, _) = p
            .r_hs
            .create_response(&p.resp, accepted, 2, T0, &mut rng)
            .unwrap();
        assert_eq!(
            p.i_hs
                .consume_response(&p.init, &wire::Response::new(&resp).unwrap(), T0)
                .err(),
            Some(HandshakeError::Decrypt)
        );
        assert_eq!(
            p.i_hs.pending_initiation_index(),
            Some(1),
            "failure changes nothing"
        );
    }

    #[test]
    fn replay_and_flood_are_refused() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut p = pair(PresharedKey::ZERO);
        let init = p
            .i_hs
            .create_initiation(&p.init, 1, T0, WALL, &mut rng)
            .unwrap();
        let view = wire::Initiation::new(&init).unwrap();
        let accept = |p: &mut Pair, now| {
            let opened = open_initiation(&p.resp, &view).unwrap();
            p.r_hs.accept_initiation(&p.resp, opened, now).map(|_| ())
        };
        assert_eq!(accept(&mut p, T0), Ok(()));
        let later = T0 + Duration::from_secs(10);
        assert_eq!(accept(&mut p, later), Err(HandshakeError::Replay));

        // A newer timestamp, but only 10 ms after the last accepted one.
        let wall2 = WallTime::new(WALL.secs + 1, 0);
        let flood = T0 + Duration::from_millis(10);
        let init2 = p
            .i_hs
            .create_initiation(&p.init, 2, flood, wall2, &mut rng)
            .unwrap();
        let opened = open_initiation(&p.resp, &wire::Initiation::new(&init2).unwrap()).unwrap();
        assert_eq!(
            p.r_hs.accept_initiation(&p.resp, opened, flood).err(),
            Some(HandshakeError::Flood)
        );
        // The refused attempt did not advance the stored state: the same message is fine later.
        let ok = T0 + Duration::from_millis(25);
        let opened = open_initiation(&p.resp, &wire::Initiation::new(&init2).unwrap()).unwrap();
        assert!(p.r_hs.accept_initiation(&p.resp, opened, ok).is_ok());
    }

    #[test]
    fn responses_must_match_the_pending_initiation() {
        let mut rng = StdRng::seed_from_u64(4);
        let mut p = pair(PresharedKey::ZERO);
        let init = p
            .i_hs
            .create_initiation(&p.init, 77, T0, WALL, &mut rng)
            .unwrap();
        let opened = open_initiation(&p.resp, &wire::Initiation::new(&init).unwrap()).unwrap();
        let accepted = p.r_hs.accept_initiation(&p.resp, opened, T0).unwrap();
        let (resp, _) = p
            .r_hs
            .create_response(&p.resp, accepted, 2, T0, &mut rng)
            .unwrap();

        let mut wrong_index = resp;
        wrong_index[8] = 78;
        let view = wire::Response::new(&wrong_index).unwrap();
        assert_eq!(
            p.i_hs.consume_response(&p.init, &view, T0).err(),
            Some(HandshakeError::UnexpectedResponse)
        );
        // Indices are outside the Noise transcript (mac1 covers them); everything else counts.
        for at in [12, 30, 50] {
            let mut tampered = resp;
            tampered[at] ^= 1;
            let view = wire::Response::new(&tampered).unwrap();
            assert!(
                p.i_hs.consume_response(&p.init, &view, T0).is_err(),
                "byte {at}"
            );
        }
        let view = wire::Response::new(&resp).unwrap();
        assert!(p.i_hs.consume_response(&p.init, &view, T0).is_ok());
        // A second copy finds no pending initiation.
        assert_eq!(
            p.i_hs.consume_response(&p.init, &view, T0).err(),
            Some(HandshakeError::UnexpectedResponse)
        );
        // clear() also drops a pending initiation.
        p.i_hs
            .create_initiation(&p.init, 5, T0, WALL, &mut rng)
            .unwrap();
        p.i_hs.clear();
        assert_eq!(p.i_hs.pending_initiation_index(), None);
    }

    #[test]
    fn tampered_initiations_are_refused() {
        let mut rng = StdRng::seed_from_u64(5);
        let mut p = pair(PresharedKey::ZERO);
        let init = p
            .i_hs
            .create_initiation(&p.init, 1, T0, WALL, &mut rng)
            .unwrap();
        for (at, expect_open_fails) in [(10, true), (45, true), (90, false)] {
            let mut t = init;
            t[at] ^= 1;
            let view = wire::Initiation::new(&t).unwrap();
            match open_initiation(&p.resp, &view) {
                Err(e) => {
                    assert!(expect_open_fails, "byte {at}: {e}");
                }
                Ok(opened) => {
                    assert!(!expect_open_fails, "byte {at} opened");
                    assert_eq!(
                        p.r_hs.accept_initiation(&p.resp, opened, T0).err(),
                        Some(HandshakeError::Decrypt)
                    );
                }
            }
        }
        // An initiation for someone else opens with another key and fails.
        let other = LocalStatic::new(PrivateKey::from_bytes([9; 32]));
        let view = wire::Initiation::new(&init).unwrap();
        assert_eq!(
            open_initiation(&other, &view).err(),
            Some(HandshakeError::Decrypt)
        );
        // A genuine initiation handed to the wrong peer's state is refused.
        let opened = open_initiation(&p.resp, &view).unwrap();
        let mut stranger = Handshake::new(&p.resp, *other.public_key(), PresharedKey::ZERO);
        assert_eq!(
            stranger.accept_initiation(&p.resp, opened, T0).err(),
            Some(HandshakeError::WrongPeer)
        );
    }

    #[test]
    fn low_order_keys_are_refused() {
        let mut rng = StdRng::seed_from_u64(6);
        let me = LocalStatic::new(PrivateKey::from_bytes([1; 32]));
        let mut bad = Handshake::new(&me, PublicKey::from_bytes([0; 32]), PresharedKey::ZERO);
        assert!(!bad.is_usable());
        assert_eq!(
            bad.create_initiation(&me, 1, T0, WALL, &mut rng).err(),
            Some(HandshakeError::InvalidPeerKey)
        );
        let p = pair(PresharedKey::ZERO);
        let mut msg = [0u8; 148];
        msg[0] = 1;
        let view = wire::Initiation::new(&msg).unwrap();
        assert_eq!(
            open_initiation(&p.resp, &view).err(),
            Some(HandshakeError::InvalidEphemeral)
        );
    }

    #[test]
    fn simultaneous_initiations_both_complete() {
        let mut rng = StdRng::seed_from_u64(8);
        let mut p = pair(PresharedKey::ZERO);
        let a_init = p
            .i_hs
            .create_initiation(&p.init, 1, T0, WALL, &mut rng)
            .unwrap();
        let b_init = p
            .r_hs
            .create_initiation(&p.resp, 2, T0, WALL, &mut rng)
            .unwrap();

        let opened = open_initiation(&p.resp, &wire::Initiation::new(&a_init).unwrap()).unwrap();
        let acc = p.r_hs.accept_initiation(&p.resp, opened, T0).unwrap();
        let (b_resp, _) = p
            .r_hs
            .create_response(&p.resp, acc, 3, T0, &mut rng)
            .unwrap();
        let opened = open_initiation(&p.init, &wire::Initiation::new(&b_init).unwrap()).unwrap();
        let acc = p.i_hs.accept_initiation(&p.init, opened, T0).unwrap();
        let (a_resp, _) = p
            .i_hs
            .create_response(&p.init, acc, 4, T0, &mut rng)
            .unwrap();

        assert!(p
            .i_hs
            .consume_response(&p.init, &wire::Response::new(&b_resp).unwrap(), T0)
            .is_ok());
        assert!(p
            .r_hs
            .consume_response(&p.resp, &wire::Response::new(&a_resp).unwrap(), T0)
            .is_ok());
    }

    #[test]
    fn fresh_ephemeral_every_initiation() {
        let mut rng = StdRng::seed_from_u64(9);
        let mut p = pair(PresharedKey::ZERO);
        let a = p
            .i_hs
            .create_initiation(&p.init, 1, T0, WALL, &mut rng)
            .unwrap();
        let b = p
            .i_hs
            .create_initiation(&p.init, 1, T0, WALL, &mut rng)
            .unwrap();
        assert_ne!(a[8..40], b[8..40]);
    }
}
