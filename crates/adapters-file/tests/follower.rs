//! A reader in one process following what a writer in another commits: the
//! read-only store takes no lock, so the writer is never blocked, and its
//! reads take in every batch the writer commits, across segment rolls, in
//! order, none twice and none missing.
//!
//! The writer is this test binary run again, with [`CHILD_DIR`] naming the
//! store, asked to run only [`child_process_appends_when_asked`].

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use logbook_adapters_file::{Durability, FileOptions, FileStore};
use logbook_ports::conformance::event;
use logbook_ports::{EventFilter, EventStore, ExpectedVersion, StreamId};

/// Set in the child's environment: the store it appends to.
const CHILD_DIR: &str = "LOGBOOK_FILE_TEST_CHILD_DIR";
/// Batches the writer appends, and events in each.
const BATCHES: u64 = 300;
const PER_BATCH: u64 = 3;

fn child_dir() -> Option<PathBuf> {
    std::env::var_os(CHILD_DIR).map(PathBuf::from)
}

/// The child: opens the store for writing (4 KiB segments, so it rolls
/// over many times) and appends its batches to two streams, pausing now and
/// then so that the follower reads while it writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_process_appends_when_asked() {
    let Some(dir) = child_dir() else {
        return; // run by the parent only
    };
    let store = FileStore::open(
        &dir,
        FileOptions::new()
            .durability(Durability::Always)
            .segment_size(4096),
    )
    .unwrap();
    std::fs::write(dir.join("writer-ready"), b"").unwrap();
    let events = store.events();
    for batch in 0..BATCHES {
        let stream = StreamId::new(format!("Counter-{}", batch % 2)).unwrap();
        let mut appended = Vec::new();
        for i in 0..PER_BATCH {
            let mut new = event("Counted", batch * PER_BATCH + i);
            new.payload = logbook_ports::conformance::payload(
                serde_json::json!({"n": batch * PER_BATCH + i}),
            );
            appended.push(new);
        }
        events
            .append(&stream, ExpectedVersion::Any, appended)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_store_follows_another_process_while_it_writes() {
    if child_dir().is_some() {
        return; // in the child: only `child_process_appends_when_asked` runs
    }
    // Given an empty store directory and a writer process appending to it
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().to_path_buf();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_process_appends_when_asked",
            "--exact",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(CHILD_DIR, &home)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !home.join("writer-ready").exists() {
        assert!(Instant::now() < deadline, "the writer never started");
        std::thread::sleep(Duration::from_millis(2));
    }

    // When this process opens it read-only and follows the log while the
    // writer appends (waiting on the commit signal, re-checking often)
    let reader = FileStore::open_read_only(&home).unwrap();
    assert!(reader.is_read_only());
    let at_open = reader.recovery_report().events;
    let events = reader.events();
    let mut signal = events.commits().expect("the file store signals");
    let total = BATCHES * PER_BATCH;
    let mut next = 1;
    let mut seen_while_writing = false;
    let deadline = Instant::now() + Duration::from_secs(120);
    while next <= total {
        let page = events
            .read_all(next, 100, &EventFilter::all())
            .await
            .unwrap();
        if !page.is_empty() && child.try_wait().unwrap().is_none() {
            seen_while_writing = true;
        }
        for recorded in &page {
            // Then every event arrives once, in order, with its content
            assert_eq!(recorded.position, next, "out of order or repeated");
            let payload: serde_json::Value =
                serde_json::from_slice(recorded.payload.as_bytes()).unwrap();
            assert_eq!(payload["n"], serde_json::json!(next - 1));
            next += 1;
        }
        if page.is_empty() {
            assert!(
                Instant::now() < deadline,
                "the follower stopped at position {next}"
            );
            let _ = tokio::time::timeout(Duration::from_millis(20), signal.changed()).await;
        }
    }

    // And the writer was never blocked by the reader: it appended all
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the writer failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        seen_while_writing,
        "the follower read nothing while the writer wrote"
    );
    assert!(
        at_open < total,
        "the writer had finished before the follower opened the store"
    );
    assert_eq!(events.head_position().await.unwrap(), Some(total));
    let zero = StreamId::new("Counter-0").unwrap();
    assert_eq!(
        events.stream_version(&zero).await.unwrap(),
        Some(BATCHES / 2 * PER_BATCH)
    );
}
