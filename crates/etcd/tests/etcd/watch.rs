use ferrotun_etcd::{EventType, WatchOptions};

use crate::server::Etcd;
use crate::within;

#[tokio::test]
async fn watch_sees_put_and_delete_from_a_revision() {
    let etcd = Etcd::start().await;
    let c = etcd.client().await;
    within("put", c.put("/m/a", "1", None)).await.unwrap();
    let start = within("range", c.get_prefix("/m/"))
        .await
        .unwrap()
        .revision();
    // Made before the watch: seen only because the watch starts at `start + 1`.
    within("put", c.put("/m/b", "2", None)).await.unwrap();
    within("put", c.put("/other", "x", None)).await.unwrap();
    within("delete", c.delete("/m/a")).await.unwrap();

    let mut watch = within(
        "watch",
        c.watch(
            "/m/",
            WatchOptions::new()
                .with_prefix()
                .with_start_revision(start + 1),
        ),
    )
    .await
    .expect("watch");
    let first = within("created", watch.message()).await.unwrap().unwrap();
    assert!(first.created && !first.canceled, "{first:?}");
    assert_eq!(watch.watch_id(), Some(first.watch_id));

    let mut seen = Vec::new();
    while seen.len() < 3 {
        let resp = within("events", watch.message()).await.unwrap().unwrap();
        assert!(!resp.canceled, "{resp:?}");
        for event in resp.events() {
            let kv = event.kv().unwrap();
            seen.push((
                event.event_type(),
                kv.key_str().unwrap().to_string(),
                kv.value().to_vec(),
            ));
        }
        if seen.len() == 2 {
            // A change made after the watch started.
            within("put", c.put("/m/c", "3", None)).await.unwrap();
        }
    }
    assert_eq!(
        seen,
        [
            (EventType::Put, "/m/b".to_string(), b"2".to_vec()),
            (EventType::Delete, "/m/a".to_string(), Vec::new()),
            (EventType::Put, "/m/c".to_string(), b"3".to_vec()),
        ]
    );

    watch.cancel().await.unwrap();
    let cancelled = within("cancel", watch.message()).await.unwrap().unwrap();
    assert!(cancelled.canceled, "{cancelled:?}");
}

#[tokio::test]
async fn watch_from_a_compacted_revision_is_cancelled() {
    let etcd = Etcd::start().await;
    let c = etcd.client().await;
    for i in 0..3 {
        within("put", c.put("/m/k", format!("{i}"), None))
            .await
            .unwrap();
    }
    let rev = within("get", c.get("/m/k")).await.unwrap().revision();
    crate::server::ok(etcd.etcdctl(&["compact", &rev.to_string()]));
    let mut watch = within(
        "watch",
        c.watch(
            "/m/",
            WatchOptions::new().with_prefix().with_start_revision(1),
        ),
    )
    .await
    .unwrap();
    // The confirmation, then (or at once) the cancellation with the compacted revision.
    let mut resp = within("watch", watch.message()).await.unwrap().unwrap();
    if !resp.canceled {
        resp = within("watch", watch.message()).await.unwrap().unwrap();
    }
    assert!(resp.canceled, "{resp:?}");
    assert_eq!(resp.compact_revision, rev, "{resp:?}");
}
