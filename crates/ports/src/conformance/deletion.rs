//! Soft deletion: a tombstone in the log, and a stream that can no longer be
//! read or appended to.

use std::sync::Arc;

use super::Fixture;
use super::support::*;
use crate::append::STREAM_DELETED;
use crate::error::StoreError;
use crate::event_store::{EventFilter, ExpectedVersion as Expected, ReadDirection};

fn assert_deleted<T: std::fmt::Debug>(result: Result<T, StoreError>, name: &str) {
    match result {
        Err(StoreError::StreamDeleted { stream }) => assert_eq!(stream.as_str(), name),
        other => panic!("expected StreamDeleted for {name}, got {other:?}"),
    }
}

pub(super) async fn deleting_a_stream_records_a_tombstone_in_the_global_log(
    fixture: Arc<dyn Fixture>,
) {
    // Given a stream of two events beside another stream
    let store = fixture.open().await.events;
    store
        .append(&stream("User-1"), Expected::NoStream, events(2))
        .await
        .unwrap();
    store
        .append(&stream("User-2"), Expected::NoStream, events(1))
        .await
        .unwrap();
    // When it is deleted at its version
    let outcome = store
        .delete_stream(&stream("User-1"), Expected::Exact(2))
        .await
        .unwrap();
    // Then a tombstone is its next event, and the global log keeps everything
    assert_eq!(
        (outcome.stream_version, outcome.first_position),
        (Some(3), Some(4))
    );
    let log = whole_log(&*store).await;
    assert_eq!(log.len(), 4);
    assert_eq!(&*log[3].event_type, STREAM_DELETED);
    assert_eq!((log[3].stream.as_str(), log[3].version), ("User-1", 3));
    let tombstones = store
        .read_all(1, 10, &EventFilter::event_types([STREAM_DELETED]))
        .await
        .unwrap();
    assert_eq!(positions(&tombstones), [4]);
    // And the other stream is untouched
    assert_eq!(whole_stream(&*store, &stream("User-2")).await.len(), 1);
    assert_eq!(
        store.stream_version(&stream("User-2")).await.unwrap(),
        Some(1)
    );
}

pub(super) async fn a_deleted_stream_can_be_neither_read_nor_appended_to(
    fixture: Arc<dyn Fixture>,
) {
    let store = fixture.open().await.events;
    let s = stream("User-1");
    store
        .append(&s, Expected::NoStream, events(2))
        .await
        .unwrap();
    store.delete_stream(&s, Expected::Any).await.unwrap();
    assert_deleted(
        store.read_stream(&s, ReadDirection::Forward, 1, 10).await,
        "User-1",
    );
    assert_deleted(
        store
            .read_stream(&s, ReadDirection::Backward, u64::MAX, 10)
            .await,
        "User-1",
    );
    assert_deleted(store.stream_version(&s).await, "User-1");
    for expected in [
        Expected::Any,
        Expected::Exact(3),
        Expected::StreamExists,
        Expected::NoStream,
    ] {
        assert_deleted(store.append(&s, expected, events(1)).await, "User-1");
    }
    assert_deleted(store.delete_stream(&s, Expected::Any).await, "User-1");
    assert_eq!(
        store.head_position().await.unwrap(),
        Some(3),
        "nothing written after the tombstone"
    );
}

pub(super) async fn deleting_checks_the_expected_version(fixture: Arc<dyn Fixture>) {
    let store = fixture.open().await.events;
    let s = stream("User-1");
    store
        .append(&s, Expected::NoStream, events(2))
        .await
        .unwrap();
    for expected in [Expected::Exact(1), Expected::NoStream, Expected::Exact(0)] {
        let err = store.delete_stream(&s, expected).await.unwrap_err();
        assert!(err.is_conflict(), "{expected}: {err:?}");
    }
    let err = store
        .delete_stream(&stream("User-9"), Expected::StreamExists)
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err:?}");
    assert_eq!(
        store.head_position().await.unwrap(),
        Some(2),
        "refused deletions write nothing"
    );
    store
        .delete_stream(&s, Expected::StreamExists)
        .await
        .unwrap();
}

pub(super) async fn deleting_a_missing_stream_with_any_reserves_the_name(
    fixture: Arc<dyn Fixture>,
) {
    let store = fixture.open().await.events;
    let s = stream("User-1");
    let outcome = store.delete_stream(&s, Expected::Any).await.unwrap();
    assert_eq!(outcome.stream_version, Some(1));
    assert_deleted(
        store.append(&s, Expected::NoStream, events(1)).await,
        "User-1",
    );
}

pub(super) async fn reserved_event_types_are_refused(fixture: Arc<dyn Fixture>) {
    let store = fixture.open().await.events;
    let err = store
        .append(
            &stream("User-1"),
            Expected::Any,
            vec![event(STREAM_DELETED, 1)],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::InvalidEvent { index: 0, .. }),
        "{err:?}"
    );
    let err = store
        .append(
            &stream("User-1"),
            Expected::Any,
            vec![event("Fine", 1), event("$Mine", 2)],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::InvalidEvent { index: 1, .. }),
        "{err:?}"
    );
    assert_eq!(store.head_position().await.unwrap(), None);
}

pub(super) async fn a_deletion_survives_reopening(fixture: Arc<dyn Fixture>) {
    {
        let store = fixture.open().await.events;
        store
            .append(&stream("User-1"), Expected::NoStream, events(2))
            .await
            .unwrap();
        store
            .delete_stream(&stream("User-1"), Expected::Exact(2))
            .await
            .unwrap();
    }
    let store = fixture.open().await.events;
    assert_deleted(store.stream_version(&stream("User-1")).await, "User-1");
    assert_deleted(
        store
            .append(&stream("User-1"), Expected::Any, events(1))
            .await,
        "User-1",
    );
    assert_eq!(whole_log(&*store).await.len(), 3);
}
