use std::path::Path;
use std::time::{Duration, Instant};

use ferrotun_etcd::{Client, ConnectOptions, TlsOptions};

use ferrotun_testkit::certs::make_test_certs;

use crate::server::{Etcd, TempDir};

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap()
}

/// Connects and reads once, within 3 s; the error text otherwise.
async fn try_read(endpoint: &str, opts: ConnectOptions) -> Result<(), String> {
    let attempt = tokio::time::timeout(Duration::from_secs(3), async {
        let c = Client::connect(endpoint, opts).await?;
        c.get("/probe").await
    })
    .await;
    match attempt {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

#[tokio::test]
async fn tls_with_a_client_certificate() {
    let certs = TempDir::new("certs");
    make_test_certs(&certs.0, &[std::net::Ipv4Addr::LOCALHOST.into()]);
    let file = |name: &str| certs.0.join(name).display().to_string();
    let etcd = Etcd::start_with(&[
        format!("--cert-file={}", file("server.pem")),
        format!("--key-file={}", file("server-key.pem")),
        format!("--trusted-ca-file={}", file("ca.pem")),
        "--client-cert-auth".to_string(),
    ])
    .await;
    let full = || {
        ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(2))
            .with_tls(
                TlsOptions::new()
                    .with_ca_pem(read(&certs.0, "ca.pem"))
                    .with_identity_pem(
                        read(&certs.0, "client.pem"),
                        read(&certs.0, "client-key.pem"),
                    ),
            )
    };
    // Wait (bounded) for the member to answer, with the right credentials.
    let deadline = Instant::now() + Duration::from_secs(15);
    while let Err(e) = try_read(&etcd.endpoint, full()).await {
        assert!(
            Instant::now() < deadline,
            "no TLS answer: {e}\n{}",
            etcd.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let c = Client::connect(&etcd.endpoint, full()).await.unwrap();
    crate::within("put", c.put("/tls", "yes", None))
        .await
        .unwrap();

    // Without a client certificate the server refuses.
    let no_identity =
        ConnectOptions::new().with_tls(TlsOptions::new().with_ca_pem(read(&certs.0, "ca.pem")));
    let err = try_read(&etcd.endpoint, no_identity).await.unwrap_err();
    assert!(err != "timed out", "{err}");
    // Without the CA the server's certificate is not trusted.
    let no_ca = ConnectOptions::new().with_tls(TlsOptions::new().with_identity_pem(
        read(&certs.0, "client.pem"),
        read(&certs.0, "client-key.pem"),
    ));
    let err = try_read(&etcd.endpoint, no_ca).await.unwrap_err();
    assert!(err != "timed out", "{err}");
    // Plain HTTP/2 to a TLS port does not work, and TLS options with http:// are refused.
    assert!(try_read(
        &etcd.endpoint.replace("https", "http"),
        ConnectOptions::new()
    )
    .await
    .is_err());
    let err = try_read(&etcd.endpoint.replace("https", "http"), full())
        .await
        .unwrap_err();
    assert!(err.contains("https://"), "{err}");
}
