//! Transactions: `etcdserverpb.Compare`, `RequestOp`, `ResponseOp`, `TxnRequest` and
//! `TxnResponse`, with builders for the compares and operations.

use super::kv::{
    DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse, RangeRequest, RangeResponse,
    ResponseHeader,
};

/// `etcdserverpb.Compare.CompareResult`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum CompareResult {
    Equal = 0,
    Greater = 1,
    Less = 2,
    NotEqual = 3,
}

/// `etcdserverpb.Compare.CompareTarget`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum CompareTarget {
    Version = 0,
    Create = 1,
    Mod = 2,
    Value = 3,
    Lease = 4,
}

/// `etcdserverpb.Compare`: one condition of a transaction.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Compare {
    #[prost(enumeration = "CompareResult", tag = "1")]
    pub result: i32,
    #[prost(enumeration = "CompareTarget", tag = "2")]
    pub target: i32,
    #[prost(bytes = "vec", tag = "3")]
    pub key: Vec<u8>,
    #[prost(oneof = "compare::TargetUnion", tags = "4, 5, 6, 7, 8")]
    pub target_union: Option<compare::TargetUnion>,
    #[prost(bytes = "vec", tag = "64")]
    pub range_end: Vec<u8>,
}

pub mod compare {
    /// What a [`super::Compare`] compares the key's field with.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum TargetUnion {
        #[prost(int64, tag = "4")]
        Version(i64),
        #[prost(int64, tag = "5")]
        CreateRevision(i64),
        #[prost(int64, tag = "6")]
        ModRevision(i64),
        #[prost(bytes, tag = "7")]
        Value(Vec<u8>),
        #[prost(int64, tag = "8")]
        Lease(i64),
    }
}

impl Compare {
    fn new(
        key: impl Into<Vec<u8>>,
        result: CompareResult,
        target: CompareTarget,
        with: compare::TargetUnion,
    ) -> Compare {
        Compare {
            result: result as i32,
            target: target as i32,
            key: key.into(),
            target_union: Some(with),
            range_end: Vec::new(),
        }
    }

    /// The key's value compared with `value` (a missing key fails every value compare).
    pub fn value(
        key: impl Into<Vec<u8>>,
        result: CompareResult,
        value: impl Into<Vec<u8>>,
    ) -> Compare {
        let with = compare::TargetUnion::Value(value.into());
        Compare::new(key, result, CompareTarget::Value, with)
    }

    /// The key's creation revision compared with `revision` (0: the key does not exist).
    pub fn create_revision(
        key: impl Into<Vec<u8>>,
        result: CompareResult,
        revision: i64,
    ) -> Compare {
        let with = compare::TargetUnion::CreateRevision(revision);
        Compare::new(key, result, CompareTarget::Create, with)
    }

    /// The key's last modification revision compared with `revision`.
    pub fn mod_revision(key: impl Into<Vec<u8>>, result: CompareResult, revision: i64) -> Compare {
        let with = compare::TargetUnion::ModRevision(revision);
        Compare::new(key, result, CompareTarget::Mod, with)
    }

    /// The key's version (number of puts since creation) compared with `version`.
    pub fn version(key: impl Into<Vec<u8>>, result: CompareResult, version: i64) -> Compare {
        let with = compare::TargetUnion::Version(version);
        Compare::new(key, result, CompareTarget::Version, with)
    }
}

/// `etcdserverpb.RequestOp`: one operation of a transaction's branch.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RequestOp {
    #[prost(oneof = "request_op::Request", tags = "1, 2, 3")]
    pub request: Option<request_op::Request>,
}

pub mod request_op {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Request {
        #[prost(message, tag = "1")]
        RequestRange(super::RangeRequest),
        #[prost(message, tag = "2")]
        RequestPut(super::PutRequest),
        #[prost(message, tag = "3")]
        RequestDeleteRange(super::DeleteRangeRequest),
    }
}

impl RequestOp {
    /// Puts `value` at `key`, attached to `lease` if given.
    pub fn put(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>, lease: Option<i64>) -> Self {
        let put = PutRequest {
            key: key.into(),
            value: value.into(),
            lease: lease.unwrap_or(0),
            ..PutRequest::default()
        };
        RequestOp {
            request: Some(request_op::Request::RequestPut(put)),
        }
    }

    /// Reads `key`.
    pub fn get(key: impl Into<Vec<u8>>) -> Self {
        let range = RangeRequest {
            key: key.into(),
            ..RangeRequest::default()
        };
        RequestOp {
            request: Some(request_op::Request::RequestRange(range)),
        }
    }

    /// Deletes `key`.
    pub fn delete(key: impl Into<Vec<u8>>) -> Self {
        let delete = DeleteRangeRequest {
            key: key.into(),
            ..DeleteRangeRequest::default()
        };
        RequestOp {
            request: Some(request_op::Request::RequestDeleteRange(delete)),
        }
    }
}

/// `etcdserverpb.ResponseOp`: the answer to one [`RequestOp`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct ResponseOp {
    #[prost(oneof = "response_op::Response", tags = "1, 2, 3")]
    pub response: Option<response_op::Response>,
}

pub mod response_op {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Response {
        #[prost(message, tag = "1")]
        ResponseRange(super::RangeResponse),
        #[prost(message, tag = "2")]
        ResponsePut(super::PutResponse),
        #[prost(message, tag = "3")]
        ResponseDeleteRange(super::DeleteRangeResponse),
    }
}

/// `etcdserverpb.TxnRequest`: if every compare holds, the `success` operations run,
/// otherwise the `failure` ones, all in one revision.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TxnRequest {
    #[prost(message, repeated, tag = "1")]
    pub compare: Vec<Compare>,
    #[prost(message, repeated, tag = "2")]
    pub success: Vec<RequestOp>,
    #[prost(message, repeated, tag = "3")]
    pub failure: Vec<RequestOp>,
}

impl TxnRequest {
    pub fn new() -> Self {
        TxnRequest::default()
    }

    /// Adds conditions (all must hold).
    pub fn when(mut self, compares: impl IntoIterator<Item = Compare>) -> Self {
        self.compare.extend(compares);
        self
    }

    /// Adds operations run when the conditions hold.
    pub fn and_then(mut self, ops: impl IntoIterator<Item = RequestOp>) -> Self {
        self.success.extend(ops);
        self
    }

    /// Adds operations run when a condition does not hold.
    pub fn or_else(mut self, ops: impl IntoIterator<Item = RequestOp>) -> Self {
        self.failure.extend(ops);
        self
    }
}

/// `etcdserverpb.TxnResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TxnResponse {
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// True when the conditions held (the `success` branch ran).
    #[prost(bool, tag = "2")]
    pub succeeded: bool,
    #[prost(message, repeated, tag = "3")]
    pub responses: Vec<ResponseOp>,
}
