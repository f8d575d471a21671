//! Appending and reading events.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use logbook_domain::{EventId, Metadata, NewEvent, Payload};
use serde_json::json;
use uuid::Uuid;

use super::Fixture;
use super::support::*;
use crate::error::StoreError;
use crate::event_store::{EventFilter, ExpectedVersion as Expected, ReadDirection, timestamp_now};

fn assert_conflict(
    result: Result<crate::AppendOutcome, StoreError>,
    on: &str,
    want_expected: Expected,
    want_actual: Option<u64>,
) {
    match result {
        Err(StoreError::WrongExpectedVersion {
            stream,
            expected,
            actual,
        }) => {
            assert_eq!(stream.as_str(), on, "conflict names the stream");
            assert_eq!(
                expected, want_expected,
                "conflict names the expected version"
            );
            assert_eq!(actual, want_actual, "conflict names the actual version");
        }
        other => panic!("expected WrongExpectedVersion on {on}, got {other:?}"),
    }
}

pub(super) async fn append_with_no_stream_creates_the_stream_at_version_1(
    fixture: Arc<dyn Fixture>,
) {
    // Given an empty store
    let store = fixture.open().await.events;
    let s = stream("Account-1");
    // When three events are appended with NoStream
    let outcome = store
        .append(&s, Expected::NoStream, events(3))
        .await
        .unwrap();
    // Then the stream holds versions 1..=3 at positions 1..=3
    assert_eq!(outcome.stream_version, Some(3));
    assert_eq!(
        (outcome.first_position, outcome.last_position),
        (Some(1), Some(3))
    );
    assert!(!outcome.already_recorded);
    let read = whole_stream(&*store, &s).await;
    assert_eq!(versions(&read), [1, 2, 3]);
    assert_eq!(positions(&read), [1, 2, 3]);
    assert_eq!(ns(&read), [1, 2, 3]);
    assert_eq!(store.stream_version(&s).await.unwrap(), Some(3));
}

pub(super) async fn no_stream_on_an_existing_stream_conflicts_and_writes_nothing(
    fixture: Arc<dyn Fixture>,
) {
    let store = fixture.open().await.events;
    let s = stream("Account-1");
    store
        .append(&s, Expected::NoStream, events(2))
        .await
        .unwrap();
    assert_conflict(
        store.append(&s, Expected::NoStream, events(1)).await,
        "Account-1",
        Expected::NoStream,
        Some(2),
    );
    assert_eq!(whole_stream(&*store, &s).await.len(), 2);
    assert_eq!(store.head_position().await.unwrap(), Some(2));
}

pub(super) async fn stream_exists_on_a_missing_stream_conflicts(fixture: Arc<dyn Fixture>) {
    let store = fixture.open().await.events;
    let s = stream("Account-1");
    assert_conflict(
        store.append(&s, Expected::StreamExists, events(1)).await,
        "Account-1",
        Expected::StreamExists,
        None,
    );
    assert_eq!(store.stream_version(&s).await.unwrap(), None);
    assert_eq!(store.head_position().await.unwrap(), None);
}

pub(super) async fn stream_exists_on_an_existing_stream_appends(fixture: Arc<dyn Fixture>) {
    let store = fixture.open().await.events;
    let s = stream("Account-1");
    store
        .append(&s, Expected::NoStream, events(1))
        .await
        .unwrap();
    let outcome = store
        .append(&s, Expected::StreamExists, events(2))
        .await
        .unwrap();
    assert_eq!(outcome.stream_version, Some(3));
}

pub(super) async fn exact_version_appends_when_it_matches(fixture: Arc<dyn Fixture>) {
    let store = fixture.open().await.events;
    let s = stream("Account-1");
    store
        .append(&s, Expected::NoStream, events(2))
        .await
        .unwrap();
    let outcome = store
        .append(&s, Expected::Exact(2), vec![event("Happened", 3)])
        .await
        .unwrap();
    assert_eq!(outcome.stream_version, Some(3));
    assert_eq!(ns(&whole_stream(&*store, &s).await), [1, 2, 3]);
}

