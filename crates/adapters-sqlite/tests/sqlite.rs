//! What the SQLite adapter promises beyond the conformance suite: the file
//! keeps everything across reopening, the schema is created and versioned,
//! files it must not touch are refused with a clear error, and a busy
//! database is waited for.

use std::path::{Path, PathBuf};
use std::time::Duration;

use logbook_adapters_sqlite::{
    APPLICATION_ID, SCHEMA_VERSION, SqliteOptions, SqliteStore, Synchronous,
};
use logbook_ports::conformance::event;
use logbook_ports::{
    EventFilter, ExpectedVersion, ProjectionDocument, ProjectionSave, ReadDirection, Snapshot,
    StoreError, StreamId,
};

fn stream(name: &str) -> StreamId {
    StreamId::new(name).unwrap()
}

fn db_in(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("logbook.db")
}

fn open(path: &Path) -> Result<SqliteStore, StoreError> {
    let opened = SqliteStore::open(path, SqliteOptions::default());
    if let Err(error) = &opened {
        println!("open {}: {error}", path.display());
    }
    opened
}

fn pragma(path: &Path, name: &str) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_query_value(None, name, |row| row.get(0))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopening_keeps_events_snapshots_and_checkpoints() {
    // Given a database with events in two streams, a snapshot and a checkpoint,
    // written with the relaxed durability setting
    let dir = tempfile::tempdir().unwrap();
    let path = db_in(&dir);
    let written = {
        let store = SqliteStore::open(
            &path,
            SqliteOptions::default().with_synchronous(Synchronous::Normal),
        )
        .unwrap();
        let stores = store.stores();
        stores
            .events
            .append(
                &stream("A-1"),
                ExpectedVersion::NoStream,
                vec![event("Opened", 1)],
            )
            .await
            .unwrap();
        stores
            .events
            .append(
                &stream("B-1"),
                ExpectedVersion::NoStream,
                vec![event("Opened", 2), event("Closed", 3)],
            )
            .await
            .unwrap();
        stores
            .snapshots
            .save(Snapshot {
                stream: stream("B-1"),
                version: 2,
                schema_version: 1,
                state: logbook_ports::conformance::payload(serde_json::json!({"open": false})),
                taken_at: logbook_ports::event_store::timestamp_now(),
            })
            .await
            .unwrap();
        stores.checkpoints.save("summary", 3).await.unwrap();
        stores
            .events
            .read_all(1, 100, &EventFilter::all())
            .await
            .unwrap()
    };
    // When every handle is gone and the file is opened again, with the default setting
    let store = open(&path).unwrap();
    let stores = store.stores();
    // Then everything is there, and the log goes on where it stopped
    assert_eq!(
        stores
            .events
            .read_all(1, 100, &EventFilter::all())
            .await
            .unwrap(),
        written
    );
    assert_eq!(
        stores.events.stream_version(&stream("B-1")).await.unwrap(),
        Some(2)
    );
    assert_eq!(
        stores
            .snapshots
            .load(&stream("B-1"))
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );
    assert_eq!(stores.checkpoints.load("summary").await.unwrap(), Some(3));
    let outcome = stores
        .events
        .append(
            &stream("A-1"),
            ExpectedVersion::Exact(1),
            vec![event("Closed", 4)],
        )
        .await
        .unwrap();
    assert_eq!(
        (outcome.stream_version, outcome.first_position),
        (Some(2), Some(4))
    );
}

#[test]
fn dropping_the_last_handle_releases_the_file() {
    // Given an open store that has written through its writer thread
    let dir = tempfile::tempdir().unwrap();
    let path = db_in(&dir);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = open(&path).unwrap();
    let stores = store.stores();
    runtime
        .block_on(
            stores
                .events
                .append(&stream("A-1"), ExpectedVersion::Any, vec![event("E", 1)]),
        )
        .unwrap();
    // When the store and every store it gave out are dropped
    drop((store, stores));
    // Then the last connection has closed: SQLite checkpointed and removed
    // the write-ahead log, and the events are in the main file
    let wal = dir.path().join("logbook.db-wal");
    assert!(
        !wal.exists(),
        "the -wal file is gone once every connection closed"
    );
    let conn = rusqlite::Connection::open(&path).unwrap();
    let count: i64 = conn
        .query_row("SELECT count(*) FROM events", [], |row| row.get(0))
        .unwrap();
    assert_eq!(count, 1);
}

