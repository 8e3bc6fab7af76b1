//! A TCP bulk transfer across the tunnel, measured at the receiving end.
//!
//! Each side is a thread that first moves itself into its peer's namespace, so the sockets it
//! opens live there; the threads end with the transfer, so nothing else ever runs in a
//! foreign namespace. Every wait is bounded and watches for Ctrl-C.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ferrotun_device::netns::enter_netns;
use ferrotun_device::Cancel;

use super::error::DemoError;
use super::topology::netns_path;

const PORT: u16 = 5201;
const CHUNK: usize = 128 * 1024;
/// How long either side waits for the other (to connect, for data) before giving up.
const PATIENCE: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(200);

#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    pub bytes: u64,
    pub elapsed: Duration,
}

impl Throughput {
    pub fn gbit_per_s(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs <= 0.0 {
            return 0.0;
        }
        self.bytes as f64 * 8.0 / secs / 1e9
    }
}

impl std::fmt::Display for Throughput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.3} Gbit/s ({:.1} MB in {:.2} s)",
            self.gbit_per_s(),
            self.bytes as f64 / 1e6,
            self.elapsed.as_secs_f64()
        )
    }
}

/// Sends from namespace `from_ns` to `to_addr` in `to_ns` for `duration`.
pub fn measure(
    from_ns: &str,
    to_ns: &str,
    to_addr: &str,
    duration: Duration,
    cancel: &Cancel,
) -> Result<Throughput, DemoError> {
    let addr: SocketAddr = format!("{to_addr}:{PORT}")
        .parse()
        .map_err(|_| DemoError::Throughput(format!("not an IPv4 address: {to_addr}")))?;
    let (ready_tx, ready_rx) = mpsc::channel();
    let receiver = {
        let (ns, cancel) = (to_ns.to_string(), cancel.clone());
        std::thread::Builder::new()
            .name("demo-receiver".into())
            .spawn(move || receive(&ns, addr, duration, ready_tx, &cancel))
            .map_err(|e| DemoError::io("cannot start the receiving thread", e))?
    };
    // Connecting before the listener exists would only be refused.
    let sent = match ready_rx.recv_timeout(PATIENCE) {
        Ok(()) => {
            let (ns, cancel) = (from_ns.to_string(), cancel.clone());
            std::thread::Builder::new()
                .name("demo-sender".into())
                .spawn(move || send(&ns, addr, duration, &cancel))
                .map_err(|e| DemoError::io("cannot start the sending thread", e))?
                .join()
                .unwrap_or_else(|_| Err(DemoError::Throughput("the sender panicked".into())))
        }
        Err(_) => Err(DemoError::Throughput("the receiver did not start".into())),
    };
    let received = receiver
        .join()
        .unwrap_or_else(|_| Err(DemoError::Throughput("the receiver panicked".into())));
    // A sender failure explains a receiver failure, not the other way round.
    sent?;
    received
}

fn io_err(what: &str) -> impl FnOnce(std::io::Error) -> DemoError + '_ {
    move |e| DemoError::Throughput(format!("{what}: {e}"))
}

fn is_wait(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
    )
}

fn receive(
    ns: &str,
    addr: SocketAddr,
    duration: Duration,
    ready: mpsc::Sender<()>,
    cancel: &Cancel,
) -> Result<Throughput, DemoError> {
    enter_netns(&netns_path(ns)).map_err(io_err("receiver"))?;
    let listener = TcpListener::bind(addr).map_err(io_err(&format!("listen on {addr}")))?;
    listener.set_nonblocking(true).map_err(io_err("listener"))?;
    // The sender may be gone already; then the recv below times out on our side too.
    let _ = ready.send(());
    let waiting = Instant::now();
    let mut stream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if is_wait(&e) => {}
            Err(e) => return Err(io_err("accept")(e)),
        }
        if cancel.is_triggered() {
            return Err(DemoError::Interrupted);
        }
        if waiting.elapsed() > PATIENCE {
            return Err(DemoError::Throughput(format!(
                "no connection within {} s",
                PATIENCE.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    stream.set_nonblocking(false).map_err(io_err("receiver"))?;
    stream
        .set_read_timeout(Some(POLL))
        .map_err(io_err("receiver"))?;
    let give_up = Instant::now() + duration + PATIENCE;
    let mut buf = vec![0u8; CHUNK];
    let mut bytes = 0u64;
    let mut first: Option<Instant> = None;
    let mut last_data = Instant::now();
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let now = Instant::now();
                first.get_or_insert(now);
                last_data = now;
                bytes += n as u64;
            }
            Err(e) if is_wait(&e) => {
                if last_data.elapsed() > PATIENCE {
                    return Err(DemoError::Throughput(format!(
                        "no data for {} s",
                        PATIENCE.as_secs()
                    )));
                }
            }
            Err(e) => return Err(io_err("receive")(e)),
        }
        if cancel.is_triggered() {
            return Err(DemoError::Interrupted);
        }
        if Instant::now() > give_up {
            return Err(DemoError::Throughput("the transfer did not end".into()));
        }
    }
    let elapsed = first.map_or(Duration::ZERO, |f| last_data.duration_since(f));
    if bytes == 0 || elapsed.is_zero() {
        return Err(DemoError::Throughput("no data arrived".into()));
    }
    Ok(Throughput { bytes, elapsed })
}

fn send(ns: &str, addr: SocketAddr, duration: Duration, cancel: &Cancel) -> Result<(), DemoError> {
    enter_netns(&netns_path(ns)).map_err(io_err("sender"))?;
    let mut stream = TcpStream::connect_timeout(&addr, PATIENCE)
        .map_err(io_err(&format!("connect to {addr}")))?;
    stream
        .set_write_timeout(Some(POLL))
        .map_err(io_err("sender"))?;
    let buf = vec![0x5a_u8; CHUNK];
    let start = Instant::now();
    let mut last_progress = Instant::now();
    while start.elapsed() < duration {
        match stream.write(&buf) {
            Ok(_) => last_progress = Instant::now(),
            Err(e) if is_wait(&e) => {
                if last_progress.elapsed() > PATIENCE {
                    return Err(DemoError::Throughput(format!(
                        "the tunnel took no data for {} s",
                        PATIENCE.as_secs()
                    )));
                }
            }
            Err(e) => return Err(io_err("send")(e)),
        }
        if cancel.is_triggered() {
            return Err(DemoError::Interrupted);
        }
    }
    // Closing our side tells the receiver the measurement is over once the queued data is in.
    stream
        .shutdown(std::net::Shutdown::Write)
        .map_err(io_err("send"))?;
    Ok(())
}
