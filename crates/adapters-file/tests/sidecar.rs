//! The index sidecars of sealed segments: an open that reads them yields
//! exactly what a full scan yields, and a sidecar that is missing, cut
//! short, byte-flipped, stale or another segment's is ignored (reported),
//! the segment scanned, and the sidecar written again.

use std::path::{Path, PathBuf};

use logbook_adapters_file::format::{self, SIDECAR_EXT, parse_segment_name};
use logbook_adapters_file::{Durability, FileOptions, FileStore, RecoveryReport};
use logbook_ports::conformance::payload;
use logbook_ports::{
    AppendOutcome, EventFilter, EventStore, ExpectedVersion, NewEvent, ReadDirection,
    RecordedEvent, StreamId, StreamRetention,
};
use serde_json::json;
use tempfile::TempDir;

mod support;
use support::copy_dir;

const STREAMS: [&str; 3] = ["A-1", "B-2", "C-3"];

fn options() -> FileOptions {
    FileOptions::new()
        .durability(Durability::Never)
        .segment_size(4096)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// One append as it was made, so it can be sent again as a retry.
type Batch = (StreamId, Vec<NewEvent>);

/// A store over many 4 KiB segments (about three events each, so a
/// sidecar is small and a test may damage each of its bytes): three streams written in batches
/// of one to three events (so streams and batches cross segment ends), two
/// event types, and the last stream deleted. Closed again.
fn written() -> (TempDir, Vec<Batch>) {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path(), options()).unwrap();
    let events = store.events();
    let mut batches = Vec::new();
    runtime().block_on(async {
        for k in 0..40u64 {
            let stream = StreamId::new(STREAMS[(k % 3) as usize]).unwrap();
            let batch: Vec<NewEvent> = (0..1 + k % 3)
                .map(|i| {
                    let kind = if (k + i) % 2 == 0 {
                        "Opened"
                    } else {
                        "Deposited"
                    };
                    NewEvent::new(
                        kind,
                        payload(json!({ "k": k, "i": i, "pad": "p".repeat(1000) })),
                    )
                })
                .collect();
            events
                .append(&stream, ExpectedVersion::Any, batch.clone())
                .await
                .unwrap();
            batches.push((stream, batch));
        }
        events
            .delete_stream(&StreamId::new(STREAMS[2]).unwrap(), ExpectedVersion::Any)
            .await
            .unwrap();
    });
    drop(events);
    drop(store);
    (dir, batches)
}

/// What the public API shows of a store: the global log, each stream
/// read forwards (or its error), and the outcome of sending every batch
/// again (each must be recognised as a retry, writing nothing).
#[derive(Debug, PartialEq)]
struct Observed {
    log: Vec<RecordedEvent>,
    streams: Vec<Result<Vec<RecordedEvent>, String>>,
    retries: Vec<Result<AppendOutcome, String>>,
}

/// Opens the store in `dir` for writing and observes it.
fn observe(dir: &Path, batches: &[Batch]) -> (Observed, RecoveryReport) {
    let store = FileStore::open(dir, options()).unwrap();
    let report = store.recovery_report().clone();
    let events = store.events();
    let observed = runtime().block_on(async {
        let log = events
            .read_all(1, usize::MAX, &EventFilter::all())
            .await
            .unwrap();
        let mut streams = Vec::new();
        for name in STREAMS {
            let stream = StreamId::new(name).unwrap();
            streams.push(
                events
                    .read_stream(&stream, ReadDirection::Forward, 1, usize::MAX)
                    .await
                    .map_err(|e| e.to_string()),
            );
        }
        let mut retries = Vec::new();
        for (stream, batch) in batches {
            retries.push(
                events
                    .append(stream, ExpectedVersion::Any, batch.clone())
                    .await
                    .map_err(|e| e.to_string()),
            );
        }
        Observed {
            log,
            streams,
            retries,
        }
    });
    (observed, report)
}

fn sidecars(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == SIDECAR_EXT))
        .collect();
    found.sort();
    found
}

fn segment_count(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            parse_segment_name(name.to_str().unwrap()).is_some()
        })
        .count()
}

