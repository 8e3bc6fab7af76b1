//! A running WireGuard interface: the TUN, the sockets, one worker per core and the
//! control thread, around the protocol core's [`Interface`].

use crate::clock::Clock;
use crate::control::{self, Control, Jobs};
use crate::counting::ThreadCounters;
use crate::local_addrs::LocalAddrs;
use crate::loop_guard::LoopGuard;
use crate::mtu_watch::MtuWatch;
use crate::netset::NetSet;
use crate::route_watch::{NewSources, RouteWatch, TunnelRoutes};
use crate::steal::Crew;
use crate::steer::Steering;
use crate::tun::{Tun, TunQueue};
use crate::unreachable::Unreachable;
use crate::worker::Worker;
use crate::Cancel;
use ferrotun_proto::counters::Counts;
use ferrotun_proto::interface::{Env, Interface, PeerSnapshot};
use ferrotun_proto::peer::Datagram;
use parking_lot::{Mutex, RwLock};
use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::thread::JoinHandle;

pub struct DeviceConfig {
    pub name: String,
    /// Worker threads, each with its own TUN queue and sockets; usually one per core.
    pub workers: usize,
    /// A TUN file descriptor inherited from the parent process (daemon mode).
    pub tun_fd: Option<OwnedFd>,
    pub mtu: u32,
    /// Ask the TUN for TCP/UDP segmentation offload (falls back cleanly when refused).
    pub offload: bool,
}

/// The workers of one socket generation; replaced whole when the listen port changes.
struct Generation {
    stop: Cancel,
    handles: Vec<JoinHandle<()>>,
}

pub struct Device {
    name: String,
    ifindex: u32,
    iface: Arc<Interface>,
    clock: Clock,
    cancel: Cancel,
    net: Arc<RwLock<Arc<NetSet>>>,
    jobs: Jobs,
    workers: Mutex<Option<Generation>>,
    control: Mutex<Option<JoinHandle<()>>>,
    mtu_watch: Mutex<Option<JoinHandle<()>>>,
    route_watch: Mutex<Option<JoinHandle<()>>>,
    /// Set by the workers and the control thread when a peer's replies leave from an
    /// address they did not leave from before: the route watch checks it.
    new_sources: NewSources,
    /// Whether some peer's datagrams are routed into another tunnel: the route watch
    /// keeps it, the loop guard reads it.
    tunnel_routes: Arc<TunnelRoutes>,
    counters: Arc<ThreadCounters>,
    worker_count: usize,
    /// The TUN's queues, one read by each worker, kept across worker generations;
    /// taken (and so closed, which removes the interface) at shutdown.
    tuns: Mutex<Option<Arc<[TunQueue]>>>,
    steering: Arc<Steering>,
    /// The TUN took UDP segmentation offload (kernel ≥ 6.2).
    uso: bool,
    loop_guard: Arc<LoopGuard>,
    unreachable: Arc<Unreachable>,
}

fn os_rng() -> Box<dyn rand_core::CryptoRngCore + Send> {
    Box::new(rand_core::OsRng)
}

/// A device whose TUN and sockets exist but whose threads have not started.
pub struct Opened {
    device: Arc<Device>,
    control: Control,
    mtu_watch: MtuWatch,
    route_watch: RouteWatch,
}

impl Opened {
    pub fn device(&self) -> &Arc<Device> {
        &self.device
    }

    /// Starts the control thread and the workers.
    pub fn start(self) -> io::Result<Arc<Device>> {
        let Opened {
            device,
            control,
            mtu_watch,
            route_watch,
        } = self;
        let watch = mtu_watch.spawn(device.iface.clone(), device.cancel.clone())?;
        *device.mtu_watch.lock() = Some(watch);
        let watch = route_watch.spawn(
            device.iface.clone(),
            device.net.clone(),
            device.new_sources.clone(),
            device.tunnel_routes.clone(),
            device.cancel.clone(),
        )?;
        *device.route_watch.lock() = Some(watch);
        let handle = std::thread::Builder::new()
            .name("control".into())
            .spawn(move || control.run())?;
        *device.control.lock() = Some(handle);
        device.start_workers()?;
        Ok(device)
    }
}

