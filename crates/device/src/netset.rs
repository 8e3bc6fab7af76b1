//! The UDP sockets of one listen port: one per worker and family, bound with SO_REUSEPORT
//! so the kernel spreads flows across workers.

use crate::udp::{bind_dual, is_source_error, Transmit, UdpSocket};
use ferrotun_proto::counters::{Counter, CounterSet};
use ferrotun_proto::interface::Interface;
use ferrotun_proto::peer::Datagram;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

pub struct NetSet {
    pub port: u16,
    pub fwmark: u32,
    pub v4: Vec<Arc<UdpSocket>>,
    /// Empty when IPv6 is unavailable on this host.
    pub v6: Vec<Arc<UdpSocket>>,
}

impl NetSet {
    pub fn bind(port: u16, workers: usize, fwmark: u32) -> io::Result<NetSet> {
        let bound = bind_dual(port, workers, fwmark)?;
        for sock in bound.v4.iter().chain(&bound.v6) {
            // GRO lets one receive return a whole train of datagrams; where the kernel
            // refuses it, plain receives still work.
            let _ = sock.enable_gro();
        }
        Ok(NetSet {
            port: bound.port,
            fwmark,
            v4: bound.v4.into_iter().map(Arc::new).collect(),
            v6: bound.v6.into_iter().map(Arc::new).collect(),
        })
    }

    pub fn set_fwmark(&mut self, mark: u32) -> io::Result<()> {
        for s in self.v4.iter().chain(&self.v6) {
            s.set_fwmark(mark)?;
        }
        self.fwmark = mark;
        Ok(())
    }

    /// The socket for sending to `dst` from worker `i` (or the control thread).
    pub fn socket_for(&self, dst: &SocketAddr, i: usize) -> Option<&Arc<UdpSocket>> {
        let set = if dst.is_ipv4() { &self.v4 } else { &self.v6 };
        set.get(i % set.len().max(1))
    }

    /// Sends datagrams made off the packet path (handshakes, keepalives, staged packets),
    /// each from the source the core names. One refused because of that source goes again
    /// from the kernel's choice, and `iface` forgets the source for that peer. A failure is
    /// logged, not returned: the protocol's timers retry on their own.
    pub fn send(&self, datagrams: &[Datagram], iface: &Interface, counters: &CounterSet) {
        for d in datagrams {
            let Some(sock) = self.socket_for(&d.dst, 0) else {
                counters.add(Counter::UdpEafnosupport, 1);
                continue;
            };
            let mut msg = [Transmit {
                dst: d.dst,
                src: d.src,
                data: &d.data,
                segment_size: None,
            }];
            let mut sent = sock.send_batch(&msg);
            if let (Err(e), Some(src)) = (&sent, d.src) {
                if is_source_error(e) {
                    tracing::debug!("send to {} from {} failed: {e}", d.dst, src.addr);
                    iface.forget_source(d.dst, src);
                    msg[0].src = None;
                    sent = sock.send_batch(&msg);
                }
            }
            if let Err(e) = sent {
                counters.add(Counter::udp_error(e.raw_os_error()), 1);
            }
            let refused = sock.take_gso_refusals();
            if refused > 0 {
                counters.add(Counter::GsoRefused, refused);
            }
        }
    }
}
