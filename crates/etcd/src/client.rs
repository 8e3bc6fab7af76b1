//! Connecting to one etcd member, and the two shapes of call every API uses: one request
//! and one answer, or a stream each way. Each request carries the auth token (if any) and,
//! with "require leader", etcd's `hasleader` metadata.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use http::uri::PathAndQuery;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::client::Grpc;
use tonic::metadata::AsciiMetadataValue;
use tonic::transport::{Channel, Endpoint};
use tonic::Streaming;
use tonic_prost::ProstCodec;

use crate::credentials::{Credentials, Token};
use crate::error::Error;
use crate::tls::TlsOptions;

/// How [`Client::connect`] connects. Nothing is set by default: no timeouts, no HTTP/2
/// pings, no leader requirement, no authentication, plain HTTP/2 unless the URL is https.
#[derive(Clone, Debug, Default)]
pub struct ConnectOptions {
    connect_timeout: Option<Duration>,
    keep_alive: Option<(Duration, Duration)>,
    keep_alive_while_idle: bool,
    require_leader: bool,
    credentials: Option<Credentials>,
    tls: Option<TlsOptions>,
}

impl ConnectOptions {
    pub fn new() -> Self {
        ConnectOptions::default()
    }

    /// Gives up on establishing the connection (TCP and TLS) after `timeout`.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Sends an HTTP/2 ping every `interval` and closes the connection when one is not
    /// answered within `timeout`.
    pub fn with_keep_alive(mut self, interval: Duration, timeout: Duration) -> Self {
        self.keep_alive = Some((interval, timeout));
        self
    }

    /// Pings also while no request is in flight.
    pub fn with_keep_alive_while_idle(mut self, enabled: bool) -> Self {
        self.keep_alive_while_idle = enabled;
        self
    }

    /// Asks the member to fail requests (and end watches) while it has no leader, instead
    /// of waiting or serving from a member cut off from the quorum.
    pub fn with_require_leader(mut self, enabled: bool) -> Self {
        self.require_leader = enabled;
        self
    }

    /// Authenticates as `user` on connecting and again whenever the token is refused.
    pub fn with_user(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials = Some(Credentials {
            user: user.into(),
            password: password.into(),
        });
        self
    }

    /// Connects with TLS (the endpoint must be https:// or have no scheme).
    pub fn with_tls(mut self, tls: TlsOptions) -> Self {
        self.tls = Some(tls);
        self
    }
}

/// A connection to one etcd member. Cloning is cheap and shares the connection and the
/// auth token.
#[derive(Clone, Debug)]
pub struct Client {
    grpc: Grpc<Channel>,
    pub(crate) inner: Arc<Shared>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    endpoint: String,
    require_leader: bool,
    pub(crate) credentials: Option<Credentials>,
    pub(crate) token: RwLock<Option<Token>>,
}

const HTTP: &str = "http://";
const HTTPS: &str = "https://";

impl Client {
    /// Connects to `endpoint` (http://HOST:PORT, https://HOST:PORT, or HOST:PORT, which
    /// means https with TLS options and http without), then authenticates if a user is set.
    pub async fn connect(endpoint: &str, options: ConnectOptions) -> Result<Client, Error> {
        let invalid = |reason: String| Error::InvalidEndpoint {
            endpoint: endpoint.to_string(),
            reason,
        };
        let url = if endpoint.starts_with(HTTP) {
            if options.tls.is_some() {
                return Err(invalid("TLS options need an https:// endpoint".into()));
            }
            endpoint.to_string()
        } else if endpoint.starts_with(HTTPS) {
            endpoint.to_string()
        } else if options.tls.is_some() {
            format!("{HTTPS}{endpoint}")
        } else {
            format!("{HTTP}{endpoint}")
        };
        let mut ep = Endpoint::from_shared(url.clone()).map_err(|e| invalid(e.to_string()))?;
        if let Some(timeout) = options.connect_timeout {
            ep = ep.connect_timeout(timeout);
        }
        if let Some((interval, timeout)) = options.keep_alive {
            ep = ep
                .http2_keep_alive_interval(interval)
                .keep_alive_timeout(timeout);
        }
        ep = ep.keep_alive_while_idle(options.keep_alive_while_idle);
        if url.starts_with(HTTPS) {
            let tls = options.tls.clone().unwrap_or_default().to_tonic();
            ep = ep
                .tls_config(tls)
                .map_err(|e| Error::Tls(crate::error::chain(&e)))?;
        }
        let channel = ep.connect().await.map_err(Error::transport)?;
        let client = Client {
            grpc: Grpc::new(channel),
            inner: Arc::new(Shared {
                endpoint: endpoint.to_string(),
                require_leader: options.require_leader,
                credentials: options.credentials,
                token: RwLock::new(None),
            }),
        };
        client.refresh_token(None).await?;
        Ok(client)
    }

