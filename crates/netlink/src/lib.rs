//! A small synchronous rtnetlink client: links, addresses, routes and policy rules, the parts
//! of `ip(8)` that wg-quick uses. Requests are built the way iproute2 builds them, so the
//! kernel state that results is the same as after the equivalent `ip` command.

// Outside tests an error is reported, never a panic: no unwrap or expect in shipped code.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
// All unsafe code lives in crates/device.
#![forbid(unsafe_code)]

mod addr;
mod link;
pub mod route;
mod rule;

pub use addr::Address;
pub use link::Link;
pub use route::{Route, RouteLookup};
pub use rule::Rule;

use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP,
    NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("netlink socket: {0}")]
    Socket(#[source] std::io::Error),
    /// The kernel refused a request; `what` says which, as a user would phrase it.
    #[error("{what}: {}", ferrotun_uapi::client::errno_message(*.errno))]
    Kernel { what: String, errno: i32 },
    #[error("{what}: malformed netlink reply: {detail}")]
    Decode { what: String, detail: String },
    #[error("no interface named `{0}'")]
    NoSuchLink(String),
}

impl NetlinkError {
    /// The errno of a refused request (0 for other failures).
    pub fn errno(&self) -> i32 {
        match self {
            NetlinkError::Kernel { errno, .. } => *errno,
            NetlinkError::NoSuchLink(_) => libc::ENODEV,
            _ => 0,
        }
    }
}

/// One rtnetlink socket; each request waits for its answer before the next is sent.
pub struct Netlink {
    socket: Socket,
    seq: u32,
}

impl Netlink {
    pub fn open() -> Result<Self, NetlinkError> {
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(NetlinkError::Socket)?;
        socket.bind_auto().map_err(NetlinkError::Socket)?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(NetlinkError::Socket)?;
        Ok(Netlink { socket, seq: 0 })
    }

    /// A change (new/del/set): waits for the kernel's acknowledgement.
    fn change(
        &mut self,
        message: RouteNetlinkMessage,
        flags: u16,
        what: impl Fn() -> String,
    ) -> Result<(), NetlinkError> {
        self.exchange(message, NLM_F_REQUEST | NLM_F_ACK | flags, &what)
            .map(drop)
    }

    /// A dump of every object of one kind.
    fn dump(
        &mut self,
        message: RouteNetlinkMessage,
        what: impl Fn() -> String,
    ) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        self.exchange(message, NLM_F_REQUEST | NLM_F_DUMP, &what)
    }

    /// A single-object query (`ip route get`, a link by name).
    fn query(
        &mut self,
        message: RouteNetlinkMessage,
        what: impl Fn() -> String,
    ) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        self.exchange(message, NLM_F_REQUEST | NLM_F_ACK, &what)
    }

    fn exchange(
        &mut self,
        message: RouteNetlinkMessage,
        flags: u16,
        what: &dyn Fn() -> String,
    ) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(message));
        packet.finalize();
        let mut buf = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.socket.send(&buf, 0).map_err(NetlinkError::Socket)?;

        let mut replies = Vec::new();
        loop {
            let (data, _) = self.socket.recv_from_full().map_err(NetlinkError::Socket)?;
            let mut offset = 0;
            while offset < data.len() {
                let rest = data.get(offset..).unwrap_or_default();
                let len = NetlinkBuffer::new_checked(rest)
                    .map(|b| b.length() as usize)
                    .map_err(|e| decode_error(what, e))?;
                let chunk = rest.get(..len).unwrap_or(rest);
                offset += (len + 3) & !3;
                if len == 0 {
                    break;
                }
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(chunk)
                    .map_err(|e| decode_error(what, e))?;
                if reply.header.sequence_number != seq {
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::Done(_) => return Ok(replies),
                    NetlinkPayload::Error(e) => match e.code {
                        Some(code) => {
                            return Err(NetlinkError::Kernel {
                                what: what(),
                                errno: code.get().abs(),
                            })
                        }
                        None => return Ok(replies),
                    },
                    // A query's answer is followed by its ack, a dump's parts by Done.
                    NetlinkPayload::InnerMessage(m) => replies.push(m),
                    _ => {}
                }
            }
        }
    }
}

fn decode_error(what: &dyn Fn() -> String, e: impl std::fmt::Display) -> NetlinkError {
    NetlinkError::Decode {
        what: what(),
        detail: e.to_string(),
    }
}