/// What a full scan shows: the store opened with every sidecar removed.
fn full_scan(dir: &Path, batches: &[Batch]) -> Observed {
    let copy = copy_dir(dir);
    for sidecar in sidecars(copy.path()) {
        std::fs::remove_file(sidecar).unwrap();
    }
    let (observed, report) = observe(copy.path(), batches);
    assert_eq!(report.sidecars_read, 0, "{report}");
    observed
}

#[test]
fn a_reopen_through_sidecars_yields_exactly_what_a_full_scan_yields() {
    // Given a store over several segments, closed
    let (dir, batches) = written();
    let segments = segment_count(dir.path());
    assert!(segments > 3, "the store rolled: {segments} segments");
    // Then every sealed segment has a sidecar
    assert_eq!(sidecars(dir.path()).len(), segments - 1);
    let expected = full_scan(dir.path(), &batches);
    // When opened again
    let (observed, report) = observe(dir.path(), &batches);
    // Then the open read every sealed segment's sidecar, scanned only the
    // tail, and the log, the streams and the retries are what a full scan
    // shows
    assert_eq!(report.sidecars_read, segments - 1, "{report}");
    assert!(report.sidecars_rebuilt.is_empty(), "{report}");
    // (A retry into the deleted stream is refused as the stream is deleted.)
    for ((stream, _), retry) in batches.iter().zip(&expected.retries) {
        match retry {
            Ok(outcome) => assert!(outcome.already_recorded, "{stream}"),
            Err(e) => assert!(
                stream.as_str() == STREAMS[2] && e.contains("deleted"),
                "{e}"
            ),
        }
    }
    assert_eq!(observed, expected);
    // And a read-only open through the sidecars sees the same log (the
    // retries may have sealed one more segment: a full segment is sealed
    // before a group is checked)
    let reader = FileStore::open_read_only(dir.path()).unwrap();
    assert_eq!(
        reader.recovery_report().sidecars_read,
        segment_count(dir.path()) - 1
    );
    let log = runtime()
        .block_on(reader.events().read_all(1, usize::MAX, &EventFilter::all()))
        .unwrap();
    assert_eq!(log, expected.log);
}

/// Where damage to a sidecar is found: by the open, which reads only the
/// summary (and checks the file's length), or by the first use of the
/// segment's records, which checks their checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FoundBy {
    Open,
    FirstUse,
}

/// Where a byte flipped at `at` of `sidecar` is found: past the summary's
/// envelope (its length is in its header), in the records.
fn found_by_flip_at(sidecar: &[u8], at: usize) -> FoundBy {
    let body = u32::from_le_bytes(sidecar[12..16].try_into().unwrap()) as usize;
    if at < format::ENVELOPE_LEN + body {
        FoundBy::Open
    } else {
        FoundBy::FirstUse
    }
}

/// Damages the first sidecar with `damage`, opens, and checks that the
/// damage was found where `found_by` says and that the reads are a full
/// scan's. With `whole`, the open is for writing, everything is
/// [`observe`]d, and the sidecar must have been written again as it was.
/// Otherwise (to keep a loop over every byte cheap) only the first events
/// are read: damage found by the open is checked with a read-only open
/// (it reports it and leaves the sidecar, put back afterwards); damage
/// found on first use with an open for writing, whose first read of the
/// segment reads the segment itself and writes the sidecar again.
fn assert_rebuilt_after(
    dir: &Path,
    batches: &[Batch],
    expected: &Observed,
    whole: bool,
    found_by: FoundBy,
    what: &str,
    damage: impl FnOnce(&Path),
) {
    let sidecar = sidecars(dir)[0].clone();
    let pristine = std::fs::read(&sidecar).unwrap();
    damage(&sidecar);
    let reported_at_open = match found_by {
        FoundBy::Open => vec![sidecar.clone()],
        FoundBy::FirstUse => Vec::new(),
    };
    if whole {
        let (observed, report) = observe(dir, batches);
        assert_eq!(
            report.sidecars_rebuilt, reported_at_open,
            "{what}: {report}"
        );
        assert_eq!(&observed, expected, "{what}");
    } else if found_by == FoundBy::Open {
        let reader = FileStore::open_read_only(dir).unwrap();
        let report = reader.recovery_report();
        assert_eq!(
            report.sidecars_rebuilt, reported_at_open,
            "{what}: {report}"
        );
        assert_eq!(report.events, expected.log.len() as u64, "{what}");
        // The events of the damaged segment and its neighbour (a read of
        // the whole log costs ~100 ms in a debug build, too much per byte).
        let log = runtime()
            .block_on(reader.events().read_all(1, 8, &EventFilter::all()))
            .unwrap();
        assert_eq!(log[..], expected.log[..8], "{what}");
        drop(reader);
        std::fs::write(&sidecar, &pristine).unwrap();
        return;
    } else {
        let store = FileStore::open(dir, options()).unwrap();
        let report = store.recovery_report();
        assert_eq!(
            report.sidecars_rebuilt, reported_at_open,
            "{what}: {report}"
        );
        let log = runtime()
            .block_on(store.events().read_all(1, 8, &EventFilter::all()))
            .unwrap();
        assert_eq!(log[..], expected.log[..8], "{what}");
    }
    assert_eq!(
        std::fs::read(&sidecar).unwrap(),
        pristine,
        "{what}: the sidecar was written again"
    );
}

