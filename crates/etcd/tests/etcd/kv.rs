use ferrotun_etcd::{Client, Compare, CompareResult, RequestOp, TxnRequest};

use crate::server::Etcd;
use crate::within;

async fn client(etcd: &Etcd) -> Client {
    etcd.client().await
}

#[tokio::test]
async fn put_and_range_with_prefix() {
    let etcd = Etcd::start().await;
    let c = client(&etcd).await;
    for (k, v) in [
        ("/p/a", "1"),
        ("/p/b", "2"),
        ("/p0", "x"),
        ("/q", "y"),
        ("/p", "z"),
    ] {
        within("put", c.put(k, v, None)).await.expect("put");
    }
    let last = within("put", c.put("/p/c", "3", None)).await.unwrap();
    let got = within("range", c.get_prefix("/p/")).await.expect("range");
    let pairs: Vec<(&str, &[u8])> = got
        .kvs()
        .iter()
        .map(|kv| (kv.key_str().unwrap(), kv.value()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("/p/a", &b"1"[..]),
            ("/p/b", &b"2"[..]),
            ("/p/c", &b"3"[..])
        ]
    );
    assert_eq!(got.revision(), last.header.unwrap().revision);

    let one = within("get", c.get("/q")).await.unwrap();
    assert_eq!(one.kvs().len(), 1);
    assert!(within("get", c.get("/nothing"))
        .await
        .unwrap()
        .kvs()
        .is_empty());

    // A prefix ending in 0xff: the bound is the byte before it, incremented.
    within("put", c.put(vec![b'x', 0xff, b'a'], "in", None))
        .await
        .unwrap();
    within("put", c.put(vec![b'x', 0xff], "in", None))
        .await
        .unwrap();
    within("put", c.put("y", "out", None)).await.unwrap();
    let got = within("range", c.get_prefix(vec![b'x', 0xff]))
        .await
        .unwrap();
    assert_eq!(got.kvs().len(), 2, "{got:?}");

    let deleted = within("delete", c.delete_prefix("/p/")).await.unwrap();
    assert_eq!(deleted.deleted, 3);
    assert!(within("range", c.get_prefix("/p/"))
        .await
        .unwrap()
        .kvs()
        .is_empty());
}

#[tokio::test]
async fn txn_compare_and_swap() {
    let etcd = Etcd::start().await;
    let c = client(&etcd).await;
    let claim = |who: &str| {
        TxnRequest::new()
            .when([Compare::create_revision("/addr/1", CompareResult::Equal, 0)])
            .and_then([RequestOp::put("/addr/1", who, None)])
    };
    // The key does not exist: the first claim wins, the second loses.
    assert!(
        within("txn", c.txn(claim("alice")))
            .await
            .unwrap()
            .succeeded
    );
    assert!(!within("txn", c.txn(claim("bob"))).await.unwrap().succeeded);
    let owner = within("get", c.get("/addr/1")).await.unwrap();
    assert_eq!(owner.kvs()[0].value(), b"alice");

    // Value compare: only the current owner's value passes.
    let renew = |expect: &str, new: &str| {
        TxnRequest::new()
            .when([Compare::value("/addr/1", CompareResult::Equal, expect)])
            .and_then([RequestOp::put("/addr/1", new, None)])
            .or_else([RequestOp::get("/addr/1")])
    };
    let lost = within("txn", c.txn(renew("bob", "bob2"))).await.unwrap();
    assert!(!lost.succeeded);
    assert_eq!(lost.responses.len(), 1, "the failure branch ran");
    assert!(
        within("txn", c.txn(renew("alice", "alice2")))
            .await
            .unwrap()
            .succeeded
    );
    let owner = within("get", c.get("/addr/1")).await.unwrap();
    assert_eq!(owner.kvs()[0].value(), b"alice2");
}
