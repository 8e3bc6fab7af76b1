//! Throw-away TLS material for tests that run a real etcd with TLS: a CA, a server
//! certificate for the given addresses and a client certificate, made with openssl.

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

/// Writes `ca.pem`/`ca-key.pem`, `server.pem`/`server-key.pem` (valid for `server_ips`) and
/// `client.pem`/`client-key.pem` into `dir`. P-256 keys, one day of validity.
pub fn make_test_certs(dir: &Path, server_ips: &[IpAddr]) {
    let key_opts = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(key_opts);
    ca.extend(["-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "1"]);
    ca.extend(["-subj", "/CN=ferrotun-test-ca"]);
    openssl(dir, &ca);

    let sans = server_ips
        .iter()
        .map(|ip| format!("IP:{ip}"))
        .collect::<Vec<_>>()
        .join(",");
    for (name, ext) in [
        (
            "server",
            format!("subjectAltName={sans}\nextendedKeyUsage=serverAuth\n"),
        ),
        ("client", "extendedKeyUsage=clientAuth\n".to_string()),
    ] {
        let (key, csr, pem, extfile) = (
            format!("{name}-key.pem"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        let subject = format!("/CN={name}");
        let mut req = vec!["req"];
        req.extend(key_opts);
        req.extend(["-keyout", &key, "-out", &csr, "-subj", &subject]);
        openssl(dir, &req);
        std::fs::write(dir.join(&extfile), ext).expect("cannot write the extension file");
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "1",
                "-extfile",
                &extfile,
            ],
        );
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("cannot run openssl");
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
}