pub(super) async fn exact_stale_version_conflicts_naming_stream_and_versions(
    fixture: Arc<dyn Fixture>,
) {
    let store = fixture.open().await.events;
    let s = stream("Account-1");
    store
        .append(&s, Expected::NoStream, events(3))
        .await
        .unwrap();
    let err = store
        .append(&s, Expected::Exact(2), events(1))
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("Account-1") && message.contains('2') && message.contains('3'),
        "message names stream and versions: {message}"
    );
    assert_conflict(Err(err), "Account-1", Expected::Exact(2), Some(3));
    assert_eq!(store.stream_version(&s).await.unwrap(), Some(3));
}

pub(super) async fn exact_future_version_conflicts(fixture: Arc<dyn Fixture>) {
    let store = fixture.open().await.events;
    let s = stream("Account-1");
    store
        .append(&s, Expected::NoStream, events(1))
        .await
        .unwrap();
    assert_conflict(
        store.append(&s, Expected::Exact(5), events(1)).await,
        "Account-1",
        Expected::Exact(5),
        Some(1),
    );
    let missing = stream("Account-2");
    assert_conflict(
        store.append(&missing, Expected::Exact(1), events(1)).await,
        "Account-2",
        Expected::Exact(1),
        None,
    );
}

pub(super) async fn exact_zero_means_no_stream(fixture: Arc<dyn Fixture>) {
    let store = fixture.open().await.events;
    let s = stream("Account-1");
    store
        .append(&s, Expected::Exact(0), events(1))
        .await
        .unwrap();
    assert_conflict(
        store.append(&s, Expected::Exact(0), events(1)).await,
        "Account-1",
        Expected::Exact(0),
        Some(1),
    );
}

pub(super) async fn any_appends_whatever_the_version(fixture: Arc<dyn Fixture>) {
    let store = fixture.open().await.events;
    let s = stream("Account-1");
    store.append(&s, Expected::Any, events(1)).await.unwrap();
    let outcome = store.append(&s, Expected::Any, events(2)).await.unwrap();
    assert_eq!(outcome.stream_version, Some(3));
}

pub(super) async fn versions_continue_contiguously_across_batches(fixture: Arc<dyn Fixture>) {
    let store = fixture.open().await.events;
    let s = stream("Account-1");
    let mut expected = Expected::NoStream;
    for batch in 1..=5u64 {
        let outcome = store.append(&s, expected, events(batch)).await.unwrap();
        expected = Expected::Exact(outcome.stream_version.unwrap());
    }
    let read = whole_stream(&*store, &s).await;
    assert_eq!(versions(&read), (1..=15).collect::<Vec<_>>());
}

pub(super) async fn global_positions_are_gap_free_across_streams(fixture: Arc<dyn Fixture>) {
    let store = fixture.open().await.events;
    for round in 0..3 {
        for name in ["A-1", "B-1", "C-1"] {
            store
                .append(&stream(name), Expected::Any, events(round + 1))
                .await
                .unwrap();
        }
    }
    let log = whole_log(&*store).await;
    assert_eq!(positions(&log), (1..=18).collect::<Vec<_>>());
    assert_eq!(store.head_position().await.unwrap(), Some(18));
    for name in ["A-1", "B-1", "C-1"] {
        assert_eq!(
            versions(&whole_stream(&*store, &stream(name)).await),
            (1..=6).collect::<Vec<_>>()
        );
    }
}

pub(super) async fn a_conflicting_batch_writes_none_of_its_events(fixture: Arc<dyn Fixture>) {
    let store = fixture.open().await.events;
    let s = stream("Account-1");
    store
        .append(&s, Expected::NoStream, events(1))
        .await
        .unwrap();
    let batch = events(5);
    let ids: Vec<EventId> = batch.iter().map(|e| e.id).collect();
    assert!(
        store
            .append(&s, Expected::Exact(0), batch)
            .await
            .unwrap_err()
            .is_conflict()
    );
    let log = whole_log(&*store).await;
    assert_eq!(log.len(), 1);
    assert!(log.iter().all(|e| !ids.contains(&e.id)));
    // The ids of a refused batch remain free to use.
    let retry: Vec<NewEvent> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| event_with_id("Happened", i as u64, *id))
        .collect();
    store.append(&s, Expected::Exact(1), retry).await.unwrap();
    assert_eq!(store.stream_version(&s).await.unwrap(), Some(6));
}

