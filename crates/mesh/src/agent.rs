//! The agent: registers the node, watches the mesh, applies the difference. One "session"
//! is one connection to etcd; when it fails the tunnels stay as they are and a new session
//! starts after a backoff, reads the whole prefix again and applies only what changed.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use ferrotun_etcd::{Client, EventType, WatchOptions};
use ferrotun_proto::keys::{PrivateKey, PublicKey};
use tokio::signal::unix::{signal, Signal, SignalKind};

use super::alloc::Pool;
use super::diff::{diff, from_status, sort, Peers, Wanted};
use super::iface;
use super::layout::{mesh_prefix, NodeRecord};
use super::options::UpOptions;
use super::registry::{self, bounded, Lease};
use super::status::{self, PeerLine, Status};
use super::view::View;
use ferrotun_netlink::{Link, Netlink};
use ferrotun_uapi::{Client as Uapi, IpPrefix};

const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(8);
/// How often the agent checks its interface still exists.
const IFACE_CHECK: Duration = Duration::from_secs(2);
/// After (re)connecting, peers whose records are missing are kept TTL + this before they
/// are removed (see `Agent::removal_hold`).
const REMOVAL_HOLD_EXTRA: Duration = Duration::from_secs(3);

pub struct Agent {
    opts: UpOptions,
    state_dir: PathBuf,
    pool: Pool,
    key: PrivateKey,
    me: PublicKey,
    index: Option<u32>,
    link: Option<Link>,
    nl: Netlink,
    uapi: Uapi,
    view: View,
    /// What was last applied to the interface (the peers it has, as the registry wanted them).
    applied: Option<Peers>,
    /// Until then, peers missing from the registry stay on the interface: set at each
    /// (re)connection while the interface has peers, because an outage longer than the TTL
    /// expires every node's lease and the others may not have re-registered yet when this
    /// agent reads the prefix.
    hold_removals_until: Option<Instant>,
    /// The peers kept so far by that hold (to log only when the set changes).
    held: Vec<PublicKey>,
    node_lease: Option<i64>,
    /// Which etcd endpoint the next session uses; moves on after each failure.
    cursor: usize,
    addr_lease: Option<i64>,
    status: Status,
    term: Signal,
    int: Signal,
}

enum End {
    Stop,
}

