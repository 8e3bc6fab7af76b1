//! The etcd side: connecting (several endpoints, TLS, user/password), leases, the address
//! compare-and-swap, registering, and reading the mesh prefix. Every call is bounded in time
//! so an unreachable cluster shows up as an error, never as a hang.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use ferrotun_etcd::{
    Client, Compare, CompareResult, ConnectOptions, LeaseKeepAlive, RequestOp, TlsOptions,
    TxnRequest,
};
use ferrotun_proto::keys::PublicKey;

use super::alloc::{candidates, Pool};
use super::layout::{addr_key, addrs_prefix, mesh_prefix, node_key, parse_claim, NodeRecord};
use super::options::EtcdOptions;

/// Longest any single request may take: 5 s, or less with a short TTL, so that a member
/// that accepts connections but does not answer (no leader yet after an outage) is given up
/// on in time to renew the lease through another one.
static CALL_MS: AtomicU64 = AtomicU64::new(5000);

pub fn set_call_bound(ttl_secs: i64) {
    let ms = (ttl_secs.max(1) as u64 * 1000 / 3).clamp(1000, 5000);
    CALL_MS.store(ms, Ordering::Relaxed);
}

fn call_bound() -> Duration {
    Duration::from_millis(CALL_MS.load(Ordering::Relaxed))
}

pub async fn bounded<T>(
    what: &str,
    f: impl Future<Output = Result<T, ferrotun_etcd::Error>>,
) -> Result<T> {
    let bound = call_bound();
    match tokio::time::timeout(bound, f).await {
        Ok(r) => r.with_context(|| what.to_string()),
        Err(_) => bail!("{what}: no answer from etcd within {bound:?}"),
    }
}

/// Connects to one member, `opts.endpoints[which % len]`. One member per connection, not a
/// balanced channel over all: gRPC's balancer keeps sending to a dead member, where the agent
/// rather moves on to the next member at its next attempt.
pub async fn connect(opts: &EtcdOptions, which: usize) -> Result<Client> {
    let endpoint = opts.endpoints[which % opts.endpoints.len()].clone();
    let mut options = ConnectOptions::new()
        .with_connect_timeout(call_bound())
        // HTTP/2 pings notice a dead member or a cut network within seconds, also while the
        // only traffic is the watch.
        .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2))
        .with_keep_alive_while_idle(true)
        // A member cut off from the others' quorum fails requests instead of serving a
        // stale view or a watch that never fires.
        .with_require_leader(true);
    if let Some(user) = &opts.user {
        let password = opts.password()?;
        options = options.with_user(user.clone(), password);
    }
    if opts.cacert.is_some() || opts.cert.is_some() || opts.key.is_some() {
        let mut tls = TlsOptions::new();
        if let Some(ca) = &opts.cacert {
            let pem = std::fs::read(ca).with_context(|| format!("cannot read {}", ca.display()))?;
            tls = tls.with_ca_pem(pem);
        }
        match (&opts.cert, &opts.key) {
            (Some(cert), Some(key)) => {
                let c = std::fs::read(cert)
                    .with_context(|| format!("cannot read {}", cert.display()))?;
                let k =
                    std::fs::read(key).with_context(|| format!("cannot read {}", key.display()))?;
                tls = tls.with_identity_pem(c, k);
            }
            (None, None) => {}
            _ => bail!("--etcd-cert and --etcd-key go together"),
        }
        options = options.with_tls(tls);
    }
    bounded(
        &format!("cannot connect to {endpoint}"),
        Client::connect(&endpoint, options),
    )
    .await
}

/// One lease and the stream that renews it.
pub struct Lease {
    pub id: i64,
    keeper: LeaseKeepAlive,
}

impl Lease {
    /// Reattaches to lease `id` if it is still alive, or grants a new one of `ttl` seconds.
    pub async fn obtain(client: &mut Client, id: Option<i64>, ttl: i64) -> Result<Lease> {
        let id = match id {
            Some(id) if bounded("lease lookup", client.lease_time_to_live(id)).await? > 0 => id,
            _ => bounded("cannot grant a lease", client.lease_grant(ttl)).await?,
        };
        let keeper = bounded("lease keep-alive", client.lease_keep_alive(id)).await?;
        Ok(Lease { id, keeper })
    }

