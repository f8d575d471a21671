//! A scavenge on the file store: sealed segments rewritten without the
//! reclaimed events' payloads, so the files shrink, while open, verify,
//! the index and every surviving byte stay as they were.

use std::path::Path;

use logbook_adapters_file::{Durability, FileOptions, FileStore, verify};
use logbook_ports::conformance::payload;
use logbook_ports::{
    EventFilter, ExpectedVersion, NewEvent, ReadDirection, StreamId, StreamRetention,
};
use serde_json::json;

fn event(n: u64) -> NewEvent {
    NewEvent::new(
        "Happened",
        payload(json!({ "n": n, "pad": "p".repeat(1000) })),
    )
}

fn segment_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".seg"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

/// Appends 200 events of about 1 KiB to `a`, one at a time, and one to
/// `b` after every tenth of them.
async fn append_a_and_b(
    events: &logbook_adapters_file::FileEventStore,
    a: &StreamId,
    b: &StreamId,
) {
    use logbook_ports::EventStore;
    for n in 0..200 {
        events
            .append(a, ExpectedVersion::Any, vec![event(n)])
            .await
            .unwrap();
        if n % 10 == 0 {
            events
                .append(b, ExpectedVersion::Any, vec![event(n)])
                .await
                .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scavenge_shrinks_the_segments_and_the_store_still_opens_verifies_and_reads() {
    // Given 200 events of about 1 KiB in A-1 kept to its latest 10, among 20
    // events of B-1, over many small segments.
    let dir = tempfile::tempdir().unwrap();
    let options = FileOptions::new()
        .durability(Durability::Never)
        .segment_size(64 << 10);
    let (a, b) = (StreamId::new("A-1").unwrap(), StreamId::new("B-1").unwrap());
    let (before, log_before) = {
        let store = FileStore::open(dir.path(), options.clone()).unwrap();
        let events = store.events();
        use logbook_ports::EventStore;
        append_a_and_b(&events, &a, &b).await;
        let policy = StreamRetention::new(None, Some(10), None).unwrap();
        events.set_retention(&a, policy).await.unwrap();
        let log_before = events
            .read_all(1, usize::MAX, &EventFilter::all())
            .await
            .unwrap();
        let before = segment_bytes(dir.path());
        // When scavenged.
        let report = events.scavenge().await.unwrap();
        assert_eq!((report.events, report.streams), (190, 1));
        assert!(report.bytes > 190 * 1000, "{report:?}");
        // Then what is read is the same, while the store is open.
        let log_after = events
            .read_all(1, usize::MAX, &EventFilter::all())
            .await
            .unwrap();
        assert_eq!(log_after, log_before);
        (before, log_before)
    };
    // And the segments shrank by the reclaimed payloads.
    let after = segment_bytes(dir.path());
    assert!(before - after > 190 * 1000, "{before} -> {after} bytes");
    // And verify finds every segment sound, and a reopen rebuilds the index.
    let report = verify(dir.path()).unwrap();
    assert!(report.is_ok(), "{report:?}");
    let store = FileStore::open(dir.path(), options).unwrap();
    assert!(
        store.recovery_report().is_clean(),
        "{}",
        store.recovery_report()
    );
    let events = store.events();
    use logbook_ports::EventStore;
    assert_eq!(
        events
            .read_all(1, usize::MAX, &EventFilter::all())
            .await
            .unwrap(),
        log_before
    );
    let kept = events
        .read_stream(&a, ReadDirection::Forward, 1, usize::MAX)
        .await
        .unwrap();
    assert_eq!(
        kept.iter().map(|e| e.version).collect::<Vec<_>>(),
        (191..=200).collect::<Vec<_>>()
    );
    // And appends go on after it, at the next version and position.
    let next = events
        .append(&a, ExpectedVersion::Exact(200), vec![event(0)])
        .await
        .unwrap();
    assert_eq!(next.first_position, Some(221));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_opened_before_a_scavenge_reads_the_log_it_opened_through_its_own_handles() {
    use logbook_ports::EventStore;
    // Given a closed store over many small segments: 200 events of A-1 and
    // 20 of B-1
    let dir = tempfile::tempdir().unwrap();
    let options = FileOptions::new()
        .durability(Durability::Never)
        .segment_size(64 << 10);
    let (a, b) = (StreamId::new("A-1").unwrap(), StreamId::new("B-1").unwrap());
    {
        let store = FileStore::open(dir.path(), options.clone()).unwrap();
        append_a_and_b(&store.events(), &a, &b).await;
    }
    // And, opened again, a writer and a reader that has read nothing yet
    // (its sealed segments known by their sidecars' summaries only)
    let writer = FileStore::open(dir.path(), options).unwrap();
    let reader = FileStore::open_read_only(dir.path()).unwrap();
    assert!(reader.recovery_report().sidecars_read >= 3);
    let whole = writer
        .events()
        .read_all(1, usize::MAX, &EventFilter::all())
        .await
        .unwrap();
    assert_eq!(whole.len(), 220);
    // When the writer keeps A-1 to its last 10 events and scavenges,
    // rewriting the sealed segments and their sidecars
    let policy = StreamRetention::new(None, Some(10), None).unwrap();
    writer.events().set_retention(&a, policy).await.unwrap();
    let report = writer.events().scavenge().await.unwrap();
    assert_eq!(report.events, 190);
    // Then the reader, whose sidecar summaries no longer match the files
    // now at those paths, reads its segments through the handles it
    // opened: the log as it was, every event and payload (the retention
    // policy came after it opened)
    let read = reader
        .events()
        .read_all(1, usize::MAX, &EventFilter::all())
        .await
        .unwrap();
    assert_eq!(read, whole);
    // And the writer's own reads hide what the policy hides
    let kept = writer
        .events()
        .read_stream(&a, ReadDirection::Forward, 1, usize::MAX)
        .await
        .unwrap();
    assert_eq!(kept.len(), 10);
    // And a reader opened now reads the scavenged segments through their
    // new sidecars
    let fresh = FileStore::open_read_only(dir.path()).unwrap();
    assert!(fresh.recovery_report().sidecars_rebuilt.is_empty());
    let b_events = fresh
        .events()
        .read_stream(&b, ReadDirection::Forward, 1, usize::MAX)
        .await
        .unwrap();
    assert_eq!(b_events.len(), 20);
}
