//! The messages of one netlink read. A datagram from a NETLINK_ROUTE socket holds several
//! messages back to back, each padded to 4 bytes; netlink-packet-core parses one message,
//! not a batch, so the walk is ours (shared by the MTU and route watches).

use netlink_packet_core::{NetlinkBuffer, NetlinkMessage};
use netlink_packet_route::RouteNetlinkMessage;

/// Every message in `data` that parses, in order; a malformed length ends the walk.
pub(crate) fn route_messages(
    mut data: &[u8],
) -> impl Iterator<Item = NetlinkMessage<RouteNetlinkMessage>> + '_ {
    std::iter::from_fn(move || loop {
        let len = NetlinkBuffer::new_checked(data).ok()?.length() as usize;
        if len == 0 {
            return None;
        }
        let chunk = data.get(..len).unwrap_or(data);
        data = data.get(len.next_multiple_of(4)..).unwrap_or_default();
        if let Ok(msg) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(chunk) {
            return Some(msg);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{NetlinkHeader, NetlinkPayload};
    use netlink_packet_route::link::LinkMessage;

    fn link_message(index: u32, seq: u32) -> Vec<u8> {
        let mut link = LinkMessage::default();
        link.header.index = index;
        let mut msg = NetlinkMessage::new(
            NetlinkHeader::default(),
            NetlinkPayload::from(RouteNetlinkMessage::NewLink(link)),
        );
        msg.header.sequence_number = seq;
        msg.finalize();
        let mut buf = vec![0; msg.buffer_len()];
        msg.serialize(&mut buf);
        buf
    }

    #[test]
    fn every_message_of_a_batch_in_order_and_a_torn_tail_ends_it() {
        let mut batch = link_message(3, 1);
        batch.extend(link_message(4, 2));
        let seqs: Vec<u32> = route_messages(&batch)
            .map(|m| m.header.sequence_number)
            .collect();
        assert_eq!(seqs, [1, 2]);
        let torn = &batch[..batch.len() - 3];
        assert_eq!(route_messages(torn).count(), 1);
        assert_eq!(route_messages(&[]).count(), 0);
        assert_eq!(route_messages(&[0u8; 16]).count(), 0);
    }
}
