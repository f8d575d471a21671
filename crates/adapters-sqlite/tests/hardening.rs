//! What the SQLite adapter does with a damaged file and for readers: its
//! integrity check finds a page overwritten in any table or index, a write
//! that meets the damage is refused and stops the writer, and a store
//! opened read-only reads while another connection holds the write lock,
//! never migrates and refuses writes.

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use logbook_adapters_sqlite::{IntegrityCheck, SqliteOptions, SqliteStore, integrity_check};
use logbook_ports::conformance::event;
use logbook_ports::{
    EventFilter, EventStore, ExpectedVersion, ReadDirection, StoreError, StreamId,
};

fn stream(name: &str) -> StreamId {
    StreamId::new(name).unwrap()
}

fn db_in(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("logbook.db")
}

/// A closed database (its write-ahead log checkpointed into the file) with
/// three events in two streams and a checkpoint.
async fn written_database(path: &Path) {
    let store = SqliteStore::open(path, SqliteOptions::default()).unwrap();
    let stores = store.stores();
    stores
        .events
        .append(
            &stream("A-1"),
            ExpectedVersion::NoStream,
            vec![event("Opened", 1), event("Deposited", 2)],
        )
        .await
        .unwrap();
    stores
        .events
        .append(
            &stream("B-1"),
            ExpectedVersion::NoStream,
            vec![event("Opened", 3)],
        )
        .await
        .unwrap();
    stores.checkpoints.save("balances", 3).await.unwrap();
}