pub(super) async fn a_batch_repeating_an_id_is_rejected_whole(fixture: Arc<dyn Fixture>) {
    let store = fixture.open().await.events;
    let s = stream("Account-1");
    let id = EventId::new();
    let batch = vec![
        event_with_id("Happened", 1, id),
        event("Happened", 2),
        event_with_id("Happened", 3, id),
    ];
    let err = store.append(&s, Expected::Any, batch).await.unwrap_err();
    assert!(
        matches!(err, StoreError::InvalidEvent { index: 2, .. }),
        "got {err:?}"
    );
    assert_eq!(store.head_position().await.unwrap(), None);
}

pub(super) async fn a_batch_reusing_another_streams_id_is_rejected_whole(
    fixture: Arc<dyn Fixture>,
) {
    let store = fixture.open().await.events;
    let taken = EventId::new();
    store
        .append(
            &stream("A-1"),
            Expected::Any,
            vec![event_with_id("Happened", 1, taken)],
        )
        .await
        .unwrap();
    let batch = vec![event("Happened", 2), event_with_id("Happened", 3, taken)];
    match store.append(&stream("B-1"), Expected::Any, batch).await {
        Err(StoreError::DuplicateEventId { event_id, stream }) => {
            assert_eq!(event_id, taken);
            assert_eq!(stream.as_str(), "A-1");
        }
        other => panic!("expected DuplicateEventId, got {other:?}"),
    }
    assert_eq!(store.stream_version(&stream("B-1")).await.unwrap(), None);
    assert_eq!(store.head_position().await.unwrap(), Some(1));
    // Also when the reused id comes first and the stream differs.
    let err = store
        .append(
            &stream("B-1"),
            Expected::Any,
            vec![event_with_id("Happened", 4, taken)],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::DuplicateEventId { .. }),
        "got {err:?}"
    );
}

pub(super) async fn reusing_a_recorded_id_in_the_same_stream_is_a_duplicate_not_a_conflict(
    fixture: Arc<dyn Fixture>,
) {
    // Given a stream [X, Y]
    let store = fixture.open().await.events;
    let s = stream("A-1");
    let recorded = events(2);
    store
        .append(&s, Expected::NoStream, recorded.clone())
        .await
        .unwrap();
    // When [X, Z] is appended where the stream is (not a retry of [X, Y])
    for expected in [Expected::Exact(2), Expected::Any, Expected::StreamExists] {
        let batch = vec![recorded[0].clone(), event("Happened", 9)];
        match store.append(&s, expected, batch).await {
            Err(StoreError::DuplicateEventId { event_id, stream }) => {
                assert_eq!((event_id, stream.as_str()), (recorded[0].id, "A-1"));
            }
            other => panic!("{expected}: expected DuplicateEventId, got {other:?}"),
        }
    }
    assert_eq!(whole_log(&*store).await.len(), 2);
}

pub(super) async fn an_overlong_event_type_is_rejected(fixture: Arc<dyn Fixture>) {
    let store = fixture.open().await.events;
    let long = "T".repeat(crate::append::MAX_EVENT_TYPE_LEN + 1);
    let err = store
        .append(&stream("A-1"), Expected::Any, vec![event(&long, 1)])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::InvalidEvent { index: 0, .. }),
        "got {err:?}"
    );
    assert_eq!(store.head_position().await.unwrap(), None);
}

