//! Damage on disk: a torn tail is cut back to the last whole batch and
//! reported; damage anywhere else makes open fail naming the file and the
//! offset, and verify report it, changing nothing.

use std::path::{Path, PathBuf};

use logbook_adapters_file::format::{
    self, PROJECTIONS_DIR, SEGMENT_HEADER_LEN, SNAPSHOTS_DIR, parse_segment_name,
};
use logbook_adapters_file::{Durability, FileOptions, FileStore, record, verify};
use logbook_ports::conformance::payload;
use logbook_ports::{EventFilter, ExpectedVersion, NewEvent, StoreError, Stores, StreamId};
use serde_json::json;
use tempfile::TempDir;

mod support;
use support::copy_dir;

fn options() -> FileOptions {
    FileOptions::new().durability(Durability::Never)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn event(n: u64) -> NewEvent {
    NewEvent::new(
        "Happened",
        payload(json!({ "n": n, "pad": "p".repeat(180) })),
    )
}

fn stream() -> StreamId {
    StreamId::new("Account-1").unwrap()
}

/// A store holding `batches` (each appended as one batch), closed again.
fn store_with(options: FileOptions, batches: &[u64]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path(), options).unwrap();
    let events = store.stores().events;
    let mut n = 0;
    runtime().block_on(async {
        for &size in batches {
            let batch = (0..size).map(|i| event(n + i)).collect();
            events
                .append(&stream(), ExpectedVersion::Any, batch)
                .await
                .unwrap();
            n += size;
        }
    });
    dir
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| parse_segment_name(p.file_name().unwrap().to_str().unwrap()).is_some())
        .collect();
    found.sort();
    found
}

/// Start offsets of the records in a segment.
fn record_offsets(segment: &Path) -> Vec<usize> {
    let bytes = std::fs::read(segment).unwrap();
    let mut offsets = Vec::new();
    let mut at = SEGMENT_HEADER_LEN;
    while at < bytes.len() {
        offsets.push(at);
        let (_, len) = record::decode(&bytes[at..]).unwrap();
        at += len;
    }
    offsets
}

fn flip(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0x20;
    std::fs::write(path, bytes).unwrap();
}

fn truncate(path: &Path, len: usize) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len as u64)
        .unwrap();
}

