//! Appenders racing each other.

use std::collections::HashSet;
use std::sync::Arc;

use super::Fixture;
use super::support::*;
use crate::event_store::ExpectedVersion as Expected;

const WRITERS: u64 = 8;
const APPENDS_EACH: u64 = 15;

pub(super) async fn concurrent_appenders_on_one_stream_win_each_version_once(
    fixture: Arc<dyn Fixture>,
) {
    // Given one stream and eight writers that each append fifteen events,
    // every append expecting the version it last read (optimistic concurrency)
    let store = fixture.open().await.events;
    let s = stream("Counter-1");
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let store = Arc::clone(&store);
        let s = s.clone();
        writers.push(tokio::spawn(async move {
            let mut conflicts = 0u64;
            for i in 0..APPENDS_EACH {
                loop {
                    let current = store.stream_version(&s).await.unwrap();
                    let n = writer * 1000 + i;
                    match store
                        .append(
                            &s,
                            Expected::from_current(current),
                            vec![event("Counted", n)],
                        )
                        .await
                    {
                        Ok(outcome) => {
                            assert_eq!(outcome.stream_version, Some(current.unwrap_or(0) + 1));
                            break;
                        }
                        Err(e) if e.is_conflict() => conflicts += 1,
                        Err(e) => panic!("unexpected error: {e}"),
                    }
                }
            }
            conflicts
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    // Then every version was won exactly once: contiguous, and every event once
    let read = whole_stream(&*store, &s).await;
    let total = WRITERS * APPENDS_EACH;
    assert_eq!(versions(&read), (1..=total).collect::<Vec<_>>());
    let unique: HashSet<u64> = ns(&read).into_iter().collect();
    assert_eq!(unique.len() as u64, total, "no event lost or written twice");
    assert_eq!(
        positions(&whole_log(&*store).await),
        (1..=total).collect::<Vec<_>>()
    );
}

pub(super) async fn concurrent_appenders_on_many_streams_leave_no_gap(fixture: Arc<dyn Fixture>) {
    let store = fixture.open().await.events;
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let store = Arc::clone(&store);
        writers.push(tokio::spawn(async move {
            let s = stream(&format!("Writer-{writer}"));
            for i in 0..APPENDS_EACH {
                store
                    .append(
                        &s,
                        Expected::Any,
                        vec![event("Counted", i), event("Counted", i)],
                    )
                    .await
                    .unwrap();
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let log = whole_log(&*store).await;
    let total = WRITERS * APPENDS_EACH * 2;
    assert_eq!(
        positions(&log),
        (1..=total).collect::<Vec<_>>(),
        "the global log is gap-free"
    );
    for writer in 0..WRITERS {
        let read = whole_stream(&*store, &stream(&format!("Writer-{writer}"))).await;
        assert_eq!(versions(&read), (1..=APPENDS_EACH * 2).collect::<Vec<_>>());
        // A batch's events sit next to each other in the global log.
        for pair in read.chunks(2) {
            assert_eq!(pair[1].position, pair[0].position + 1);
        }
    }
}

pub(super) async fn concurrent_retries_of_one_batch_write_it_once(fixture: Arc<dyn Fixture>) {
    let store = fixture.open().await.events;
    let s = stream("A-1");
    let batch = events(3);
    let mut senders = Vec::new();
    for _ in 0..WRITERS {
        let store = Arc::clone(&store);
        let s = s.clone();
        let batch = batch.clone();
        senders.push(tokio::spawn(async move {
            store.append(&s, Expected::NoStream, batch).await.unwrap()
        }));
    }
    let mut fresh = 0;
    for sender in senders {
        let outcome = sender.await.unwrap();
        assert_eq!(outcome.stream_version, Some(3));
        assert_eq!(
            (outcome.first_position, outcome.last_position),
            (Some(1), Some(3))
        );
        fresh += usize::from(!outcome.already_recorded);
    }
    assert_eq!(fresh, 1, "exactly one append wrote the batch");
    assert_eq!(whole_log(&*store).await.len(), 3);
}
