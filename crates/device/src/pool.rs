//! Per-worker packet buffers: allocated once, recycled through a free list.
//!
//! A [`Buf`] is a fixed byte array with a movable window `[start, start+len)`.
//! Packets are received at [`HEADROOM`] bytes from the front, so the 16-byte
//! WireGuard data header (or a 10-byte virtio-net header) can be prepended in
//! place with [`Buf::prepend`], and the payload stripped with
//! [`Buf::advance`], without copying. The tail must also leave room for what
//! encryption appends (up to 15 bytes of padding and the 16-byte tag): size
//! buffers as `MTU + 32` at least, or `VNET_HDR_LEN + 65535` for TUN reads
//! with offloads and for UDP receives with GRO.
//!
//! The pool is single-threaded (one per worker) and bounded: [`BufPool::take`]
//! returns `None` when all buffers are out, which is the worker's
//! backpressure. Buffers go back with [`BufPool::put`]; a buffer dropped
//! instead is freed and the pool just has one fewer (nothing leaks, nothing
//! is allocated to replace it). `Buf` is `Send`, so buffers may travel to
//! other threads (crypto, handshakes) as long as they come home to be put.

use std::ops::{Deref, DerefMut};

/// Bytes kept free in front of a fresh buffer's data: room for the 16-byte
/// WireGuard transport header.
pub const HEADROOM: usize = 16;

/// A packet buffer; derefs to its current contents.
pub struct Buf {
    data: Box<[u8]>,
    start: usize,
    len: usize,
}

impl Buf {
    /// A standalone buffer with `HEADROOM + size` bytes, contents empty at
    /// offset [`HEADROOM`]. Pools call this once per buffer at construction.
    pub fn new(size: usize) -> Buf {
        Buf {
            data: vec![0u8; HEADROOM + size].into_boxed_slice(),
            start: HEADROOM,
            len: 0,
        }
    }

    /// Empties the buffer and moves its start back to [`HEADROOM`].
    #[inline]
    pub fn reset(&mut self) {
        self.start = HEADROOM;
        self.len = 0;
    }

    /// Empties the buffer and puts its start at `headroom` (clamped to the
    /// capacity), e.g. `HEADROOM - VNET_HDR_LEN` to read a TUN packet with
    /// its virtio header so that, after [`Buf::advance`] past the header,
    /// exactly HEADROOM bytes are free in front of the IP packet.
    #[inline]
    pub fn reset_to(&mut self, headroom: usize) {
        self.start = headroom.min(self.data.len());
        self.len = 0;
    }

    /// Length of the current contents.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Free bytes in front of the contents.
    #[inline]
    pub fn headroom(&self) -> usize {
        self.start
    }

    /// Free bytes after the contents.
    #[inline]
    pub fn tailroom(&self) -> usize {
        self.data.len() - self.start - self.len
    }

    /// Total bytes of storage.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.data.len()
    }

    /// Everything from the start of the contents to the end of storage: the
    /// region to receive into, followed by [`Buf::set_len`].
    #[inline]
    pub fn spare_mut(&mut self) -> &mut [u8] {
        &mut self.data[self.start..]
    }

    /// Sets the length of the contents (after receiving into
    /// [`Buf::spare_mut`]); clamped to what fits.
    #[inline]
    pub fn set_len(&mut self, len: usize) {
        self.len = len.min(self.data.len() - self.start);
    }

    /// Grows the contents by `n` bytes at the front and returns them (to
    /// write a header into), or `None` if the headroom is too small.
    #[inline]
    pub fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        let start = self.start.checked_sub(n)?;
        self.start = start;
        self.len += n;
        Some(&mut self.data[start..start + n])
    }

    /// Drops `n` bytes from the front of the contents (clamped to `len`),
    /// e.g. a header that has been parsed.
    #[inline]
    pub fn advance(&mut self, n: usize) {
        let n = n.min(self.len);
        self.start += n;
        self.len -= n;
    }

    /// Grows the contents by `n` bytes at the back and returns them (for
    /// padding or an AEAD tag), or `None` if the tailroom is too small.
    #[inline]
    pub fn extend(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.tailroom() {
            return None;
        }
        let end = self.start + self.len;
        self.len += n;
        Some(&mut self.data[end..end + n])
    }

    /// Shortens the contents to `len` bytes (no-op if already shorter).
    #[inline]
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }
}

impl Deref for Buf {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        &self.data[self.start..self.start + self.len]
    }
}

impl DerefMut for Buf {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.data[self.start..self.start + self.len]
    }
}

impl std::fmt::Debug for Buf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buf")
            .field("start", &self.start)
            .field("len", &self.len)
            .field("capacity", &self.data.len())
            .finish()
    }
}

/// A bounded free list of equally sized [`Buf`]s, all allocated up front.
#[derive(Debug)]
pub struct BufPool {
    free: Vec<Buf>,
    count: usize,
    buf_size: usize,
}

impl BufPool {
    /// Allocates `count` buffers of `HEADROOM + buf_size` bytes each.
    pub fn new(count: usize, buf_size: usize) -> BufPool {
        let mut free = Vec::with_capacity(count);
        free.extend((0..count).map(|_| Buf::new(buf_size)));
        BufPool {
            free,
            count,
            buf_size,
        }
    }

    /// An empty buffer (start at [`HEADROOM`]), or `None` if all are out.
    #[inline]
    pub fn take(&mut self) -> Option<Buf> {
        let mut buf = self.free.pop()?;
        buf.reset();
        Some(buf)
    }

    /// Returns a buffer. One of a different size, or one beyond the pool's
    /// count, is dropped instead, so the free list never reallocates.
    #[inline]
    pub fn put(&mut self, buf: Buf) {
        if buf.capacity() == HEADROOM + self.buf_size && self.free.len() < self.count {
            self.free.push(buf);
        }
    }

    /// Buffers currently in the pool.
    #[inline]
    pub fn available(&self) -> usize {
        self.free.len()
    }

    /// The number of buffers the pool was built with.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Usable bytes per buffer after [`HEADROOM`].
    pub fn buf_size(&self) -> usize {
        self.buf_size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_put_bounded_and_no_realloc() {
        let mut p = BufPool::new(2, 100);
        let ptr = p.free.as_ptr();
        let a = p.take().unwrap();
        let b = p.take().unwrap();
        assert!(p.take().is_none());
        p.put(a);
        p.put(b);
        p.put(Buf::new(100)); // beyond count: dropped
        p.put(Buf::new(50)); // wrong size: dropped
        assert_eq!(p.available(), 2);
        assert_eq!(ptr, p.free.as_ptr());
    }

    #[test]
    fn prepend_advance_extend() {
        let mut b = Buf::new(64);
        b.spare_mut()[..4].copy_from_slice(b"data");
        b.set_len(4);
        assert_eq!(&*b, b"data");
        assert_eq!(b.headroom(), HEADROOM);
        b.prepend(16).unwrap().fill(0xaa);
        assert_eq!(b.len(), 20);
        assert_eq!(b.headroom(), 0);
        assert!(b.prepend(1).is_none());
        b.extend(16).unwrap().fill(0xbb);
        assert_eq!(b.len(), 36);
        assert_eq!(b.tailroom(), 64 - 20);
        assert!(b.extend(1000).is_none());
        b.advance(16);
        assert_eq!(&b[..4], b"data");
        b.truncate(4);
        assert_eq!(&*b, b"data");
        b.set_len(10_000);
        assert_eq!(b.len(), 64);
        b.reset_to(6);
        assert_eq!((b.headroom(), b.len()), (6, 0));
    }
}
