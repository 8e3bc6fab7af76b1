//! Zero-copy views of the four WireGuard messages (docs/PROTOCOL.md §2).
//!
//! Each view checks type and length once, in its constructor, by splitting the buffer into
//! fixed-size field references; after that every accessor is a plain field read and cannot
//! panic, whatever bytes arrived.

pub const TYPE_INITIATION: u32 = 1;
pub const TYPE_RESPONSE: u32 = 2;
pub const TYPE_COOKIE_REPLY: u32 = 3;
pub const TYPE_TRANSPORT: u32 = 4;

pub const INITIATION_LEN: usize = 148;
pub const RESPONSE_LEN: usize = 92;
pub const COOKIE_REPLY_LEN: usize = 64;
pub const TRANSPORT_HEADER_LEN: usize = 16;
pub const TAG_LEN: usize = 16;
/// A keepalive: header plus the tag of an empty plaintext.
pub const MIN_TRANSPORT_LEN: usize = TRANSPORT_HEADER_LEN + TAG_LEN;

/// mac1 covers everything before it; mac2 covers everything before it, mac1 included.
pub const INITIATION_MAC1_OFFSET: usize = 116;
pub const INITIATION_MAC2_OFFSET: usize = 132;
pub const RESPONSE_MAC1_OFFSET: usize = 60;
pub const RESPONSE_MAC2_OFFSET: usize = 76;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    #[error("empty datagram")]
    Empty,
    #[error("datagram of {len} bytes is too short")]
    TooShort { len: usize },
    /// Also covers a known type byte with non-zero reserved bytes: peers compare the whole
    /// little-endian word, so such a message is unknown to them too.
    #[error("unknown message type {0:#010x}")]
    UnknownType(u32),
    #[error("message type {msg_type} must be {expected} bytes, got {len}")]
    WrongLength {
        msg_type: u32,
        expected: usize,
        len: usize,
    },
}

/// Hands out consecutive fixed-size fields; `None` once the buffer runs out.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take<const N: usize>(&mut self) -> Option<&'a [u8; N]> {
        let (head, tail) = self.0.split_first_chunk::<N>()?;
        self.0 = tail;
        Some(head)
    }
}

fn message_type(buf: &[u8]) -> Result<u32, WireError> {
    match buf.first_chunk::<4>() {
        Some(word) => Ok(u32::from_le_bytes(*word)),
        None if buf.is_empty() => Err(WireError::Empty),
        None => Err(WireError::TooShort { len: buf.len() }),
    }
}

fn check_exact(buf: &[u8], msg_type: u32, expected: usize) -> Result<(), WireError> {
    let found = message_type(buf)?;
    if found != msg_type {
        return Err(WireError::UnknownType(found));
    }
    if buf.len() != expected {
        return Err(WireError::WrongLength {
            msg_type,
            expected,
            len: buf.len(),
        });
    }
    Ok(())
}

fn wrong_length(msg_type: u32, expected: usize, len: usize) -> WireError {
    WireError::WrongLength {
        msg_type,
        expected,
        len,
    }
}

/// Type 1, 148 bytes.
#[derive(Clone, Copy)]
pub struct Initiation<'a> {
    bytes: &'a [u8; INITIATION_LEN],
    sender_index: &'a [u8; 4],
    ephemeral: &'a [u8; 32],
    encrypted_static: &'a [u8; 48],
    encrypted_timestamp: &'a [u8; 28],
    mac1: &'a [u8; 16],
    mac2: &'a [u8; 16],
}