pub(super) async fn an_empty_event_type_is_rejected(fixture: Arc<dyn Fixture>) {
    let store = fixture.open().await.events;
    let err = store
        .append(
            &stream("A-1"),
            Expected::Any,
            vec![event("Happened", 1), event("", 2)],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::InvalidEvent { index: 1, .. }),
        "got {err:?}"
    );
    let err = store
        .append(&stream("A-1"), Expected::Any, vec![event("Bad\ntype", 1)])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::InvalidEvent { index: 0, .. }),
        "got {err:?}"
    );
    assert_eq!(store.head_position().await.unwrap(), None);
}

pub(super) async fn an_empty_batch_checks_the_version_and_writes_nothing(
    fixture: Arc<dyn Fixture>,
) {
    let store = fixture.open().await.events;
    let s = stream("A-1");
    let outcome = store
        .append(&s, Expected::NoStream, Vec::new())
        .await
        .unwrap();
    assert_eq!(outcome.stream_version, None);
    assert_eq!(outcome.first_position, None);
    store
        .append(&s, Expected::NoStream, events(2))
        .await
        .unwrap();
    let outcome = store
        .append(&s, Expected::Exact(2), Vec::new())
        .await
        .unwrap();
    assert_eq!(outcome.stream_version, Some(2));
    assert_conflict(
        store.append(&s, Expected::Exact(1), Vec::new()).await,
        "A-1",
        Expected::Exact(1),
        Some(2),
    );
    assert_eq!(store.head_position().await.unwrap(), Some(2));
}

pub(super) async fn retrying_a_recorded_batch_with_exact_writes_nothing_twice(
    fixture: Arc<dyn Fixture>,
) {
    // Given a batch appended at version 1 whose acknowledgement was lost
    let store = fixture.open().await.events;
    let s = stream("A-1");
    store
        .append(&s, Expected::NoStream, events(1))
        .await
        .unwrap();
    let batch = events(3);
    let first = store
        .append(&s, Expected::Exact(1), batch.clone())
        .await
        .unwrap();
    // When the caller sends the same batch again with the same expectation
    let again = store.append(&s, Expected::Exact(1), batch).await.unwrap();
    // Then it succeeds with the original outcome and nothing is written twice
    assert!(again.already_recorded);
    assert_eq!(again.stream_version, first.stream_version);
    assert_eq!(
        (again.first_position, again.last_position),
        (first.first_position, first.last_position)
    );
    assert_eq!(whole_log(&*store).await.len(), 4);
}

pub(super) async fn retrying_a_recorded_batch_with_any_or_no_stream_writes_nothing_twice(
    fixture: Arc<dyn Fixture>,
) {
    let store = fixture.open().await.events;
    let s = stream("A-1");
    let batch = events(2);
    store
        .append(&s, Expected::NoStream, batch.clone())
        .await
        .unwrap();
    store.append(&s, Expected::Any, events(1)).await.unwrap();
    let again = store
        .append(&s, Expected::NoStream, batch.clone())
        .await
        .unwrap();
    assert!(again.already_recorded);
    assert_eq!(again.stream_version, Some(2));
    let again = store.append(&s, Expected::Any, batch).await.unwrap();
    assert!(again.already_recorded);
    assert_eq!(whole_log(&*store).await.len(), 3);
}

pub(super) async fn a_different_batch_at_a_taken_place_conflicts(fixture: Arc<dyn Fixture>) {
    let store = fixture.open().await.events;
    let s = stream("A-1");
    store
        .append(&s, Expected::NoStream, events(2))
        .await
        .unwrap();
    assert_conflict(
        store.append(&s, Expected::NoStream, events(2)).await,
        "A-1",
        Expected::NoStream,
        Some(2),
    );
    // The same batch, but at a different place than where it was recorded.
    let batch = events(1);
    store
        .append(&s, Expected::Exact(2), batch.clone())
        .await
        .unwrap();
    assert_conflict(
        store.append(&s, Expected::Exact(1), batch).await,
        "A-1",
        Expected::Exact(1),
        Some(3),
    );
    assert_eq!(whole_log(&*store).await.len(), 3);
}

