//! The rules of an append that every adapter applies the same way: batch
//! validation, the expected-version check and the recognition of an
//! idempotent retry. Adapters call these inside their own transaction or
//! lock, so that the check and the write are one step.

use std::collections::HashSet;

use logbook_domain::{EventId, NewEvent, Position, StreamId, Version};

use crate::error::StoreError;
use crate::event_store::{AppendOutcome, ExpectedVersion};

/// Longest event type name accepted, in bytes.
pub const MAX_EVENT_TYPE_LEN: usize = 256;

/// The type of the tombstone event that [`EventStore::delete_stream`]
/// records. Types starting with `$` are reserved for the store.
///
/// [`EventStore::delete_stream`]: crate::EventStore::delete_stream
pub const STREAM_DELETED: &str = "$StreamDeleted";

/// The tombstone event a deletion records (empty payload).
pub fn tombstone() -> NewEvent {
    NewEvent::new(
        STREAM_DELETED,
        logbook_domain::Payload::from_stored(b"{}".to_vec()),
    )
}

/// True for the type of a tombstone.
pub fn is_tombstone(event_type: &str) -> bool {
    event_type == STREAM_DELETED
}

/// The checks of a deletion: the stream must not be deleted already, and
/// `expected` must hold; `NoStream` never does (there is nothing to delete).
///
/// # Errors
/// [`StoreError::StreamDeleted`] or [`StoreError::WrongExpectedVersion`].
pub fn check_delete(
    stream: &StreamId,
    expected: ExpectedVersion,
    current: Option<Version>,
    deleted: bool,
) -> Result<(), StoreError> {
    if deleted {
        return Err(StoreError::StreamDeleted {
            stream: stream.clone(),
        });
    }
    if matches!(
        expected,
        ExpectedVersion::NoStream | ExpectedVersion::Exact(0)
    ) {
        return Err(conflict(stream, expected, current));
    }
    check_expected(stream, expected, current)
}

/// [`StoreError::StreamDeleted`] when `deleted`.
///
/// # Errors
/// As said.
pub fn check_not_deleted(stream: &StreamId, deleted: bool) -> Result<(), StoreError> {
    if deleted {
        Err(StoreError::StreamDeleted {
            stream: stream.clone(),
        })
    } else {
        Ok(())
    }
}

/// Checks what can be checked without the store: every event has a type
/// name (non-empty, at most [`MAX_EVENT_TYPE_LEN`] bytes, no control
/// characters) and no id appears twice in the batch.
///
/// # Errors
/// [`StoreError::InvalidEvent`] naming the first bad event.
pub fn validate_batch(events: &[NewEvent]) -> Result<(), StoreError> {
    let mut seen = HashSet::with_capacity(events.len());
    for (index, event) in events.iter().enumerate() {
        let invalid = |reason: String| StoreError::InvalidEvent { index, reason };
        if event.event_type.is_empty() {
            return Err(invalid("event type is empty".into()));
        }
        if event.event_type.len() > MAX_EVENT_TYPE_LEN {
            return Err(invalid(format!(
                "event type is {} bytes long; at most {MAX_EVENT_TYPE_LEN} are allowed",
                event.event_type.len()
            )));
        }
        if event.event_type.starts_with('$') {
            return Err(invalid(format!(
                "event type {:?} is reserved: types starting with $ belong to the store",
                event.event_type
            )));
        }
        if event.event_type.chars().any(char::is_control) {
            return Err(invalid(format!(
                "event type {:?} contains a control character",
                event.event_type
            )));
        }
        if !seen.insert(event.id) {
            return Err(invalid(format!(
                "event id {} appears twice in the batch",
                event.id
            )));
        }
    }
    Ok(())
}

/// Checks `expected` against the stream's `current` version.
///
/// # Errors
/// [`StoreError::WrongExpectedVersion`] when it does not hold.
pub fn check_expected(
    stream: &StreamId,
    expected: ExpectedVersion,
    current: Option<Version>,
) -> Result<(), StoreError> {
    if expected.is_satisfied_by(current) {
        Ok(())
    } else {
        Err(conflict(stream, expected, current))
    }
}

/// The conflict error for `stream`.
pub fn conflict(
    stream: &StreamId,
    expected: ExpectedVersion,
    current: Option<Version>,
) -> StoreError {
    StoreError::WrongExpectedVersion {
        stream: stream.clone(),
        expected,
        actual: current.filter(|v| *v > 0),
    }
}

/// Where one already-recorded event of a stream sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordedSlot {
    /// Its id.
    pub id: EventId,
    /// Its stream version.
    pub version: Version,
    /// Its global position.
    pub position: Position,
}