impl<'a> Initiation<'a> {
    pub fn new(buf: &'a [u8]) -> Result<Self, WireError> {
        check_exact(buf, TYPE_INITIATION, INITIATION_LEN)?;
        let err = || wrong_length(TYPE_INITIATION, INITIATION_LEN, buf.len());
        let mut f = Fields(buf);
        let bytes = buf.first_chunk().ok_or_else(err)?;
        f.take::<4>().ok_or_else(err)?;
        Ok(Initiation {
            bytes,
            sender_index: f.take().ok_or_else(err)?,
            ephemeral: f.take().ok_or_else(err)?,
            encrypted_static: f.take().ok_or_else(err)?,
            encrypted_timestamp: f.take().ok_or_else(err)?,
            mac1: f.take().ok_or_else(err)?,
            mac2: f.take().ok_or_else(err)?,
        })
    }
    pub fn sender_index(&self) -> u32 {
        u32::from_le_bytes(*self.sender_index)
    }
    pub fn ephemeral(&self) -> &'a [u8; 32] {
        self.ephemeral
    }
    pub fn encrypted_static(&self) -> &'a [u8; 48] {
        self.encrypted_static
    }
    pub fn encrypted_timestamp(&self) -> &'a [u8; 28] {
        self.encrypted_timestamp
    }
    pub fn mac1(&self) -> &'a [u8; 16] {
        self.mac1
    }
    pub fn mac2(&self) -> &'a [u8; 16] {
        self.mac2
    }
    pub fn bytes(&self) -> &'a [u8; INITIATION_LEN] {
        self.bytes
    }
}

/// Type 2, 92 bytes.
#[derive(Clone, Copy)]
pub struct Response<'a> {
    bytes: &'a [u8; RESPONSE_LEN],
    sender_index: &'a [u8; 4],
    receiver_index: &'a [u8; 4],
    ephemeral: &'a [u8; 32],
    encrypted_nothing: &'a [u8; 16],
    mac1: &'a [u8; 16],
    mac2: &'a [u8; 16],
}

impl<'a> Response<'a> {
    pub fn new(buf: &'a [u8]) -> Result<Self, WireError> {
        check_exact(buf, TYPE_RESPONSE, RESPONSE_LEN)?;
        let err = || wrong_length(TYPE_RESPONSE, RESPONSE_LEN, buf.len());
        let mut f = Fields(buf);
        let bytes = buf.first_chunk().ok_or_else(err)?;
        f.take::<4>().ok_or_else(err)?;
        Ok(Response {
            bytes,
            sender_index: f.take().ok_or_else(err)?,
            receiver_index: f.take().ok_or_else(err)?,
            ephemeral: f.take().ok_or_else(err)?,
            encrypted_nothing: f.take().ok_or_else(err)?,
            mac1: f.take().ok_or_else(err)?,
            mac2: f.take().ok_or_else(err)?,
        })
    }
    pub fn sender_index(&self) -> u32 {
        u32::from_le_bytes(*self.sender_index)
    }
    pub fn receiver_index(&self) -> u32 {
        u32::from_le_bytes(*self.receiver_index)
    }
    pub fn ephemeral(&self) -> &'a [u8; 32] {
        self.ephemeral
    }
    pub fn encrypted_nothing(&self) -> &'a [u8; 16] {
        self.encrypted_nothing
    }
    pub fn mac1(&self) -> &'a [u8; 16] {
        self.mac1
    }
    pub fn mac2(&self) -> &'a [u8; 16] {
        self.mac2
    }
    pub fn bytes(&self) -> &'a [u8; RESPONSE_LEN] {
        self.bytes
    }
}

/// Type 3, 64 bytes.
#[derive(Clone, Copy)]
pub struct CookieReply<'a> {
    bytes: &'a [u8; COOKIE_REPLY_LEN],
    receiver_index: &'a [u8; 4],
    nonce: &'a [u8; 24],
    encrypted_cookie: &'a [u8; 32],
}

impl<'a> CookieReply<'a> {
    pub fn new(buf: &'a [u8]) -> Result<Self, WireError> {
        check_exact(buf, TYPE_COOKIE_REPLY, COOKIE_REPLY_LEN)?;
        let err = || wrong_length(TYPE_COOKIE_REPLY, COOKIE_REPLY_LEN, buf.len());
        let mut f = Fields(buf);
        let bytes = buf.first_chunk().ok_or_else(err)?;
        f.take::<4>().ok_or_else(err)?;
        Ok(CookieReply {
            bytes,
            receiver_index: f.take().ok_or_else(err)?,
            nonce: f.take().ok_or_else(err)?,
            encrypted_cookie: f.take().ok_or_else(err)?,
        })
    }
    pub fn receiver_index(&self) -> u32 {
        u32::from_le_bytes(*self.receiver_index)
    }
    pub fn nonce(&self) -> &'a [u8; 24] {
        self.nonce
    }
    pub fn encrypted_cookie(&self) -> &'a [u8; 32] {
        self.encrypted_cookie
    }
    pub fn bytes(&self) -> &'a [u8; COOKIE_REPLY_LEN] {
        self.bytes
    }
}

