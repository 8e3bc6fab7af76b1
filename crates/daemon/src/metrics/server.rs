//! The HTTP side: hyper's HTTP/1 server on a current-thread tokio runtime, on one thread
//! of its own ("metrics"), with every resource a scraper can make it hold bounded:
//!
//! - at most [`MAX_CONNECTIONS`] connections at once; one more ends the oldest (see
//!   [`super::slots`] for why not refuse it or leave it in the backlog).
//! - the request head must arrive within [`HEADER_TIMEOUT`] and fit [`MAX_BUFFER`] bytes
//!   (a larger head gets 431); a request body is never read.
//! - every connection ends at [`CONNECTION_DEADLINE`], keep-alive included (Prometheus
//!   reconnects; one scrape takes milliseconds).
//!
//! Nothing is logged per connection: connections ended to make room, and connections that ended without one
//! request served (garbage, a head too slow or too large), are summed and logged at most
//! once per [`SUMMARY_EVERY`]. A keep-alive connection ended by the deadline after serving
//! is Prometheus' normal case and not counted.

use super::encode;
use super::options::Listener;
use super::slots::{Slot, Slots};
use ferrotun_device::Device;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::{TcpListener, TcpStream};

pub const MAX_CONNECTIONS: usize = 8;
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(3);
pub const CONNECTION_DEADLINE: Duration = Duration::from_secs(5);
/// hyper's read buffer, which bounds the request head (its minimum is 8 KiB).
pub const MAX_BUFFER: usize = 16 * 1024;
const SUMMARY_EVERY: Duration = Duration::from_secs(60);
/// After a failed accept (out of descriptors, say): wait before the next, not spin.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// What went wrong since the last summary.
#[derive(Default)]
struct Tally {
    /// Ended to make room for a newer one.
    ended: AtomicU64,
    /// Ended (error or deadline) without serving one request.
    useless: AtomicU64,
    accept_errors: AtomicU64,
}

/// The endpoint made ready before confinement, started after it.
pub struct Server {
    runtime: tokio::runtime::Runtime,
    socket: TcpListener,
    shown: String,
}

impl Server {
    /// Builds the runtime and registers the listener with it. Before confinement: tokio's
    /// drivers open an epoll, an eventfd and (the crate has its signal feature for the
    /// mesh) a socketpair, which the filter need not allow then. No thread starts here.
    pub fn prepare(listener: Listener) -> std::io::Result<Server> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        let shown = listener.local_addr();
        listener.socket.set_nonblocking(true)?;
        let socket = {
            let _context = runtime.enter();
            TcpListener::from_std(listener.socket)?
        };
        Ok(Server {
            runtime,
            socket,
            shown,
        })
    }

    /// Starts serving on a new thread; after confinement, so it runs under the filter.
    pub fn start(self, device: Arc<Device>) -> std::io::Result<()> {
        let Server {
            runtime,
            socket,
            shown,
        } = self;
        std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || runtime.block_on(serve(socket, device)))?;
        tracing::info!("serving Prometheus metrics on http://{shown}/metrics");
        Ok(())
    }
}

async fn serve(listener: TcpListener, device: Arc<Device>) {
    let slots = Slots::new(MAX_CONNECTIONS);
    let tally = Arc::new(Tally::default());
    tokio::spawn(summarise(tally.clone()));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                tally.accept_errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(ACCEPT_PAUSE).await;
                continue;
            }
        };
        let (slot, ended_one) = slots.take();
        let device = device.clone();
        let counts = tally.clone();
        tokio::spawn(async move {
            if !connection(stream, device, slot).await {
                counts.useless.fetch_add(1, Ordering::Relaxed);
            }
        });
        if ended_one {
            tally.ended.fetch_add(1, Ordering::Relaxed);
            // Let the ended connection's task close its socket before the next accept, so
            // a burst never holds more than a few sockets beyond the limit.
            tokio::task::yield_now().await;
        }
    }
}

