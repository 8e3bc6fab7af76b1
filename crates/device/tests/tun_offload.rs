//! TUN with IFF_VNET_HDR + TSO: a local TCP sender's data comes out of the
//! TUN as super-packets larger than the MTU, described by a virtio-net
//! header. The test plays the remote TCP peer just far enough (answers the
//! SYN) for the kernel to send its first flight.

mod common;

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{csum_add, csum_fold, have_root, ipv4_header, until, NetNs};
use ferrotun_device::{set_mtu, set_up, Epoll, Event, Interest, Tun, VirtioNetHdr, VNET_HDR_LEN};

const LOCAL: [u8; 4] = [10, 88, 0, 1];
const REMOTE: [u8; 4] = [10, 88, 0, 2];
const MTU: u32 = 1420;

/// TCP segment from REMOTE:8000 to LOCAL:`dport` with SYN|ACK, MSS 1380 and
/// window scale 7, acknowledging `ack`; returns the whole IPv4 packet.
fn syn_ack(dport: u16, ack: u32) -> Vec<u8> {
    let mut tcp = Vec::with_capacity(28);
    tcp.extend_from_slice(&8000u16.to_be_bytes());
    tcp.extend_from_slice(&dport.to_be_bytes());
    tcp.extend_from_slice(&1000u32.to_be_bytes()); // our ISN
    tcp.extend_from_slice(&ack.to_be_bytes());
    tcp.push(7 << 4); // data offset: 28 bytes
    tcp.push(0x12); // SYN|ACK
    tcp.extend_from_slice(&65535u16.to_be_bytes());
    tcp.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
    tcp.extend_from_slice(&[2, 4, 0x05, 0x64]); // MSS 1380
    tcp.extend_from_slice(&[1, 3, 3, 7]); // NOP, window scale 7
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&REMOTE);
    pseudo.extend_from_slice(&LOCAL);
    pseudo.extend_from_slice(&[0, 6]);
    pseudo.extend_from_slice(&(tcp.len() as u16).to_be_bytes());
    let c = csum_fold(csum_add(csum_add(0, &pseudo), &tcp));
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
    let mut p = ipv4_header(REMOTE, LOCAL, 6, tcp.len()).to_vec();
    p.extend_from_slice(&tcp);
    p
}

#[test]
fn tcp_through_offload_tun_yields_super_packets() {
    if !have_root() {
        return;
    }
    let ns = NetNs::new();
    ns.run(|| {
        let tun = Tun::create_with_offload("fto0", 1).unwrap();
        assert!(tun.vnet_hdr(), "offloads refused");
        assert_ne!(tun.offloads() & libc::TUN_F_TSO4, 0);
        eprintln!("offloads in force: {:#x}", tun.offloads());
        set_mtu("fto0", MTU).unwrap();
        set_up("fto0", true).unwrap();
        ns.ip(&["addr", "add", "10.88.0.1/24", "dev", "fto0"]);
        let q = &tun.queues()[0];
        assert_eq!(q.hdr_len(), VNET_HDR_LEN);

        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        // Spawned from the namespace thread, so it lives in the namespace.
        let sender = std::thread::spawn(move || {
            let dst: SocketAddr = "10.88.0.2:8000".parse().unwrap();
            let Ok(mut s) = TcpStream::connect_timeout(&dst, Duration::from_secs(3)) else {
                return;
            };
            s.set_write_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            let chunk = vec![0x5a; 65536];
            while !stop2.load(Ordering::Relaxed) {
                if let Err(e) = s.write(&chunk) {
                    if e.kind() != io::ErrorKind::WouldBlock && e.kind() != io::ErrorKind::TimedOut
                    {
                        return;
                    }
                }
            }
        });

        let ep = Epoll::new().unwrap();
        ep.add(q, 0, Interest::READABLE).unwrap();
        let mut evs = [Event::EMPTY; 1];
        let mut buf = vec![0u8; VNET_HDR_LEN + 65535];
        let mut answered = false;
        let found = until(Duration::from_secs(5), || {
            ep.wait(&mut evs, Some(Duration::from_millis(50))).unwrap();
            loop {
                let n = match q.read(&mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                    Err(e) => panic!("read: {e}"),
                };
                let hdr = VirtioNetHdr::parse(&buf[..n]).unwrap();
                let p = &buf[VNET_HDR_LEN..n];
                if p.len() < 40 || p[0] != 0x45 || p[9] != 6 {
                    continue; // not IPv4/TCP (e.g. IPv6 router solicitations)
                }
                let tcp = &p[20..];
                let flags = tcp[13];
                if flags & 0x02 != 0 && !answered {
                    let sport = u16::from_be_bytes([tcp[0], tcp[1]]);
                    let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
                    let mut out = vec![0u8; VNET_HDR_LEN];
                    VirtioNetHdr::NONE.write(&mut out);
                    out.extend_from_slice(&syn_ack(sport, seq.wrapping_add(1)));
                    q.write(&out).unwrap();
                    answered = true;
                } else if hdr.is_gso() {
                    return Some((hdr, p.len()));
                }
            }
        });
        stop.store(true, Ordering::Relaxed);
        drop(tun);
        sender.join().unwrap();

        let (hdr, len) = found.expect("a GSO super-packet from the TUN");
        eprintln!("super-packet: {len} bytes, {hdr:?}");
        assert!(len > MTU as usize, "{len} bytes");
        assert_eq!(hdr.gso_kind(), VirtioNetHdr::GSO_TCPV4);
        assert_eq!(hdr.gso_size, 1380);
        assert!(hdr.needs_csum());
        assert_eq!(hdr.csum_start, 20);
        assert_eq!(hdr.csum_offset, 16);
    });
}

#[test]
fn offload_tun_has_vnet_header_on_every_queue() {
    if !have_root() {
        return;
    }
    let ns = NetNs::new();
    ns.run(|| {
        let tun = Tun::create_with_offload("fto1", 3).unwrap();
        assert!(tun.vnet_hdr());
        assert!(tun.queues().iter().all(|q| q.vnet_hdr()));
        // The UDP offloads exist since Linux 6.2.
        assert_ne!(tun.offloads() & libc::TUN_F_USO4, 0);
        let name = tun.name().to_string();
        let fd = tun.into_queues().swap_remove(0).into_fd();
        let again = Tun::from_fd(fd, 2).unwrap();
        assert_eq!(again.name(), name);
        assert!(again.vnet_hdr() && again.queues().iter().all(|q| q.vnet_hdr()));
        assert_ne!(again.offloads(), 0);
    });
}
