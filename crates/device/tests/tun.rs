//! Multi-queue TUN: creation, MTU/up, packets both ways, deletion signalling.

mod common;

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use common::{have_root, udp4_packet, until, NetNs};
use ferrotun_device::{
    interface_exists, interface_index, is_gone, is_up, mtu, set_mtu, set_up, Epoll, Event,
    Interest, Tun, TunQueue,
};

/// Reads packets from any of `queues` until `pred` accepts one (2 s limit).
fn read_until(queues: &[TunQueue], pred: impl Fn(&[u8]) -> bool) -> Option<(usize, Vec<u8>)> {
    let ep = Epoll::new().unwrap();
    for (i, q) in queues.iter().enumerate() {
        ep.add(q, i as u64, Interest::READABLE).unwrap();
    }
    let mut evs = [Event::EMPTY; 4];
    let mut buf = vec![0u8; 65536];
    until(Duration::from_secs(2), || {
        let n = ep.wait(&mut evs, Some(Duration::from_millis(50))).unwrap();
        for ev in &evs[..n] {
            let q = ev.token() as usize;
            // Drain: the queue is level-triggered, but read all that is there.
            loop {
                match queues[q].read(&mut buf) {
                    Ok(len) if pred(&buf[..len]) => return Some((q, buf[..len].to_vec())),
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("read: {e}"),
                }
            }
        }
        None
    })
}

#[test]
fn name_too_long_is_rejected_without_syscalls() {
    let err = Tun::create("abcdefghijklmnop", 1).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(Tun::create("x", 0).is_err());
    assert!(!interface_exists("no-such-if-ftd"));
}

