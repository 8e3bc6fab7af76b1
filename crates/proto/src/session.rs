//! A transport keypair: what one completed handshake yields for the data plane.
//!
//! Worker threads share a keypair through `Arc`; sending takes one atomic increment, receiving
//! one short lock on the replay window after the AEAD has authenticated the packet.

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::crypto::TransportKey;
use crate::replay::ReplayWindow;
use crate::time::Instant;
use crate::wire::{self, TAG_LEN, TRANSPORT_HEADER_LEN};

pub use crate::replay::REJECT_AFTER_MESSAGES;

/// After this many messages the sender starts a new handshake.
pub const REKEY_AFTER_MESSAGES: u64 = 1 << 60;

const PADDING_MULTIPLE: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    #[error("buffer cannot hold header, plaintext and tag")]
    BufferTooSmall,
    #[error("send counter exhausted; a new handshake is needed")]
    CounterExhausted,
    #[error("malformed transport message: {0}")]
    Malformed(#[from] wire::WireError),
    #[error("transport message is addressed to index {0:#x}, not this keypair")]
    WrongIndex(u32),
    #[error("transport message failed to authenticate")]
    Decrypt,
    #[error("transport counter replayed or too old")]
    Replay,
}

/// Plaintext length after padding: up to a multiple of 16, but never past the MTU. A
/// super-packet longer than the MTU is padded by its last MTU-sized unit, as wireguard-go does.
pub fn padded_len(plaintext_len: usize, mtu: usize) -> usize {
    let last_unit = if mtu != 0 && plaintext_len > mtu {
        plaintext_len % mtu
    } else {
        plaintext_len
    };
    let mut padded_unit = last_unit.div_ceil(PADDING_MULTIPLE) * PADDING_MULTIPLE;
    if mtu != 0 {
        padded_unit = padded_unit.min(mtu);
    }
    plaintext_len + padded_unit.saturating_sub(last_unit)
}

/// Transport keys and indices of a completed handshake (`noise.rs`), handed to
/// [`Keypair::new`]. Defined beside its one consumer so the handshake depends on the
/// session and not the other way round.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SessionKeys {
    pub send: [u8; 32],
    pub recv: [u8; 32],
    pub local_index: u32,
    pub remote_index: u32,
    pub is_initiator: bool,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys")
            .field("local_index", &self.local_index)
            .field("remote_index", &self.remote_index)
            .field("is_initiator", &self.is_initiator)
            .finish_non_exhaustive()
    }
}

pub struct Keypair {
    send: TransportKey,
    recv: TransportKey,
    send_counter: AtomicU64,
    replay: Mutex<ReplayWindow>,
    local_index: u32,
    remote_index: u32,
    is_initiator: bool,
    created: Instant,
}

impl std::fmt::Debug for Keypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keypair")
            .field("local_index", &self.local_index)
            .field("remote_index", &self.remote_index)
            .field("is_initiator", &self.is_initiator)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

impl Keypair {
    pub fn new(keys: SessionKeys, now: Instant) -> Self {
        Keypair {
            send: TransportKey::new(&keys.send),
            recv: TransportKey::new(&keys.recv),
            send_counter: AtomicU64::new(0),
            replay: Mutex::new(ReplayWindow::new()),
            local_index: keys.local_index,
            remote_index: keys.remote_index,
            is_initiator: keys.is_initiator,
            created: now,
        }
    }

    pub fn local_index(&self) -> u32 {
        self.local_index
    }
    pub fn remote_index(&self) -> u32 {
        self.remote_index
    }
    pub fn is_initiator(&self) -> bool {
        self.is_initiator
    }
    pub fn created(&self) -> Instant {
        self.created
    }

    /// Reserves the next nonce. `None` once the keypair may no longer send.
    pub fn next_send_counter(&self) -> Option<u64> {
        let counter = self.send_counter.fetch_add(1, Ordering::Relaxed);
        if counter >= REJECT_AFTER_MESSAGES {
            // Pin the counter so endless retries can never wrap it around to a used nonce.
            self.send_counter
                .store(REJECT_AFTER_MESSAGES, Ordering::Relaxed);
            return None;
        }
        Some(counter)
    }

    /// Number of counters handed out so far.
    pub fn send_counter(&self) -> u64 {
        self.send_counter
            .load(Ordering::Relaxed)
            .min(REJECT_AFTER_MESSAGES)
    }

