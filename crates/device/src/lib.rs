//! Linux data plane for ferrotun.
//!
//! The syscall layer (all of the project's `unsafe`, each block with a
//! `// SAFETY:` comment; Linux only):
//!
//! - [`Tun`] / [`TunQueue`]: a multi-queue TUN, one non-blocking queue per
//!   worker; [`is_gone`] recognises a deleted interface. Optional offloads
//!   ([`Tun::create_with_offload`], [`VirtioNetHdr`]).
//! - [`set_mtu`], [`set_up`], [`interface_index`]: MTU, link up, name → index.
//! - [`UdpSocket`]: SO_REUSEPORT sockets per family ([`bind_dual`]), batched
//!   [`UdpSocket::recv_batch`] / [`UdpSocket::send_batch`] with GRO and GSO.
//! - [`Epoll`]: one level-triggered poller per worker.
//! - [`Cancel`]: the one shutdown signal; [`install_shutdown_signals`].
//!
//! A worker's loop, in outline:
//!
//! ```no_run
//! use ferrotun_device::*;
//! # fn main() -> std::io::Result<()> {
//! let cancel = Cancel::new()?;
//! install_shutdown_signals(&cancel)?;
//! let tun = Tun::create("wg0", 2)?;
//! set_mtu(tun.name(), 1420)?;
//! let socks = bind_dual(51820, 2, 0)?;
//! let queue = tun.into_queues().swap_remove(0);
//! let (tun_tok, udp_tok, stop_tok) = (0, 1, 2);
//! let ep = Epoll::new()?;
//! ep.add(&queue, tun_tok, Interest::READABLE)?;
//! ep.add(&socks.v4[0], udp_tok, Interest::READABLE)?;
//! ep.add(&cancel, stop_tok, Interest::READABLE)?;
//! let mut buf = vec![0u8; 1500 + 32];
//! let mut events = [Event::EMPTY; 8];
//! while !cancel.is_triggered() {
//!     let n = ep.wait(&mut events, None)?;
//!     for ev in &events[..n] {
//!         if ev.token() == tun_tok {
//!             match queue.read(&mut buf[16..]) {
//!                 Ok(_len) => {} // then write the header in front, seal, send_batch
//!                 Err(e) if is_gone(&e) => cancel.trigger(),
//!                 Err(_) => {}
//!             }
//!         }
//!     }
//! }
//! # Ok(())
//! # }
//! ```

// Outside tests an error is reported, never a panic: no unwrap or expect in shipped code.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
// Every unsafe block says, right above it, why it is sound.
#![deny(clippy::undocumented_unsafe_blocks)]

// Modules other crates (and this crate's tests and benches) use by path.
pub mod clock;
pub mod confine;
pub mod control;
pub mod counting;
pub mod inherit;
pub mod memory;
pub mod netns;
pub mod netset;
pub mod offload;
pub mod unreachable;

// The rest is reached through the re-exports below, or not from outside at all.
mod cancel;
mod cmsg;
mod device;
mod epoll;
mod gso;
mod local_addrs;
mod loop_guard;
mod mmsg;
mod mtu_watch;
mod netif;
mod netlink_batch;
mod route_watch;
mod signals;
mod sockaddr;
mod steal;
mod steer;
mod sys;
mod tun;
mod udp;
mod vnet;
mod worker;

pub use cancel::Cancel;
pub use device::{Device, DeviceConfig, Opened};
pub use epoll::{Epoll, Event, Interest};
pub use netif::{interface_exists, interface_index, is_up, mtu, set_mtu, set_up};
pub use signals::install_shutdown_signals;
pub use tun::{is_gone, Tun, TunQueue};
pub use udp::{
    bind_dual, bind_reuseport, is_source_error, probe_gso, BoundSockets, RecvBuf, RecvMeta,
    Transmit, UdpSocket, BATCH,
};
pub use vnet::{VirtioNetHdr, VNET_HDR_LEN};
