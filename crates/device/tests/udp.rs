//! Data-plane UDP sockets on loopback inside a namespace: reuseport binds,
//! fwmark, recvmmsg/sendmmsg batches, GSO sends, GRO receives, fallbacks.

mod common;

use std::io;
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::time::Duration;

use common::{have_root, until, NetNs};
use ferrotun_device::{
    bind_dual, bind_reuseport, is_source_error, probe_gso, Epoll, Event, Interest, RecvMeta,
    Transmit, UdpSocket, BATCH,
};

/// Receives datagrams on `sock` until `want` arrived or 5 s passed; returns
/// each received buffer with its metadata.
fn recv_all(sock: &UdpSocket, want: usize, buf_size: usize) -> Vec<(Vec<u8>, RecvMeta)> {
    recv_within(sock, want, buf_size, Duration::from_secs(5))
}

/// [`recv_all`] with its own time limit.
fn recv_within(
    sock: &UdpSocket,
    want: usize,
    buf_size: usize,
    limit: Duration,
) -> Vec<(Vec<u8>, RecvMeta)> {
    let ep = Epoll::new().unwrap();
    ep.add(sock, 0, Interest::READABLE).unwrap();
    let mut bufs: Vec<Vec<u8>> = vec![vec![0; buf_size]; BATCH];
    let mut metas = vec![RecvMeta::default(); BATCH];
    let mut out = Vec::new();
    let mut evs = [Event::EMPTY; 1];
    until(limit, || {
        ep.wait(&mut evs, Some(Duration::from_millis(50))).unwrap();
        loop {
            match sock.recv_batch(&mut bufs, &mut metas) {
                Ok(n) => {
                    for i in 0..n {
                        assert!(metas[i].len <= buf_size);
                        out.push((bufs[i][..metas[i].len].to_vec(), metas[i]));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("recv_batch: {e}"),
            }
        }
        (out.len() >= want).then_some(())
    });
    out
}

fn payload(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i * 7 + j) as u8).collect()
}