    /// Encrypts a packet laid out in `buf` as `[16-byte header space][plaintext][padding]
    /// [tag space]`.
    ///
    /// `buf`'s length decides the padding: everything between the plaintext and the tag is
    /// zeroed and encrypted, so size it with [`padded_len`] (the sender's length and the
    /// sealed length then cannot disagree). Returns the datagram length, `buf.len()`.
    pub fn seal(
        &self,
        counter: u64,
        plaintext_len: usize,
        buf: &mut [u8],
    ) -> Result<usize, SessionError> {
        if counter >= REJECT_AFTER_MESSAGES {
            return Err(SessionError::CounterExhausted);
        }
        let room = buf
            .len()
            .checked_sub(TRANSPORT_HEADER_LEN + TAG_LEN)
            .ok_or(SessionError::BufferTooSmall)?;
        if plaintext_len > room {
            return Err(SessionError::BufferTooSmall);
        }
        let padded = room;
        let (header, rest) = buf
            .split_first_chunk_mut::<TRANSPORT_HEADER_LEN>()
            .ok_or(SessionError::BufferTooSmall)?;
        wire::write_transport_header(header, self.remote_index, counter);
        let (body, tail) = rest.split_at_mut(padded);
        if let Some(padding) = body.get_mut(plaintext_len..) {
            padding.fill(0);
        }
        let tag = self.send.seal_in_place(counter, body);
        tail.get_mut(..TAG_LEN)
            .ok_or(SessionError::BufferTooSmall)?
            .copy_from_slice(&tag);
        Ok(TRANSPORT_HEADER_LEN + padded + TAG_LEN)
    }