/// Type 4: 16-byte header then ciphertext and tag (at least the 16-byte tag).
#[derive(Clone, Copy)]
pub struct Transport<'a> {
    bytes: &'a [u8],
    receiver_index: &'a [u8; 4],
    counter: &'a [u8; 8],
    ciphertext: &'a [u8],
}

impl<'a> Transport<'a> {
    pub fn new(buf: &'a [u8]) -> Result<Self, WireError> {
        let found = message_type(buf)?;
        if found != TYPE_TRANSPORT {
            return Err(WireError::UnknownType(found));
        }
        if buf.len() < MIN_TRANSPORT_LEN {
            return Err(WireError::TooShort { len: buf.len() });
        }
        let err = || WireError::TooShort { len: buf.len() };
        let mut f = Fields(buf);
        f.take::<4>().ok_or_else(err)?;
        let receiver_index = f.take().ok_or_else(err)?;
        let counter = f.take().ok_or_else(err)?;
        Ok(Transport {
            bytes: buf,
            receiver_index,
            counter,
            ciphertext: f.0,
        })
    }
    pub fn receiver_index(&self) -> u32 {
        u32::from_le_bytes(*self.receiver_index)
    }
    pub fn counter(&self) -> u64 {
        u64::from_le_bytes(*self.counter)
    }
    /// Ciphertext followed by the 16-byte tag; never shorter than the tag.
    pub fn ciphertext(&self) -> &'a [u8] {
        self.ciphertext
    }
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

