//! Leases (`etcdserverpb.Lease`): grant, time-to-live, revoke, and the keep-alive stream.

use tokio::sync::mpsc;
use tonic::Streaming;

use crate::client::Client;
use crate::error::Error;
use crate::messages::{
    LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse,
    LeaseRevokeRequest, LeaseRevokeResponse, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse,
};

const GRANT: &str = "/etcdserverpb.Lease/LeaseGrant";
const REVOKE: &str = "/etcdserverpb.Lease/LeaseRevoke";
const KEEP_ALIVE: &str = "/etcdserverpb.Lease/LeaseKeepAlive";
const TIME_TO_LIVE: &str = "/etcdserverpb.Lease/LeaseTimeToLive";

impl Client {
    /// A new lease of `ttl` seconds; its id.
    pub async fn lease_grant(&self, ttl: i64) -> Result<i64, Error> {
        let request = LeaseGrantRequest { ttl, id: 0 };
        let answer: LeaseGrantResponse = self.unary(GRANT, request).await?;
        if !answer.error.is_empty() {
            return Err(Error::Status {
                code: tonic::Code::Unknown,
                message: answer.error,
            });
        }
        Ok(answer.id)
    }

    /// Seconds lease `id` has left; -1 when it has expired, been revoked or never existed.
    pub async fn lease_time_to_live(&self, id: i64) -> Result<i64, Error> {
        let request = LeaseTimeToLiveRequest { id, keys: false };
        let answer: LeaseTimeToLiveResponse = self.unary(TIME_TO_LIVE, request).await?;
        Ok(answer.ttl)
    }

    /// Ends lease `id` now: its keys are deleted.
    pub async fn lease_revoke(&self, id: i64) -> Result<(), Error> {
        let _: LeaseRevokeResponse = self.unary(REVOKE, LeaseRevokeRequest { id }).await?;
        Ok(())
    }

    /// Opens the keep-alive stream for lease `id`, renewing it once; an error
    /// ([`Error::LeaseNotFound`]) if the lease no longer exists.
    pub async fn lease_keep_alive(&self, id: i64) -> Result<LeaseKeepAlive, Error> {
        let (sender, stream) = self
            .open_stream(KEEP_ALIVE, LeaseKeepAliveRequest { id })
            .await?;
        let mut keeper = LeaseKeepAlive {
            id,
            ttl: 0,
            sender,
            stream,
        };
        keeper.answer().await?;
        Ok(keeper)
    }
}

/// The keep-alive stream of one lease: each [`LeaseKeepAlive::keep_alive`] renews it.
#[derive(Debug)]
pub struct LeaseKeepAlive {
    id: i64,
    ttl: i64,
    sender: mpsc::Sender<LeaseKeepAliveRequest>,
    stream: Streaming<LeaseKeepAliveResponse>,
}

impl LeaseKeepAlive {
    pub fn id(&self) -> i64 {
        self.id
    }

    /// The TTL the last renewal answered with.
    pub fn ttl(&self) -> i64 {
        self.ttl
    }

    /// Renews the lease and waits for the answer: the renewed TTL in seconds, or
    /// [`Error::LeaseNotFound`] when the lease has expired or was revoked. Answers come in
    /// order; a call abandoned before its answer leaves that answer for the next call.
    pub async fn keep_alive(&mut self) -> Result<i64, Error> {
        self.sender
            .send(LeaseKeepAliveRequest { id: self.id })
            .await
            .map_err(|_| Error::StreamClosed("the lease keep-alive stream is closed".into()))?;
        self.answer().await
    }

    async fn answer(&mut self) -> Result<i64, Error> {
        match self.stream.message().await? {
            Some(answer) if answer.ttl > 0 => {
                self.ttl = answer.ttl;
                Ok(answer.ttl)
            }
            Some(_) => Err(Error::LeaseNotFound { id: self.id }),
            None => Err(Error::StreamClosed(
                "the lease keep-alive stream ended".into(),
            )),
        }
    }
}