pub(super) async fn a_batch_that_only_starts_like_a_recorded_one_conflicts(
    fixture: Arc<dyn Fixture>,
) {
    let store = fixture.open().await.events;
    let s = stream("A-1");
    let batch = events(2);
    store
        .append(&s, Expected::NoStream, batch.clone())
        .await
        .unwrap();
    let mut changed = batch;
    changed[1] = event("Happened", 99);
    assert!(
        store
            .append(&s, Expected::NoStream, changed.clone())
            .await
            .unwrap_err()
            .is_conflict()
    );
    // A longer batch whose head was recorded is not a retry either.
    changed[1].id = whole_stream(&*store, &s).await[1].id;
    changed.push(event("Happened", 100));
    assert!(
        store
            .append(&s, Expected::NoStream, changed)
            .await
            .unwrap_err()
            .is_conflict()
    );
    assert_eq!(whole_log(&*store).await.len(), 2);
}

pub(super) async fn retries_are_recognised_after_reopening(fixture: Arc<dyn Fixture>) {
    let s = stream("A-1");
    let batch = events(2);
    {
        let store = fixture.open().await.events;
        store
            .append(&s, Expected::NoStream, batch.clone())
            .await
            .unwrap();
    }
    let store = fixture.open().await.events;
    let again = store.append(&s, Expected::NoStream, batch).await.unwrap();
    assert!(
        again.already_recorded,
        "the retry was recognised from what is stored, not from a cache"
    );
    assert_eq!(whole_log(&*store).await.len(), 2);
    assert!(
        store
            .append(&s, Expected::NoStream, events(2))
            .await
            .unwrap_err()
            .is_conflict()
    );
}

pub(super) async fn everything_recorded_reads_back_exactly(fixture: Arc<dyn Fixture>) {
    let store = fixture.open().await.events;
    let s = stream("BankAccount-acc_001");
    let mut extra = std::collections::BTreeMap::new();
    extra.insert("user".to_owned(), "alice".to_owned());
    let metadata = Metadata {
        correlation_id: Some(Uuid::new_v4()),
        causation_id: Some(Uuid::new_v4()),
        extra,
    };
    let new = NewEvent::new(
        "MoneyDeposited",
        payload(json!({"amount": "500.00", "note": "salary"})),
    )
    .with_metadata(metadata.clone())
    .with_schema_version(3);
    store
        .append(&s, Expected::NoStream, vec![new.clone()])
        .await
        .unwrap();
    for read in [whole_stream(&*store, &s).await, whole_log(&*store).await] {
        let e = &read[0];
        assert_eq!(e.id, new.id);
        assert_eq!(e.stream, s);
        assert_eq!((e.version, e.position), (1, 1));
        assert_eq!(&*e.event_type, "MoneyDeposited");
        assert_eq!(e.schema_version, 3);
        assert_eq!(
            e.payload.as_bytes(),
            new.payload.as_bytes(),
            "payload bytes are kept exactly"
        );
        assert_eq!(e.metadata, metadata);
    }
}

pub(super) async fn recorded_at_is_stamped_or_kept(fixture: Arc<dyn Fixture>) {
    let store = fixture.open().await.events;
    let s = stream("A-1");
    let before = timestamp_now();
    let historic: DateTime<Utc> = DateTime::from_timestamp_micros(1_746_634_114_633_698).unwrap();
    let mut kept = event("Happened", 2);
    kept.recorded_at = Some(historic);
    store
        .append(&s, Expected::NoStream, vec![event("Happened", 1), kept])
        .await
        .unwrap();
    let after = timestamp_now();
    let read = whole_stream(&*store, &s).await;
    assert!(
        before <= read[0].recorded_at && read[0].recorded_at <= after,
        "stamped at the append: {}",
        read[0].recorded_at
    );
    assert_eq!(
        read[1].recorded_at, historic,
        "a given time is kept to the microsecond"
    );
}