impl Agent {
    pub fn new(opts: UpOptions, key: PrivateKey, pool: Pool) -> Result<Agent> {
        let name = opts.name.name.clone();
        let node_name = match &opts.node_name {
            Some(n) => n.clone(),
            None => std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "node".into()),
        };
        Ok(Agent {
            state_dir: opts.name.state_dir(),
            pool,
            me: key.public_key(),
            key,
            index: None,
            link: None,
            nl: Netlink::open()?,
            uapi: Uapi::new(),
            view: View::new(&name, pool),
            applied: None,
            hold_removals_until: None,
            held: Vec::new(),
            node_lease: None,
            cursor: 0,
            addr_lease: None,
            status: Status {
                interface: opts.interface.clone().unwrap_or_else(|| name.clone()),
                mesh: name,
                pid: std::process::id(),
                node_name,
                etcd: "connecting".into(),
                ..Status::default()
            },
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            opts,
        })
    }

    fn mesh(&self) -> &str {
        &self.opts.name.name
    }

    fn ifname(&self) -> &str {
        &self.status.interface
    }

    async fn stop_signal(term: &mut Signal, int: &mut Signal) {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }

    /// Runs until SIGTERM/SIGINT (then deregisters and deletes the interface) or until the
    /// interface is deleted under it.
    pub async fn run(mut self) -> Result<()> {
        self.status.public_key = self.me.to_base64();
        registry::set_call_bound(self.opts.ttl);
        let mut backoff = BACKOFF_MIN;
        loop {
            let started = Instant::now();
            match self.session().await {
                Ok(End::Stop) => break,
                Err(e) if e.downcast_ref::<Fatal>().is_some() => return Err(e),
                Err(e) => {
                    self.cursor += 1;
                    if started.elapsed() > Duration::from_secs(30) {
                        backoff = BACKOFF_MIN;
                    }
                    tracing::warn!(
                        "etcd: {e:#}; keeping the current peers, retrying in {backoff:?}"
                    );
                    self.status.etcd = format!("unreachable: {e:#}");
                    self.write_status();
                    let (term, int) = (&mut self.term, &mut self.int);
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = Self::stop_signal(term, int) => break,
                    }
                    backoff = (backoff * 2).min(self.backoff_max());
                }
            }
        }
        self.shut_down().await;
        Ok(())
    }

    async fn session(&mut self) -> Result<End> {
        let mut client = registry::connect(&self.opts.etcd, self.cursor).await?;
        let mut node_lease = Lease::obtain(&mut client, self.node_lease, self.opts.ttl).await?;
        self.node_lease = Some(node_lease.id);
        let mut addr_lease = Lease::obtain(&mut client, self.addr_lease, self.opts.grace).await?;
        self.addr_lease = Some(addr_lease.id);
        let mesh = self.mesh().to_string();
        let index =
            registry::claim_address(&mut client, &mesh, &self.pool, &self.me, addr_lease.id)
                .await?;
        match self.index {
            Some(old) if old != index => {
                return Err(anyhow!(Fatal)).map_err(|e| {
                    e.context(format!(
                        "address {} was given to another node while this one was away longer than the grace period; restart the agent",
                        self.pool.address(old)
                    ))
                })
            }
            _ => self.index = Some(index),
        }
        if self.link.is_none() {
            self.bring_up(index)?;
        }
        let link_index = self.link.as_ref().map_or(0, |l| l.index);
        let mut endpoints: Vec<String> = self.opts.endpoint.iter().cloned().collect();
        endpoints.extend(iface::local_endpoints(
            &mut self.nl,
            link_index,
            self.opts.listen_port,
        )?);
        let record = NodeRecord {
            public_key: self.me.to_base64(),
            name: self.status.node_name.clone(),
            address: self.pool.address(index),
            address6: self.pool.address6(index),
            endpoints,
        };
        registry::register(&mut client, &mesh, &record, &self.me, node_lease.id).await?;

        let (revision, kvs) = registry::snapshot(&mut client, &mesh).await?;
        self.view.reset(kvs);
        self.status.etcd = "connected".into();
        // Only peers there before this read can have lost their records to an outage; a
        // fresh interface has none, so a first start keeps the usual TTL bound for leaves.
        self.hold_removals_until =
            (!self.load_applied()?.is_empty()).then(|| Instant::now() + self.removal_hold());
        self.apply()?;
        let mut watch = bounded(
            "cannot watch the mesh",
            client.watch(
                mesh_prefix(&mesh),
                WatchOptions::new()
                    .with_prefix()
                    .with_start_revision(revision + 1),
            ),
        )
        .await?;
        tracing::info!(
            "in mesh {mesh} as {} ({}), watching from revision {revision}",
            self.pool.address(index),
            self.me
        );

        let renew_every = Duration::from_millis((self.opts.ttl as u64 * 1000 / 3).max(500));
        let mut renew = tokio::time::interval(renew_every);
        let mut renew_addr =
            tokio::time::interval(Duration::from_secs((self.opts.grace as u64 / 3).max(1)));
        let mut iface_check = tokio::time::interval(IFACE_CHECK);
        loop {
            let (term, int) = (&mut self.term, &mut self.int);
            let hold_end = self.hold_removals_until;
            let hold_ends = tokio::time::sleep_until(tokio::time::Instant::from_std(
                hold_end.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600)),
            ));
            tokio::select! {
                _ = hold_ends, if hold_end.is_some() => {
                    self.hold_removals_until = None;
                    self.apply()?;
                }
                message = watch.message() => {
                    let Some(resp) = message? else { bail!("the watch ended") };
                    if resp.canceled {
                        bail!("the watch was cancelled ({})", resp.cancel_reason);
                    }
                    for event in resp.events() {
                        let Some(kv) = event.kv() else { continue };
                        let key = String::from_utf8_lossy(kv.key());
                        match event.event_type() {
                            EventType::Put => self.view.put(&key, kv.value()),
                            EventType::Delete => self.view.delete(&key),
                        }
                    }
                    self.apply()?;
                }
                _ = renew.tick() => node_lease.renew().await?,
                _ = renew_addr.tick() => addr_lease.renew().await?,
                _ = iface_check.tick() => {
                    if !self.uapi.has_interface(self.ifname()) {
                        return Err(anyhow!(Fatal).context(format!("interface {} is gone", self.ifname())));
                    }
                }
                _ = Self::stop_signal(term, int) => {
                    // Leave at once rather than after the TTL: peers drop us now.
                    let _ = bounded("cannot revoke the lease", client.lease_revoke(node_lease.id)).await;
                    self.node_lease = None;
                    return Ok(End::Stop);
                }
            }
        }
    }

    /// How long removals wait after a (re)connection: the others must have had time to
    /// notice etcd is back and re-register. Each retries at most TTL/3 (backoff, at least
    /// 0.25 s) after an attempt that waits at most TTL/3 (call bound, at least 1 s), then
    /// needs a few quick calls: TTL + 3 s covers that with room to spare, and bounds how
    /// long a node that died during an outage stays a peer once etcd is back.
    fn removal_hold(&self) -> Duration {
        Duration::from_secs(self.opts.ttl as u64) + REMOVAL_HOLD_EXTRA
    }

    /// Retries come at least every TTL/3: when etcd returns (a new leader gives every lease
    /// one more TTL), the agent must renew before its lease runs out, or the others would drop
    /// it and redo their sessions with it.
    fn backoff_max(&self) -> Duration {
        Duration::from_millis(self.opts.ttl as u64 * 1000 / 3).clamp(BACKOFF_MIN, BACKOFF_MAX)
    }

    fn bring_up(&mut self, index: u32) -> Result<()> {
        let ifname = self.ifname().to_string();
        let link = iface::bring_up(
            &mut self.nl,
            &self.uapi,
            &ifname,
            &self.key,
            self.opts.listen_port,
            &self.pool.interface_addresses(index),
            self.opts.mtu,
        )?;
        self.link = Some(link);
        self.status.address = self.pool.address(index).to_string();
        self.status.address6 = self.pool.address6(index).map(|a| a.to_string());
        Ok(())
    }

    /// The interface's peers as the device has them, read once: an adopted device (the agent
    /// restarted) starts from its real state.
    fn load_applied(&mut self) -> Result<&Peers> {
        if self.applied.is_none() {
            let ifname = self.ifname().to_string();
            let live = self
                .uapi
                .get(&ifname)
                .map_err(|e| anyhow!(Fatal).context(format!("cannot read {ifname}: {e}")))?;
            self.applied = Some(from_status(&live.peers));
        }
        Ok(self.applied.get_or_insert_with(Peers::new))
    }

    /// Brings the interface's peers to what the view wants, in one `set` holding only the
    /// differences.
    fn apply(&mut self) -> Result<()> {
        let ifname = self.ifname().to_string();
        let link_index = self.link.as_ref().map_or(0, |l| l.index);
        self.load_applied()?;
        let mut want = Peers::new();
        let mut lines = Vec::new();
        for node in self.view.peers(&self.me) {
            let mut allowed_ips = vec![IpPrefix::host(node.address)];
            allowed_ips.extend(node.address6.map(IpPrefix::host));
            sort(&mut allowed_ips);
            let endpoint = iface::choose_endpoint(&mut self.nl, link_index, &node.endpoints);
            lines.push(PeerLine {
                name: node.name.clone(),
                public_key: node.public_key.to_base64(),
                address: node.address.to_string(),
                endpoint: endpoint.map(|e| e.to_string()),
            });
            want.insert(
                node.public_key,
                Wanted {
                    endpoint,
                    allowed_ips,
                    keepalive: self.opts.keepalive,
                },
            );
        }
        let applied = self.applied.get_or_insert_with(Peers::new);
        let holding = self.hold_removals_until.filter(|&t| Instant::now() < t);
        let mut held = Vec::new();
        if let Some(until) = holding {
            for (key, have) in applied.iter() {
                if !want.contains_key(key) {
                    // Kept exactly as applied, so the diff leaves the session alone.
                    want.insert(*key, have.clone());
                    held.push(*key);
                    if let Some(line) = self
                        .status
                        .peers
                        .iter()
                        .find(|l| l.public_key == key.to_base64())
                    {
                        lines.push(line.clone());
                    }
                }
            }
            if !held.is_empty() && held != self.held {
                tracing::info!(
                    "keeping {} peer(s) whose records are gone for {:.1} s more: after a reconnection the others may still be re-registering",
                    held.len(),
                    until.saturating_duration_since(Instant::now()).as_secs_f64()
                );
            }
        }
        self.held = held;
        if let Some(request) = diff(applied, &want) {
            let added = want.keys().filter(|k| !applied.contains_key(k)).count();
            let removed = applied.keys().filter(|k| !want.contains_key(k)).count();
            tracing::info!(
                "peers: {} (+{added} -{removed}, {} changed)",
                want.len(),
                request.peers.len() - added - removed
            );
            self.uapi
                .set(&ifname, &request)
                .map_err(|e| anyhow!(Fatal).context(format!("cannot configure {ifname}: {e}")))?;
            *applied = want;
        }
        self.status.peers = lines;
        self.write_status();
        Ok(())
    }

    fn write_status(&self) {
        status::write(&self.state_dir, &self.status);
    }

    /// Leaving on purpose: the registration goes now (if etcd answers), then the interface.
    async fn shut_down(&mut self) {
        if let Some(id) = self.node_lease.take() {
            for which in 0..self.opts.etcd.endpoints.len() {
                let Ok(mut client) = registry::connect(&self.opts.etcd, self.cursor + which).await
                else {
                    continue;
                };
                if bounded("cannot revoke the lease", client_revoke(&mut client, id))
                    .await
                    .is_ok()
                {
                    break;
                }
            }
        }
        let ifname = self.ifname().to_string();
        if let Ok(Some(link)) = self.nl.link_by_name(&ifname) {
            if let Err(e) = self.nl.delete_link(&link) {
                tracing::warn!("cannot delete {ifname}: {e}");
            }
        }
        let _ = std::fs::remove_file(status::path(&self.state_dir));
        let _ = std::fs::remove_file(status::pid_path(&self.state_dir));
        tracing::info!("left mesh {}", self.mesh());
    }
}

async fn client_revoke(client: &mut Client, id: i64) -> Result<(), ferrotun_etcd::Error> {
    client.lease_revoke(id).await
}

/// An error no retry can mend (the interface is gone, or the address was lost): the agent
/// exits non-zero.
#[derive(Debug)]
struct Fatal;

impl std::fmt::Display for Fatal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("fatal")
    }
}

impl std::error::Error for Fatal {}
