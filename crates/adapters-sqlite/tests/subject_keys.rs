//! Subject keys on a real database file: a shred erases the wrapped bytes
//! from every file of the database, and two processes creating one
//! subject's key at once end with one key.
//!
//! The second processes are this test binary run again, with [`CHILD_DB`]
//! naming the database, asked to run only
//! [`child_process_creates_keys_when_asked`].

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use logbook_adapters_sqlite::{SqliteOptions, SqliteStore};
use logbook_ports::conformance::event;
use logbook_ports::{ExpectedVersion, StreamId, SubjectId, SubjectKey, WrappedKey};

/// Set in a child's environment: the database it creates keys in.
const CHILD_DB: &str = "LOGBOOK_SQLITE_TEST_KEYS_DB";
/// Set in a child's environment: what tells its candidates apart.
const CHILD_NAME: &str = "LOGBOOK_SQLITE_TEST_KEYS_NAME";
/// Subjects both processes race on.
const SUBJECTS: usize = 25;

fn subject(id: &str) -> SubjectId {
    SubjectId::new(id).unwrap()
}

/// Every file of the database at `path`: the file, its `-wal` and `-shm`.
fn database_files(path: &Path) -> Vec<PathBuf> {
    ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| PathBuf::from(format!("{}{suffix}", path.display())))
        .filter(|file| file.exists())
        .collect()
}

/// Whether `needle` occurs in any file of the database at `path`.
fn found_in_files(path: &Path, needle: &[u8]) -> bool {
    database_files(path).iter().any(|file| {
        std::fs::read(file)
            .unwrap()
            .windows(needle.len())
            .any(|window| window == needle)
    })
}

fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path, SqliteOptions::default()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shredded_key_is_in_no_file_of_the_database() {
    // Given two subjects with keys, and events around them
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logbook.db");
    let store = open(&path);
    let keys = store.subject_key_store();
    let events = store.event_store();
    let alice = b"ALICE-WRAPPED-KEY-7f3a9c1e5b2d8f40".to_vec();
    let bob = b"BOB-WRAPPED-KEY-0c4e8a2f6b1d9e73".to_vec();
    use logbook_ports::{EventStore, SubjectKeyStore};
    for i in 0..50 {
        events
            .append(
                &StreamId::new(format!("Account-{i}")).unwrap(),
                ExpectedVersion::Any,
                vec![event("Opened", i)],
            )
            .await
            .unwrap();
    }
    for i in 0..40 {
        let other = format!("other-subject-key-{i:04}-padding-to-look-like-a-real-sealed-key");
        keys.get_or_create(
            &subject(&format!("user-{i:02}")),
            WrappedKey::new(other.into_bytes()),
        )
        .await
        .unwrap();
    }
    keys.get_or_create(&subject("user-alice"), WrappedKey::new(alice.clone()))
        .await
        .unwrap();
    keys.get_or_create(&subject("user-bob"), WrappedKey::new(bob.clone()))
        .await
        .unwrap();
    for i in 40..80 {
        let other = format!("other-subject-key-{i:04}-padding-to-look-like-a-real-sealed-key");
        keys.get_or_create(
            &subject(&format!("user-{i:02}")),
            WrappedKey::new(other.into_bytes()),
        )
        .await
        .unwrap();
    }
    assert!(found_in_files(&path, &alice), "the key is written before");
    // When alice is shredded
    let tombstone = keys.shred(&subject("user-alice")).await.unwrap();
    assert!(matches!(tombstone, SubjectKey::Shredded { .. }));
    // Then her wrapped key is in no file of the database (while it is still
    // open, and after it is closed), and bob's still is
    assert!(
        !found_in_files(&path, &alice),
        "alice's wrapped key is still in {:?}",
        database_files(&path)
    );
    assert!(found_in_files(&path, &bob), "the search finds a live key");
    drop((keys, events, store));
    assert!(!found_in_files(&path, &alice));
    let keys = open(&path).subject_key_store();
    assert_eq!(
        keys.get(&subject("user-alice")).await.unwrap(),
        Some(tombstone)
    );
    assert!(matches!(
        keys.get(&subject("user-bob")).await.unwrap(),
        Some(SubjectKey::Active { wrapped, .. }) if wrapped.as_bytes() == bob
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_2_database_gains_the_key_table_and_keeps_its_events() {
    use logbook_ports::{EventStore, SubjectKeyStore};
    // Given a database as the build before subject keys left it: schema
    // version 2, an event, no key or retention table
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logbook.db");
    open(&path)
        .event_store()
        .append(
            &StreamId::new("Account-1").unwrap(),
            ExpectedVersion::NoStream,
            vec![event("Opened", 1)],
        )
        .await
        .unwrap();
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP TABLE stream_retention; DROP TABLE subject_keys; PRAGMA user_version = 2;",
        )
        .unwrap();
    }
    // When this build opens it
    let store = open(&path);
    // Then it is at the current version, the event is there, and keys work
    let version: u32 = rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, logbook_adapters_sqlite::SCHEMA_VERSION);
    assert_eq!(store.event_store().head_position().await.unwrap(), Some(1));
    let keys = store.subject_key_store();
    let created = keys
        .get_or_create(&subject("user-alice"), WrappedKey::new(b"k".to_vec()))
        .await
        .unwrap();
    assert_eq!(
        keys.get(&subject("user-alice")).await.unwrap(),
        Some(created)
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a process got for each raced subject, one line each.
fn describe(key: &SubjectKey) -> String {
    match key {
        SubjectKey::Active { wrapped, .. } => hex(wrapped.as_bytes()),
        SubjectKey::Shredded { .. } => "shredded".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_process_creates_keys_when_asked() {
    let (Some(db), Some(name)) = (std::env::var_os(CHILD_DB), std::env::var(CHILD_NAME).ok())
    else {
        // Run directly (not as a child): the parent test below is the test.
        return;
    };
    use logbook_ports::SubjectKeyStore;
    let db = PathBuf::from(db);
    let start = db.with_extension("start");
    let deadline = Instant::now() + Duration::from_secs(60);
    let keys = open(&db).subject_key_store();
    while !start.exists() {
        assert!(Instant::now() < deadline, "never told to start");
        std::thread::sleep(Duration::from_millis(2));
    }
    for i in 0..SUBJECTS {
        let candidate = WrappedKey::new(format!("{name}-candidate-{i}").into_bytes());
        let got = keys
            .get_or_create(&subject(&format!("user-{i}")), candidate)
            .await
            .unwrap();
        println!("KEY user-{i} {}", describe(&got));
    }
}

fn spawn_child(db: &Path, name: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process_creates_keys_when_asked",
            "--nocapture",
        ])
        .env(CHILD_DB, db)
        .env(CHILD_NAME, name)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn keys_printed(output: &std::process::Output) -> Vec<String> {
    assert!(output.status.success(), "a child failed: {output:?}");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.strip_prefix("KEY ").map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_creating_one_subjects_key_end_with_one_key() {
    use logbook_ports::SubjectKeyStore;
    // Given a database and two processes, each with its own connections
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("logbook.db");
    drop(open(&db));
    let first = spawn_child(&db, "first");
    let second = spawn_child(&db, "second");
    // When both create the same new subjects' keys at once
    std::thread::sleep(Duration::from_millis(200));
    std::fs::write(db.with_extension("start"), b"go").unwrap();
    let first = keys_printed(&first.wait_with_output().unwrap());
    let second = keys_printed(&second.wait_with_output().unwrap());
    // Then both got the same key for every subject, and it is the stored one
    assert_eq!(first.len(), SUBJECTS);
    assert_eq!(first, second);
    let keys = open(&db).subject_key_store();
    for line in &first {
        let (id, key) = line.split_once(' ').unwrap();
        let stored = keys.get(&subject(id)).await.unwrap().unwrap();
        assert_eq!(describe(&stored), key);
    }
    let stored = keys.list(None, SUBJECTS + 1).await.unwrap();
    assert_eq!(stored.len(), SUBJECTS, "one key per subject, no more");
}
