//! Reading, writing and deleting keys, and transactions (`etcdserverpb.KV`).

use crate::client::Client;
use crate::error::Error;
use crate::messages::{
    DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse, RangeRequest, RangeResponse,
    TxnRequest, TxnResponse,
};

const RANGE: &str = "/etcdserverpb.KV/Range";
const PUT: &str = "/etcdserverpb.KV/Put";
const DELETE_RANGE: &str = "/etcdserverpb.KV/DeleteRange";
const TXN: &str = "/etcdserverpb.KV/Txn";

/// The end of the range holding every key that starts with `prefix`: the prefix with its
/// last byte below 0xff incremented and what follows dropped. A prefix of only 0xff bytes
/// (or an empty one) has no such bound: `[0]`, which etcd reads as "no upper bound".
pub fn prefix_range_end(prefix: &[u8]) -> Vec<u8> {
    match prefix.iter().rposition(|&b| b < 0xff) {
        Some(i) => {
            let mut end = prefix[..=i].to_vec();
            end[i] += 1;
            end
        }
        None => vec![0],
    }
}

/// The (key, range_end) pair naming every key under `prefix`; the empty prefix is every
/// key, which etcd spells `("\0", "\0")`.
pub(crate) fn prefix_range(prefix: Vec<u8>) -> (Vec<u8>, Vec<u8>) {
    if prefix.is_empty() {
        return (vec![0], vec![0]);
    }
    let end = prefix_range_end(&prefix);
    (prefix, end)
}

impl Client {
    /// Any range read.
    pub async fn range(&self, request: RangeRequest) -> Result<RangeResponse, Error> {
        self.unary(RANGE, request).await
    }

    /// The key `key`, if it exists.
    pub async fn get(&self, key: impl Into<Vec<u8>>) -> Result<RangeResponse, Error> {
        let request = RangeRequest {
            key: key.into(),
            ..RangeRequest::default()
        };
        self.range(request).await
    }

    /// Every key starting with `prefix`, sorted by key, with the revision they were read at
    /// ([`RangeResponse::revision`]).
    pub async fn get_prefix(&self, prefix: impl Into<Vec<u8>>) -> Result<RangeResponse, Error> {
        let (key, range_end) = prefix_range(prefix.into());
        let request = RangeRequest {
            key,
            range_end,
            ..RangeRequest::default()
        };
        self.range(request).await
    }

    /// Sets `key` to `value`, attached to `lease` if given (the key goes when it expires).
    pub async fn put(
        &self,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
        lease: Option<i64>,
    ) -> Result<PutResponse, Error> {
        let request = PutRequest {
            key: key.into(),
            value: value.into(),
            lease: lease.unwrap_or(0),
            ..PutRequest::default()
        };
        self.unary(PUT, request).await
    }

    /// Deletes `key`.
    pub async fn delete(&self, key: impl Into<Vec<u8>>) -> Result<DeleteRangeResponse, Error> {
        let request = DeleteRangeRequest {
            key: key.into(),
            ..DeleteRangeRequest::default()
        };
        self.unary(DELETE_RANGE, request).await
    }

    /// Deletes every key starting with `prefix`.
    pub async fn delete_prefix(
        &self,
        prefix: impl Into<Vec<u8>>,
    ) -> Result<DeleteRangeResponse, Error> {
        let (key, range_end) = prefix_range(prefix.into());
        let request = DeleteRangeRequest {
            key,
            range_end,
            ..DeleteRangeRequest::default()
        };
        self.unary(DELETE_RANGE, request).await
    }

    /// Runs a transaction; [`TxnResponse::succeeded`] tells which branch ran.
    pub async fn txn(&self, txn: TxnRequest) -> Result<TxnResponse, Error> {
        self.unary(TXN, txn).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_the_last_byte() {
        assert_eq!(prefix_range_end(b"/mesh/a/"), b"/mesh/a0");
        assert_eq!(prefix_range_end(b"a"), b"b");
    }

    #[test]
    fn prefix_end_drops_trailing_0xff() {
        assert_eq!(prefix_range_end(&[b'a', 0xff]), b"b");
        assert_eq!(prefix_range_end(&[1, 0xfe, 0xff, 0xff]), [1, 0xff]);
    }

    #[test]
    fn prefix_end_of_all_0xff_is_unbounded() {
        assert_eq!(prefix_range_end(&[0xff, 0xff]), [0]);
        assert_eq!(prefix_range_end(&[]), [0]);
    }

    #[test]
    fn empty_prefix_is_every_key() {
        assert_eq!(prefix_range(Vec::new()), (vec![0], vec![0]));
        assert_eq!(prefix_range(b"k".to_vec()), (b"k".to_vec(), b"l".to_vec()));
    }
}
