//! Message framing on the configuration socket: `\n`-terminated lines, a blank line ending
//! every request body and every reply.

use std::io::{self, BufRead, Read};

/// Reads one message: lines up to and including the blank line that ends it, returned with
/// that blank line. `Ok(None)` means the peer closed the stream before sending anything.
///
/// `limit` bounds the bytes read, so a client that never sends the blank line cannot make a
/// server buffer without end. A stream ending mid-message is `UnexpectedEof`; invalid UTF-8
/// or going over the limit is `InvalidData`.
pub fn read_message<R: BufRead>(reader: &mut R, limit: usize) -> io::Result<Option<String>> {
    let mut message = String::new();
    loop {
        let room = limit.saturating_sub(message.len());
        if room == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "configuration message too long",
            ));
        }
        let start = message.len();
        // u64 from usize cannot truncate on any supported target.
        let read = reader.by_ref().take(room as u64).read_line(&mut message)?;
        if read == 0 {
            return if message.is_empty() {
                Ok(None)
            } else {
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "configuration message ended without a blank line",
                ))
            };
        }
        if &message[start..] == "\n" {
            return Ok(Some(message));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_up_to_blank_line_only() {
        let mut input: &[u8] = b"a=1\nb=2\n\nnext=1\n\n";
        assert_eq!(
            read_message(&mut input, 100).unwrap().unwrap(),
            "a=1\nb=2\n\n"
        );
        assert_eq!(
            read_message(&mut input, 100).unwrap().unwrap(),
            "next=1\n\n"
        );
        assert_eq!(read_message(&mut input, 100).unwrap(), None);
    }

    #[test]
    fn rejects_truncated_and_oversized() {
        let mut input: &[u8] = b"a=1\nb=2";
        let err = read_message(&mut input, 100).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let mut input: &[u8] = b"a=1111111111\n\n";
        let err = read_message(&mut input, 8).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let mut input: &[u8] = b"\xff=1\n\n";
        assert!(read_message(&mut input, 100).is_err());
    }
}
