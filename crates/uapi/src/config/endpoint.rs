//! Endpoint parsing and name resolution, following wg: `host:port` split at the last colon,
//! `[v6]:port` in brackets, names resolved with the system resolver (first answer wins), and
//! temporary resolver failures retried `WG_ENDPOINT_RESOLUTION_RETRIES` times (default 15).

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use super::values::ValueError;

/// Resolves one endpoint text to an address. Parsing takes this as a parameter so tests (and
/// callers that must not touch DNS) can supply their own.
pub type Resolver<'a> = &'a dyn Fn(&str) -> Result<SocketAddr, ValueError>;

/// Splits `host:port` / `[host]:port` as wg does.
pub fn split(text: &str) -> Result<(&str, &str), ValueError> {
    if text.is_empty() {
        return Err(ValueError::EmptyEndpoint);
    }
    let no_port = || ValueError::EndpointPort(text.to_string());
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| ValueError::EndpointBrace(text.to_string()))?;
        (host, after.strip_prefix(':').ok_or_else(no_port)?)
    } else {
        text.rsplit_once(':').ok_or_else(no_port)?
    };
    if port.is_empty() {
        return Err(no_port());
    }
    Ok((host, port))
}

/// Resolves with the system resolver, retrying as wg does.
pub fn resolve(text: &str) -> Result<SocketAddr, ValueError> {
    let (host, port) = split(text)?;
    let port = super::values::port(port).map_err(|_| ValueError::Resolve {
        reason: "Servname not supported for ai_socktype".into(),
        value: text.to_string(),
    })?;
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let mut retries = retries_from_env();
    let mut delay = Duration::from_secs(1);
    loop {
        let err = match (host, port).to_socket_addrs() {
            Ok(mut addrs) => {
                return addrs.next().ok_or_else(|| ValueError::Resolve {
                    reason: "Neither IPv4 nor IPv6 address found".into(),
                    value: text.to_string(),
                })
            }
            Err(e) => e,
        };
        let reason = err.to_string();
        let reason = reason
            .strip_prefix("failed to lookup address information: ")
            .unwrap_or(&reason)
            .to_string();
        // Only "try again" is transient; a name that does not exist will not start to.
        let transient = reason.contains("Temporary failure");
        let out_of_tries = match &mut retries {
            Some(0) => true,
            Some(n) => {
                *n -= 1;
                false
            }
            None => false,
        };
        if !transient || out_of_tries {
            return Err(ValueError::Resolve {
                reason,
                value: text.to_string(),
            });
        }
        // wg tells the user it is waiting; this is the one place the library writes to stderr,
        // because a silent multi-second stall would look like a hang.
        eprintln!(
            "{reason}: `{text}'. Trying again in {:.2} seconds...",
            delay.as_secs_f64()
        );
        std::thread::sleep(delay);
        delay = (delay * 6 / 5).min(Duration::from_secs(20));
    }
}

/// `None` = retry forever (`infinity`); an unparsable value falls back to wg's default.
fn retries_from_env() -> Option<u32> {
    match std::env::var("WG_ENDPOINT_RESOLUTION_RETRIES") {
        Ok(v) if v == "infinity" => None,
        Ok(v) => Some(v.parse().unwrap_or(15)),
        Err(_) => Some(15),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitting() {
        assert_eq!(split("1.2.3.4:5"), Ok(("1.2.3.4", "5")));
        assert_eq!(split("[::1]:5"), Ok(("::1", "5")));
        assert_eq!(split("::1:5"), Ok(("::1", "5")));
        assert_eq!(split("host.example:51820"), Ok(("host.example", "51820")));
        assert_eq!(split(""), Err(ValueError::EmptyEndpoint));
        assert!(matches!(split("[::1:5"), Err(ValueError::EndpointBrace(_))));
        assert!(matches!(split("[::1]5"), Err(ValueError::EndpointPort(_))));
        assert!(matches!(split("[::1]:"), Err(ValueError::EndpointPort(_))));
        assert!(matches!(split("host"), Err(ValueError::EndpointPort(_))));
    }

    #[test]
    fn numeric_and_local_names() {
        assert_eq!(resolve("[::1]:5"), Ok("[::1]:5".parse().unwrap()));
        assert_eq!(resolve("::1:5"), Ok("[::1]:5".parse().unwrap()));
        assert!(resolve("1.2.3.4:x").is_err());
        assert!(resolve("1.2.3.4:70000").is_err());
        // localhost comes from /etc/hosts, so this needs no network.
        assert_eq!(resolve("localhost:7").map(|a| a.port()), Ok(7));
    }
}
