//! Where the metrics endpoint listens: `--metrics ADDR:PORT` (the flag wins) or
//! `FERROTUN_METRICS=ADDR:PORT`, parsed and bound before anything else is created, so a bad
//! value or a busy port stops the daemon with nothing left behind.

use anyhow::{bail, Context};
use ferrotun_device::inherit::{keep_across_exec, take_inherited};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;

pub const OPT_METRICS: &str = "--metrics";
pub const ENV_METRICS: &str = "FERROTUN_METRICS";
/// The bound listener, handed to the re-executed background daemon like the TUN and the
/// configuration socket (so a busy port is reported to whoever started it).
const ENV_METRICS_FD: &str = "FERROTUN_METRICS_FD";

/// The address asked for, if any.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetricsOption {
    pub addr: Option<SocketAddr>,
}

/// `ADDR:PORT` with an IPv4 address or a bracketed IPv6 one (`[::1]:9586`); no host
/// names (resolving one would need the network before the interface exists) and no port
/// 0 (a random port no scraper could be told about).
pub fn parse(text: &str) -> anyhow::Result<SocketAddr> {
    let addr: SocketAddr = text.trim().parse().with_context(|| {
        format!(
            "metrics address {text:?} is not ADDR:PORT (e.g. 127.0.0.1:9586 or \
             [::1]:9586; an IP address, not a host name)"
        )
    })?;
    if addr.port() == 0 {
        bail!("metrics address {text:?}: port 0 is not allowed; choose a port (e.g. 9586)");
    }
    Ok(addr)
}

impl MetricsOption {
    /// `--metrics VALUE` if given (it wins), else `FERROTUN_METRICS` (unset or empty: off).
    pub fn resolve(flag: Option<&str>) -> anyhow::Result<MetricsOption> {
        let addr = match flag {
            Some(value) => Some(parse(value).with_context(|| format!("{OPT_METRICS} {value}"))?),
            None => match std::env::var(ENV_METRICS) {
                Ok(text) if !text.trim().is_empty() => {
                    Some(parse(&text).with_context(|| format!("{ENV_METRICS}={text}"))?)
                }
                _ => None,
            },
        };
        Ok(MetricsOption { addr })
    }

    /// Binds the listener (the daemon still runs as root, so a port below 1024 needs no
    /// capability kept for it), or takes the one a background parent bound.
    pub fn listen(&self) -> anyhow::Result<Option<Listener>> {
        if let Some(fd) = take_inherited(ENV_METRICS_FD)? {
            let socket = TcpListener::from(fd);
            socket
                .local_addr()
                .with_context(|| format!("{ENV_METRICS_FD} names no TCP socket"))?;
            return Ok(Some(Listener {
                addr: self.addr,
                socket,
            }));
        }
        let Some(addr) = self.addr else {
            return Ok(None);
        };
        let socket = TcpListener::bind(addr)
            .with_context(|| format!("cannot serve metrics on {addr} ({OPT_METRICS})"))?;
        Ok(Some(Listener {
            addr: Some(addr),
            socket,
        }))
    }
}

/// The bound metrics socket.
pub struct Listener {
    pub addr: Option<SocketAddr>,
    pub socket: TcpListener,
}

impl Listener {
    /// The environment that hands this listener to the re-executed daemon.
    pub fn to_env(&self) -> anyhow::Result<Vec<(&'static str, String)>> {
        keep_across_exec(&self.socket)?;
        let mut env = vec![(ENV_METRICS_FD, self.socket.as_raw_fd().to_string())];
        if let Some(addr) = self.addr {
            env.push((ENV_METRICS, addr.to_string()));
        }
        Ok(env)
    }

    /// Where it listens, for the log.
    pub fn local_addr(&self) -> String {
        self.socket
            .local_addr()
            .map_or_else(|_| "?".to_string(), |a| a.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_families() {
        assert_eq!(
            parse("127.0.0.1:9586").ok(),
            "127.0.0.1:9586".parse::<SocketAddr>().ok()
        );
        assert_eq!(
            parse("[::1]:9586").ok(),
            "[::1]:9586".parse::<SocketAddr>().ok()
        );
        assert!(parse("0.0.0.0:80").is_ok());
    }

    #[test]
    fn refuses_what_is_not_addr_port() {
        for bad in [
            "9586",
            "localhost:9586",
            "::1:9586",
            "127.0.0.1",
            "127.0.0.1:",
            "127.0.0.1:70000",
            "127.0.0.1:0",
            "",
        ] {
            let e = parse(bad).expect_err(bad);
            assert!(format!("{e:#}").contains("metrics address"), "{bad}: {e:#}");
        }
    }
}