pub enum Message<'a> {
    Initiation(Initiation<'a>),
    Response(Response<'a>),
    CookieReply(CookieReply<'a>),
    Transport(Transport<'a>),
}

/// Classifies a received datagram. Nothing is authenticated yet.
pub fn parse(buf: &[u8]) -> Result<Message<'_>, WireError> {
    match message_type(buf)? {
        TYPE_INITIATION => Initiation::new(buf).map(Message::Initiation),
        TYPE_RESPONSE => Response::new(buf).map(Message::Response),
        TYPE_COOKIE_REPLY => CookieReply::new(buf).map(Message::CookieReply),
        TYPE_TRANSPORT => Transport::new(buf).map(Message::Transport),
        other => Err(WireError::UnknownType(other)),
    }
}

/// Writes the transport header: type 4 with zero reserved bytes, receiver index, counter.
pub fn write_transport_header(
    out: &mut [u8; TRANSPORT_HEADER_LEN],
    receiver_index: u32,
    counter: u64,
) {
    let (ty, rest) = out.split_at_mut(4);
    let (idx, ctr) = rest.split_at_mut(4);
    ty.copy_from_slice(&TYPE_TRANSPORT.to_le_bytes());
    idx.copy_from_slice(&receiver_index.to_le_bytes());
    ctr.copy_from_slice(&counter.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn msg(ty: u8, len: usize) -> Vec<u8> {
        let mut v: Vec<u8> = (0..len).map(|i| i as u8).collect();
        v[..4].copy_from_slice(&[ty, 0, 0, 0]);
        v
    }

    #[test]
    fn initiation_fields() {
        let buf = msg(1, INITIATION_LEN);
        let Ok(Message::Initiation(m)) = parse(&buf) else {
            panic!("not an initiation")
        };
        assert_eq!(m.sender_index(), u32::from_le_bytes([4, 5, 6, 7]));
        assert_eq!(m.ephemeral()[0], 8);
        assert_eq!(m.encrypted_static()[0], 40);
        assert_eq!(m.encrypted_timestamp()[0], 88);
        assert_eq!(m.mac1()[0], 116);
        assert_eq!(m.mac2()[0], 132);
        assert_eq!(m.mac2()[15], 147);
        assert_eq!(&m.bytes()[..], &buf[..]);
    }

    #[test]
    fn response_fields() {
        let buf = msg(2, RESPONSE_LEN);
        let Ok(Message::Response(m)) = parse(&buf) else {
            panic!("not a response")
        };
        assert_eq!(m.sender_index(), u32::from_le_bytes([4, 5, 6, 7]));
        assert_eq!(m.receiver_index(), u32::from_le_bytes([8, 9, 10, 11]));
        assert_eq!(m.ephemeral()[0], 12);
        assert_eq!(m.encrypted_nothing()[0], 44);
        assert_eq!(m.mac1()[0], 60);
        assert_eq!(m.mac2()[0], 76);
        assert_eq!(m.mac2()[15], 91);
    }

    #[test]
    fn cookie_reply_fields() {
        let buf = msg(3, COOKIE_REPLY_LEN);
        let Ok(Message::CookieReply(m)) = parse(&buf) else {
            panic!("not a cookie reply")
        };
        assert_eq!(m.receiver_index(), u32::from_le_bytes([4, 5, 6, 7]));
        assert_eq!(m.nonce()[0], 8);
        assert_eq!(m.encrypted_cookie()[0], 32);
        assert_eq!(m.encrypted_cookie()[31], 63);
    }

    #[test]
    fn transport_fields_and_header_writer() {
        let mut buf = vec![0u8; 40];
        let header: &mut [u8; 16] = (&mut buf[..16]).try_into().unwrap();
        write_transport_header(header, 0xdead_beef, 0x0102_0304_0506_0708);
        assert_eq!(&buf[..8], &[4, 0, 0, 0, 0xef, 0xbe, 0xad, 0xde]);
        let Ok(Message::Transport(m)) = parse(&buf) else {
            panic!("not transport")
        };
        assert_eq!(m.receiver_index(), 0xdead_beef);
        assert_eq!(m.counter(), 0x0102_0304_0506_0708);
        assert_eq!(m.ciphertext().len(), 24);
        assert_eq!(m.bytes().len(), 40);
    }

    #[test]
    fn rejections() {
        assert_eq!(parse(&[]).err(), Some(WireError::Empty));
        assert_eq!(parse(&[1, 0]).err(), Some(WireError::TooShort { len: 2 }));
        assert_eq!(parse(&[9, 0, 0, 0]).err(), Some(WireError::UnknownType(9)));
        assert_eq!(parse(&[0, 0, 0, 0]).err(), Some(WireError::UnknownType(0)));

        let mut reserved = msg(1, INITIATION_LEN);
        reserved[3] = 1;
        assert_eq!(
            parse(&reserved).err(),
            Some(WireError::UnknownType(0x0100_0001))
        );

        for (ty, len) in [
            (1u8, INITIATION_LEN),
            (2, RESPONSE_LEN),
            (3, COOKIE_REPLY_LEN),
        ] {
            for bad in [len - 1, len + 1] {
                assert_eq!(
                    parse(&msg(ty, bad)).err(),
                    Some(WireError::WrongLength {
                        msg_type: u32::from(ty),
                        expected: len,
                        len: bad
                    })
                );
            }
        }
        assert_eq!(
            parse(&msg(4, 31)).err(),
            Some(WireError::TooShort { len: 31 })
        );
        assert!(parse(&msg(4, 32)).is_ok());
        // A view refuses another type's bytes.
        assert_eq!(
            Response::new(&msg(1, INITIATION_LEN)).err(),
            Some(WireError::UnknownType(1))
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn parse_never_panics_on_plausible_types(
            ty in 0u8..6,
            mut bytes in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            if let Some(b) = bytes.first_mut() { *b = ty; }
            for b in bytes.iter_mut().skip(1).take(3) { *b = 0; }
            if let Ok(m) = parse(&bytes) {
                let len = match m {
                    Message::Initiation(m) => m.bytes().len(),
                    Message::Response(m) => m.bytes().len(),
                    Message::CookieReply(m) => m.bytes().len(),
                    Message::Transport(m) => m.ciphertext().len() + 16,
                };
                prop_assert_eq!(len, bytes.len());
            }
        }
    }
}