impl Device {
    /// Creates the TUN, binds a random port and starts the workers and the control thread.
    pub fn start(config: DeviceConfig, cancel: Cancel) -> io::Result<Arc<Device>> {
        Device::open(config, cancel)?.start()
    }

    /// Creates the TUN and binds a random port, but starts no thread yet: between this and
    /// [`Opened::start`] the process is still single-threaded, which is when the daemon
    /// gives up its privileges (capabilities are per thread).
    pub fn open(config: DeviceConfig, cancel: Cancel) -> io::Result<Opened> {
        let workers = config.workers.max(1);
        let tun = match config.tun_fd {
            Some(fd) => Tun::from_fd(fd, workers)?,
            None if config.offload => Tun::create_with_offload(&config.name, workers)?,
            None => Tun::create(&config.name, workers)?,
        };
        let name = tun.name().to_string();
        tracing::info!(
            "TUN {name}: {} queue(s), offload {}",
            workers,
            if tun.vnet_hdr() { "on" } else { "off" }
        );
        let ifindex = tun.index();
        let uso = tun.offloads() & (libc::TUN_F_USO4 | libc::TUN_F_USO6) != 0;
        // Subscribed before the MTU is set, so no later change goes unheard.
        let mtu_watch = MtuWatch::open(ifindex, &name)?;
        let route_watch = RouteWatch::open()?;
        let new_sources = NewSources::default();
        crate::netif::set_mtu(&name, config.mtu)?;
        let iface = Arc::new(Interface::new(os_rng()));
        iface.set_mtu(config.mtu as usize);
        let net = Arc::new(RwLock::new(Arc::new(NetSet::bind(0, workers, 0)?)));
        let (jobs, job_rx) = control::channel();
        let clock = Clock::default();
        let addrs = Arc::new(LocalAddrs::new());
        let tunnel_routes = Arc::new(TunnelRoutes::default());
        let loop_guard = Arc::new(LoopGuard::new(&name, addrs.clone(), tunnel_routes.clone()));
        let unreachable = Arc::new(Unreachable::new(&name, addrs));
        let counters = Arc::new(ThreadCounters::new(workers));
        let device = Arc::new(Device {
            name,
            ifindex,
            iface: iface.clone(),
            clock,
            cancel: cancel.clone(),
            net: net.clone(),
            jobs,
            workers: Mutex::new(None),
            control: Mutex::new(None),
            mtu_watch: Mutex::new(None),
            route_watch: Mutex::new(None),
            new_sources: new_sources.clone(),
            tunnel_routes,
            counters: counters.clone(),
            worker_count: workers,
            tuns: Mutex::new(Some(tun.into_queues().into())),
            steering: Arc::new(Steering::new(workers)),
            uso,
            loop_guard,
            unreachable,
        });
        let control = Control {
            iface,
            net,
            clock,
            cancel,
            jobs: job_rx,
            counters,
            new_sources,
        };
        Ok(Opened {
            device,
            control,
            mtu_watch,
            route_watch,
        })
    }