    /// The endpoint this client was connected to, as given.
    pub fn endpoint(&self) -> &str {
        &self.inner.endpoint
    }

    /// One request, one answer; sent again once with a new token if the token was refused.
    pub(crate) async fn unary<Req, Resp>(&self, path: &'static str, req: Req) -> Result<Resp, Error>
    where
        Req: prost::Message + Clone + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        self.with_fresh_token(|token| self.unary_once(path, req.clone(), token))
            .await
    }

    /// Runs `call` with the current token, and once more with a new one if etcd refused it
    /// as invalid or expired (only when the client logs in: without credentials there is
    /// nothing to renew).
    async fn with_fresh_token<T, F, Fut>(&self, mut call: F) -> Result<T, Error>
    where
        F: FnMut(Option<Token>) -> Fut,
        Fut: std::future::Future<Output = Result<T, Error>>,
    {
        let token = self.token();
        match call(token.clone()).await {
            Err(e) if e.is_stale_token() && self.inner.credentials.is_some() => {
                self.refresh_token(token).await?;
                call(self.token()).await
            }
            answer => answer,
        }
    }

    pub(crate) async fn unary_once<Req, Resp>(
        &self,
        path: &'static str,
        req: Req,
        token: Option<Token>,
    ) -> Result<Resp, Error>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let mut grpc = self.grpc.clone();
        grpc.ready().await.map_err(Error::transport)?;
        let request = self.request(req, token);
        let codec = ProstCodec::<Req, Resp>::default();
        let answer = grpc
            .unary(request, PathAndQuery::from_static(path), codec)
            .await?;
        Ok(answer.into_inner())
    }

    /// Opens a bidirectional stream whose first message is `first` (etcd answers, and so
    /// opens the stream, only once it has a message); sent again once with a new token if
    /// the token was refused.
    pub(crate) async fn open_stream<Req, Resp>(
        &self,
        path: &'static str,
        first: Req,
    ) -> Result<(mpsc::Sender<Req>, Streaming<Resp>), Error>
    where
        Req: prost::Message + Clone + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        self.with_fresh_token(|token| self.open_stream_once(path, first.clone(), token))
            .await
    }

    async fn open_stream_once<Req, Resp>(
        &self,
        path: &'static str,
        first: Req,
        token: Option<Token>,
    ) -> Result<(mpsc::Sender<Req>, Streaming<Resp>), Error>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let (sender, receiver) = mpsc::channel(16);
        sender
            .try_send(first)
            .map_err(|_| Error::StreamClosed("cannot queue the first request".into()))?;
        let mut grpc = self.grpc.clone();
        grpc.ready().await.map_err(Error::transport)?;
        let request = self.request(ReceiverStream::new(receiver), token);
        let codec = ProstCodec::<Req, Resp>::default();
        let answer = grpc
            .streaming(request, PathAndQuery::from_static(path), codec)
            .await?;
        Ok((sender, answer.into_inner()))
    }

    fn request<T>(&self, message: T, token: Option<Token>) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        let metadata = request.metadata_mut();
        if let Some(token) = token {
            metadata.insert("token", token);
        }
        if self.inner.require_leader {
            metadata.insert("hasleader", AsciiMetadataValue::from_static("true"));
        }
        request
    }
}