#[test]
fn an_empty_file_is_migrated_to_the_current_schema() {
    // Given an empty file, as `touch logbook.db` leaves it
    let dir = tempfile::tempdir().unwrap();
    let path = db_in(&dir);
    std::fs::write(&path, b"").unwrap();
    // When it is opened
    drop(open(&path).unwrap());
    // Then it carries logbook's schema version and application id, in WAL mode
    assert_eq!(pragma(&path, "user_version"), i64::from(SCHEMA_VERSION));
    assert_eq!(pragma(&path, "application_id"), i64::from(APPLICATION_ID));
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    // and incremental auto-vacuum, so a scavenge can return freed pages
    assert_eq!(pragma(&path, "auto_vacuum"), 2);
    // and the documented tables, indexes and view exist
    let mut names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE name NOT LIKE 'sqlite%' ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    names.sort();
    assert_eq!(
        names,
        [
            "checkpoints",
            "event_log",
            "events",
            "events_by_id",
            "events_by_stream",
            "events_by_type",
            "projections",
            "snapshots",
            "stream_retention",
            "streams",
            "subject_keys"
        ]
    );
    // and opening it again migrates nothing twice
    drop(open(&path).unwrap());
    assert_eq!(pragma(&path, "user_version"), i64::from(SCHEMA_VERSION));
}

#[test]
fn a_missing_file_is_created_with_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_in(&dir);
    drop(open(&path).unwrap());
    assert!(path.exists());
    assert_eq!(pragma(&path, "user_version"), i64::from(SCHEMA_VERSION));
}

#[test]
fn a_database_from_a_newer_logbook_is_refused_untouched() {
    // Given a logbook database whose schema version is newer than this build's,
    // checkpointed and closed (no -wal file beside it)
    let dir = tempfile::tempdir().unwrap();
    let path = db_in(&dir);
    drop(open(&path).unwrap());
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "DELETE").unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    // When this build opens it
    let error = open(&path).unwrap_err();
    // Then it says so, naming the file and both versions
    match &error {
        StoreError::IncompatibleFormat {
            location,
            found,
            supported,
        } => {
            assert!(location.contains("logbook.db"), "{location}");
            assert_eq!((*found, *supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("expected IncompatibleFormat, got {other:?}"),
    }
    assert!(error.to_string().contains("logbook.db"), "{error}");
    // and the file is exactly as it was, still not in WAL mode
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert!(!dir.path().join("logbook.db-wal").exists());
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_clearly() {
    // Given a text file where the database should be
    let dir = tempfile::tempdir().unwrap();
    let path = db_in(&dir);
    let text = "this is not a database, it is a shopping list\n".repeat(100);
    std::fs::write(&path, &text).unwrap();
    // When it is opened
    let error = open(&path).unwrap_err();
    // Then the error says what the file is not, and names it
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("logbook.db") && message.contains("not a SQLite database"),
        "{message}"
    );
    // and the file was left alone
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
}

#[test]
fn a_database_with_a_garbled_header_is_refused_clearly() {
    // Given a logbook database whose first page was overwritten
    let dir = tempfile::tempdir().unwrap();
    let path = db_in(&dir);
    drop(open(&path).unwrap());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[..100].fill(0xAB);
    std::fs::write(&path, &bytes).unwrap();
    // When it is opened, then the error names the file as corrupt
    let error = open(&path).unwrap_err();
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");
    assert!(error.to_string().contains("logbook.db"), "{error}");
}

#[test]
fn another_applications_sqlite_database_is_refused() {
    // Given a SQLite database that some other program made
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("contacts.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE contacts (name TEXT); INSERT INTO contacts VALUES ('Ann');",
        )
        .unwrap();
    }
    // When logbook opens it
    let error = open(&path).unwrap_err();
    // Then it refuses, saying why, and adds nothing to it
    let message = error.to_string();
    assert!(
        message.contains("contacts.db") && message.contains("logbook did not create"),
        "{message}"
    );
    assert_eq!(pragma(&path, "user_version"), 0);
}

/// A directory nobody can create files in. A directory made read-only
/// stops ordinary users; a privileged user (as in many containers) writes
/// anyway, so there `/sys`, which refuses new files to everyone, serves.
fn read_only_dir(temp: &tempfile::TempDir) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp.path().join("read-only");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    if std::fs::write(dir.join("probe"), b"").is_ok() {
        return PathBuf::from("/sys");
    }
    dir
}