/// Overwrites the root page of table or index `name` with a byte pattern
/// that is no valid page: in a database this small each of them is one page.
fn overwrite_page_of(path: &Path, name: &str) {
    let (root, page_size) = {
        let conn = rusqlite::Connection::open(path).unwrap();
        let root: i64 = conn
            .query_row(
                "SELECT rootpage FROM sqlite_schema WHERE name = ?1",
                [name],
                |row| row.get(0),
            )
            .unwrap();
        let page_size: i64 = conn
            .pragma_query_value(None, "page_size", |row| row.get(0))
            .unwrap();
        (root, page_size)
    };
    let mut file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.seek(SeekFrom::Start(((root - 1) * page_size) as u64))
        .unwrap();
    let garbage: Vec<u8> = (0..page_size).map(|i| (i * 7 + 0xA5) as u8).collect();
    file.write_all(&garbage).unwrap();
    file.sync_all().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_integrity_check_of_a_sound_database_is_ok() {
    // Given a database written and closed
    let dir = tempfile::tempdir().unwrap();
    let path = db_in(&dir);
    written_database(&path).await;

    // When SQLite's full and quick checks run
    let full = integrity_check(&path, IntegrityCheck::Full).unwrap();
    let quick = integrity_check(&path, IntegrityCheck::Quick).unwrap();

    // Then both find nothing, and say so naming the file
    assert!(full.is_ok(), "{full}");
    assert!(quick.is_ok(), "{quick}");
    assert!(full.to_string().contains("integrity_check"), "{full}");
    assert!(
        full.to_string().contains(&path.display().to_string()),
        "{full}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_overwritten_in_any_index_or_table_is_found_and_the_next_write_refused() {
    for name in [
        "events_by_id",
        "events_by_stream",
        "events_by_type",
        "streams",
        "checkpoints",
    ] {
        // Given a closed database whose `name` page was overwritten
        let dir = tempfile::tempdir().unwrap();
        let path = db_in(&dir);
        written_database(&path).await;
        overwrite_page_of(&path, name);

        // When SQLite's integrity check runs, full and quick
        let full = integrity_check(&path, IntegrityCheck::Full).unwrap();
        let quick = integrity_check(&path, IntegrityCheck::Quick).unwrap();

        // Then both report problems
        assert!(!full.is_ok(), "{name}: full check found nothing");
        assert!(!quick.is_ok(), "{name}: quick check found nothing");
        println!("{name}: {full}");

        // When the store is opened and a write touching that page is made
        let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
        let stores = store.stores();
        let write = if name == "checkpoints" {
            stores.checkpoints.save("balances", 4).await.map(drop)
        } else {
            stores
                .events
                .append(
                    &stream("A-1"),
                    ExpectedVersion::Exact(2),
                    vec![event("Deposited", 4)],
                )
                .await
                .map(drop)
        };

        // Then it is refused as corrupt, naming the file
        let Err(StoreError::Corrupt { location, detail }) = write else {
            panic!("{name}: the write was not refused as corrupt: {write:?}");
        };
        assert!(location.contains(&path.display().to_string()), "{location}");
        assert!(detail.contains("malformed"), "{detail}");

        // And every later write is refused before it begins, even one
        // that would not touch the damaged page
        let later = stores
            .events
            .append(
                &stream("C-1"),
                ExpectedVersion::NoStream,
                vec![event("Opened", 5)],
            )
            .await;
        let Err(StoreError::Corrupt { detail, .. }) = &later else {
            panic!("{name}: a later write was not refused: {later:?}");
        };
        assert!(detail.contains("writes to it are refused"), "{detail}");
        drop(stores);
        drop(store);

        // And nothing was added to the log (read through the table itself:
        // a count would read the smallest index, perhaps the damaged one)
        let head: i64 = rusqlite::Connection::open(&path)
            .unwrap()
            .query_row("SELECT max(position) FROM events", [], |row| row.get(0))
            .unwrap();
        assert_eq!(head, 3, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_store_reads_while_another_connection_holds_the_write_lock() {
    // Given a database and another connection holding its write lock in an
    // open transaction (a writer that stalls)
    let dir = tempfile::tempdir().unwrap();
    let path = db_in(&dir);
    written_database(&path).await;
    let stalled = rusqlite::Connection::open(&path).unwrap();
    stalled.execute_batch("BEGIN IMMEDIATE").unwrap();
    let options = SqliteOptions::default().with_busy_timeout(Duration::from_millis(200));

    // When it is opened for writing, then it waits and reports the lock
    let refused = SqliteStore::open(&path, options.clone());
    assert!(
        matches!(refused, Err(StoreError::Locked { .. })),
        "{refused:?}"
    );

    // When it is opened read-only, then it reads every event and stream
    let store = SqliteStore::open_read_only(&path, options).unwrap();
    let stores = store.stores();
    let all = stores
        .events
        .read_all(1, 100, &EventFilter::all())
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
    let a = stores
        .events
        .read_stream(&stream("A-1"), ReadDirection::Forward, 1, 100)
        .await
        .unwrap();
    assert_eq!(a.len(), 2);
    assert_eq!(stores.events.head_position().await.unwrap(), Some(3));
    assert_eq!(stores.checkpoints.load("balances").await.unwrap(), Some(3));
    stalled.execute_batch("ROLLBACK").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_store_sees_another_writers_later_commits_and_refuses_writes() {
    // Given a database open for writing and the same file open read-only
    let dir = tempfile::tempdir().unwrap();
    let path = db_in(&dir);
    written_database(&path).await;
    let writer = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    let reader = SqliteStore::open_read_only(&path, SqliteOptions::default()).unwrap();

    // When the writer commits one more event
    writer
        .event_store()
        .append(
            &stream("B-1"),
            ExpectedVersion::Exact(1),
            vec![event("Deposited", 4)],
        )
        .await
        .unwrap();

    // Then the reader reads it
    let reader_events = reader.stores().events;
    assert_eq!(reader_events.head_position().await.unwrap(), Some(4));

    // And a write through the read-only store is refused, changing nothing
    let refused = reader_events
        .append(
            &stream("C-1"),
            ExpectedVersion::NoStream,
            vec![event("Opened", 5)],
        )
        .await;
    let Err(StoreError::Io { source, .. }) = &refused else {
        panic!("not refused: {refused:?}");
    };
    assert_eq!(source.kind(), std::io::ErrorKind::PermissionDenied);
    let saved = reader.stores().checkpoints.save("balances", 4).await;
    assert!(saved.is_err(), "{saved:?}");
    assert_eq!(writer.event_store().head_position().await.unwrap(), Some(4));
}

#[test]
fn a_read_only_open_neither_creates_nor_migrates() {
    // Given no file, and an empty file
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();

    // When each is opened read-only
    let missing_error = SqliteStore::open_read_only(&missing, SqliteOptions::default())
        .unwrap_err()
        .to_string();
    let empty_error = SqliteStore::open_read_only(&empty, SqliteOptions::default())
        .unwrap_err()
        .to_string();

    // Then both are refused with one line naming the file, and nothing is
    // created or written
    assert!(missing_error.contains("missing.db"), "{missing_error}");
    assert!(missing_error.contains("no such file"), "{missing_error}");
    assert!(!missing.exists());
    assert!(empty_error.contains("empty.db"), "{empty_error}");
    assert!(empty_error.contains("no logbook schema"), "{empty_error}");
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_open_refuses_a_database_that_needs_migrating() {
    // Given a logbook database that says it is at an older schema version
    let dir = tempfile::tempdir().unwrap();
    let path = db_in(&dir);
    written_database(&path).await;
    let older = logbook_adapters_sqlite::SCHEMA_VERSION - 1;
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", older)
        .unwrap();

    // When it is opened read-only
    let error = SqliteStore::open_read_only(&path, SqliteOptions::default())
        .unwrap_err()
        .to_string();

    // Then it is refused in one line saying what to do, and left as it was
    assert!(error.contains(&path.display().to_string()), "{error}");
    assert!(
        error.contains(&format!("its schema version is {older}")),
        "{error}"
    );
    assert!(error.contains("open it once for writing"), "{error}");
    assert_eq!(error.lines().count(), 1, "{error}");
    let version: u32 = rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, older);
}
