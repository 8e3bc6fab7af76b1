//! Any datagram through `wire::parse` and the typed views: no panic, and every accessor reads
//! exactly the bytes at its documented offset (docs/PROTOCOL.md §2).

#![no_main]

use ferrotun_proto::wire::{self, CookieReply, Initiation, Message, Response, Transport};
use libfuzzer_sys::fuzz_target;

fn le32(data: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(data[at..at + 4].try_into().unwrap())
}

fn le64(data: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(data[at..at + 8].try_into().unwrap())
}

fn check_initiation(data: &[u8], m: &Initiation) {
    assert_eq!(data.len(), wire::INITIATION_LEN);
    assert_eq!(&m.bytes()[..], data);
    assert_eq!(m.sender_index(), le32(data, 4));
    assert_eq!(&m.ephemeral()[..], &data[8..40]);
    assert_eq!(&m.encrypted_static()[..], &data[40..88]);
    assert_eq!(&m.encrypted_timestamp()[..], &data[88..116]);
    assert_eq!(&m.mac1()[..], &data[wire::INITIATION_MAC1_OFFSET..132]);
    assert_eq!(&m.mac2()[..], &data[wire::INITIATION_MAC2_OFFSET..]);
}

fn check_response(data: &[u8], m: &Response) {
    assert_eq!(data.len(), wire::RESPONSE_LEN);
    assert_eq!(&m.bytes()[..], data);
    assert_eq!(m.sender_index(), le32(data, 4));
    assert_eq!(m.receiver_index(), le32(data, 8));
    assert_eq!(&m.ephemeral()[..], &data[12..44]);
    assert_eq!(&m.encrypted_nothing()[..], &data[44..60]);
    assert_eq!(&m.mac1()[..], &data[wire::RESPONSE_MAC1_OFFSET..76]);
    assert_eq!(&m.mac2()[..], &data[wire::RESPONSE_MAC2_OFFSET..]);
}

fn check_cookie_reply(data: &[u8], m: &CookieReply) {
    assert_eq!(data.len(), wire::COOKIE_REPLY_LEN);
    assert_eq!(&m.bytes()[..], data);
    assert_eq!(m.receiver_index(), le32(data, 4));
    assert_eq!(&m.nonce()[..], &data[8..32]);
    assert_eq!(&m.encrypted_cookie()[..], &data[32..]);
}

fn check_transport(data: &[u8], m: &Transport) {
    assert!(data.len() >= wire::MIN_TRANSPORT_LEN);
    assert_eq!(m.bytes(), data);
    assert_eq!(m.receiver_index(), le32(data, 4));
    assert_eq!(m.counter(), le64(data, 8));
    assert_eq!(m.ciphertext(), &data[wire::TRANSPORT_HEADER_LEN..]);

    // The header writer must produce what the parser reads back.
    let mut header = [0u8; wire::TRANSPORT_HEADER_LEN];
    wire::write_transport_header(&mut header, m.receiver_index(), m.counter());
    assert_eq!(&header[..], &data[..wire::TRANSPORT_HEADER_LEN]);
}

fuzz_target!(|data: &[u8]| {
    let parsed = wire::parse(data);
    // Each typed constructor accepts exactly what `parse` classifies as its type.
    assert_eq!(
        Initiation::new(data).is_ok(),
        matches!(parsed, Ok(Message::Initiation(_)))
    );
    assert_eq!(
        Response::new(data).is_ok(),
        matches!(parsed, Ok(Message::Response(_)))
    );
    assert_eq!(
        CookieReply::new(data).is_ok(),
        matches!(parsed, Ok(Message::CookieReply(_)))
    );
    assert_eq!(
        Transport::new(data).is_ok(),
        matches!(parsed, Ok(Message::Transport(_)))
    );
    match parsed {
        Ok(Message::Initiation(m)) => check_initiation(data, &m),
        Ok(Message::Response(m)) => check_response(data, &m),
        Ok(Message::CookieReply(m)) => check_cookie_reply(data, &m),
        Ok(Message::Transport(m)) => check_transport(data, &m),
        Err(e) => {
            // Errors render (they end up in counters and debug logs).
            assert!(!e.to_string().is_empty());
            // A rejected datagram is never one of the four well-formed shapes.
            let word = data.first_chunk::<4>().map(|w| u32::from_le_bytes(*w));
            let well_formed = match word {
                Some(wire::TYPE_INITIATION) => data.len() == wire::INITIATION_LEN,
                Some(wire::TYPE_RESPONSE) => data.len() == wire::RESPONSE_LEN,
                Some(wire::TYPE_COOKIE_REPLY) => data.len() == wire::COOKIE_REPLY_LEN,
                Some(wire::TYPE_TRANSPORT) => data.len() >= wire::MIN_TRANSPORT_LEN,
                _ => false,
            };
            assert!(!well_formed, "rejected a well-formed message: {e}");
        }
    }
});
