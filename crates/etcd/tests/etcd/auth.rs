use std::time::Duration;

use ferrotun_etcd::{Client, ConnectOptions, Error, WatchOptions};

use crate::server::{ok, Etcd};
use crate::within;

/// etcd with a root user and authentication on; tokens live 1 s idle, so that a client
/// must authenticate again.
async fn etcd_with_auth() -> Etcd {
    let etcd = Etcd::start_with(&["--auth-token-ttl=1".to_string()]).await;
    ok(etcd.etcdctl(&["user", "add", "root:s3cret"]));
    ok(etcd.etcdctl(&["auth", "enable"]));
    etcd
}

#[tokio::test]
async fn user_and_password() {
    let etcd = etcd_with_auth().await;
    let opts = ConnectOptions::new().with_user("root", "s3cret");
    let c = within("connect", Client::connect(&etcd.endpoint, opts))
        .await
        .expect("connect with user and password");
    within("put", c.put("/a", "1", None)).await.expect("put");
    assert_eq!(within("get", c.get("/a")).await.unwrap().kvs().len(), 1);

    // The token expires while idle: the next calls authenticate again by themselves.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    within("put", c.put("/a", "2", None))
        .await
        .expect("put after the token expired");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut watch = within("watch", c.watch("/a", WatchOptions::new()))
        .await
        .expect("watch after the token expired");
    let created = within("watch", watch.message()).await.unwrap().unwrap();
    assert!(created.created && !created.canceled, "{created:?}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let id = within("grant", c.lease_grant(30))
        .await
        .expect("grant after the token expired");
    within("keep-alive", c.lease_keep_alive(id))
        .await
        .expect("keep-alive");
}

#[tokio::test]
async fn without_credentials_or_with_a_wrong_password() {
    let etcd = etcd_with_auth().await;
    let c = within(
        "connect",
        Client::connect(&etcd.endpoint, ConnectOptions::new()),
    )
    .await
    .expect("connecting needs no credentials");
    let err = within("put", c.put("/a", "1", None)).await.unwrap_err();
    assert!(err.code().is_some(), "{err:?}");
    assert!(err.to_string().contains("user name is empty"), "{err}");

    let opts = ConnectOptions::new().with_user("root", "wrong");
    let err = within("connect", Client::connect(&etcd.endpoint, opts))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Status { .. }), "{err:?}");
    assert!(err.to_string().contains("authentication failed"), "{err}");
}