#[test]
fn multi_queue_tun_carries_packets_both_ways() {
    if !have_root() {
        return;
    }
    let ns = NetNs::new();
    ns.run(|| {
        let tun = Tun::create("ftt0", 2).unwrap();
        assert_eq!(tun.name(), "ftt0");
        assert_eq!(tun.queues().len(), 2);
        assert!(!tun.vnet_hdr());
        assert_eq!(tun.offloads(), 0);
        assert_eq!(Some(tun.index()), interface_index("ftt0"));
        assert!(interface_exists("ftt0"));

        // Like wireguard-go: MTU is ours to set, up is a separate step.
        // Down, the interface emits nothing: an empty queue is WouldBlock.
        let mut buf = [0u8; 2048];
        assert_eq!(
            tun.queues()[0].read(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        set_mtu("ftt0", 1420).unwrap();
        assert_eq!(mtu("ftt0").unwrap(), 1420);
        assert!(!is_up("ftt0").unwrap());
        set_up("ftt0", true).unwrap();
        assert!(is_up("ftt0").unwrap());
        ns.ip(&["addr", "add", "10.77.0.1/24", "dev", "ftt0"]);

        let queues = tun.into_queues();

        // Out: a datagram routed into the TUN comes out of one of the queues.
        let sock = UdpSocket::bind("10.77.0.1:0").unwrap();
        sock.send_to(b"hello-tun", "10.77.0.2:9999").unwrap();
        let (_, pkt) = read_until(&queues, |p| {
            p.len() > 28 && p[0] >> 4 == 4 && p[9] == 17 && p[16..20] == [10, 77, 0, 2]
        })
        .expect("packet from the TUN");
        assert_eq!(&pkt[28..], b"hello-tun");

        // In: a packet written to queue 1 is delivered to the local socket.
        let port = sock.local_addr().unwrap().port();
        let p = udp4_packet([10, 77, 0, 2], 5555, [10, 77, 0, 1], port, b"hello-host");
        assert_eq!(queues[1].write(&p).unwrap(), p.len());
        sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let (n, from) = sock.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello-host");
        assert_eq!(from, "10.77.0.2:5555".parse::<SocketAddr>().unwrap());
    });
}

#[test]
fn deleting_the_link_wakes_epoll_and_reads_fail_with_ebadfd() {
    if !have_root() {
        return;
    }
    let ns = NetNs::new();
    ns.run(|| {
        let tun = Tun::create("ftt1", 2).unwrap();
        set_up("ftt1", true).unwrap();
        let queues = tun.into_queues();
        let ep = Epoll::new().unwrap();
        for (i, q) in queues.iter().enumerate() {
            ep.add(q, i as u64, Interest::READABLE).unwrap();
        }
        let mut evs = [Event::EMPTY; 4];

        ns.ip(&["link", "del", "ftt1"]);

        // Every queue reports an error condition (after any packets queued
        // before the deletion, e.g. IPv6 router solicitations, are read).
        let mut buf = [0u8; 2048];
        let mut errored = [false; 2];
        until(Duration::from_secs(2), || {
            let n = ep.wait(&mut evs, Some(Duration::from_millis(50))).unwrap();
            for ev in &evs[..n] {
                eprintln!("after link del: {ev:?}");
                if ev.is_error() {
                    errored[ev.token() as usize] = true;
                } else {
                    let _ = queues[ev.token() as usize].read(&mut buf);
                }
            }
            (errored == [true, true]).then_some(())
        })
        .expect("EPOLLERR on both queues");
        // Level-triggered: it keeps reporting until the descriptor is closed.
        let n = ep.wait(&mut evs, Some(Duration::from_secs(2))).unwrap();
        assert_eq!(n, 2);
        assert!(evs[..n].iter().all(Event::is_error), "{:?}", &evs[..n]);
        for q in &queues {
            let e = q.read(&mut buf).unwrap_err();
            eprintln!("read after link del: {e} ({:?})", e.raw_os_error());
            assert!(is_gone(&e), "{e}");
            let e = q
                .write(&udp4_packet([1; 4], 1, [2; 4], 2, b"x"))
                .unwrap_err();
            assert!(is_gone(&e), "write: {e}");
        }
        assert!(!interface_exists("ftt1"));
        assert!(!is_gone(&io::Error::from(io::ErrorKind::WouldBlock)));
    });
}

#[test]
fn closing_all_queues_removes_the_interface() {
    if !have_root() {
        return;
    }
    let ns = NetNs::new();
    ns.run(|| {
        let tun = Tun::create("ftt2", 3).unwrap();
        assert!(interface_exists("ftt2"));
        drop(tun);
        // Usually gone when close() returns, but a fork in another thread
        // (tests run `ip` in parallel) holds the descriptors until its exec.
        until(Duration::from_secs(2), || {
            (!interface_exists("ftt2")).then_some(())
        })
        .expect("interface removed after the last queue closed");
    });
}

#[test]
fn from_fd_adopts_a_queue_and_attaches_more() {
    if !have_root() {
        return;
    }
    let ns = NetNs::new();
    ns.run(|| {
        let first = Tun::create("ftt3", 1).unwrap();
        let index = first.index();
        let fd = first.into_queues().pop().unwrap().into_fd();
        let tun = Tun::from_fd(fd, 3).unwrap();
        assert_eq!(tun.name(), "ftt3");
        assert_eq!(tun.index(), index);
        assert_eq!(tun.queues().len(), 3);
        assert!(!tun.vnet_hdr());
    });
}

#[test]
fn kernel_chooses_the_name_when_empty() {
    if !have_root() {
        return;
    }
    let ns = NetNs::new();
    ns.run(|| {
        let tun = Tun::create("", 2).unwrap();
        assert!(tun.name().starts_with("tun"), "{}", tun.name());
        assert!(interface_exists(tun.name()));
    });
}

#[test]
fn attaching_to_an_existing_tun_reports_its_flags() {
    if !have_root() {
        return;
    }
    let ns = NetNs::new();
    ns.ip(&[
        "tuntap",
        "add",
        "dev",
        "ftt4",
        "mode",
        "tun",
        "multi_queue",
        "vnet_hdr",
    ]);
    ns.run(|| {
        // A persistent device with no queue attached takes the new flags.
        let plain = Tun::create("ftt4", 1).unwrap();
        assert!(!plain.vnet_hdr());
        // Attached to while `plain` holds a queue: its flags stay, so the
        // offload request falls back to a plain TUN.
        let tun = Tun::create_with_offload("ftt4", 2).unwrap();
        assert!(!tun.vnet_hdr() && tun.queues().len() == 2);
        drop((plain, tun));

        let offl = Tun::create_with_offload("ftt6", 1).unwrap();
        assert!(offl.vnet_hdr());
        // Asked for plain, got the device's virtio-net headers: reported.
        let tun = Tun::create("ftt6", 2).unwrap();
        assert!(tun.vnet_hdr() && tun.queues().iter().all(TunQueue::vnet_hdr));
        assert_eq!(tun.offloads(), 0);
    });
}
