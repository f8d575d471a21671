//! `logbook serve` as a user runs it: refuses to listen beyond loopback
//! without a token, serves the demo's streams, and stops cleanly on
//! SIGTERM.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{logbook, refused};

#[test]
fn serving_beyond_loopback_without_a_token_is_refused() {
    let err = refused(
        logbook("memory:", &["serve", "--listen", "0.0.0.0:0"]),
        "without a token",
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

fn get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer)
}

#[test]
fn serve_shows_the_demos_streams_and_stops_on_sigterm() {
    // Given a store with the demo's streams
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("logbook.db").display());
    support::ok(logbook(&url, &["demo"]));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();

    // When it is served
    let server = Command::new(env!("CARGO_BIN_EXE_logbook"))
        .args([
            "--store",
            &url,
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env_remove("LOGBOOK_STORE")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let answer = loop {
        if let Some(answer) = get(port, "/api/v1/streams") {
            break answer;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the server never answered"
        );
        std::thread::sleep(Duration::from_millis(50));
    };

    // Then the demo's streams are listed, and the console is served
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("CargoShip-"), "{answer}");
    let page = get(port, "/").unwrap();
    assert!(page.contains("logbook console"), "{page}");

    // And SIGTERM stops it cleanly
    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let output = server.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{err}");
    assert!(err.contains("shutting down"), "{err}");
}