/// Serves one connection until it ends, its deadline, or a newer connection needs its
/// slot; false when it failed or met its deadline before serving anything.
async fn connection(stream: TcpStream, device: Arc<Device>, mut slot: Slot) -> bool {
    let served = Arc::new(AtomicU64::new(0));
    let counted = served.clone();
    let service = service_fn(move |request: Request<Incoming>| {
        counted.fetch_add(1, Ordering::Relaxed);
        let response = respond(&request, &device);
        async move { Ok::<_, Infallible>(response) }
    });
    let serving = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_BUFFER)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    // An error (a reset, a bad request hyper answered itself) is the client's business.
    let ended_well = tokio::select! {
        result = tokio::time::timeout(CONNECTION_DEADLINE, serving) => matches!(result, Ok(Ok(()))),
        // Counted by the accept loop, as ended to make room.
        _ = &mut slot.ended => true,
    };
    drop(slot);
    ended_well || served.load(Ordering::Relaxed) > 0
}

/// Logs what was refused or cut, at most once per SUMMARY_EVERY and only when something was.
async fn summarise(tally: Arc<Tally>) {
    let mut every = tokio::time::interval(SUMMARY_EVERY);
    every.tick().await;
    loop {
        every.tick().await;
        let ended = tally.ended.swap(0, Ordering::Relaxed);
        let useless = tally.useless.swap(0, Ordering::Relaxed);
        let errors = tally.accept_errors.swap(0, Ordering::Relaxed);
        if ended + useless + errors > 0 {
            tracing::warn!(
                "metrics endpoint, last {}s: {ended} connection(s) ended to make room (limit \
                 {MAX_CONNECTIONS} at once), {useless} ended without a request served \
                 (garbage, too slow or too large), {errors} failed accept(s)",
                SUMMARY_EVERY.as_secs()
            );
        }
    }
}

/// What a request gets: only `/metrics` answers, as the README says. `/` has no page of
/// its own: the 404 a browser gets there names `/metrics` already.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Metrics,
    MethodNotAllowed,
    NotFound,
}

fn route(method: &Method, path: &str) -> Route {
    match (path, matches!(*method, Method::GET | Method::HEAD)) {
        ("/metrics", true) => Route::Metrics,
        ("/metrics", false) => Route::MethodNotAllowed,
        _ => Route::NotFound,
    }
}

fn respond(request: &Request<Incoming>, device: &Device) -> Response<Full<Bytes>> {
    match route(request.method(), request.uri().path()) {
        Route::Metrics => metrics(device),
        Route::MethodNotAllowed => {
            let mut r = reply(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain; charset=utf-8",
                "only GET and HEAD\n",
            );
            r.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            r
        }
        Route::NotFound => reply(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found; the metrics are at /metrics\n",
        ),
    }
}

fn metrics(device: &Device) -> Response<Full<Bytes>> {
    let stats = crate::reading::read_stats(device);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let rendered = encode::render(&stats, now);
    drop(stats);
    // A large interface's scrape builds megabytes of short-lived label strings: give them
    // back, or the daemon's resident size keeps the largest scrape's peak for good.
    ferrotun_device::memory::release_free_memory();
    match rendered {
        Ok(body) => reply(StatusCode::OK, encode::CONTENT_TYPE, body),
        Err(e) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain; charset=utf-8",
            format!("cannot encode the metrics: {e}\n"),
        ),
    }
}

fn reply(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_metrics_answers() {
        assert_eq!(route(&Method::GET, "/metrics"), Route::Metrics);
        assert_eq!(route(&Method::HEAD, "/metrics"), Route::Metrics);
        assert_eq!(route(&Method::POST, "/metrics"), Route::MethodNotAllowed);
        // `/` served a page once, which the README said it did not.
        assert_eq!(route(&Method::GET, "/"), Route::NotFound);
        assert_eq!(route(&Method::POST, "/"), Route::NotFound);
        assert_eq!(route(&Method::GET, "/metrics/"), Route::NotFound);
        assert_eq!(route(&Method::GET, "/index.html"), Route::NotFound);
    }
}
