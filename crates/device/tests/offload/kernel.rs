//! Against the real kernel, in a throwaway network namespace (needs root;
//! skipped otherwise): our super-packets must be accepted and segmented by
//! the kernel with correct checksums, and the kernel's super-packets must
//! split back into the original segments.
//!
//! Both tests route between two TUNs with forwarding on, so no TCP
//! handshake is needed: what we write into one TUN comes out of the other.

use super::coalesce::{drain_all, Flow};
use super::util::*;
use ferrotun_device::offload::{write_or_split, Coalescer, OffloadError, TunWrite};
use ferrotun_device::{set_up, Epoll, Event, Interest, Tun, TunQueue};
use ferrotun_device::{VirtioNetHdr, VNET_HDR_LEN};
use std::io;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

struct Netns(String);

static NEXT: AtomicUsize = AtomicUsize::new(0);

fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("spawn");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Netns {
    /// None without root (the test is then skipped).
    fn new() -> Option<Netns> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipping: network namespaces need root");
            return None;
        }
        let name = format!(
            "fto-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        sh(&["ip", "netns", "add", &name]);
        let ns = Netns(name);
        sh(&[
            "ip",
            "netns",
            "exec",
            &ns.0,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
            "net.ipv6.conf.all.forwarding=1",
        ]);
        Some(ns)
    }

    fn ip(&self, args: &[&str]) {
        let mut full = vec!["ip", "-n", &self.0];
        full.extend_from_slice(args);
        sh(&full);
    }

    /// Runs `f` on a thread that has entered the namespace.
    fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.0);
        std::thread::scope(|s| {
            s.spawn(|| {
                ferrotun_device::netns::enter_netns(std::path::Path::new(&path)).expect("setns");
                f()
            })
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Two TUNs: `a` (offloads) holds 10.89.0.0/24 and fd89::/64, `b` (offloads
/// if `b_offload`) 10.90.0.0/24 and fd90::/64.
fn two_tuns(ns: &Netns, b_offload: bool) -> (Tun, Tun) {
    let a = Tun::create_with_offload("ofa", 1).unwrap();
    assert!(a.vnet_hdr(), "offloads refused");
    let b = if b_offload {
        Tun::create_with_offload("ofb", 1).unwrap()
    } else {
        Tun::create("ofb", 1).unwrap()
    };
    for (dev, v4, v6) in [
        ("ofa", "10.89.0.1/24", "fd89::1/64"),
        ("ofb", "10.90.0.1/24", "fd90::1/64"),
    ] {
        set_up(dev, true).unwrap();
        ns.ip(&["addr", "add", v4, "dev", dev]);
        ns.ip(&["addr", "add", v6, "dev", dev, "nodad"]);
    }
    (a, b)
}

/// Reads packets from `q`, handing each to `take`, until `take` has all it
/// wants (says `true`); panics after 5 s with `progress()` in the message.
fn read_until(q: &TunQueue, progress: impl Fn() -> String, mut take: impl FnMut(&[u8]) -> bool) {
    let ep = Epoll::new().unwrap();
    ep.add(q, 0, Interest::READABLE).unwrap();
    let mut evs = [Event::EMPTY; 1];
    let mut buf = vec![0u8; VNET_HDR_LEN + 65535];
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut done = false;
    while !done {
        assert!(Instant::now() < deadline, "timed out with {}", progress());
        ep.wait(&mut evs, Some(Duration::from_millis(50))).unwrap();
        loop {
            let n = match q.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("read: {e}"),
            };
            done |= take(&buf[..n]);
        }
    }
}

/// Packets of flow `sport` read from `q` (TCP only; other traffic such as
/// router solicitations is skipped) until `want` payload bytes arrived.
fn read_flow(q: &TunQueue, sport: u16, want: usize) -> Vec<Vec<u8>> {
    let got = std::cell::RefCell::new(Vec::new());
    let bytes = std::cell::Cell::new(0);
    let progress = || format!("{} of {want} bytes", bytes.get());
    read_until(q, progress, |p| {
        let ip = if q.vnet_hdr() { &p[VNET_HDR_LEN..] } else { p };
        let (l, proto) = l4_of(ip);
        if proto != 6 || u16::from_be_bytes([ip[l], ip[l + 1]]) != sport {
            return bytes.get() >= want;
        }
        if q.vnet_hdr() && VirtioNetHdr::parse(p).unwrap().is_gso() {
            bytes.set(bytes.get() + ip.len() - l - usize::from(ip[l + 12] >> 4) * 4);
        } else {
            bytes.set(bytes.get() + tcp_payload(ip).len());
        }
        got.borrow_mut().push(p.to_vec());
        bytes.get() >= want
    });
    got.into_inner()
}

/// What forwarding does to a packet: TTL / hop limit down by one.
fn forwarded(p: &[u8]) -> Vec<u8> {
    let mut p = p.to_vec();
    if p[0] >> 4 == 4 {
        p[8] -= 1;
        p[10..12].fill(0);
        let c = !(ref_sum(&[&p[..20]]) as u16);
        p[10..12].copy_from_slice(&c.to_be_bytes());
    } else {
        p[7] -= 1;
    }
    p
}

fn flows() -> [Flow; 2] {
    let mut f4 = Flow::new(false, 41000);
    f4.ip.src = vec![10, 89, 0, 2];
    f4.ip.dst = vec![10, 90, 0, 2];
    let mut f6 = Flow::new(true, 41001);
    f6.ip.src = "fd89::2"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets()
        .to_vec();
    f6.ip.dst = "fd90::2"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets()
        .to_vec();
    [f4, f6]
}

#[test]
fn kernel_segments_our_super_packets_with_valid_checksums() {
    let Some(ns) = Netns::new() else { return };
    ns.run(|| {
        let (a, b) = two_tuns(&ns, false);
        let (qa, qb) = (&a.queues()[0], &b.queues()[0]);
        for mut f in flows() {
            let mut segs: Vec<Vec<u8>> = (0..30).map(|_| f.seg(1380, ACK)).collect();
            segs.push(f.seg(100, ACK | PSH));
            let mut gro = Coalescer::new(64);
            for s in &segs {
                gro.push(s).unwrap();
            }
            let outs = drain_all(&mut gro);
            assert_eq!(outs.len(), 1, "one super-packet");
            assert!(VirtioNetHdr::parse(&outs[0]).unwrap().is_gso());
            qa.write(&outs[0]).expect("kernel accepts the super-packet");

            // TUN b has no offloads: the kernel segmented and checksummed
            // in software on the way out, from our partial checksum.
            let got = read_flow(qb, f.tcp.sport, 30 * 1380 + 100);
            assert_eq!(got.len(), segs.len());
            for (i, (g, s)) in got.iter().zip(&segs).enumerate() {
                verify(g).unwrap_or_else(|e| panic!("segment {i} from the kernel: {e}"));
                assert_eq!(g, &forwarded(s), "segment {i}");
            }
        }
    });
}

#[test]
fn kernel_super_packets_split_into_the_originals() {
    let Some(ns) = Netns::new() else { return };
    ns.run(|| {
        let (a, b) = two_tuns(&ns, true);
        let (qa, qb) = (&a.queues()[0], &b.queues()[0]);
        for mut f in flows() {
            // Reverse the flow: written into b, routed out of a.
            std::mem::swap(&mut f.ip.src, &mut f.ip.dst);
            let mut segs: Vec<Vec<u8>> = (0..40).map(|_| f.seg(1380, ACK)).collect();
            segs.push(f.seg(7, ACK | PSH));
            let mut gro = Coalescer::new(64);
            for s in &segs {
                gro.push(s).unwrap();
            }
            for o in drain_all(&mut gro) {
                qb.write(&o).expect("kernel accepts the super-packet");
            }
            let got = read_flow(qa, f.tcp.sport, 40 * 1380 + 7);
            assert!(
                got.iter().any(|p| VirtioNetHdr::parse(p).unwrap().is_gso()),
                "the kernel kept the data as super-packets"
            );
            let mut back = Vec::new();
            for p in &got {
                let hdr = VirtioNetHdr::parse(p).unwrap();
                eprintln!("from the kernel: {} bytes, {hdr:?}", p.len() - VNET_HDR_LEN);
                back.extend(split_all(p).unwrap_or_else(|e: OffloadError| panic!("{e}")));
            }
            assert_eq!(back.len(), segs.len());
            for (i, (g, s)) in back.iter().zip(&segs).enumerate() {
                verify(g).unwrap_or_else(|e| panic!("segment {i}: {e}"));
                assert_eq!(g, &forwarded(s), "segment {i}");
            }
        }
    });
}

/// `count` UDP datagrams from port `sport` read from `q` (a TUN without offloads).
fn read_udp(q: &TunQueue, sport: u16, count: usize) -> Vec<Vec<u8>> {
    let got = std::cell::RefCell::new(Vec::new());
    let progress = || format!("{} of {count} datagrams", got.borrow().len());
    read_until(q, progress, |p| {
        let (l, proto) = l4_of(p);
        if proto == 17 && u16::from_be_bytes([p[l], p[l + 1]]) == sport {
            got.borrow_mut().push(p.to_vec());
        }
        got.borrow().len() >= count
    });
    got.into_inner()
}

/// Runs `f` with the queues of [`two_tuns`] (`b` without offloads), if this
/// kernel's TUN takes USO.
fn with_uso_tuns(f: impl FnOnce(&TunQueue, &TunQueue) + Send) {
    let Some(ns) = Netns::new() else { return };
    ns.run(|| {
        let (a, b) = two_tuns(&ns, false);
        if a.offloads() & libc::TUN_F_USO4 == 0 {
            eprintln!("this kernel has no USO on TUN; nothing to test");
            return;
        }
        f(&a.queues()[0], &b.queues()[0]);
    });
}

#[test]
fn kernel_cuts_our_udp_super_packets_back_into_the_datagrams() {
    with_uso_tuns(|qa, qb| {
        for (i, f) in flows().iter().enumerate() {
            let sport = 42000 + i as u16;
            let mut datagrams: Vec<Vec<u8>> = (0..30)
                .map(|k| udp_packet(&f.ip, sport, 9, &payload(100, k)))
                .collect();
            datagrams.push(udp_packet(&f.ip, sport, 9, &payload(40, 99)));
            let mut gro = Coalescer::new(64);
            gro.merge_udp(true);
            for d in &datagrams {
                gro.push(d).unwrap();
            }
            let outs = drain_all(&mut gro);
            assert_eq!(outs.len(), 1, "one super-packet");
            let hdr = VirtioNetHdr::parse(&outs[0]).unwrap();
            assert_eq!(hdr.gso_type, VirtioNetHdr::GSO_UDP_L4);
            qa.write(&outs[0])
                .expect("kernel accepts the UDP super-packet");

            let got = read_udp(qb, sport, datagrams.len());
            assert_eq!(got.len(), datagrams.len());
            for (k, g) in got.iter().enumerate() {
                verify(g).unwrap_or_else(|e| panic!("datagram {k} from the kernel: {e}"));
            }
            let want: Vec<Vec<u8>> = datagrams.iter().map(|d| forwarded(d)).collect();
            assert_eq!(without_ids(got), without_ids(want));
        }
    });
}

#[test]
fn a_super_packet_the_kernel_refuses_goes_in_as_its_datagrams() {
    with_uso_tuns(|qa, qb| {
        for f in flows() {
            // 200 datagrams of 8 bytes in one GSO_UDP_L4 packet: past the
            // kernel's UDP_MAX_SEGMENTS, so the write is refused with EINVAL.
            let data = payload(200 * 8, 7);
            let refused = udp_super(&f.ip, &data, 8);
            let err = qa
                .write(&refused)
                .expect_err("the kernel takes 200 segments");
            assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{err}");

            let written = write_or_split(&refused, |p| qa.write(p)).unwrap();
            assert_eq!(
                written,
                TunWrite::Split {
                    segments: 200,
                    failed: 0
                }
            );
            let got = read_udp(qb, 5353, 200);
            for (k, g) in got.iter().enumerate() {
                verify(g).unwrap_or_else(|e| panic!("datagram {k}: {e}"));
                let (l, _) = l4_of(g);
                assert_eq!(&g[l + 8..], &data[k * 8..k * 8 + 8], "datagram {k}");
            }

            // What the kernel takes goes in whole.
            let fine = udp_super(&f.ip, &data[..30 * 8], 8);
            assert_eq!(
                write_or_split(&fine, |p| qa.write(p)).unwrap(),
                TunWrite::Whole
            );
            assert_eq!(read_udp(qb, 5353, 30).len(), 30);
        }
    });
}

#[test]
fn other_tun_write_errors_are_not_retried() {
    let mut calls = 0;
    let packet = udp_super(&Ip::v4(), &payload(400, 1), 100);
    let e = write_or_split(&packet, |_| {
        calls += 1;
        Err(io::Error::from_raw_os_error(libc::EIO))
    })
    .unwrap_err();
    assert_eq!((e.raw_os_error(), calls), (Some(libc::EIO), 1));
    // EINVAL for a plain packet: nothing to cut, the error is the answer.
    let plain = with_vnet(VirtioNetHdr::NONE, &udp_packet(&Ip::v4(), 1, 2, b"x"));
    let e = write_or_split(&plain, |_| Err(io::Error::from_raw_os_error(libc::EINVAL)));
    assert_eq!(e.unwrap_err().raw_os_error(), Some(libc::EINVAL));
}