#[test]
fn a_read_only_location_gives_a_clear_error() {
    // Given a location where no file can be created
    let temp = tempfile::tempdir().unwrap();
    let dir = read_only_dir(&temp);
    let path = dir.join("logbook.db");
    // When a store is opened there
    let error = open(&path).unwrap_err();
    // Then the error is about the file system, names the file and says what is needed
    assert!(matches!(error, StoreError::Io { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains(&path.display().to_string()) && message.contains("writable"),
        "{message}"
    );
}

#[test]
fn a_missing_directory_gives_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join("logbook.db");
    let error = open(&path).unwrap_err();
    assert!(matches!(error, StoreError::Io { .. }), "{error:?}");
    assert!(error.to_string().contains("no-such-dir"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_database_is_waited_for_not_reported() {
    // Given another connection (as another process would) holding the write lock
    let dir = tempfile::tempdir().unwrap();
    let path = db_in(&dir);
    let store = open(&path).unwrap();
    let events = store.event_store();
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let holder = {
        let path = path.clone();
        std::thread::spawn(move || {
            let mut conn = rusqlite::Connection::open(&path).unwrap();
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .unwrap();
            locked_tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(300));
            tx.commit().unwrap();
        })
    };
    locked_rx.recv().unwrap();
    // When an append arrives meanwhile
    use logbook_ports::EventStore;
    let outcome = events
        .append(
            &stream("A-1"),
            ExpectedVersion::NoStream,
            vec![event("E", 1)],
        )
        .await;
    holder.join().unwrap();
    // Then it waited for the lock and succeeded
    assert_eq!(outcome.unwrap().stream_version, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_past_the_busy_timeout_is_reported_as_locked() {
    // Given a store with a short busy timeout, and another connection holding the write lock
    let dir = tempfile::tempdir().unwrap();
    let path = db_in(&dir);
    let store = SqliteStore::open(
        &path,
        SqliteOptions::default().with_busy_timeout(Duration::from_millis(50)),
    )
    .unwrap();
    let mut conn = rusqlite::Connection::open(&path).unwrap();
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    // When an append cannot get the lock in time
    use logbook_ports::EventStore;
    let error = store
        .event_store()
        .append(
            &stream("A-1"),
            ExpectedVersion::NoStream,
            vec![event("E", 1)],
        )
        .await
        .unwrap_err();
    // Then it is a Locked error naming the file, and nothing was written
    assert!(matches!(error, StoreError::Locked { .. }), "{error:?}");
    assert!(error.to_string().contains("logbook.db"), "{error}");
    tx.rollback().unwrap();
    assert_eq!(store.event_store().head_position().await.unwrap(), None);
    // and once the lock is free the same append goes through
    store
        .event_store()
        .append(
            &stream("A-1"),
            ExpectedVersion::NoStream,
            vec![event("E", 1)],
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_each_keep_their_own_outcome() {
    // Given a stream at version 1 and 32 appenders started at once: 16 that
    // each create their own stream, 16 that all claim version 2 of the shared one
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db_in(&dir)).unwrap();
    let stores = store.stores();
    stores
        .events
        .append(
            &stream("Shared-1"),
            ExpectedVersion::NoStream,
            vec![event("E", 0)],
        )
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..32u64 {
        let events = stores.events.clone();
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                events
                    .append(
                        &stream(&format!("Own-{i}")),
                        ExpectedVersion::NoStream,
                        vec![event("E", i)],
                    )
                    .await
            } else {
                events
                    .append(
                        &stream("Shared-1"),
                        ExpectedVersion::Exact(1),
                        vec![event("E", i)],
                    )
                    .await
            }
        }));
    }
    let mut own = 0;
    let mut shared_won = 0;
    let mut shared_lost = 0;
    for (i, task) in tasks.into_iter().enumerate() {
        match (i % 2 == 0, task.await.unwrap()) {
            (true, Ok(outcome)) => {
                assert_eq!(outcome.stream_version, Some(1));
                own += 1;
            }
            (false, Ok(_)) => shared_won += 1,
            (false, Err(error)) if error.is_conflict() => shared_lost += 1,
            (_, other) => panic!("unexpected outcome for appender {i}: {other:?}"),
        }
    }
    // Then, whether or not they shared commits, each failed or succeeded on its own
    assert_eq!((own, shared_won, shared_lost), (16, 1, 15));
    let log = stores
        .events
        .read_all(1, 100, &EventFilter::all())
        .await
        .unwrap();
    assert_eq!(
        log.iter().map(|e| e.position).collect::<Vec<_>>(),
        (1..=18).collect::<Vec<_>>()
    );
    let shared = stores
        .events
        .read_stream(&stream("Shared-1"), ReadDirection::Forward, 1, 10)
        .await
        .unwrap();
    assert_eq!(shared.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_are_readable_with_plain_sql() {
    // Given an event with metadata appended through the store
    let dir = tempfile::tempdir().unwrap();
    let path = db_in(&dir);
    let store = open(&path).unwrap();
    let mut new = logbook_ports::NewEvent::new(
        "MoneyDeposited",
        logbook_ports::conformance::payload(serde_json::json!({"amount": "500.00"})),
    );
    new.metadata.extra.insert("user".into(), "alice".into());
    new.recorded_at = chrono::DateTime::from_timestamp_micros(1_746_634_114_633_698);
    use logbook_ports::EventStore;
    store
        .event_store()
        .append(
            &stream("BankAccount-acc_001"),
            ExpectedVersion::NoStream,
            vec![new],
        )
        .await
        .unwrap();
    // When another program reads the file with SQL
    let conn = rusqlite::Connection::open(&path).unwrap();
    let row: (i64, String, i64, String, String, String, String) = conn
        .query_row(
            "SELECT position, stream, version, event_type, json_extract(payload, '$.amount'), \
             json_extract(metadata, '$.extra.user'), recorded_at FROM event_log",
            [],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            },
        )
        .unwrap();
    // Then it sees the event as JSON text and a readable UTC time
    assert_eq!(
        row,
        (
            1,
            "BankAccount-acc_001".to_owned(),
            1,
            "MoneyDeposited".to_owned(),
            "500.00".to_owned(),
            "alice".to_owned(),
            "2025-05-07T16:08:34.633698Z".to_owned()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_row_is_reported_with_its_position_and_field() {
    use logbook_ports::EventStore;
    // Given a stream of three events, the second of which another program
    // then damages, one field at a time
    let damages = [
        ("event_id = x'00'", "event_id is Blob, not text"),
        ("event_id = 'not-a-uuid'", "event_id: "),
        ("version = 'two'", "version is Text, not an integer"),
        ("event_type = x'00'", "event_type is Blob, not text"),
        (
            "schema_version = 1.5",
            "schema_version is Real, not an integer",
        ),
        ("schema_version = 5000000000", "schema_version: "),
        ("payload = x'7b7d'", "payload is Blob, not text"),
        ("metadata = x'00'", "metadata is Blob, not text"),
        ("metadata = '[1]'", "metadata: "),
        ("recorded_at = 'now'", "recorded_at is Text, not an integer"),
        (
            "recorded_at = 9223372036854775807",
            "recorded_at is out of range",
        ),
    ];
    for (damage, said) in damages {
        let dir = tempfile::tempdir().unwrap();
        let path = db_in(&dir);
        let store = open(&path).unwrap();
        let events = store.event_store();
        let a = stream("A-1");
        events
            .append(
                &a,
                ExpectedVersion::NoStream,
                vec![
                    event("Opened", 1),
                    event("Deposited", 2),
                    event("Closed", 3),
                ],
            )
            .await
            .unwrap();
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(&format!("UPDATE events SET {damage} WHERE position = 2;"))
            .unwrap();
        // When the stream is read (as events and as a lent page) and the
        // log is read
        let from = if damage.starts_with("version") { 1 } else { 2 };
        let read = events
            .read_stream(&a, ReadDirection::Forward, from, 10)
            .await;
        let lent = events
            .visit_stream(&a, ReadDirection::Forward, from, 10, &mut |_| {})
            .await;
        let log = events.read_all(1, 10, &EventFilter::all()).await;
        // Then each read fails, naming the row by its position and the field
        for (how, result) in [
            ("read_stream", read.map(|_| ())),
            ("visit_stream", lent.map(|_| ())),
            ("read_all", log.map(|_| ())),
        ] {
            let Err(StoreError::Corrupt { location, detail }) = result else {
                panic!("{damage}: {how} gave {result:?}, not a corrupt row");
            };
            assert!(
                location.contains("table events, position 2"),
                "{damage}: {how}: {location}"
            );
            assert!(detail.starts_with(said), "{damage}: {how}: {detail}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projection_documents_are_readable_with_plain_sql() {
    // Given a read model's document saved through the store
    let dir = tempfile::tempdir().unwrap();
    let path = db_in(&dir);
    let store = open(&path).unwrap();
    let document = ProjectionDocument {
        generation: 0,
        checkpoint: Some(12),
        model: logbook_ports::conformance::payload(
            serde_json::json!({"accounts": {"acc_001": {"balance": "500.00"}}}),
        ),
        parked: Vec::new(),
        saved_at: chrono::DateTime::from_timestamp_micros(1_746_634_114_633_698).unwrap(),
    };
    use logbook_ports::ProjectionStore;
    store
        .projection_store()
        .save("account-balance", &document, ProjectionSave::Advance)
        .await
        .unwrap();
    // When another program queries it with SQL
    let conn = rusqlite::Connection::open(&path).unwrap();
    let row: (i64, i64, String, i64) = conn
        .query_row(
            "SELECT generation, checkpoint, \
             json_extract(model, '$.accounts.acc_001.balance'), json_array_length(parked) \
             FROM projections WHERE name = 'account-balance'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    // Then it sees the model as JSON, with its generation and checkpoint
    assert_eq!(row, (1, 12, "500.00".to_owned(), 0));
}

#[test]
fn a_version_1_database_gains_the_projections_table_and_keeps_its_data() {
    // Given a database at schema version 1 (no projections table) holding an event
    let dir = tempfile::tempdir().unwrap();
    let path = db_in(&dir);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use logbook_ports::EventStore;
        open(&path)
            .unwrap()
            .event_store()
            .append(
                &stream("A-1"),
                ExpectedVersion::NoStream,
                vec![event("Opened", 1)],
            )
            .await
            .unwrap();
    });
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP TABLE projections; DROP TABLE stream_retention; DROP TABLE subject_keys; \
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    // When this build opens it
    let store = open(&path).unwrap();
    // Then it is migrated to the current version, the event is still there, and
    // read models can be saved
    assert_eq!(pragma(&path, "user_version"), i64::from(SCHEMA_VERSION));
    runtime.block_on(async {
        use logbook_ports::{EventStore, ProjectionStore};
        assert_eq!(store.event_store().head_position().await.unwrap(), Some(1));
        let document = ProjectionDocument {
            generation: 0,
            checkpoint: Some(1),
            model: logbook_ports::conformance::payload(serde_json::json!({})),
            parked: Vec::new(),
            saved_at: chrono::Utc::now(),
        };
        assert_eq!(
            store
                .projection_store()
                .save("p", &document, ProjectionSave::Advance)
                .await
                .unwrap(),
            1
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scavenge_hands_the_freed_pages_back_and_the_database_stays_sound() {
    use logbook_ports::{EventStore, NewEvent, StreamRetention};
    // Given 300 events of about 2 KiB in one stream kept to its latest 10.
    let dir = tempfile::tempdir().unwrap();
    let path = db_in(&dir);
    let store = open(&path).unwrap();
    let events = store.event_store();
    let s = stream("Big-1");
    let pad = "p".repeat(2000);
    for n in 0..300u64 {
        let big = NewEvent::new(
            "Happened",
            logbook_ports::conformance::payload(serde_json::json!({ "n": n, "pad": pad })),
        );
        events
            .append(&s, ExpectedVersion::Any, vec![big])
            .await
            .unwrap();
    }
    let policy = StreamRetention::new(None, Some(10), None).unwrap();
    events.set_retention(&s, policy).await.unwrap();
    let pages_before = pragma(&path, "page_count");
    // When scavenged.
    let report = events.scavenge().await.unwrap();
    assert_eq!(report.events, 290);
    // Then the database has far fewer pages and no free list left over.
    let pages_after = pragma(&path, "page_count");
    assert!(
        pages_after * 4 < pages_before,
        "{pages_before} -> {pages_after} pages"
    );
    assert_eq!(pragma(&path, "freelist_count"), 0);
    // And it passes SQLite's integrity check and reads as before.
    let integrity = logbook_adapters_sqlite::integrity_check(
        &path,
        logbook_adapters_sqlite::IntegrityCheck::Full,
    )
    .unwrap();
    assert!(integrity.is_ok(), "{integrity}");
    let kept = events
        .read_stream(&s, ReadDirection::Forward, 1, usize::MAX)
        .await
        .unwrap();
    assert_eq!(kept.first().map(|e| e.version), Some(291));
    assert_eq!(kept.len(), 10);
}