    fn start_workers(&self) -> io::Result<()> {
        let stop = Cancel::new()?;
        let net = self.net.read().clone();
        let Some(tuns) = self.tuns.lock().clone() else {
            return Err(io::Error::other("the device is shut down"));
        };
        let queues = tuns.len();
        let crew = Arc::new(Crew::new(queues)?);
        let mut handles = Vec::with_capacity(queues);
        for id in 0..queues {
            let worker = Worker {
                id,
                tuns: tuns.clone(),
                steering: self.steering.clone(),
                uso: self.uso,
                net: net.clone(),
                iface: self.iface.clone(),
                jobs: self.jobs.clone(),
                clock: self.clock,
                counters: self.counters.clone(),
                crew: crew.clone(),
                gro_refused: std::cell::Cell::new(false),
                loop_guard: self.loop_guard.clone(),
                unreachable: self.unreachable.clone(),
                new_sources: self.new_sources.clone(),
            };
            let (stop, cancel) = (stop.clone(), self.cancel.clone());
            handles.push(
                std::thread::Builder::new()
                    .name(format!("worker-{id}"))
                    .spawn(move || worker.run(stop, cancel))?,
            );
        }
        *self.workers.lock() = Some(Generation { stop, handles });
        Ok(())
    }

    fn stop_workers(&self) {
        let Some(generation) = self.workers.lock().take() else {
            return;
        };
        generation.stop.trigger();
        for h in generation.handles {
            let _ = h.join();
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }
    pub fn interface(&self) -> &Arc<Interface> {
        &self.iface
    }
    pub fn cancel(&self) -> &Cancel {
        &self.cancel
    }
    pub fn env(&self) -> Env {
        self.clock.env()
    }
    /// Every counter of the interface now: the core's (handshake path, peers, removed
    /// peers) and each thread's own.
    pub fn counts(&self) -> Counts {
        let mut counts = self.iface.counts();
        self.counters.add_to(&mut counts);
        counts
    }

    /// Every peer's snapshot with [`Device::counts`] from the same reading of the peers.
    pub fn snapshots_and_counts(&self) -> (Vec<PeerSnapshot>, Counts) {
        let (snapshots, mut counts) = self.iface.snapshots_and_counts();
        self.counters.add_to(&mut counts);
        (snapshots, counts)
    }
    pub fn listen_port(&self) -> u16 {
        self.net.read().port
    }
    pub fn fwmark(&self) -> u32 {
        self.net.read().fwmark
    }

    /// Moves to a new port (0 = any free one). The new sockets are bound before the old
    /// ones close, so a port that is taken leaves everything as it was.
    pub fn set_listen_port(&self, port: u16) -> io::Result<()> {
        let fwmark = self.fwmark();
        let fresh = NetSet::bind(port, self.worker_count, fwmark)?;
        self.stop_workers();
        *self.net.write() = Arc::new(fresh);
        self.start_workers()
    }

    /// Marks every socket (SO_MARK), so policy routing can keep the tunnel's own packets
    /// out of the tunnel; 0 clears it.
    pub fn set_fwmark(&self, mark: u32) -> io::Result<()> {
        let mut guard = self.net.write();
        let mut set = NetSet {
            port: guard.port,
            fwmark: guard.fwmark,
            v4: guard.v4.clone(),
            v6: guard.v6.clone(),
        };
        set.set_fwmark(mark)?;
        *guard = Arc::new(set);
        Ok(())
    }

    /// Peers were added or removed, endpoints set or the fwmark changed (the configuration
    /// socket): the route watch looks up where the peers' datagrams go now, and until it
    /// has, the loop guard counts them as routed into another tunnel.
    pub fn endpoints_changed(&self) {
        self.tunnel_routes.endpoints_changed();
    }

    /// Sends datagrams produced by a configuration change (e.g. a first keepalive).
    pub fn send(&self, datagrams: Vec<Datagram>) {
        self.net
            .read()
            .send(&datagrams, &self.iface, self.counters.control());
    }

    /// Stops every thread and closes every descriptor; idempotent.
    pub fn shutdown(&self) {
        self.cancel.trigger();
        self.stop_workers();
        drop(self.tuns.lock().take());
        if let Some(h) = self.control.lock().take() {
            let _ = h.join();
        }
        if let Some(h) = self.mtu_watch.lock().take() {
            let _ = h.join();
        }
        if let Some(h) = self.route_watch.lock().take() {
            let _ = h.join();
        }
        self.iface.remove_all_peers();
    }
}
