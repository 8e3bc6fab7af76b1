use super::*;
use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

fn temp_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "ferrotun-client-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A one-shot fake daemon: reads one request, hands it back, answers `reply`.
fn serve_once(path: &Path, reply: &'static str) -> std::thread::JoinHandle<String> {
    let listener = UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut op = String::new();
        reader.read_line(&mut op).unwrap();
        let body = read_message(&mut reader, 1 << 20)
            .unwrap()
            .unwrap_or_default();
        (&stream).write_all(reply.as_bytes()).unwrap();
        op + &body
    })
}

#[test]
fn get_and_set_against_a_fake_daemon() {
    let dir = temp_dir();
    let client = Client::with_dir(&dir);
    let server = serve_once(&dir.join("ft0.sock"), "listen_port=7\nerrno=0\n\n");
    assert_eq!(client.get("ft0").unwrap().listen_port, 7);
    assert_eq!(server.join().unwrap(), "get=1\n\n");

    std::fs::remove_file(dir.join("ft0.sock")).unwrap();
    let server = serve_once(&dir.join("ft0.sock"), "errno=-22\n\n");
    let req = SetRequest {
        listen_port: Some(9),
        ..Default::default()
    };
    let err = client.set("ft0", &req).unwrap_err();
    assert_eq!(err.to_string(), "Invalid argument");
    assert_eq!(err.errno(), 22);
    assert_eq!(server.join().unwrap(), "set=1\nlisten_port=9\n\n");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_bad_and_stale_sockets() {
    let dir = temp_dir();
    let client = Client::with_dir(&dir);
    assert_eq!(
        client.get("nope").unwrap_err().to_string(),
        "No such file or directory"
    );
    assert_eq!(
        client.get("a/b").unwrap_err().to_string(),
        "Invalid argument"
    );
    std::fs::write(dir.join("plain.sock"), b"").unwrap();
    assert_eq!(client.get("plain").unwrap_err().errno(), 9);

    // A socket nobody listens on any more: refused, then removed, then not listed.
    drop(UnixListener::bind(dir.join("stale.sock")).unwrap());
    let _live = UnixListener::bind(dir.join("live.sock")).unwrap();
    assert_eq!(client.list_interfaces().unwrap(), vec!["live".to_string()]);
    assert!(!dir.join("stale.sock").exists());
    assert!(dir.join("plain.sock").exists());
    std::fs::remove_dir_all(&dir).unwrap();

    assert!(Client::with_dir(dir.join("missing"))
        .list_interfaces()
        .unwrap()
        .is_empty());
}

#[test]
fn protocol_errors() {
    let dir = temp_dir();
    let client = Client::with_dir(&dir);
    let server = serve_once(&dir.join("ft1.sock"), "listen_port=7\n\n");
    let err = client.get("ft1").unwrap_err();
    assert!(err.to_string().starts_with("Protocol error"), "{err}");
    server.join().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn errno_text() {
    assert_eq!(errno_message(98), "Address already in use");
}
