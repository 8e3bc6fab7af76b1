use std::time::{Duration, Instant};

use ferrotun_etcd::{Client, Code, ConnectOptions};

use crate::server::{free_ports, Etcd, Member};
use crate::within;

/// A two-member cluster that loses one member has no leader; with "require leader" the
/// other member says so at once, without it a linearizable read just waits.
#[tokio::test]
async fn require_leader_fails_fast_without_a_leader() {
    let ports = free_ports(4);
    let members = [
        Member {
            name: "a".into(),
            client_port: ports[0],
            peer_port: ports[1],
        },
        Member {
            name: "b".into(),
            client_port: ports[2],
            peer_port: ports[3],
        },
    ];
    let cluster = members
        .iter()
        .map(|m| format!("{}={}", m.name, m.peer_url()))
        .collect::<Vec<_>>()
        .join(",");
    let fast = ["--heartbeat-interval=50", "--election-timeout=300"].map(String::from);
    let a = Etcd::spawn(&members[0], &cluster, &fast);
    let mut b = Etcd::spawn(&members[1], &cluster, &fast);
    a.wait_ready().await;
    b.wait_ready().await;

    let leader = ConnectOptions::new().with_require_leader(true);
    let c = within("connect", Client::connect(&a.endpoint, leader))
        .await
        .unwrap();
    within("put", c.put("/k", "v", None))
        .await
        .expect("put with a leader");
    let patient = within(
        "connect",
        Client::connect(&a.endpoint, ConnectOptions::new()),
    )
    .await
    .unwrap();

    b.kill();
    let deadline = Instant::now() + Duration::from_secs(10);
    let err = loop {
        match tokio::time::timeout(Duration::from_secs(2), c.get("/k")).await {
            Ok(Err(e)) => break e,
            other => {
                assert!(
                    Instant::now() < deadline,
                    "never told of no leader: {other:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!(err.code(), Some(Code::Unavailable), "{err}");
    assert!(err.to_string().contains("no leader"), "{err}");

    // Without the requirement the same read is not refused at once: it waits for a leader.
    let waited = tokio::time::timeout(Duration::from_secs(1), patient.get("/k")).await;
    assert!(waited.is_err(), "{waited:?}");
}
