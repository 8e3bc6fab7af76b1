//! etcd's v3 API messages, written by hand with `prost`'s derive (no code generation).
//! Field numbers and types follow etcd's public protobuf definitions: `etcdserverpb`
//! (api/etcdserverpb/rpc.proto) and `mvccpb` (api/mvccpb/kv.proto). Only the messages and
//! fields this client uses are here; fields a server sends that are not declared are
//! skipped when decoding, as protobuf intends.

mod auth;
mod kv;
mod lease;
mod txn;
mod watch;

pub use auth::{AuthenticateRequest, AuthenticateResponse};
pub use kv::{
    DeleteRangeRequest, DeleteRangeResponse, KeyValue, PutRequest, PutResponse, RangeRequest,
    RangeResponse, ResponseHeader,
};
pub use lease::{
    LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse,
    LeaseRevokeRequest, LeaseRevokeResponse, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse,
};
pub use txn::{
    compare, request_op, response_op, Compare, CompareResult, CompareTarget, RequestOp, ResponseOp,
    TxnRequest, TxnResponse,
};
pub use watch::{
    watch_request, Event, EventType, WatchCancelRequest, WatchCreateRequest, WatchRequest,
    WatchResponse,
};
