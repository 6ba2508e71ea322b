//! The `flowgate` binary: `validate` and `serve`.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The benchmarks' helpers, for their loopback start-up poll (it refuses a socket connected to
/// itself, see `connect_to_listener`).
#[path = "../examples/common/mod.rs"]
mod bench_common;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_flowgate")
}

#[test]
fn validate_prints_the_canonical_model_of_a_good_flow() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hello.json");
    std::fs::write(
        &path,
        r#"{"name": "hello", "root": {"start_at": "A", "states": [{"name": "A", "type": "pass", "end": true}]}}"#,
    )
    .unwrap();
    let out = Command::new(bin())
        .args(["validate"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["name"], "hello");
    assert_eq!(v["root"]["states"][0]["type"], "pass");
}

#[test]
fn validate_lists_every_error_with_its_field_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.json");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(
        br#"{"name": "b", "root": {"start_at": "A", "states": [{"name": "A", "type": "pass", "next": "B"}, {"name": "C", "type": "pass", "next": "D"}]}}"#,
    )
    .unwrap();
    let out = Command::new(bin())
        .arg("validate")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("root.states[0].next"), "{err}");
    assert!(err.contains("root.states[1].next"), "{err}");
}

#[test]
fn serve_answers_health_and_stops_on_sigterm() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(bin())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("FLOWGATE_FLOWS__DIR", dir.path())
        .env("FLOWGATE_STORE__PATH", dir.path().join("flowgate.db"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut body = String::new();
    while Instant::now() < deadline {
        if let Some(mut s) = bench_common::connect_to_listener(port, Duration::from_secs(10)) {
            use std::io::Read;
            s.write_all(b"GET /_flowgate/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap();
            s.read_to_string(&mut body).unwrap();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("\"status\":\"ok\""), "{body}");
    let pid = child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "graceful shutdown exits 0, got {status:?}"
    );
}