#[test]
fn port_zero_and_reuseport_group() {
    if !have_root() {
        return;
    }
    let ns = NetNs::new();
    ns.run(|| {
        let socks = bind_reuseport(0, false, 4, 0).unwrap();
        let port = socks[0].local_port();
        assert_ne!(port, 0);
        assert!(socks.iter().all(|s| s.local_port() == port && !s.is_v6()));
        assert_eq!(socks[3].local_addr().unwrap().port(), port);
        // A socket without SO_REUSEPORT cannot take the port.
        let err = StdUdpSocket::bind(("0.0.0.0", port)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        // An explicit port works the same way.
        let v6 = bind_reuseport(port, true, 2, 0).unwrap();
        assert!(v6.iter().all(|s| s.local_port() == port && s.is_v6()));

        let dual = bind_dual(0, 3, 0).unwrap();
        assert_eq!((dual.v4.len(), dual.v6.len()), (3, 3));
        assert_ne!(dual.port, 0);
        assert!(dual
            .v4
            .iter()
            .chain(&dual.v6)
            .all(|s| s.local_port() == dual.port));
    });
}

#[test]
fn fwmark_is_set_cleared_and_read_back() {
    if !have_root() {
        return;
    }
    let ns = NetNs::new();
    ns.run(|| {
        let s = bind_reuseport(0, false, 1, 0x1234).unwrap().pop().unwrap();
        assert_eq!(s.fwmark().unwrap(), 0x1234);
        s.set_fwmark(0).unwrap();
        assert_eq!(s.fwmark().unwrap(), 0);
        s.set_fwmark(0xdead_beef).unwrap();
        assert_eq!(s.fwmark().unwrap(), 0xdead_beef);
        let d = bind_dual(0, 1, 51820).unwrap();
        assert_eq!(d.v6[0].fwmark().unwrap(), 51820);
    });
}

fn batch_round_trip(v6: bool) {
    let ns = NetNs::new();
    ns.run(|| {
        let tx = bind_reuseport(0, v6, 1, 0).unwrap().pop().unwrap();
        let rx = bind_reuseport(0, v6, 1, 0).unwrap().pop().unwrap();
        let ip = if v6 { "[::1]" } else { "127.0.0.1" };
        let dst: SocketAddr = format!("{ip}:{}", rx.local_port()).parse().unwrap();
        let data: Vec<Vec<u8>> = (0..64).map(|i| payload(i, 100 + i)).collect();
        let msgs: Vec<Transmit> = data
            .iter()
            .map(|d| Transmit {
                src: None,
                dst,
                data: d,
                segment_size: None,
            })
            .collect();
        assert_eq!(tx.send_batch(&msgs).unwrap(), 64);
        let got = recv_all(&rx, 64, 2048);
        assert_eq!(got.len(), 64);
        for (i, (buf, meta)) in got.iter().enumerate() {
            assert_eq!(buf, &data[i], "datagram {i}");
            assert_eq!(meta.src.port(), tx.local_port());
            assert_eq!(meta.src.is_ipv6(), v6);
            assert_eq!(meta.segment_size, meta.len);
            assert!(!meta.truncated);
        }
    });
}

#[test]
fn batch_round_trip_v4() {
    if have_root() {
        batch_round_trip(false);
    }
}

#[test]
fn batch_round_trip_v6() {
    if have_root() {
        batch_round_trip(true);
    }
}

/// Sends one GSO buffer of `segs` segments of `seg` bytes (the last half
/// size) and returns (sent data, what arrived) once `want` receives are in.
fn gso_send(
    tx: &UdpSocket,
    rx: &UdpSocket,
    (segs, seg): (usize, usize),
    buf_size: usize,
    want: usize,
) -> (Vec<u8>, Vec<(Vec<u8>, RecvMeta)>) {
    let data = payload(3, seg * (segs - 1) + seg / 2);
    let dst: SocketAddr = format!("127.0.0.1:{}", rx.local_port()).parse().unwrap();
    let msg = Transmit {
        src: None,
        dst,
        data: &data,
        segment_size: Some(seg as u16),
    };
    assert_eq!(tx.send_batch(&[msg]).unwrap(), 1);
    let got = recv_all(rx, want, buf_size);
    (data, got)
}

fn pair() -> (UdpSocket, UdpSocket) {
    let tx = bind_reuseport(0, false, 1, 0).unwrap().pop().unwrap();
    let rx = bind_reuseport(0, false, 1, 0).unwrap().pop().unwrap();
    (tx, rx)
}

/// Asserts `got` is `data` cut into `seg`-byte datagrams, in order.
fn assert_split(data: &[u8], seg: usize, got: &[(Vec<u8>, RecvMeta)]) {
    let want: Vec<&[u8]> = data.chunks(seg).collect();
    assert_eq!(got.len(), want.len());
    for (i, (buf, _)) in got.iter().enumerate() {
        assert_eq!(buf.as_slice(), want[i], "segment {i}");
    }
}

#[test]
fn gso_send_arrives_as_separate_datagrams_without_gro() {
    if !have_root() {
        return;
    }
    assert!(probe_gso(), "kernel without UDP GSO");
    let ns = NetNs::new();
    ns.run(|| {
        let (tx, rx) = pair();
        assert!(tx.gso_enabled());
        let (data, got) = gso_send(&tx, &rx, (20, 1000), 2048, 20);
        assert_split(&data, 1000, &got);
        assert!(tx.gso_enabled());
    });
}

#[test]
fn gso_send_arrives_coalesced_with_gro() {
    if !have_root() {
        return;
    }
    let ns = NetNs::new();
    ns.run(|| {
        let (tx, rx) = pair();
        assert!(rx.enable_gro().unwrap());
        let (data, got) = gso_send(&tx, &rx, (20, 1000), 65535, 1);
        // Loopback hands the GSO buffer over whole: one receive, 20 segments.
        let total: usize = got.iter().map(|(b, _)| b.len()).sum();
        assert_eq!(total, data.len());
        assert!(got.len() < 20, "coalesced: {} receives", got.len());
        let joined: Vec<u8> = got.iter().flat_map(|(b, _)| b.clone()).collect();
        assert_eq!(joined, data);
        let (_, meta) = &got[0];
        assert_eq!(meta.segment_size, 1000);
        assert_eq!(meta.len, got[0].0.len());
        assert!(!meta.truncated);
    });
}

#[test]
fn gro_into_small_buffers_reports_truncation() {
    if !have_root() {
        return;
    }
    let ns = NetNs::new();
    ns.run(|| {
        let (tx, rx) = pair();
        assert!(rx.enable_gro().unwrap());
        let (_, got) = gso_send(&tx, &rx, (20, 1000), 4000, 1);
        assert!(got.iter().any(|(_, m)| m.truncated), "{got:?}");
    });
}

#[test]
fn refused_gso_sends_are_split_not_lost() {
    if !have_root() {
        return;
    }
    let ns = NetNs::new();
    ns.run(|| {
        let (tx, rx) = pair();
        // More segments than the kernel's UDP_MAX_SEGMENTS: EINVAL.
        let (data, got) = gso_send(&tx, &rx, (200, 100), 2048, 200);
        assert_split(&data, 100, &got);
        // Segments bigger than the route MTU: EMSGSIZE; each datagram is then
        // fragmented and reassembled.
        ns.ip(&["link", "set", "lo", "mtu", "1500"]);
        let (data, got) = gso_send(&tx, &rx, (5, 1600), 2048, 5);
        assert_split(&data, 1600, &got);
        // EINVAL/EMSGSIZE are about one buffer, so GSO stays on for others.
        assert!(tx.gso_enabled());
        // A socket with GSO off splits every buffer itself.
        tx.disable_gso();
        let (data, got) = gso_send(&tx, &rx, (20, 1000), 2048, 20);
        assert_split(&data, 1000, &got);
    });
}

#[test]
fn mixed_batch_with_gso_and_plain_messages_keeps_order() {
    if !have_root() {
        return;
    }
    let ns = NetNs::new();
    ns.run(|| {
        let (tx, rx) = pair();
        let dst: SocketAddr = format!("127.0.0.1:{}", rx.local_port()).parse().unwrap();
        let a = payload(1, 300);
        let b = payload(2, 2500);
        let c = payload(3, 50);
        let msgs = [
            Transmit {
                src: None,
                dst,
                data: &a,
                segment_size: None,
            },
            Transmit {
                src: None,
                dst,
                data: &b,
                segment_size: Some(1000),
            },
            Transmit {
                src: None,
                dst,
                data: &c,
                segment_size: Some(1000),
            },
        ];
        assert_eq!(tx.send_batch(&msgs).unwrap(), 3);
        let got = recv_all(&rx, 5, 2048);
        let lens: Vec<usize> = got.iter().map(|(b, _)| b.len()).collect();
        assert_eq!(lens, [300, 1000, 1000, 500, 50]);
        assert_eq!(got[0].0, a);
        assert_eq!(got[4].0, c);
    });
}

#[test]
fn send_errors_name_the_first_message() {
    if !have_root() {
        return;
    }
    let ns = NetNs::new();
    ns.run(|| {
        let (tx, rx) = pair();
        let good: SocketAddr = format!("127.0.0.1:{}", rx.local_port()).parse().unwrap();
        // An IPv6 destination on an IPv4 socket fails for that message only.
        let bad: SocketAddr = "[::1]:9".parse().unwrap();
        let d = [1u8; 10];
        let msgs = [
            Transmit {
                src: None,
                dst: good,
                data: &d,
                segment_size: None,
            },
            Transmit {
                src: None,
                dst: bad,
                data: &d,
                segment_size: None,
            },
            Transmit {
                src: None,
                dst: good,
                data: &d,
                segment_size: None,
            },
        ];
        assert_eq!(tx.send_batch(&msgs).unwrap(), 1);
        assert!(tx.send_batch(&msgs[1..]).is_err());
        assert_eq!(tx.send_batch(&msgs[2..]).unwrap(), 1);
        assert_eq!(recv_all(&rx, 2, 2048).len(), 2);
        assert_eq!(tx.send_batch(&[]).unwrap(), 0);
    });
}

#[test]
fn recv_into_plain_slices() {
    if !have_root() {
        return;
    }
    let ns = NetNs::new();
    ns.run(|| {
        let (tx, rx) = pair();
        let dst: SocketAddr = format!("127.0.0.1:{}", rx.local_port()).parse().unwrap();
        tx.send_batch(&[Transmit {
            src: None,
            dst,
            data: b"abc",
            segment_size: None,
        }])
        .unwrap();
        let mut storage = vec![vec![0u8; 1500]; 4];
        let mut metas = [RecvMeta::default(); 4];
        let n = until(Duration::from_secs(2), || {
            rx.recv_batch(&mut storage, &mut metas).ok()
        })
        .unwrap();
        assert_eq!(n, 1);
        assert_eq!(&storage[0][..metas[0].len], b"abc");
        let mut slices: Vec<&mut [u8]> = storage.iter_mut().map(|v| v.as_mut_slice()).collect();
        let err = rx.recv_batch(&mut slices, &mut metas).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    });
}

/// A host with two addresses: each datagram says which one it was sent to, a reply with
/// that source leaves from it (also as a GSO train), and a source that is not ours is
/// refused with an error `is_source_error` recognises.
fn pktinfo_round_trip(v6: bool) {
    let ns = NetNs::new();
    let (a, b, foreign) = if v6 {
        ("fd05::1", "fd05::2", "2001:db8::1")
    } else {
        ("10.5.0.1", "10.5.0.2", "192.0.2.1")
    };
    let plen = if v6 { "128" } else { "32" };
    for addr in [a, b] {
        ns.ip(&[
            "addr",
            "add",
            &format!("{addr}/{plen}"),
            "dev",
            "lo",
            "nodad",
        ]);
    }
    ns.run(|| {
        let server = bind_reuseport(0, v6, 1, 0).unwrap().pop().unwrap();
        let at = |ip: &str, port: u16| -> SocketAddr { SocketAddr::new(ip.parse().unwrap(), port) };
        // The client lives at `a` and talks to the server's `b`, which is not the
        // source the kernel would pick for a reply to `a` (that is `a` itself).
        let client = StdUdpSocket::bind(at(a, 0)).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        // A loaded machine finishes adding an IPv6 address (its local route) in a kernel
        // worker some time after `ip addr add` returns: say hello until it is heard.
        let meta = until(Duration::from_secs(10), || {
            client.send_to(b"hello", at(b, server.local_port())).ok()?;
            let got = recv_within(&server, 1, 2048, Duration::from_millis(200));
            got.first().map(|(_, meta)| *meta)
        })
        .expect("the server hears the client");
        let local = meta.dst.expect("the datagram names our address it reached");
        assert_eq!(local.addr, b.parse::<std::net::IpAddr>().unwrap());
        assert_ne!(local.ifindex, 0, "the arrival interface is known");

        let data = payload(1, 300);
        let replies = [
            Transmit {
                dst: meta.src,
                src: Some(local),
                data: &data[..100],
                segment_size: None,
            },
            Transmit {
                dst: meta.src,
                src: Some(local),
                data: &data,
                segment_size: Some(100),
            },
            Transmit {
                dst: meta.src,
                src: None,
                data: &data[..10],
                segment_size: None,
            },
        ];
        assert_eq!(server.send_batch(&replies).unwrap(), 3);
        let mut buf = [0u8; 2048];
        for i in 0..4 {
            let (n, from) = client.recv_from(&mut buf).unwrap();
            assert_eq!(n, 100, "datagram {i}");
            assert_eq!(
                from,
                at(b, server.local_port()),
                "datagram {i} left from {from}"
            );
        }
        let (n, from) = client.recv_from(&mut buf).unwrap();
        assert_eq!(n, 10);
        assert_eq!(
            from,
            at(a, server.local_port()),
            "without a source the kernel picks"
        );

        let mut bad = replies[0];
        bad.src = Some(ferrotun_proto::source::LocalSource {
            addr: foreign.parse().unwrap(),
            ifindex: 0,
        });
        let e = server.send_batch(&[bad]).unwrap_err();
        assert!(is_source_error(&e), "{e}");
    });
}

#[test]
fn pktinfo_names_and_sets_the_local_address_v4() {
    if have_root() {
        pktinfo_round_trip(false);
    }
}

#[test]
fn pktinfo_names_and_sets_the_local_address_v6() {
    if have_root() {
        pktinfo_round_trip(true);
    }
}