    /// Authenticates and decrypts a whole transport datagram in place, then checks its
    /// counter against the replay window. Returns the padded plaintext.
    pub fn open<'b>(&self, datagram: &'b mut [u8]) -> Result<&'b mut [u8], SessionError> {
        let (receiver_index, counter) = {
            let msg = wire::Transport::new(datagram)?;
            (msg.receiver_index(), msg.counter())
        };
        if receiver_index != self.local_index {
            return Err(SessionError::WrongIndex(receiver_index));
        }
        // Cheap refusal before spending an AEAD on a counter the window would refuse anyway.
        if counter >= REJECT_AFTER_MESSAGES {
            return Err(SessionError::Replay);
        }
        // The view guaranteed at least a header and a tag, so this cannot fail.
        let body = datagram
            .get_mut(TRANSPORT_HEADER_LEN..)
            .ok_or(SessionError::Decrypt)?;
        let len = self
            .recv
            .open_in_place(counter, body)
            .map_err(|_| SessionError::Decrypt)?;
        if !self.replay.lock().check_and_update(counter) {
            return Err(SessionError::Replay);
        }
        body.get_mut(..len).ok_or(SessionError::Decrypt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn pair() -> (Keypair, Keypair) {
        let a = SessionKeys {
            send: [1; 32],
            recv: [2; 32],
            local_index: 10,
            remote_index: 20,
            is_initiator: true,
        };
        let b = SessionKeys {
            send: [2; 32],
            recv: [1; 32],
            local_index: 20,
            remote_index: 10,
            is_initiator: false,
        };
        (
            Keypair::new(a, Instant::ZERO),
            Keypair::new(b, Instant::ZERO),
        )
    }

    fn send(k: &Keypair, payload: &[u8], mtu: usize) -> Vec<u8> {
        let mut buf = vec![0xaa; 16 + padded_len(payload.len(), mtu) + 16];
        buf[16..16 + payload.len()].copy_from_slice(payload);
        let counter = k.next_send_counter().unwrap();
        let n = k.seal(counter, payload.len(), &mut buf).unwrap();
        buf.truncate(n);
        buf
    }

    #[test]
    fn padding_rule() {
        assert_eq!(padded_len(0, 1420), 0);
        assert_eq!(padded_len(1, 1420), 16);
        assert_eq!(padded_len(16, 1420), 16);
        assert_eq!(padded_len(1419, 1420), 1420);
        assert_eq!(padded_len(1415, 1420), 1420);
        assert_eq!(padded_len(1420, 1420), 1420);
        assert_eq!(padded_len(1410, 1412), 1412);
        assert_eq!(padded_len(1410, 0), 1424);
        // Super-packet: only the last unit is padded.
        assert_eq!(padded_len(1420 * 3 + 1, 1420), 1420 * 3 + 16);
    }

    #[test]
    fn sealed_length_is_the_planned_length_for_super_packets() {
        let (a, b) = pair();
        // Longer than the MTU: only the last unit is padded, which is not the same as
        // rounding the whole length up to 16.
        for len in [1420 * 2 + 1, 4028, 4029, 9000 - 28] {
            let payload = vec![7u8; len];
            let mut dgram = send(&a, &payload, 1420);
            assert_eq!(dgram.len(), 32 + padded_len(len, 1420), "len {len}");
            assert_eq!(&b.open(&mut dgram).unwrap()[..len], &payload[..]);
        }
    }

    #[test]
    fn keepalive_is_32_bytes_and_round_trips() {
        let (a, b) = pair();
        let mut dgram = send(&a, &[], 1420);
        assert_eq!(dgram.len(), 32);
        assert_eq!(
            &dgram[..16],
            &[4, 0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(b.open(&mut dgram).unwrap().len(), 0);
    }

    #[test]
    fn data_is_padded_and_round_trips() {
        let (a, b) = pair();
        let payload: Vec<u8> = (0..45).collect();
        let mut dgram = send(&a, &payload, 1420);
        assert_eq!(dgram.len(), 16 + 48 + 16);
        let pt = b.open(&mut dgram).unwrap();
        assert_eq!(&pt[..45], &payload[..]);
        assert!(pt[45..].iter().all(|&x| x == 0), "padding must be zeros");
    }

    #[test]
    fn padding_stops_at_buffer_capacity() {
        let (a, _) = pair();
        let mut buf = vec![0u8; 16 + 20 + 16];
        assert_eq!(a.seal(0, 20, &mut buf), Ok(52));
        assert_eq!(a.seal(0, 21, &mut buf), Err(SessionError::BufferTooSmall));
        assert_eq!(
            a.seal(0, 0, &mut [0u8; 31]),
            Err(SessionError::BufferTooSmall)
        );
    }

    #[test]
    fn replays_tampering_and_wrong_index_are_refused() {
        let (a, b) = pair();
        let dgram = send(&a, b"hello", 1420);
        assert!(b.open(&mut dgram.clone()).is_ok());
        assert_eq!(b.open(&mut dgram.clone()), Err(SessionError::Replay));

        let mut tampered = send(&a, b"hello", 1420);
        tampered[20] ^= 1;
        assert_eq!(b.open(&mut tampered), Err(SessionError::Decrypt));

        let mut counter_changed = send(&a, b"hello", 1420);
        counter_changed[8] ^= 1;
        assert_eq!(b.open(&mut counter_changed), Err(SessionError::Decrypt));

        let mut wrong = send(&a, b"hello", 1420);
        wrong[4] = 99;
        assert_eq!(b.open(&mut wrong), Err(SessionError::WrongIndex(99)));

        assert!(matches!(
            b.open(&mut [4, 0, 0, 0]),
            Err(SessionError::Malformed(_))
        ));
        // Our own packet cannot be reflected back to us: other index, other key.
        let mut reflected = send(&a, b"x", 1420);
        assert!(a.open(&mut reflected).is_err());
    }

    #[test]
    fn counter_limit() {
        let (a, _) = pair();
        a.send_counter
            .store(REJECT_AFTER_MESSAGES - 1, Ordering::Relaxed);
        assert_eq!(a.next_send_counter(), Some(REJECT_AFTER_MESSAGES - 1));
        assert_eq!(a.next_send_counter(), None);
        assert_eq!(a.next_send_counter(), None);
        assert_eq!(a.send_counter(), REJECT_AFTER_MESSAGES);
        let mut buf = [0u8; 64];
        assert_eq!(
            a.seal(REJECT_AFTER_MESSAGES, 0, &mut buf),
            Err(SessionError::CounterExhausted)
        );
    }

    #[test]
    fn shared_across_threads() {
        let (a, b) = pair();
        let (a, b) = (Arc::new(a), Arc::new(b));
        let packets: Vec<Vec<u8>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|t| {
                    let a = Arc::clone(&a);
                    s.spawn(move || {
                        (0..100)
                            .map(|i| send(&a, &[t, i], 1420))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        assert_eq!(a.send_counter(), 400);
        std::thread::scope(|s| {
            for chunk in packets.chunks(100) {
                let b = Arc::clone(&b);
                s.spawn(move || {
                    for p in chunk {
                        assert!(b.open(&mut p.clone()).is_ok());
                    }
                });
            }
        });
    }

    #[test]
    fn is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Keypair>();
        check::<TransportKey>();
    }
}