#[test]
fn a_sidecar_cut_short_at_every_byte_or_missing_is_rebuilt_from_the_segment() {
    let (dir, batches) = written();
    let expected = full_scan(dir.path(), &batches);
    let len = std::fs::read(&sidecars(dir.path())[0]).unwrap().len();
    for cut in 0..len {
        assert_rebuilt_after(
            dir.path(),
            &batches,
            &expected,
            cut == len / 2,
            FoundBy::Open,
            &format!("cut at {cut}"),
            |path| {
                let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
                file.set_len(cut as u64).unwrap();
            },
        );
    }
    let deleted = |path: &Path| std::fs::remove_file(path).unwrap();
    assert_rebuilt_after(
        dir.path(),
        &batches,
        &expected,
        true,
        FoundBy::Open,
        "deleted",
        deleted,
    );
}

#[test]
fn a_sidecar_with_any_byte_flipped_is_rebuilt_from_the_segment() {
    let (dir, batches) = written();
    let expected = full_scan(dir.path(), &batches);
    let pristine = std::fs::read(&sidecars(dir.path())[0]).unwrap();
    let len = pristine.len();
    let first_record = (0..len)
        .find(|&at| found_by_flip_at(&pristine, at) == FoundBy::FirstUse)
        .expect("the sidecar holds records");
    for at in 0..len {
        // Once in the summary and once in the records, the whole store is
        // observed after the flip.
        assert_rebuilt_after(
            dir.path(),
            &batches,
            &expected,
            at == first_record / 2 || at == (first_record + len) / 2,
            found_by_flip_at(&pristine, at),
            &format!("flip at {at}"),
            |path| {
                let mut bytes = std::fs::read(path).unwrap();
                bytes[at] ^= 0x20;
                std::fs::write(path, bytes).unwrap();
            },
        );
    }
}

#[test]
fn sidecars_swapped_between_two_segments_are_both_rebuilt() {
    let (dir, batches) = written();
    let expected = full_scan(dir.path(), &batches);
    let all = sidecars(dir.path());
    let (first, second) = (
        std::fs::read(&all[0]).unwrap(),
        std::fs::read(&all[1]).unwrap(),
    );
    // Given the first two sidecars swapped
    std::fs::write(&all[0], &second).unwrap();
    std::fs::write(&all[1], &first).unwrap();
    // When opened
    let (observed, report) = observe(dir.path(), &batches);
    // Then both were ignored and written again, and the reads are a full
    // scan's
    assert_eq!(report.sidecars_rebuilt, all[..2].to_vec(), "{report}");
    assert_eq!(observed, expected);
    assert_eq!(std::fs::read(&all[0]).unwrap(), first);
    assert_eq!(std::fs::read(&all[1]).unwrap(), second);
}