/// Decides a batch whose first event id is already recorded in `stream`.
/// `recorded` holds the stream's events from that event's version on, at
/// least as many as the batch has (fewer if the stream ends sooner).
///
/// The batch is an idempotent retry when its ids equal the recorded ids in
/// order and `expected` would have held just before the first of them.
///
/// # Errors
/// [`StoreError::WrongExpectedVersion`] (with the stream's `current`
/// version) when it is not a retry and `expected` does not hold now;
/// [`StoreError::DuplicateEventId`] when `expected` holds, so the batch
/// merely reuses a recorded id.
pub fn retry_outcome(
    stream: &StreamId,
    expected: ExpectedVersion,
    events: &[NewEvent],
    recorded: &[RecordedSlot],
    current: Option<Version>,
) -> Result<AppendOutcome, StoreError> {
    let same_ids = recorded.len() >= events.len()
        && events
            .iter()
            .zip(recorded)
            .all(|(new, old)| new.id == old.id);
    let retry = match (recorded.first(), recorded.get(events.len().wrapping_sub(1))) {
        (Some(first), Some(last))
            if same_ids && expected.is_satisfied_by(Some(first.version - 1)) =>
        {
            Some((first, last))
        }
        _ => None,
    };
    if let Some((first, last)) = retry {
        Ok(AppendOutcome {
            stream_version: Some(last.version),
            first_position: Some(first.position),
            last_position: Some(last.position),
            already_recorded: true,
        })
    } else if let Some(first) = events.first()
        && expected.is_satisfied_by(current)
    {
        // The stream is where the caller expects, so this is no stale
        // retry: it reuses an id that is already recorded.
        Err(StoreError::DuplicateEventId {
            event_id: first.id,
            stream: stream.clone(),
        })
    } else {
        Err(conflict(stream, expected, current))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logbook_domain::Payload;

    fn event() -> NewEvent {
        NewEvent::new("Happened", Payload::from_json(b"{}".to_vec()).unwrap())
    }

    fn slots(events: &[NewEvent], first_version: Version) -> Vec<RecordedSlot> {
        events
            .iter()
            .zip(first_version..)
            .map(|(e, version)| RecordedSlot {
                id: e.id,
                version,
                position: version + 10,
            })
            .collect()
    }

    #[test]
    fn a_batch_recorded_at_the_expected_place_is_a_retry() {
        let stream = StreamId::new("s").unwrap();
        let batch = vec![event(), event()];
        let recorded = slots(&batch, 3);
        let outcome = retry_outcome(
            &stream,
            ExpectedVersion::Exact(2),
            &batch,
            &recorded,
            Some(4),
        )
        .unwrap();
        assert!(outcome.already_recorded);
        assert_eq!(outcome.stream_version, Some(4));
        assert_eq!(
            (outcome.first_position, outcome.last_position),
            (Some(13), Some(14))
        );
        assert!(
            retry_outcome(
                &stream,
                ExpectedVersion::Exact(1),
                &batch,
                &recorded,
                Some(4)
            )
            .is_err()
        );
        assert!(
            retry_outcome(
                &stream,
                ExpectedVersion::NoStream,
                &batch,
                &recorded,
                Some(4)
            )
            .is_err()
        );
        assert!(retry_outcome(&stream, ExpectedVersion::Any, &batch, &recorded, Some(4)).is_ok());
    }

    #[test]
    fn a_batch_that_only_starts_like_a_recorded_one_is_no_retry() {
        let stream = StreamId::new("s").unwrap();
        let batch = vec![event(), event()];
        let mut recorded = slots(&batch, 1);
        recorded[1].id = EventId::new();
        // Where the caller expects the stream to be elsewhere: a conflict.
        let err = retry_outcome(
            &stream,
            ExpectedVersion::NoStream,
            &batch,
            &recorded,
            Some(2),
        )
        .unwrap_err();
        assert!(err.is_conflict(), "{err:?}");
        // Where the expectation holds now: the batch reuses a recorded id.
        let err =
            retry_outcome(&stream, ExpectedVersion::Any, &batch, &recorded, Some(2)).unwrap_err();
        assert!(
            matches!(err, StoreError::DuplicateEventId { .. }),
            "{err:?}"
        );
        let err = retry_outcome(
            &stream,
            ExpectedVersion::Any,
            &batch,
            &recorded[..1],
            Some(1),
        )
        .unwrap_err();
        assert!(
            matches!(err, StoreError::DuplicateEventId { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn validation_rejects_empty_types_and_repeated_ids() {
        let mut blank = event();
        blank.event_type.clear();
        assert!(matches!(
            validate_batch(&[event(), blank]),
            Err(StoreError::InvalidEvent { index: 1, .. })
        ));
        let e = event();
        assert!(matches!(
            validate_batch(&[e.clone(), e]),
            Err(StoreError::InvalidEvent { index: 1, .. })
        ));
        assert!(validate_batch(&[event(), event()]).is_ok());
    }
}
