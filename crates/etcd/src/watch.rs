//! Watches (`etcdserverpb.Watch`): changes to a key or a prefix, from a revision on.

use tokio::sync::mpsc;
use tonic::Streaming;

use crate::client::Client;
use crate::error::{names_stale_token, Error};
use crate::kv::prefix_range;
use crate::messages::{
    watch_request::RequestUnion, WatchCancelRequest, WatchCreateRequest, WatchRequest,
    WatchResponse,
};

const WATCH: &str = "/etcdserverpb.Watch/Watch";

/// What [`Client::watch`] watches: by default the one key, from the next change on.
#[derive(Clone, Debug, Default)]
pub struct WatchOptions {
    prefix: bool,
    start_revision: i64,
    prev_kv: bool,
    progress_notify: bool,
}

impl WatchOptions {
    pub fn new() -> Self {
        WatchOptions::default()
    }

    /// Watches every key starting with the key given.
    pub fn with_prefix(mut self) -> Self {
        self.prefix = true;
        self
    }

    /// Reports the changes from this revision on (it may be in the past, unless compacted).
    pub fn with_start_revision(mut self, revision: i64) -> Self {
        self.start_revision = revision;
        self
    }

    /// Events carry the key's previous value too.
    pub fn with_prev_kv(mut self) -> Self {
        self.prev_kv = true;
        self
    }

    /// The server sends empty responses now and then while nothing changes.
    pub fn with_progress_notify(mut self) -> Self {
        self.progress_notify = true;
        self
    }
}

impl Client {
    /// Starts watching `key` (or the prefix `key`) and waits for etcd to confirm it. The
    /// confirmation (`created`, no events) is also the stream's first message. A watch etcd
    /// refused or cancelled at once comes back as a stream whose first message says so
    /// (`canceled`, `cancel_reason`, `compact_revision`).
    pub async fn watch(
        &self,
        key: impl Into<Vec<u8>>,
        options: WatchOptions,
    ) -> Result<WatchStream, Error> {
        let key = key.into();
        let (key, range_end) = if options.prefix {
            prefix_range(key)
        } else {
            (key, Vec::new())
        };
        let create = WatchRequest {
            request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
                key,
                range_end,
                start_revision: options.start_revision,
                progress_notify: options.progress_notify,
                prev_kv: options.prev_kv,
                watch_id: 0,
            })),
        };
        let token = self.token();
        let stream = self.open_watch(create.clone()).await?;
        // etcd refuses a watch whose token it does not accept in the cancel reason rather
        // than with an error status: with credentials, authenticate again and retry once.
        let refused = stream
            .pending
            .as_ref()
            .is_some_and(|r| r.canceled && names_stale_token(&r.cancel_reason));
        if refused && self.inner.credentials.is_some() && token.is_some() {
            self.refresh_token(token).await?;
            return self.open_watch(create).await;
        }
        Ok(stream)
    }

    async fn open_watch(&self, create: WatchRequest) -> Result<WatchStream, Error> {
        let (sender, stream) = self.open_stream(WATCH, create).await?;
        let mut watch = WatchStream {
            sender,
            stream,
            pending: None,
            watch_id: None,
        };
        let first = watch.next().await?;
        watch.pending = first;
        Ok(watch)
    }
}

/// The responses of one watch.
#[derive(Debug)]
pub struct WatchStream {
    sender: mpsc::Sender<WatchRequest>,
    stream: Streaming<WatchResponse>,
    /// The confirmation read by [`Client::watch`], not yet handed out.
    pending: Option<WatchResponse>,
    watch_id: Option<i64>,
}

impl WatchStream {
    /// The next response; `None` when etcd closed the stream.
    pub async fn message(&mut self) -> Result<Option<WatchResponse>, Error> {
        if let Some(first) = self.pending.take() {
            return Ok(Some(first));
        }
        self.next().await
    }

    async fn next(&mut self) -> Result<Option<WatchResponse>, Error> {
        let answer = self.stream.message().await?;
        if let Some(r) = &answer {
            if r.created {
                self.watch_id = Some(r.watch_id);
            }
        }
        Ok(answer)
    }

    /// The id etcd gave the watch (known once it confirmed it).
    pub fn watch_id(&self) -> Option<i64> {
        self.watch_id
    }

    /// Asks etcd to end the watch; a response with `canceled` follows.
    pub async fn cancel(&mut self) -> Result<(), Error> {
        let Some(watch_id) = self.watch_id else {
            return Err(Error::StreamClosed("the watch was never created".into()));
        };
        let cancel = WatchRequest {
            request_union: Some(RequestUnion::CancelRequest(WatchCancelRequest { watch_id })),
        };
        self.sender
            .send(cancel)
            .await
            .map_err(|_| Error::StreamClosed("the watch stream is closed".into()))
    }
}