fn ns(stores: &Stores) -> Vec<u64> {
    runtime().block_on(async {
        stores
            .events
            .read_all(1, usize::MAX, &EventFilter::all())
            .await
            .unwrap()
            .iter()
            .map(|e| {
                e.payload.to_value::<serde_json::Value>().unwrap()["n"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    })
}

/// Sets the durable mark of the store in `dir` to `offset` of `segment`, as
/// the writer left it when the write after `offset` crashed before its
/// fsync: those bytes were never acknowledged.
fn durable_up_to(dir: &Path, segment: &Path, offset: usize) {
    let first = parse_segment_name(segment.file_name().unwrap().to_str().unwrap()).unwrap();
    let mut body = first.to_le_bytes().to_vec();
    body.extend_from_slice(&(offset as u64).to_le_bytes());
    std::fs::write(
        dir.join(format::DURABLE_FILE),
        format::seal(format::DURABLE_MAGIC, &body),
    )
    .unwrap();
}

fn assert_corrupt_at(result: Result<FileStore, StoreError>, file: &Path, offset: usize) {
    match result {
        Err(StoreError::Corrupt { location, detail }) => {
            let name = file.file_name().unwrap().to_str().unwrap();
            assert!(
                location.contains(name) && location.ends_with(&format!("offset {offset}")),
                "location {location:?} names {name} at offset {offset} ({detail})"
            );
        }
        Err(other) => panic!("expected Corrupt at {offset}, got {other}"),
        Ok(_) => panic!("expected Corrupt at {offset}, the store opened"),
    }
}

#[test]
fn truncating_the_last_segment_inside_its_final_record_recovers_the_previous_record() {
    // Given a closed store of five single-event appends
    let pristine = store_with(options(), &[1, 1, 1, 1, 1]);
    let segment = segments(pristine.path()).pop().unwrap();
    let start = *record_offsets(&segment).last().unwrap();
    let end = std::fs::metadata(&segment).unwrap().len() as usize;
    for cut in start + 1..end {
        // When the last segment is cut at this byte of its final record
        let dir = copy_dir(pristine.path());
        let segment = dir.path().join(segment.file_name().unwrap());
        truncate(&segment, cut);
        // (a write that crashed before its fsync: never acknowledged)
        durable_up_to(dir.path(), &segment, start);
        // Then the store opens at the previous record, reporting the bytes cut
        let store =
            FileStore::open(dir.path(), options()).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        let torn = store
            .recovery_report()
            .torn_tail
            .clone()
            .unwrap_or_else(|| panic!("cut at {cut}: no torn tail reported"));
        assert_eq!(torn.segment, segment, "cut at {cut}");
        assert_eq!(
            (torn.offset, torn.bytes_cut),
            (start as u64, (cut - start) as u64)
        );
        assert_eq!(ns(&store.stores()), [0, 1, 2, 3], "cut at {cut}");
        assert_eq!(std::fs::metadata(&segment).unwrap().len(), start as u64);
        // And appending goes on from there
        runtime().block_on(async {
            let outcome = store
                .stores()
                .events
                .append(&stream(), ExpectedVersion::Exact(4), vec![event(4)])
                .await
                .unwrap();
            assert_eq!(outcome.last_position, Some(5));
        });
    }
}

#[test]
fn a_torn_batch_is_cut_whole() {
    // Given a store whose last append was one batch of three events
    let dir = store_with(options(), &[2, 3]);
    let segment = segments(dir.path()).pop().unwrap();
    let offsets = record_offsets(&segment);
    let (batch_start, third) = (offsets[2], offsets[4]);
    // When the file ends inside the batch's last record, the batch never
    // acknowledged (the crash came before its fsync)
    truncate(&segment, third + 10);
    durable_up_to(dir.path(), &segment, batch_start);
    // Then none of the batch survives: its first two records are dropped too
    let store = FileStore::open(dir.path(), options()).unwrap();
    let torn = store.recovery_report().torn_tail.clone().unwrap();
    assert_eq!(torn.events_dropped, 2);
    assert_eq!(torn.offset, batch_start as u64);
    assert_eq!(
        std::fs::metadata(&segment).unwrap().len(),
        batch_start as u64
    );
    assert_eq!(ns(&store.stores()), [0, 1]);
}

#[test]
fn verify_reports_a_torn_tail_as_left_in_place_and_open_reports_it_cut() {
    // Given a store whose last batch was torn by a crash before its fsync
    let dir = store_with(options(), &[2, 3]);
    let segment = segments(dir.path()).pop().unwrap();
    let offsets = record_offsets(&segment);
    let batch_start = offsets[2];
    truncate(&segment, offsets[4] + 10);
    durable_up_to(dir.path(), &segment, batch_start);
    let torn_len = std::fs::metadata(&segment).unwrap().len();
    // When verify walks it
    let report = verify(dir.path()).unwrap();
    // Then it reports the torn tail as left in place, and the file is unchanged
    let line = report.to_string();
    assert!(
        line.contains("left in place (the next open for writing cuts them)"),
        "{line}"
    );
    assert!(!line.contains("bytes cut"), "{line}");
    assert_eq!(std::fs::metadata(&segment).unwrap().len(), torn_len);
    // And an open for writing cuts it and says so
    let store = FileStore::open(dir.path(), options()).unwrap();
    let torn = store.recovery_report().torn_tail.clone().unwrap();
    assert!(torn.cut);
    assert!(torn.to_string().contains("bytes cut at offset"), "{torn}");
}

#[test]
fn flipping_a_byte_inside_an_earlier_record_fails_open_with_the_offset() {
    let pristine = store_with(options(), &[1, 1, 1, 1, 1]);
    let name = segments(pristine.path()).pop().unwrap();
    let offsets = record_offsets(&name);
    // Given a byte flipped in the payload, the checksum, or the length of
    // the second record
    for (what, at) in [
        ("payload", offsets[1] + 120),
        ("checksum", offsets[1] + 5),
        ("length", offsets[1]),
        ("length, high byte", offsets[1] + 3),
    ] {
        let dir = copy_dir(pristine.path());
        let segment = dir.path().join(name.file_name().unwrap());
        flip(&segment, at);
        let len = std::fs::metadata(&segment).unwrap().len();
        // When verified, then opened
        let report = verify(dir.path()).unwrap();
        let opened = FileStore::open(dir.path(), options());
        // Then both name the file and the record's offset, and nothing is cut
        let corruption = report
            .corruption
            .unwrap_or_else(|| panic!("{what}: not reported"));
        assert_eq!(
            (&corruption.file, corruption.offset),
            (&segment, offsets[1] as u64),
            "{what}"
        );
        assert_eq!(report.events, 1, "{what}: one event precedes the damage");
        assert_corrupt_at(opened, &segment, offsets[1]);
        assert_eq!(
            std::fs::metadata(&segment).unwrap().len(),
            len,
            "{what}: nothing was cut"
        );
    }
}

#[test]
fn damage_in_an_earlier_segment_is_reported_naming_that_segment() {
    // Given a store spread over several 4 KiB segments
    let dir = store_with(options().segment_size(4096), &[1; 60]);
    let all = segments(dir.path());
    assert!(all.len() > 2, "the store rolled: {} segments", all.len());
    // When a record in the middle of the first segment is damaged
    let first = &all[0];
    let offsets = record_offsets(first);
    let damaged = offsets.len() / 2;
    flip(first, offsets[damaged] + 100);
    // Then verify, which reads every record, names that segment and offset
    let corruption = verify(dir.path()).unwrap().corruption.unwrap();
    assert_eq!(
        (&corruption.file, corruption.offset),
        (first, offsets[damaged] as u64)
    );
    // And an open reads the sealed segment through its index sidecar (it
    // does not read the records): it opens, and the read of the damaged
    // record fails naming that segment and offset
    {
        let store = FileStore::open(dir.path(), options()).unwrap();
        assert!(store.recovery_report().sidecars_read >= all.len() - 1);
        let read = runtime().block_on(store.stores().events.read_all(
            1,
            usize::MAX,
            &EventFilter::all(),
        ));
        match read {
            Err(StoreError::Corrupt { location, .. }) => assert!(
                location.contains(first.file_name().unwrap().to_str().unwrap())
                    && location.ends_with(&format!("offset {}", offsets[damaged])),
                "{location}"
            ),
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }
    // And without the sidecars, open fails naming that segment and offset
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == format::SIDECAR_EXT) {
            std::fs::remove_file(path).unwrap();
        }
    }
    assert_corrupt_at(
        FileStore::open(dir.path(), options()),
        first,
        offsets[damaged],
    );
    // And so does a read-only open
    assert_corrupt_at(
        FileStore::open_read_only(dir.path()),
        first,
        offsets[damaged],
    );
}

#[test]
fn the_last_record_of_a_closed_segment_cut_short_is_corruption_not_a_torn_tail() {
    let dir = store_with(options().segment_size(4096), &[1; 60]);
    let first = segments(dir.path()).remove(0);
    let len = std::fs::metadata(&first).unwrap().len() as usize;
    truncate(&first, len - 3);
    let last = *record_offsets_lenient(&first).last().unwrap();
    assert_corrupt_at(FileStore::open(dir.path(), options()), &first, last);
}

/// Record offsets of a segment whose last record may be cut short.
fn record_offsets_lenient(segment: &Path) -> Vec<usize> {
    let bytes = std::fs::read(segment).unwrap();
    let mut offsets = Vec::new();
    let mut at = SEGMENT_HEADER_LEN;
    while at < bytes.len() {
        offsets.push(at);
        match record::decode(&bytes[at..]) {
            Ok((_, len)) => at += len,
            Err(_) => break,
        }
    }
    offsets
}

#[test]
fn a_damaged_snapshot_is_reported_by_load_and_by_verify() {
    let dir = store_with(options(), &[1]);
    let store = FileStore::open(dir.path(), options()).unwrap();
    let snapshots = store.stores().snapshots;
    runtime().block_on(async {
        snapshots
            .save(logbook_ports::Snapshot {
                stream: stream(),
                version: 1,
                schema_version: 1,
                state: payload(json!({"balance": "1.00"})),
                taken_at: logbook_ports::event_store::timestamp_now(),
            })
            .await
            .unwrap();
    });
    let file = std::fs::read_dir(dir.path().join(SNAPSHOTS_DIR))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    flip(&file, 30);
    runtime().block_on(async {
        assert!(matches!(
            snapshots.load(&stream()).await,
            Err(StoreError::Corrupt { .. })
        ));
    });
    let report = verify(dir.path()).unwrap();
    assert_eq!(report.corruption.map(|c| c.file), Some(file));
}

#[test]
fn a_damaged_projection_document_is_reported_by_load_save_and_verify() {
    // Given a read model's document on disk, with one byte flipped
    let dir = store_with(options(), &[1]);
    let store = FileStore::open(dir.path(), options()).unwrap();
    let projections = store.stores().projections;
    let document = logbook_ports::ProjectionDocument {
        generation: 0,
        checkpoint: Some(1),
        model: payload(json!({"balance": "1.00"})),
        parked: Vec::new(),
        saved_at: logbook_ports::event_store::timestamp_now(),
    };
    runtime().block_on(async {
        projections
            .save(
                "balances",
                &document,
                logbook_ports::ProjectionSave::Advance,
            )
            .await
            .unwrap();
    });
    let file = dir.path().join(PROJECTIONS_DIR).join("balances");
    flip(&file, 30);
    // Then loading it, and saving over it, say it is corrupt
    runtime().block_on(async {
        assert!(matches!(
            projections.load("balances").await,
            Err(StoreError::Corrupt { .. })
        ));
        let next = logbook_ports::ProjectionDocument {
            generation: 1,
            ..document.clone()
        };
        assert!(matches!(
            projections
                .save("balances", &next, logbook_ports::ProjectionSave::Advance)
                .await,
            Err(StoreError::Corrupt { .. })
        ));
    });
    // And verify names the file
    let report = verify(dir.path()).unwrap();
    assert_eq!(report.corruption.map(|c| c.file), Some(file));
}

#[test]
fn a_second_writer_is_refused_while_readers_may_open() {
    // Given a store open for writing
    let dir = store_with(options(), &[2]);
    let writer = FileStore::open(dir.path(), options()).unwrap();
    // When another writer tries to open it
    let second = FileStore::open(dir.path(), options());
    // Then it is refused as locked
    match second {
        Err(e @ StoreError::Locked { .. }) => {
            assert!(e.to_string().contains("locked by another process"), "{e}");
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    // And a reader opens, sees the events, and cannot write
    let reader = FileStore::open_read_only(dir.path()).unwrap();
    assert!(reader.is_read_only());
    assert_eq!(ns(&reader.stores()), [0, 1]);
    runtime().block_on(async {
        assert!(
            reader
                .stores()
                .events
                .append(&stream(), ExpectedVersion::Any, vec![event(9)])
                .await
                .is_err()
        );
    });
    // And once the writer closes, a new writer gets the lock
    drop(writer);
    FileStore::open(dir.path(), options()).unwrap();
}

/// Appends `zeros` zero bytes to `path`, as the writer's preallocation
/// leaves them when the process dies.
fn append_zeros(path: &Path, zeros: usize) {
    let len = std::fs::metadata(path).unwrap().len();
    truncate(path, len as usize + zeros);
}

#[test]
fn a_preallocated_zero_tail_is_free_space_not_a_torn_tail() {
    for zeros in [1, 3, 8, 200, 1 << 20] {
        // Given a store whose last segment ends in zeros after whole batches
        let dir = store_with(options(), &[1, 2, 1]);
        let segment = segments(dir.path()).pop().unwrap();
        let end = std::fs::metadata(&segment).unwrap().len();
        append_zeros(&segment, zeros);
        // Then verify finds nothing wrong and open cuts nothing
        let report = verify(dir.path()).unwrap();
        assert!(report.is_ok(), "{zeros} zeros: {report}");
        assert!(report.torn_tail.is_none(), "{zeros} zeros: {report}");
        assert_eq!(report.events, 4);
        let store = FileStore::open(dir.path(), options()).unwrap();
        assert!(
            store.recovery_report().torn_tail.is_none(),
            "{zeros} zeros: {}",
            store.recovery_report()
        );
        assert_eq!(store.recovery_report().bytes, end);
        assert_eq!(ns(&store.stores()), [0, 1, 2, 3]);
        // And appending goes on in the free space, and closing trims the rest
        runtime().block_on(async {
            let outcome = store
                .stores()
                .events
                .append(&stream(), ExpectedVersion::Exact(4), vec![event(4)])
                .await
                .unwrap();
            assert_eq!(outcome.last_position, Some(5));
        });
        drop(store);
        assert_eq!(record_offsets(&segment).len(), 5, "{zeros} zeros");
        let store = FileStore::open(dir.path(), options()).unwrap();
        assert!(store.recovery_report().is_clean());
        assert_eq!(ns(&store.stores()), [0, 1, 2, 3, 4]);
    }
}

#[test]
fn an_open_store_preallocates_and_readers_see_only_whole_batches() {
    let dir = tempfile::tempdir().unwrap();
    let options = FileOptions::new().durability(Durability::Always);
    let store = FileStore::open(dir.path(), options.clone()).unwrap();
    runtime().block_on(async {
        for n in 0..3 {
            store
                .stores()
                .events
                .append(&stream(), ExpectedVersion::Any, vec![event(n)])
                .await
                .unwrap();
        }
    });
    // While the writer has the segment open, it is longer than the log
    let segment = segments(dir.path()).pop().unwrap();
    assert!(std::fs::metadata(&segment).unwrap().len() >= 1 << 20);
    // And verify and a reader take the zeros for free space
    let report = verify(dir.path()).unwrap();
    assert!(report.is_ok() && report.torn_tail.is_none(), "{report}");
    assert_eq!(report.events, 3);
    let reader = FileStore::open_read_only(dir.path()).unwrap();
    assert!(reader.recovery_report().torn_tail.is_none());
    assert_eq!(ns(&reader.stores()), [0, 1, 2]);
    // And a closed segment ends with its last record
    drop(reader);
    drop(store);
    assert_eq!(record_offsets(&segment).len(), 3);
}

#[test]
fn zeros_followed_by_a_later_write_are_corruption() {
    // Given five appends, each its own write
    let pristine = store_with(options(), &[1, 1, 1, 1, 1]);
    let name = segments(pristine.path()).pop().unwrap();
    let offsets = record_offsets(&name);
    for (from, to) in [(offsets[1], offsets[2]), (offsets[1], offsets[1] + 100)] {
        // When a region from the second record on is zeroed, later writes intact
        let dir = copy_dir(pristine.path());
        let segment = dir.path().join(name.file_name().unwrap());
        let mut bytes = std::fs::read(&segment).unwrap();
        bytes[from..to].fill(0);
        std::fs::write(&segment, &bytes).unwrap();
        // Then verify and open report corruption at the zeros, cutting nothing
        let report = verify(dir.path()).unwrap();
        let corruption = report.corruption.expect("zeros before a later write");
        assert_eq!(
            (&corruption.file, corruption.offset),
            (&segment, from as u64)
        );
        assert_corrupt_at(FileStore::open(dir.path(), options()), &segment, from);
        assert_eq!(std::fs::read(&segment).unwrap(), bytes, "nothing was cut");
    }
}

#[test]
fn zeros_after_an_unfinished_batch_are_a_torn_tail() {
    // Given a last batch of three whose third record never reached the disk
    let dir = store_with(options(), &[2, 3]);
    let segment = segments(dir.path()).pop().unwrap();
    let offsets = record_offsets(&segment);
    truncate(&segment, offsets[4]);
    append_zeros(&segment, 4096);
    durable_up_to(dir.path(), &segment, offsets[2]);
    // Then the batch is cut whole, zeros and all
    let store = FileStore::open(dir.path(), options()).unwrap();
    let torn = store.recovery_report().torn_tail.clone().unwrap();
    assert_eq!(torn.events_dropped, 2);
    assert_eq!(torn.offset, offsets[2] as u64);
    assert_eq!(
        std::fs::metadata(&segment).unwrap().len(),
        offsets[2] as u64
    );
    assert_eq!(ns(&store.stores()), [0, 1]);
}

#[test]
fn zeros_at_the_end_of_a_closed_segment_are_corruption() {
    // Segments are trimmed before the next one starts: zeros there are damage
    let dir = store_with(options().segment_size(4096), &[1; 60]);
    let first = segments(dir.path()).remove(0);
    let len = std::fs::metadata(&first).unwrap().len() as usize;
    append_zeros(&first, 512);
    assert_corrupt_at(FileStore::open(dir.path(), options()), &first, len);
    assert!(!verify(dir.path()).unwrap().is_ok());
}

#[test]
fn the_scan_checks_records_across_read_chunks_and_large_frames() {
    // Given a segment longer than one read-ahead chunk (8 MiB), with a
    // frame larger than a chunk in the middle
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path(), options()).unwrap();
    let big = NewEvent::new(
        "Happened",
        payload(json!({ "n": 1000, "pad": "b".repeat(9 << 20) })),
    );
    runtime().block_on(async {
        let events = store.stores().events;
        let batch = (0..1000).map(event).collect();
        events
            .append(&stream(), ExpectedVersion::Any, batch)
            .await
            .unwrap();
        events
            .append(&stream(), ExpectedVersion::Any, vec![big])
            .await
            .unwrap();
        for round in 0..30u64 {
            let batch = (0..1000).map(|i| event(1001 + round * 1000 + i)).collect();
            events
                .append(&stream(), ExpectedVersion::Any, batch)
                .await
                .unwrap();
        }
    });
    drop(store);
    let segment = segments(dir.path()).pop().unwrap();
    let offsets = record_offsets(&segment);
    assert!(std::fs::metadata(&segment).unwrap().len() > 12 << 20);
    // Then it opens whole
    let pristine = copy_dir(dir.path());
    let store = FileStore::open(dir.path(), options()).unwrap();
    assert_eq!(store.recovery_report().events, 31_001);
    drop(store);
    // And damage far past the first chunk is found at its record
    let victim = offsets[28_000];
    assert!(victim > 12 << 20);
    let segment = pristine.path().join(segment.file_name().unwrap());
    flip(&segment, victim + 100);
    assert_corrupt_at(
        FileStore::open(pristine.path(), options()),
        &segment,
        victim,
    );
}

/// Rewrites the record at `at` of a segment's `bytes` to carry `id`, with
/// a valid checksum and the same length.
fn forge_id(bytes: &mut Vec<u8>, at: usize, id: logbook_ports::EventId) {
    let (record, len) = record::decode(&bytes[at..]).unwrap();
    let mut forged = Vec::new();
    record::encode(&record::Record { id, ..record }, &mut forged);
    assert_eq!(forged.len(), len);
    bytes.splice(at..at + len, forged);
}

#[test]
fn a_duplicate_event_id_on_disk_fails_open_at_its_record_and_cuts_nothing() {
    // Given five single-event appends, the third record rewritten (with a
    // valid checksum) to carry the first record's id, and a torn last record
    let dir = store_with(options(), &[1, 1, 1, 1, 1]);
    let segment = segments(dir.path()).pop().unwrap();
    let offsets = record_offsets(&segment);
    let mut bytes = std::fs::read(&segment).unwrap();
    let first_id = record::decode(&bytes[offsets[0]..]).unwrap().0.id;
    forge_id(&mut bytes, offsets[2], first_id);
    let torn_at = offsets[4] + 10;
    bytes.truncate(torn_at);
    std::fs::write(&segment, &bytes).unwrap();
    // Then verify and open report the duplicate at the third record
    let report = verify(dir.path()).unwrap();
    let corruption = report.corruption.expect("a duplicate id is corruption");
    assert_eq!(
        corruption.offset, offsets[2] as u64,
        "{}",
        corruption.detail
    );
    assert!(corruption.detail.contains("also at position 1"));
    assert_eq!(report.events, 2);
    assert_corrupt_at(FileStore::open(dir.path(), options()), &segment, offsets[2]);
    // And the torn tail after it was not cut
    assert_eq!(std::fs::metadata(&segment).unwrap().len(), torn_at as u64);
}

#[test]
fn a_duplicate_id_in_segments_taken_from_sidecars_is_found_by_the_first_append_that_needs_their_ids()
 {
    // Given a store over several segments whose second segment's third
    // record was rewritten (with a valid checksum) to carry the id of the
    // first event, and that segment's sidecar removed, so the next open
    // scans it and writes its sidecar from the forged record
    let dir = store_with(options().segment_size(4096), &[1; 60]);
    let all = segments(dir.path());
    assert!(all.len() > 3, "the store rolled: {} segments", all.len());
    let first_id = {
        let bytes = std::fs::read(&all[0]).unwrap();
        record::decode(&bytes[SEGMENT_HEADER_LEN..]).unwrap().0.id
    };
    let victim = &all[1];
    let offsets = record_offsets(victim);
    assert!(offsets.len() > 3, "{} records", offsets.len());
    let mut bytes = std::fs::read(victim).unwrap();
    forge_id(&mut bytes, offsets[2], first_id);
    std::fs::write(victim, &bytes).unwrap();
    std::fs::remove_file(victim.with_extension(format::SIDECAR_EXT)).unwrap();
    // Then verify, which reads every record, names the forged record
    let corruption = verify(dir.path()).unwrap().corruption.unwrap();
    assert_eq!(
        (&corruption.file, corruption.offset),
        (victim, offsets[2] as u64)
    );
    assert!(
        corruption.detail.contains("also at position 1"),
        "{corruption}"
    );
    let other = StreamId::new("Other-1").unwrap();
    for open in [
        "the open that scans it",
        "the open that takes it from its sidecar",
    ] {
        // When opened (the first segment is taken from its sidecar's
        // summary, its ids are not read)
        let store = FileStore::open(dir.path(), options()).unwrap();
        let rebuilt = &store.recovery_report().sidecars_rebuilt;
        assert_eq!(rebuilt.len(), usize::from(open.contains("scans")), "{open}");
        let events = store.stores().events;
        runtime().block_on(async {
            // Then an append of a fresh id does not need them
            events
                .append(&other, ExpectedVersion::Any, vec![event(100)])
                .await
                .unwrap_or_else(|e| panic!("{open}: {e}"));
            // And an append of an id among them finds the duplicate,
            // naming the forged record, and writes nothing
            let head = events.head_position().await.unwrap();
            for _ in 0..2 {
                match events
                    .append(
                        &other,
                        ExpectedVersion::Any,
                        vec![event(101).with_id(first_id)],
                    )
                    .await
                {
                    Err(StoreError::Corrupt { location, detail }) => assert!(
                        location.contains(victim.file_name().unwrap().to_str().unwrap())
                            && location.ends_with(&format!("offset {}", offsets[2]))
                            && detail.contains("also at position 1"),
                        "{open}: {location}: {detail}"
                    ),
                    other => panic!("{open}: expected Corrupt, got {other:?}"),
                }
            }
            assert_eq!(events.head_position().await.unwrap(), head, "{open}");
        });
    }
}

#[test]
fn a_byte_flipped_in_the_last_acknowledged_record_is_corruption_not_a_torn_tail() {
    for durability in [Durability::Always, Durability::Never] {
        // Given a closed store of three appends, all acknowledged and synced
        // (the writer's durable mark is at the end of the last one)
        let pristine = store_with(FileOptions::new().durability(durability), &[1, 1, 1]);
        let name = segments(pristine.path()).pop().unwrap();
        let last = *record_offsets(&name).last().unwrap();
        let len = std::fs::metadata(&name).unwrap().len() as usize;
        for flip in [last + 3, (last + len) / 2, len - 1] {
            // When one byte of that last record is flipped
            let dir = copy_dir(pristine.path());
            let segment = dir.path().join(name.file_name().unwrap());
            let mut bytes = std::fs::read(&segment).unwrap();
            bytes[flip] ^= 0x40;
            std::fs::write(&segment, &bytes).unwrap();

            // Then verify reports corruption at the record, naming the file
            let report = verify(dir.path()).unwrap();
            let corruption = report
                .corruption
                .unwrap_or_else(|| panic!("{durability:?}, flip at {flip}: no corruption"));
            assert_eq!(
                (&corruption.file, corruption.offset),
                (&segment, last as u64)
            );
            assert!(
                corruption.detail.contains("durable up to offset"),
                "{corruption}"
            );
            assert!(report.torn_tail.is_none());

            // And open fails the same way, cutting nothing
            assert_corrupt_at(FileStore::open(dir.path(), options()), &segment, last);
            assert_eq!(std::fs::read(&segment).unwrap(), bytes, "nothing was cut");
        }
    }
}

#[test]
fn an_acknowledged_record_cut_short_is_corruption() {
    // Given a closed store whose last record was acknowledged and synced
    let dir = store_with(options(), &[1, 1, 1]);
    let segment = segments(dir.path()).pop().unwrap();
    let last = *record_offsets(&segment).last().unwrap();
    // When the segment loses the end of that record
    truncate(&segment, last + 20);
    // Then open reports corruption at it instead of cutting it
    assert_corrupt_at(FileStore::open(dir.path(), options()), &segment, last);
    assert_eq!(
        std::fs::metadata(&segment).unwrap().len(),
        (last + 20) as u64
    );
}

#[test]
fn the_bytes_of_a_torn_tail_are_kept_beside_the_segment() {
    // Given a closed store, and after its durable mark the start of a write
    // that a crash cut short (half of a record)
    let dir = store_with(options(), &[1, 1]);
    let segment = segments(dir.path()).pop().unwrap();
    let offsets = record_offsets(&segment);
    let end = std::fs::metadata(&segment).unwrap().len() as usize;
    let original = std::fs::read(&segment).unwrap();
    let half_record = original[offsets[1]..offsets[1] + (end - offsets[1]) / 2].to_vec();
    let mut torn = original.clone();
    torn.extend_from_slice(&half_record);
    std::fs::write(&segment, &torn).unwrap();

    // When the store is opened for writing
    let store = FileStore::open(dir.path(), options()).unwrap();

    // Then the torn bytes are cut from the segment but kept, byte for byte,
    // in a file beside it that the report names
    let report = store.recovery_report().torn_tail.clone().unwrap();
    let kept = report.kept_in.clone().expect("the cut bytes are kept");
    assert_eq!(kept.parent(), segment.parent());
    assert_eq!(
        kept.file_name().unwrap().to_str().unwrap(),
        format!(
            "{}.torn-{end}",
            segment.file_name().unwrap().to_str().unwrap()
        )
    );
    assert_eq!(std::fs::read(&kept).unwrap(), half_record);
    assert!(report.to_string().contains(&kept.display().to_string()));
    assert_eq!(std::fs::read(&segment).unwrap(), original);
    assert_eq!(ns(&store.stores()), [0, 1]);
}
