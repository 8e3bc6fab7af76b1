//! The control thread's queues: only handshake messages from the network count as load,
//! and neither handshake messages nor the workers' requests can crowd the other out.
//! The control thread runs for real, sending through real sockets on a namespace's
//! loopback; the remote peer is a second protocol core driven by the test.

mod common;

use common::{have_root, until, NetNs};
use ferrotun_device::clock::Clock;
use ferrotun_device::control::{self, Control, Job, QUEUE_CAPACITY, UNDER_LOAD_QUEUE};
use ferrotun_device::counting::ThreadCounters;
use ferrotun_device::netset::NetSet;
use ferrotun_device::{Cancel, Device, DeviceConfig};
use ferrotun_proto::counters::Counter;
use ferrotun_proto::interface::{Interface, PeerRef};
use ferrotun_proto::keys::PrivateKey;
use parking_lot::RwLock;
use rand_core::OsRng;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

const INITIATION: u8 = 1;
const COOKIE_REPLY: u8 = 3;
const TRANSPORT: u8 = 4;

/// Our interface with one peer (the test's socket) that has no session yet, and the
/// remote side's core, which knows us.
struct Setup {
    us: Arc<Interface>,
    them: Interface,
    peer: PeerRef,
    remote: UdpSocket,
    net: NetSet,
}

fn setup() -> Setup {
    let (our_key, their_key) = (
        PrivateKey::generate(&mut OsRng),
        PrivateKey::generate(&mut OsRng),
    );
    let us = Arc::new(Interface::new(Box::new(OsRng)));
    us.set_private_key(Some(our_key.clone()));
    let them = Interface::new(Box::new(OsRng));
    them.set_private_key(Some(their_key.clone()));
    them.add_peer(our_key.public_key()).expect("a peer");
    let remote = UdpSocket::bind("127.0.0.1:0").expect("bind the remote socket");
    remote
        .set_read_timeout(Some(Duration::from_secs(3)))
        .expect("read timeout");
    let peer = us.add_peer(their_key.public_key()).expect("a peer");
    us.set_endpoint(&peer, remote.local_addr().expect("address"));
    let net = NetSet::bind(0, 1, 0).expect("bind our sockets");
    Setup {
        us,
        them,
        peer,
        remote,
        net,
    }
}