    /// One renewal; an error when the lease has expired meanwhile (its keys are gone).
    pub async fn renew(&mut self) -> Result<()> {
        let bound = call_bound();
        let answer = tokio::time::timeout(bound, self.keeper.keep_alive())
            .await
            .map_err(|_| anyhow!("lease renewal: no answer from etcd within {bound:?}"))?;
        match answer {
            Ok(_) => Ok(()),
            Err(ferrotun_etcd::Error::LeaseNotFound { .. }) => {
                bail!("lease {:x} expired", self.id)
            }
            Err(e) => Err(e).context("lease renewal"),
        }
    }
}

/// Claims an address for `me`: the one it already holds (a restart within the grace period),
/// or the lowest free one, by compare-and-swap so that racing nodes never share one. The
/// claim is attached to `lease` (the grace lease).
pub async fn claim_address(
    client: &mut Client,
    mesh: &str,
    pool: &Pool,
    me: &PublicKey,
    lease: i64,
) -> Result<u32> {
    let prefix = addrs_prefix(mesh);
    let existing = bounded(
        "cannot read the address claims",
        client.get_prefix(prefix.as_str()),
    )
    .await?;
    let mine = me.to_hex();
    let mut taken = BTreeSet::new();
    for kv in existing.kvs() {
        let suffix = kv
            .key_str()
            .unwrap_or_default()
            .strip_prefix(&prefix)
            .unwrap_or_default();
        match parse_claim(suffix, kv.value()) {
            Some((index, owner)) if owner == *me => {
                // Ours from before: move it onto the current lease, unless it changed hands.
                let key = addr_key(mesh, index);
                let still_mine = Compare::value(key.as_str(), CompareResult::Equal, mine.as_str());
                let what = "cannot renew the address claim";
                if put_if(client, what, still_mine, &key, &mine, lease).await? {
                    return Ok(index);
                }
                taken.insert(index);
            }
            Some((index, _)) => {
                taken.insert(index);
            }
            // Junk under addrs/ is skipped; an index it might name stays free for us only if
            // the compare-and-swap below agrees.
            None => tracing::warn!(
                "ignoring malformed address claim {:?}",
                String::from_utf8_lossy(kv.key())
            ),
        }
    }
    for index in candidates(pool, &taken) {
        let key = addr_key(mesh, index);
        let unclaimed = Compare::create_revision(key.as_str(), CompareResult::Equal, 0);
        if put_if(
            client,
            "cannot claim an address",
            unclaimed,
            &key,
            &mine,
            lease,
        )
        .await?
        {
            return Ok(index);
        }
    }
    bail!("the mesh CIDR {} is full", pool.v4)
}

/// Puts `value` at `key` on `lease` in one transaction, only if `condition` holds; true
/// when it did (the compare-and-swap both claiming and renewing an address rely on).
async fn put_if(
    client: &mut Client,
    what: &str,
    condition: Compare,
    key: &str,
    value: &str,
    lease: i64,
) -> Result<bool> {
    let txn = TxnRequest::new()
        .when([condition])
        .and_then([RequestOp::put(key, value, Some(lease))]);
    Ok(bounded(what, client.txn(txn)).await?.succeeded)
}

/// Writes this node's record under its short lease.
pub async fn register(
    client: &mut Client,
    mesh: &str,
    record: &NodeRecord,
    me: &PublicKey,
    lease: i64,
) -> Result<()> {
    let value = serde_json::to_vec(record)?;
    bounded(
        "cannot register",
        client.put(node_key(mesh, me), value, Some(lease)),
    )
    .await?;
    Ok(())
}

/// Everything under the mesh prefix, and the revision it was read at.
pub async fn snapshot(client: &mut Client, mesh: &str) -> Result<(i64, Vec<(String, Vec<u8>)>)> {
    let resp = bounded("cannot read the mesh", client.get_prefix(mesh_prefix(mesh))).await?;
    let revision = resp.revision();
    let kvs = resp
        .kvs()
        .iter()
        .map(|kv| {
            (
                String::from_utf8_lossy(kv.key()).into_owned(),
                kv.value().to_vec(),
            )
        })
        .collect();
    Ok((revision, kvs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_client_key_without_its_certificate_is_refused() {
        let opts = EtcdOptions {
            endpoints: vec!["http://127.0.0.1:1".into()],
            user: None,
            password_file: None,
            cacert: None,
            cert: None,
            key: Some("/nonexistent/client.key".into()),
        };
        // Before, the key alone was ignored and the connection made without TLS.
        match connect(&opts, 0).await {
            Ok(_) => panic!("connected with a key and no certificate"),
            Err(e) => assert_eq!(e.to_string(), "--etcd-cert and --etcd-key go together"),
        }
    }
}