#[test]
fn a_leftover_temporary_sidecar_is_removed_and_the_sidecar_still_read() {
    let (dir, batches) = written();
    let expected = full_scan(dir.path(), &batches);
    // Given a sidecar write that crashed before its rename
    let sidecar = sidecars(dir.path())[0].clone();
    let mut temp = sidecar.clone().into_os_string();
    temp.push(".tmp");
    std::fs::write(&temp, b"half a sidecar").unwrap();
    // When opened
    let (observed, report) = observe(dir.path(), &batches);
    // Then the temporary file is gone, the sidecar was read, and the reads
    // are a full scan's
    assert_eq!(report.removed_temp_files, vec![PathBuf::from(&temp)]);
    assert!(report.sidecars_rebuilt.is_empty(), "{report}");
    assert_eq!(observed, expected);
}

#[test]
fn a_scavenge_rewrites_the_sidecars_and_one_from_before_it_is_ignored() {
    // Given a store whose first stream is kept to its last 2 events, with
    // a copy of every sidecar from before the scavenge
    let (dir, batches) = written();
    let before: Vec<(PathBuf, Vec<u8>)> = sidecars(dir.path())
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    {
        let store = FileStore::open(dir.path(), options()).unwrap();
        let events = store.events();
        runtime().block_on(async {
            let policy = StreamRetention::new(None, Some(2), None).unwrap();
            let stream = StreamId::new(STREAMS[0]).unwrap();
            events.set_retention(&stream, policy).await.unwrap();
            let report = events.scavenge().await.unwrap();
            assert!(report.events > 10, "{report:?}");
        });
    }
    let expected = full_scan(dir.path(), &batches);
    let changed: Vec<&(PathBuf, Vec<u8>)> = before
        .iter()
        .filter(|(p, bytes)| std::fs::read(p).unwrap() != *bytes)
        .collect();
    assert!(!changed.is_empty(), "the scavenge rewrote sidecars");
    // When reopened, the rewritten sidecars are read and bind
    let copy = copy_dir(dir.path());
    let (observed, report) = observe(copy.path(), &batches);
    assert!(report.sidecars_rebuilt.is_empty(), "{report}");
    // (The scavenge sealed the open segment first: one sidecar more.)
    assert_eq!(report.sidecars_read, segment_count(copy.path()) - 1);
    assert_eq!(report.sidecars_read, before.len() + 1);
    assert_eq!(observed, expected);
    // And when a sidecar from before the scavenge is put back, it no
    // longer binds to its rewritten segment: ignored and written again
    let (path, stale) = changed[0];
    let rewritten = std::fs::read(path).unwrap();
    std::fs::write(path, stale).unwrap();
    let (observed, report) = observe(dir.path(), &batches);
    assert_eq!(report.sidecars_rebuilt, vec![path.clone()], "{report}");
    assert_eq!(observed, expected);
    assert_eq!(std::fs::read(path).unwrap(), rewritten);
}

#[test]
fn a_sidecar_whose_summary_claims_more_than_it_holds_is_ignored_not_trusted() {
    let (dir, batches) = written();
    let expected = full_scan(dir.path(), &batches);
    // A summary with a valid checksum, bound to its segment's first
    // position and length, that claims u32::MAX records, streams and event
    // types in a file of a few dozen bytes
    let forged = |path: &Path| {
        let segment = path.with_extension(format::SEGMENT_EXT);
        let name = segment.file_name().unwrap().to_str().unwrap();
        let mut body = Vec::new();
        body.extend_from_slice(&parse_segment_name(name).unwrap().to_le_bytes());
        body.extend_from_slice(&std::fs::metadata(&segment).unwrap().len().to_le_bytes());
        body.extend_from_slice(&[0; 8]); // the last record's offset and checksum
        for _ in 0..3 {
            body.extend_from_slice(&u32::MAX.to_le_bytes()); // records, streams, types
        }
        body.extend_from_slice(&[0; 4 + 32]); // the records' checksum, the id range
        std::fs::write(path, format::seal(format::SIDECAR_MAGIC, &body)).unwrap();
    };
    assert_rebuilt_after(
        dir.path(),
        &batches,
        &expected,
        false,
        FoundBy::Open,
        "a summary claiming u32::MAX of everything",
        forged,
    );
}
