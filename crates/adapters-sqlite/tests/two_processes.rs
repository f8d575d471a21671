//! Two processes appending to one database file at once, as two `logbook`
//! invocations would.
//!
//! The second process is this test binary run again, with
//! [`CHILD_DB`] naming the database, asked to run only
//! [`child_process_appends_when_asked`]: a real process with its own SQLite
//! connections, locks and writer thread, without a helper binary to build
//! and find.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use logbook_adapters_sqlite::{SqliteOptions, SqliteStore};
use logbook_ports::conformance::event;
use logbook_ports::{EventFilter, EventStore, ExpectedVersion, ReadDirection, StreamId};

/// Set in the child's environment: the database it appends to.
const CHILD_DB: &str = "LOGBOOK_SQLITE_TEST_CHILD_DB";
/// Appends each process makes to the shared stream (and to its own).
const APPENDS: u64 = 150;
const SHARED: &str = "Counter-1";

fn stream(name: &str) -> StreamId {
    StreamId::new(name).unwrap()
}

/// Waits until `file` exists (the other process reached the start line).
fn wait_for(file: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !file.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// One process's work: `APPENDS` appends to the shared stream, each
/// expecting the version it just read and retrying on a conflict, and as
/// many to a stream of its own. Returns how many conflicts it met.
async fn append_as(who: &str, store: &SqliteStore) -> u64 {
    let events = store.event_store();
    let shared = stream(SHARED);
    let own = stream(&format!("Process-{who}"));
    let mut conflicts = 0;
    for i in 0..APPENDS {
        let mut payload = event("Counted", i);
        payload.payload =
            logbook_ports::conformance::payload(serde_json::json!({"who": who, "i": i}));
        loop {
            let current = events.stream_version(&shared).await.unwrap();
            match events
                .append(
                    &shared,
                    ExpectedVersion::from_current(current),
                    vec![payload.clone()],
                )
                .await
            {
                Ok(_) => break,
                Err(error) if error.is_conflict() => conflicts += 1,
                Err(error) => panic!("{who}: unexpected error: {error}"),
            }
        }
        events
            .append(&own, ExpectedVersion::Any, vec![event("Counted", i)])
            .await
            .unwrap();
    }
    conflicts
}

fn child_db() -> Option<PathBuf> {
    std::env::var_os(CHILD_DB).map(PathBuf::from)
}

/// Not a test on its own: the body of the second process. Run without
/// [`CHILD_DB`] (as in every ordinary test run) it does nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_process_appends_when_asked() {
    let Some(path) = child_db() else {
        return;
    };
    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    std::fs::write(path.with_extension("child-ready"), b"").unwrap();
    wait_for(&path.with_extension("go"));
    append_as("child", &store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_appending_to_one_file_never_win_the_same_version() {
    if child_db().is_some() {
        return; // in the child: only `child_process_appends_when_asked` runs
    }
    // Given a fresh database file and a second process that opens it too,
    // both waiting at the same start line
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logbook.db");
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_process_appends_when_asked",
            "--exact",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(CHILD_DB, &path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let store = tokio::task::spawn_blocking({
        let path = path.clone();
        move || SqliteStore::open(&path, SqliteOptions::default())
    })
    .await
    .unwrap()
    .unwrap();
    let ready = path.with_extension("child-ready");
    let child = tokio::task::spawn_blocking(move || {
        let mut child = child;
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ready.exists() {
            if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                let output = child.wait_with_output().unwrap();
                panic!(
                    "the second process stopped before the start line:\n{}\n{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        child
    })
    .await
    .unwrap();

    // When both append to the same stream at once, each expecting the
    // version it read, and each to a stream of its own
    std::fs::write(path.with_extension("go"), b"").unwrap();
    let conflicts = append_as("parent", &store).await;
    println!("the parent met {conflicts} conflicts with the child");
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        output.status.success(),
        "the second process failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    // Then every version of the shared stream was won exactly once, and
    // every append of both processes is there once
    let events = store.event_store();
    let shared = events
        .read_stream(&stream(SHARED), ReadDirection::Forward, 1, usize::MAX)
        .await
        .unwrap();
    assert_eq!(
        shared.iter().map(|e| e.version).collect::<Vec<_>>(),
        (1..=2 * APPENDS).collect::<Vec<_>>()
    );
    let appended: HashSet<(String, u64)> = shared
        .iter()
        .map(|e| {
            let value: serde_json::Value = e.payload.to_value().unwrap();
            (
                value["who"].as_str().unwrap().to_owned(),
                value["i"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        appended.len() as u64,
        2 * APPENDS,
        "no append lost or doubled"
    );
    for who in ["parent", "child"] {
        assert_eq!(
            events
                .stream_version(&stream(&format!("Process-{who}")))
                .await
                .unwrap(),
            Some(APPENDS)
        );
    }
    // and the global log has no gap and no repeat
    let log = events
        .read_all(1, usize::MAX, &EventFilter::all())
        .await
        .unwrap();
    assert_eq!(
        log.iter().map(|e| e.position).collect::<Vec<_>>(),
        (1..=4 * APPENDS).collect::<Vec<_>>()
    );
}
