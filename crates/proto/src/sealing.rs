//! One packet's encryption as the send path plans it: the counter and padding are fixed
//! in packet order, the AEAD runs later on any thread. Both the batch send path
//! (`send.rs`) and a peer's own sends of staged packets and keepalives seal this way,
//! so the type sits below both.

use crate::session::{padded_len, Keypair, SessionError};
use crate::wire::{TAG_LEN, TRANSPORT_HEADER_LEN};
use std::sync::Arc;

/// One packet's encryption, decided in order (its counter and padding) and done anywhere.
#[derive(Debug, Clone)]
pub struct Sealing {
    keypair: Arc<Keypair>,
    counter: u64,
    len: usize,
    padded: usize,
}

impl Sealing {
    /// Reserves the next counter of `keypair` for a `len`-byte packet padded for `mtu`;
    /// `None` once the keypair may no longer send.
    pub(crate) fn new(keypair: &Arc<Keypair>, len: usize, mtu: usize) -> Option<Sealing> {
        let counter = keypair.next_send_counter()?;
        Some(Sealing {
            keypair: keypair.clone(),
            counter,
            len,
            padded: padded_len(len, mtu),
        })
    }

    /// The plaintext length.
    pub fn packet_len(&self) -> usize {
        self.len
    }

    /// The length of the sealed datagram: header, padded packet and tag.
    pub fn datagram_len(&self) -> usize {
        TRANSPORT_HEADER_LEN + self.padded + TAG_LEN
    }

    /// Encrypts in place the packet laid out in `buf` as `[header space][packet]...`;
    /// returns the datagram, `buf[..datagram_len()]`. Touches nothing but `buf`.
    pub fn seal<'b>(&self, buf: &'b mut [u8]) -> Result<&'b mut [u8], SessionError> {
        let datagram = buf
            .get_mut(..self.datagram_len())
            .ok_or(SessionError::BufferTooSmall)?;
        self.keypair.seal(self.counter, self.len, datagram)?;
        Ok(datagram)
    }
}