/// The control thread, stopped and joined when dropped (also when a test fails).
struct Running {
    cancel: Cancel,
    handle: Option<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.cancel.trigger();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn start(iface: Arc<Interface>, net: NetSet, jobs: control::JobQueue) -> Running {
    let cancel = Cancel::new().expect("cancel");
    let control = Control {
        iface,
        net: Arc::new(RwLock::new(Arc::new(net))),
        clock: Clock::default(),
        cancel: cancel.clone(),
        jobs,
        counters: Arc::new(ThreadCounters::new(1)),
        new_sources: Default::default(),
    };
    let handle = std::thread::spawn(move || control.run());
    Running {
        cancel,
        handle: Some(handle),
    }
}

/// The next datagram the remote socket receives (bounded by its read timeout).
fn receive(remote: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = [0u8; 2048];
    let (len, from) = remote
        .recv_from(&mut buf)
        .expect("a datagram for the remote within 3 s");
    (buf[..len].to_vec(), from)
}

/// A burst of packets to a peer without a session leaves many "send staged" requests
/// queued. They are not an attack: the handshake that they start must complete on its
/// first response, with no cookie reply (which would cost the peer a 5 s retry).
#[test]
fn queued_send_requests_do_not_turn_on_cookie_mode() {
    if !have_root() {
        return;
    }
    NetNs::new().run(|| {
        let s = setup();
        let (jobs, queue) = control::channel();
        for _ in 0..2 * UNDER_LOAD_QUEUE {
            assert!(jobs.try_send(Job::SendStaged(s.peer.clone())).is_ok());
        }
        let remote_addr = s.remote.local_addr().expect("address");
        let _running = start(s.us.clone(), s.net, queue);

        let (initiation, from) = receive(&s.remote);
        assert_eq!(initiation.first(), Some(&INITIATION));
        let env = Clock::default().env();
        let response = s.them.handle_handshake(&initiation, from, false, env);
        assert_eq!(response.len(), 1, "the remote answers the initiation");
        // What a worker does with a response from the network.
        assert!(jobs
            .try_send(Job::Handshake {
                data: response[0].data.clone(),
                src: remote_addr,
                local: None,
            })
            .is_ok());

        let (answer, _) = receive(&s.remote);
        assert_ne!(
            answer.first(),
            Some(&COOKIE_REPLY),
            "our own peer's response got a cookie reply"
        );
        assert_eq!(
            answer.first(),
            Some(&TRANSPORT),
            "the response completes the handshake (a keepalive confirms it)"
        );
        assert_eq!(s.us.counts().get(Counter::CookieReplySent), 0);
        assert!(s.us.snapshot(&s.peer).stats.last_handshake.is_some());
    });
}

/// A full queue of handshake messages (a flood) does not keep a worker's request out,
/// and a full queue of requests does not keep handshake messages out.
#[test]
fn neither_kind_of_job_crowds_the_other_out() {
    if !have_root() {
        return;
    }
    NetNs::new().run(|| {
        let s = setup();
        let (jobs, queue) = control::channel();
        let junk = SocketAddr::from(([127, 0, 0, 9], 9));
        for _ in 0..QUEUE_CAPACITY {
            assert!(jobs
                .try_send(Job::Handshake {
                    data: vec![INITIATION; 148],
                    src: junk,
                    local: None,
                })
                .is_ok());
        }
        assert!(
            jobs.try_send(Job::SendStaged(s.peer.clone())).is_ok(),
            "a flood of handshake messages refused a worker's request"
        );

        let (jobs2, queue2) = control::channel();
        for _ in 0..QUEUE_CAPACITY {
            assert!(jobs2.try_send(Job::Initiate(s.peer.clone())).is_ok());
        }
        assert!(
            jobs2
                .try_send(Job::Handshake {
                    data: vec![INITIATION; 148],
                    src: junk,
                    local: None,
                })
                .is_ok(),
            "queued requests refused a handshake message"
        );
        drop(queue2);

        // And the request behind the flood is served: the initiation goes out.
        let _running = start(s.us.clone(), s.net, queue);
        let (initiation, _) = receive(&s.remote);
        assert_eq!(initiation.first(), Some(&INITIATION));
    });
}

/// A datagram that starts like a handshake message but has the wrong size never reaches
/// the handshake queue: the queue's memory bound is its capacity × 148 bytes. One of the
/// right size does (and the control thread then rejects it, lacking a valid mac1).
#[test]
fn only_exact_size_handshake_messages_are_queued() {
    if !have_root() {
        return;
    }
    NetNs::new().run(|| {
        let cancel = Cancel::new().expect("cancel");
        let config = DeviceConfig {
            name: String::new(),
            workers: 1,
            tun_fd: None,
            mtu: 1420,
            offload: false,
        };
        let device = Device::start(config, cancel).expect("start a device");
        let _stop = Stop(device.clone());
        device
            .interface()
            .set_private_key(Some(PrivateKey::generate(&mut OsRng)));
        let to = SocketAddr::from(([127, 0, 0, 1], device.listen_port()));
        let sender = UdpSocket::bind("127.0.0.1:0").expect("bind");
        // A well-sized initiation of zeros reaches the control thread, which drops it for
        // its mac1; anything else is dropped by the worker as a bad message.
        let rejected = || device.counts().get(Counter::DropInvalidMac1);
        let invalid = || device.counts().get(Counter::DropBadMessage);
        let mut sent = 0;
        for (ty, len) in [(1u8, 149), (1, 60_000), (2, 93), (3, 63), (1, 147)] {
            let mut datagram = vec![0u8; len];
            datagram[0] = ty;
            sender.send_to(&datagram, to).expect("send");
            sent += 1;
            assert!(
                until(Duration::from_secs(3), || (invalid() + rejected() == sent)
                    .then_some(()))
                .is_some(),
                "the {len}-byte type-{ty} datagram was not handled"
            );
            assert_eq!(
                rejected(),
                0,
                "a {len}-byte type-{ty} datagram went to the handshake queue"
            );
        }
        let mut initiation = vec![0u8; 148];
        initiation[0] = 1;
        sender.send_to(&initiation, to).expect("send");
        assert!(
            until(Duration::from_secs(3), || (rejected() == 1).then_some(())).is_some(),
            "a 148-byte initiation did not reach the control thread"
        );
        assert_eq!(invalid(), sent);
    });
}

/// Shuts a device down when dropped (also when a test fails).
struct Stop(Arc<Device>);

impl Drop for Stop {
    fn drop(&mut self) {
        self.0.shutdown();
    }
}