pub(super) async fn events_survive_reopening(fixture: Arc<dyn Fixture>) {
    let written = {
        let store = fixture.open().await.events;
        store
            .append(&stream("A-1"), Expected::NoStream, events(3))
            .await
            .unwrap();
        store
            .append(&stream("B-1"), Expected::NoStream, events(2))
            .await
            .unwrap();
        whole_log(&*store).await
    };
    let store = fixture.open().await.events;
    assert_eq!(whole_log(&*store).await, written);
    assert_eq!(store.stream_version(&stream("A-1")).await.unwrap(), Some(3));
    assert_eq!(store.head_position().await.unwrap(), Some(5));
    let outcome = store
        .append(&stream("A-1"), Expected::Exact(3), events(1))
        .await
        .unwrap();
    assert_eq!(
        (outcome.stream_version, outcome.first_position),
        (Some(4), Some(6))
    );
}

pub(super) async fn reading_a_missing_stream_is_empty_and_versionless(fixture: Arc<dyn Fixture>) {
    let store = fixture.open().await.events;
    store
        .append(&stream("A-1"), Expected::Any, events(1))
        .await
        .unwrap();
    let missing = stream("A-2");
    assert!(whole_stream(&*store, &missing).await.is_empty());
    assert!(
        store
            .read_stream(&missing, ReadDirection::Backward, u64::MAX, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.stream_version(&missing).await.unwrap(), None);
}

pub(super) async fn read_stream_forward_pages_from_a_version(fixture: Arc<dyn Fixture>) {
    let store = fixture.open().await.events;
    let s = stream("A-1");
    store
        .append(&s, Expected::NoStream, events(10))
        .await
        .unwrap();
    let page = store
        .read_stream(&s, ReadDirection::Forward, 4, 3)
        .await
        .unwrap();
    assert_eq!(versions(&page), [4, 5, 6]);
    let tail = store
        .read_stream(&s, ReadDirection::Forward, 9, 100)
        .await
        .unwrap();
    assert_eq!(versions(&tail), [9, 10]);
    assert!(
        store
            .read_stream(&s, ReadDirection::Forward, 11, 100)
            .await
            .unwrap()
            .is_empty()
    );
    let from_zero = store
        .read_stream(&s, ReadDirection::Forward, 0, 2)
        .await
        .unwrap();
    assert_eq!(versions(&from_zero), [1, 2]);
}

pub(super) async fn read_stream_backward_from_the_end_and_from_a_version(
    fixture: Arc<dyn Fixture>,
) {
    let store = fixture.open().await.events;
    let s = stream("A-1");
    store
        .append(&s, Expected::NoStream, events(10))
        .await
        .unwrap();
    let last = store
        .read_stream(&s, ReadDirection::Backward, u64::MAX, 3)
        .await
        .unwrap();
    assert_eq!(versions(&last), [10, 9, 8]);
    let middle = store
        .read_stream(&s, ReadDirection::Backward, 5, 2)
        .await
        .unwrap();
    assert_eq!(versions(&middle), [5, 4]);
    let head = store
        .read_stream(&s, ReadDirection::Backward, 2, 10)
        .await
        .unwrap();
    assert_eq!(versions(&head), [2, 1]);
    assert!(
        store
            .read_stream(&s, ReadDirection::Backward, 0, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

pub(super) async fn read_stream_never_returns_other_streams_events(fixture: Arc<dyn Fixture>) {
    let store = fixture.open().await.events;
    // Streams whose names share a prefix must not bleed into each other.
    for name in ["A-1", "A-10", "A-1x", "B-1"] {
        store
            .append(&stream(name), Expected::Any, events(2))
            .await
            .unwrap();
    }
    store
        .append(&stream("A-1"), Expected::Any, events(1))
        .await
        .unwrap();
    let read = whole_stream(&*store, &stream("A-1")).await;
    assert_eq!(read.len(), 3);
    assert!(read.iter().all(|e| e.stream.as_str() == "A-1"));
    assert_eq!(positions(&read), [1, 2, 9]);
}

pub(super) async fn read_all_pages_in_position_order(fixture: Arc<dyn Fixture>) {
    let store = fixture.open().await.events;
    for i in 0..25u64 {
        store
            .append(
                &stream(&format!("S-{}", i % 4)),
                Expected::Any,
                vec![event("Happened", i)],
            )
            .await
            .unwrap();
    }
    let mut from = 1;
    let mut seen = Vec::new();
    loop {
        let page = store.read_all(from, 7, &EventFilter::all()).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 7);
        from = page.last().unwrap().position + 1;
        seen.extend(page);
    }
    assert_eq!(positions(&seen), (1..=25).collect::<Vec<_>>());
    assert_eq!(ns(&seen), (0..25).collect::<Vec<_>>());
}

pub(super) async fn read_all_filters_by_event_type(fixture: Arc<dyn Fixture>) {
    let store = fixture.open().await.events;
    for i in 0..20u64 {
        let kind = if i % 5 == 0 {
            "MoneyWithdrawn"
        } else {
            "MoneyDeposited"
        };
        store
            .append(
                &stream(&format!("A-{}", i % 3)),
                Expected::Any,
                vec![event(kind, i)],
            )
            .await
            .unwrap();
    }
    let withdrawn = store
        .read_all(1, 100, &EventFilter::event_types(["MoneyWithdrawn"]))
        .await
        .unwrap();
    assert_eq!(ns(&withdrawn), [0, 5, 10, 15]);
    assert!(withdrawn.iter().all(|e| &*e.event_type == "MoneyWithdrawn"));
    // The limit counts matching events, not scanned ones.
    let first_two = store
        .read_all(2, 2, &EventFilter::event_types(["MoneyWithdrawn"]))
        .await
        .unwrap();
    assert_eq!(ns(&first_two), [5, 10]);
    let both = store
        .read_all(
            1,
            100,
            &EventFilter::event_types(["MoneyWithdrawn", "MoneyDeposited"]),
        )
        .await
        .unwrap();
    assert_eq!(both.len(), 20);
    assert!(
        store
            .read_all(1, 100, &EventFilter::event_types(["Nothing"]))
            .await
            .unwrap()
            .is_empty()
    );
}

pub(super) async fn read_all_filters_by_stream_prefix(fixture: Arc<dyn Fixture>) {
    let store = fixture.open().await.events;
    for i in 0..12u64 {
        let name = match i % 3 {
            0 => format!("BankAccount-{i}"),
            1 => format!("CargoShip-{i}"),
            _ => format!("Bank-{i}"),
        };
        store
            .append(&stream(&name), Expected::Any, vec![event("Happened", i)])
            .await
            .unwrap();
    }
    let accounts = store
        .read_all(1, 100, &EventFilter::stream_prefix("BankAccount-"))
        .await
        .unwrap();
    assert_eq!(ns(&accounts), [0, 3, 6, 9]);
    let combined = EventFilter {
        event_types: vec!["Happened".into()],
        stream_prefix: Some("CargoShip-".into()),
    };
    assert_eq!(
        ns(&store.read_all(1, 100, &combined).await.unwrap()),
        [1, 4, 7, 10]
    );
    // A prefix is literal text, not a pattern.
    assert!(
        store
            .read_all(1, 100, &EventFilter::stream_prefix("%"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .read_all(1, 100, &EventFilter::stream_prefix("_ank"))
            .await
            .unwrap()
            .is_empty()
    );
}

pub(super) async fn read_all_past_the_head_is_empty(fixture: Arc<dyn Fixture>) {
    let store = fixture.open().await.events;
    assert!(whole_log(&*store).await.is_empty());
    store
        .append(&stream("A-1"), Expected::Any, events(3))
        .await
        .unwrap();
    assert!(
        store
            .read_all(4, 10, &EventFilter::all())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        positions(&store.read_all(0, 10, &EventFilter::all()).await.unwrap()),
        [1, 2, 3]
    );
}

pub(super) async fn a_zero_limit_reads_nothing(fixture: Arc<dyn Fixture>) {
    let store = fixture.open().await.events;
    let s = stream("A-1");
    store.append(&s, Expected::Any, events(3)).await.unwrap();
    assert!(
        store
            .read_stream(&s, ReadDirection::Forward, 1, 0)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .read_stream(&s, ReadDirection::Backward, u64::MAX, 0)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .read_all(1, 0, &EventFilter::all())
            .await
            .unwrap()
            .is_empty()
    );
}

pub(super) async fn head_position_follows_appends(fixture: Arc<dyn Fixture>) {
    let store = fixture.open().await.events;
    assert_eq!(store.head_position().await.unwrap(), None);
    store
        .append(&stream("A-1"), Expected::Any, events(2))
        .await
        .unwrap();
    assert_eq!(store.head_position().await.unwrap(), Some(2));
    let _ = store
        .append(&stream("A-1"), Expected::NoStream, events(2))
        .await;
    assert_eq!(
        store.head_position().await.unwrap(),
        Some(2),
        "a refused append moves nothing"
    );
    store
        .append(&stream("B-1"), Expected::Any, events(1))
        .await
        .unwrap();
    assert_eq!(store.head_position().await.unwrap(), Some(3));
}

pub(super) async fn commits_are_signalled_with_the_new_head(fixture: Arc<dyn Fixture>) {
    let store = fixture.open().await.events;
    let mut signal = store.commits().expect("the store signals its commits");
    store
        .append(&stream("A-1"), Expected::Any, events(2))
        .await
        .unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), signal.changed())
        .await
        .expect("signalled after the commit")
        .expect("the signal is alive while the store is");
    assert_eq!(
        *signal.borrow_and_update(),
        2,
        "the signal carries the head position"
    );
    // A refused append signals nothing new.
    let _ = store
        .append(&stream("A-1"), Expected::NoStream, events(1))
        .await;
    assert!(
        !signal.has_changed().unwrap(),
        "a refused append signals nothing"
    );
    store
        .append(&stream("B-1"), Expected::Any, events(1))
        .await
        .unwrap();
    signal.changed().await.unwrap();
    assert_eq!(*signal.borrow(), 3);
}

pub(super) async fn a_signal_taken_after_commits_starts_at_the_head(fixture: Arc<dyn Fixture>) {
    // Given commits made while no one listened
    let store = fixture.open().await.events;
    store
        .append(&stream("A-1"), Expected::Any, events(3))
        .await
        .unwrap();
    // When a signal is taken
    let mut signal = store.commits().expect("the store signals its commits");
    // Then it carries the head, as seen, and the next commit changes it
    assert_eq!(*signal.borrow(), 3, "a new signal starts at the head");
    assert!(
        !signal.has_changed().unwrap(),
        "nothing new since the signal was taken"
    );
    store
        .append(&stream("B-1"), Expected::Any, events(1))
        .await
        .unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), signal.changed())
        .await
        .expect("signalled after the commit")
        .unwrap();
    assert_eq!(*signal.borrow(), 4);
}

pub(super) async fn large_and_unicode_payloads_round_trip(fixture: Arc<dyn Fixture>) {
    let store = fixture.open().await.events;
    let s = stream("Ship-Ünïcødé ⛵");
    let big = "x".repeat(1 << 20);
    let batch = vec![
        NewEvent::new(
            "Große",
            payload(json!({"text": "汉字 – emoji 🚢", "quote": "\"\\"})),
        ),
        NewEvent::new("Big", payload(json!({ "blob": big }))),
        NewEvent::new("Scalar", Payload::from_json(b"42".to_vec()).unwrap()),
    ];
    store
        .append(&s, Expected::NoStream, batch.clone())
        .await
        .unwrap();
    let read = whole_stream(&*store, &s).await;
    assert_eq!(read.len(), 3);
    for (new, old) in batch.iter().zip(&read) {
        assert_eq!(new.payload.as_bytes(), old.payload.as_bytes());
        assert_eq!(new.event_type, &*old.event_type);
    }
    assert_eq!(read[0].stream.as_str(), "Ship-Ünïcødé ⛵");
}
