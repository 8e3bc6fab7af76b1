//! `ferrotun mesh up|down|status` arguments.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use ferrotun_uapi::IpPrefix;

// No `help` subcommand: ferrotun's command tree has none below the top-level `help`, which
// clap imposes on the mesh there too, so `mesh --help` and `help mesh` print the same.
// `mesh help [up]` still works: main() turns it into `mesh [up] --help`.
#[derive(Debug, Parser)]
#[command(
    name = "ferrotun mesh",
    about = "A WireGuard mesh whose state lives in etcd",
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Join mesh NAME (interface NAME) and keep it in sync; runs in the foreground.
    Up(Box<UpOptions>),
    /// Leave mesh NAME: stop its agent (which deregisters) and delete the interface.
    Down(NameOptions),
    /// Show this node's view of mesh NAME.
    Status(NameOptions),
}

#[derive(Debug, Args)]
pub struct NameOptions {
    /// The mesh, also the name of its interface.
    pub name: String,
    /// Where the node keeps its private key and the agent's status (default
    /// /var/lib/ferrotun/mesh/NAME).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct UpOptions {
    #[command(flatten)]
    pub name: NameOptions,
    #[command(flatten)]
    pub etcd: EtcdOptions,
    /// The mesh's IPv4 network; each node gets one address from it.
    #[arg(long, value_parser = parse_prefix)]
    pub cidr: IpPrefix,
    /// The mesh's IPv6 network; a node's IPv6 address has the same host number.
    #[arg(long, value_parser = parse_prefix)]
    pub cidr6: Option<IpPrefix>,
    /// An extra endpoint to publish first (HOST:PORT), e.g. a public or port-forwarded one.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// The WireGuard listen port.
    #[arg(long, default_value_t = 51820)]
    pub listen_port: u16,
    /// Seconds a node's registration outlives its last lease renewal.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(i64).range(2..=3600))]
    pub ttl: i64,
    /// Seconds an address stays reserved for a node that is gone.
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(i64).range(2..=31_536_000))]
    pub grace: i64,
    /// Persistent keepalive towards every peer (0 = off); keeps NAT mappings open.
    #[arg(long, default_value_t = 25)]
    pub keepalive: u16,
    /// The interface (default: NAME).
    #[arg(long)]
    pub interface: Option<String>,
    /// The node's name as others see it (default: the host name).
    #[arg(long)]
    pub node_name: Option<String>,
    /// The interface's MTU (1280-65535).
    #[arg(long, default_value_t = 1420, value_parser = clap::value_parser!(u32).range(1280..=65535))]
    pub mtu: u32,
}

#[derive(Debug, Clone, Args)]
pub struct EtcdOptions {
    /// etcd endpoints, comma-separated (http://HOST:2379 or https://...).
    #[arg(long = "etcd", value_delimiter = ',', required = true)]
    pub endpoints: Vec<String>,
    /// etcd user (its password from --etcd-password-file or FERROTUN_ETCD_PASSWORD).
    #[arg(long = "etcd-user")]
    pub user: Option<String>,
    /// File holding the password of --etcd-user (one line; a trailing newline is ignored).
    #[arg(long = "etcd-password-file")]
    pub password_file: Option<PathBuf>,
    /// CA certificate (PEM) that signed the etcd servers' certificates.
    #[arg(long = "etcd-cacert")]
    pub cacert: Option<PathBuf>,
    /// Client certificate (PEM) for etcd's client-certificate authentication (with --etcd-key).
    #[arg(long = "etcd-cert")]
    pub cert: Option<PathBuf>,
    /// The private key (PEM) of the --etcd-cert client certificate.
    #[arg(long = "etcd-key")]
    pub key: Option<PathBuf>,
}

impl EtcdOptions {
    /// The password comes from a file or the environment, never from the command line
    /// (where every user could read it in /proc).
    pub fn password(&self) -> Result<String> {
        if let Some(path) = &self.password_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            return Ok(text.trim_end_matches(['\n', '\r']).to_string());
        }
        match std::env::var("FERROTUN_ETCD_PASSWORD") {
            Ok(p) => Ok(p),
            Err(_) => bail!("--etcd-user needs --etcd-password-file or FERROTUN_ETCD_PASSWORD"),
        }
    }
}

fn parse_prefix(text: &str) -> Result<IpPrefix, String> {
    IpPrefix::parse(text).map_err(|e| format!("{e}"))
}

impl NameOptions {
    pub fn state_dir(&self) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("/var/lib/ferrotun/mesh").join(&self.name))
    }
}
