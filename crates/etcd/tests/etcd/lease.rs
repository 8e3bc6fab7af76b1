use std::time::{Duration, Instant};

use ferrotun_etcd::{Code, Error};

use crate::server::Etcd;
use crate::within;

#[tokio::test]
async fn keep_alive_holds_the_key_and_expiry_deletes_it() {
    let etcd = Etcd::start().await;
    let c = etcd.client().await;
    let id = within("grant", c.lease_grant(2)).await.expect("grant");
    assert!(id != 0);
    within("put", c.put("/leased", "v", Some(id)))
        .await
        .unwrap();
    let mut keeper = within("keep-alive", c.lease_keep_alive(id))
        .await
        .expect("keep-alive stream");
    assert_eq!(keeper.id(), id);
    assert!(keeper.ttl() > 0);

    // Renewed for longer than the TTL: the key stays.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let ttl = within("renew", keeper.keep_alive()).await.expect("renew");
        assert!(ttl > 0);
    }
    assert_eq!(
        within("get", c.get("/leased")).await.unwrap().kvs().len(),
        1
    );
    assert!(within("ttl", c.lease_time_to_live(id)).await.unwrap() > 0);

    // No more renewals: the lease expires and takes the key with it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !within("get", c.get("/leased"))
        .await
        .unwrap()
        .kvs()
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "the leased key outlived its lease"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(within("ttl", c.lease_time_to_live(id)).await.unwrap(), -1);
    match within("renew", keeper.keep_alive()).await {
        Err(Error::LeaseNotFound { id: gone }) => assert_eq!(gone, id),
        other => panic!("renewing an expired lease: {other:?}"),
    }
    // Opening a keep-alive for a lease that is gone fails too.
    assert!(matches!(
        within("keep-alive", c.lease_keep_alive(id)).await,
        Err(Error::LeaseNotFound { .. })
    ));
}

#[tokio::test]
async fn time_to_live_after_revoke() {
    let etcd = Etcd::start().await;
    let c = etcd.client().await;
    let id = within("grant", c.lease_grant(60)).await.unwrap();
    let ttl = within("ttl", c.lease_time_to_live(id)).await.unwrap();
    assert!((1..=60).contains(&ttl), "ttl {ttl}");
    within("put", c.put("/k", "v", Some(id))).await.unwrap();
    within("revoke", c.lease_revoke(id)).await.expect("revoke");
    assert_eq!(within("ttl", c.lease_time_to_live(id)).await.unwrap(), -1);
    assert!(within("get", c.get("/k")).await.unwrap().kvs().is_empty());
    // A put on the revoked lease is refused with etcd's status.
    let err = within("put", c.put("/k", "v", Some(id))).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::NotFound), "{err}");
    assert!(err.to_string().contains("lease not found"), "{err}");
}
