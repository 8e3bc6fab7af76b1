//! The daemon's Prometheus endpoint: `--metrics ADDR:PORT` or `FERROTUN_METRICS=ADDR:PORT`
//! (off by default) serves `GET /metrics` in the Prometheus text format.
//!
//! The listener is bound while the daemon still has root (before confinement), the serving
//! thread starts after it, under the same seccomp filter. Each scrape builds its answer from
//! [`crate::reading::read_stats`], which takes each peer's lock briefly: the data path
//! never waits for a scraper, and a slow or hostile one is bounded by the server's limits
//! (see [`server`]).

pub mod encode;
pub mod options;
pub mod server;
pub mod slots;

pub use options::{Listener, MetricsOption, ENV_METRICS, OPT_METRICS};
pub use server::Server;
