//! The rules of an append that every adapter applies the same way: batch
//! validation before the store is touched, then [`decide_append`] (and
//! [`decide_delete`]), which decides from what the adapter looked up inside
//! its own transaction or lock (the stream's state, where ids are recorded)
//! whether to write, refuse, or answer a retry, so that the check and the
//! write are one step and the order of the rules lives here alone.

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

/// Batches up to this many events are checked for repeated ids pairwise.
const SMALL_BATCH: usize = 16;

/// Checks what can be checked without the store: every event has a type
/// name (non-empty, at most [`MAX_EVENT_TYPE_LEN`] bytes, no control
/// characters) and no id appears twice in the batch.
///
/// # Errors
/// [`StoreError::InvalidEvent`] naming the first bad event.
pub fn validate_batch(events: &[NewEvent]) -> Result<(), StoreError> {
    // A small batch (a command's usual one or few events) is checked for
    // repeated ids by comparing with the events before it, without building
    // (and hashing into) a set.
    let mut seen = (events.len() > SMALL_BATCH).then(|| HashSet::with_capacity(events.len()));
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
        if has_control_character(&event.event_type) {
            return Err(invalid(format!(
                "event type {:?} contains a control character",
                event.event_type
            )));
        }
        let repeated = match &mut seen {
            Some(seen) => !seen.insert(event.id),
            None => events[..index].iter().any(|earlier| earlier.id == event.id),
        };
        if repeated {
            return Err(invalid(format!(
                "event id {} appears twice in the batch",
                event.id
            )));
        }
    }
    Ok(())
}

/// True when `name` holds a control character (Unicode `Cc`): an ASCII
/// name, the usual one, is checked byte by byte without decoding it.
fn has_control_character(name: &str) -> bool {
    if name.is_ascii() {
        name.bytes().any(|b| b.is_ascii_control())
    } else {
        name.chars().any(char::is_control)
    }
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

/// What an adapter looked up about the stream being appended to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamState {
    /// Its version: the number of its events (`None` or `Some(0)`: it has
    /// none).
    pub version: Option<Version>,
    /// True when its last event is a tombstone.
    pub deleted: bool,
}

/// Where an event id is already recorded, as the adapter found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordedAt {
    /// In the stream being appended to, as this version at this position.
    ThisStream {
        /// Its stream version.
        version: Version,
        /// Its global position.
        position: Position,
    },
    /// In another stream: the batch can only be refused, naming it.
    OtherStream(StreamId),
}

/// Who refuses a batch written with an id that is recorded already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdCheck {
    /// [`decide_append`] looks up every id of the batch before it decides
    /// to write it.
    Lookup,
    /// The adapter's write refuses a recorded id itself, in the same
    /// transaction (a unique index), and reports it with
    /// [`duplicate_event_id`]; [`decide_append`] looks up only the first
    /// id (the one that tells a retry). The outcome is the same: the ids
    /// are checked last, after the expected version, before anything of
    /// the batch is kept.
    ByWrite,
}

/// What an append comes to, once decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendDecision {
    /// Write the batch as planned.
    Write(WritePlan),
    /// Write nothing: this is the outcome (an idempotent retry of a
    /// recorded batch, or an empty batch whose expectation holds).
    Done(AppendOutcome),
}

/// The stream versions a batch to write takes: `first_version` for its
/// first event, one more for each next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WritePlan {
    /// Version of the batch's first event (the stream's version plus one).
    pub first_version: Version,
    /// Number of events in the batch (at least one).
    pub len: usize,
}

impl WritePlan {
    /// The plan for `len` events after a stream at `current`.
    fn after(current: Option<Version>, len: usize) -> Self {
        Self {
            first_version: current.unwrap_or(0) + 1,
            len,
        }
    }

    /// Version of the batch's last event: the stream's version once written.
    pub fn last_version(&self) -> Version {
        self.first_version + self.len as Version - 1
    }

    /// The outcome once the batch is written at consecutive global
    /// positions from `first_position` (every store keeps the log
    /// gap-free, and a batch is one run of it).
    pub fn outcome(&self, first_position: Position) -> AppendOutcome {
        AppendOutcome {
            stream_version: Some(self.last_version()),
            first_position: Some(first_position),
            last_position: Some(first_position + self.len as Position - 1),
            already_recorded: false,
        }
    }
}

/// Decides an append of `events` (already passed [`validate_batch`]) to
/// `stream` with `expected`, from what the adapter looked up, inside the
/// lock or transaction in which it then writes: the stream's `state`, and
/// where each id asked of `locate` is recorded, if it is. The rules, in
/// order:
///
/// 1. a deleted stream takes no more events;
/// 2. when the batch's first id is recorded: in another stream, the batch
///    reuses its id; in this stream, the batch is an idempotent retry when
///    its ids are recorded there in order, one version after the other,
///    and `expected` held just before the first of them; otherwise it
///    reuses a recorded id when `expected` holds now, and conflicts when it
///    does not;
/// 3. `expected` must hold for the stream's version;
/// 4. no other id of the batch may be recorded (with [`IdCheck::ByWrite`]
///    the adapter's write checks this instead);
/// 5. an empty batch writes nothing and answers with the stream's version;
/// 6. anything else is written after the stream's version.
///
/// `locate` is asked lazily, only about the ids a rule needs, so a lock
/// holder can look ids up one at a time; an adapter that must gather its
/// facts first (one query in an async transaction) can look up every id of
/// the batch at once and answer from what it found. Nothing else is
/// looked up or written here: the decision is the same on every store.
///
/// # Errors
/// [`StoreError::StreamDeleted`], [`StoreError::DuplicateEventId`] (naming
/// the stream that holds the id) or [`StoreError::WrongExpectedVersion`]
/// as the rules say; and any error of `locate`, as it is.
pub fn decide_append<F>(
    stream: &StreamId,
    expected: ExpectedVersion,
    events: &[NewEvent],
    state: StreamState,
    ids: IdCheck,
    mut locate: F,
) -> Result<AppendDecision, StoreError>
where
    F: FnMut(&EventId) -> Result<Option<RecordedAt>, StoreError>,
{
    check_not_deleted(stream, state.deleted)?;
    if let Some(first) = events.first()
        && let Some(recorded) = locate(&first.id)?
    {
        return match recorded {
            RecordedAt::OtherStream(owner) => Err(StoreError::DuplicateEventId {
                event_id: first.id,
                stream: owner,
            }),
            RecordedAt::ThisStream { version, position } => retry_outcome(
                stream,
                expected,
                events,
                state.version,
                (version, position),
                locate,
            )
            .map(AppendDecision::Done),
        };
    }
    check_expected(stream, expected, state.version)?;
    if ids == IdCheck::Lookup {
        for event in events.iter().skip(1) {
            if let Some(recorded) = locate(&event.id)? {
                return Err(duplicate_event_id(stream, event.id, recorded));
            }
        }
    }
    if events.is_empty() {
        return Ok(AppendDecision::Done(AppendOutcome {
            stream_version: state.version,
            first_position: None,
            last_position: None,
            already_recorded: false,
        }));
    }
    Ok(AppendDecision::Write(WritePlan::after(
        state.version,
        events.len(),
    )))
}

/// Decides a deletion of `stream` with `expected`, from the stream's
/// `state`: the tombstone ([`tombstone`]) is written as planned when the
/// checks of [`check_delete`] pass.
///
/// # Errors
/// As [`check_delete`].
pub fn decide_delete(
    stream: &StreamId,
    expected: ExpectedVersion,
    state: StreamState,
) -> Result<WritePlan, StoreError> {
    check_delete(stream, expected, state.version, state.deleted)?;
    Ok(WritePlan::after(state.version, 1))
}

/// The error for a batch that reuses `event_id`, recorded as `recorded`
/// while `stream` was being appended to: what an adapter with
/// [`IdCheck::ByWrite`] reports when its write refuses an id.
pub fn duplicate_event_id(
    stream: &StreamId,
    event_id: EventId,
    recorded: RecordedAt,
) -> StoreError {
    let stream = match recorded {
        RecordedAt::ThisStream { .. } => stream.clone(),
        RecordedAt::OtherStream(owner) => owner,
    };
    StoreError::DuplicateEventId { event_id, stream }
}

/// Rule 2 of [`decide_append`] for a batch whose first id is recorded in
/// `stream` as `first` (version, position).
fn retry_outcome<F>(
    stream: &StreamId,
    expected: ExpectedVersion,
    events: &[NewEvent],
    current: Option<Version>,
    first: (Version, Position),
    mut locate: F,
) -> Result<AppendOutcome, StoreError>
where
    F: FnMut(&EventId) -> Result<Option<RecordedAt>, StoreError>,
{
    let (first_version, first_position) = first;
    let retried = if expected.is_satisfied_by(Some(first_version - 1)) {
        last_of_recorded_run(events, first, &mut locate)?
    } else {
        None
    };
    if let Some(last_position) = retried {
        Ok(AppendOutcome {
            stream_version: Some(first_version + events.len() as Version - 1),
            first_position: Some(first_position),
            last_position: Some(last_position),
            already_recorded: true,
        })
    } else if expected.is_satisfied_by(current) {
        // The stream is where the caller expects, so this is no stale
        // retry: it reuses an id that is already recorded.
        Err(StoreError::DuplicateEventId {
            event_id: events[0].id,
            stream: stream.clone(),
        })
    } else {
        Err(conflict(stream, expected, current))
    }
}

/// The position of the batch's last event when every id of `events` is
/// recorded in the stream, one version after the other from `first`
/// (version, position of the first one); `None` when one is not. Ids are
/// unique in a store, so this is "the stream holds the batch's ids, in
/// order, from the first one's version".
fn last_of_recorded_run<F>(
    events: &[NewEvent],
    first: (Version, Position),
    locate: &mut F,
) -> Result<Option<Position>, StoreError>
where
    F: FnMut(&EventId) -> Result<Option<RecordedAt>, StoreError>,
{
    let (first_version, mut last) = first;
    for (event, version) in events.iter().zip(first_version..).skip(1) {
        match locate(&event.id)? {
            Some(RecordedAt::ThisStream {
                version: recorded,
                position,
            }) if recorded == version => last = position,
            _ => return Ok(None),
        }
    }
    Ok(Some(last))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use logbook_domain::Payload;

    fn event() -> NewEvent {
        NewEvent::new("Happened", Payload::from_json(b"{}".to_vec()).unwrap())
    }

    fn batch(n: usize) -> Vec<NewEvent> {
        (0..n).map(|_| event()).collect()
    }

    fn stream() -> StreamId {
        StreamId::new("Account-1").unwrap()
    }

    #[test]
    fn an_id_repeated_in_a_small_or_a_large_batch_is_refused_naming_the_repeat() {
        for size in [2, SMALL_BATCH, SMALL_BATCH + 1, 100] {
            // Given a batch whose last event repeats the first one's id
            let mut events = batch(size);
            events[size - 1].id = events[0].id;
            // When validated, then the repeat is refused by its index
            match validate_batch(&events) {
                Err(StoreError::InvalidEvent { index, reason }) => {
                    assert_eq!(index, size - 1, "batch of {size}");
                    assert!(reason.contains("appears twice"), "{reason}");
                }
                other => panic!("batch of {size}: {other:?}"),
            }
            // And the same batch with distinct ids passes
            assert!(validate_batch(&batch(size)).is_ok());
        }
    }

    fn other() -> StreamId {
        StreamId::new("Account-2").unwrap()
    }

    fn at(version: Version) -> StreamState {
        StreamState {
            version: Some(version),
            deleted: false,
        }
    }

    /// A store as the decision sees it: where ids are recorded. It counts
    /// the ids it is asked about.
    #[derive(Default)]
    struct Recorded {
        ids: HashMap<EventId, RecordedAt>,
        asked: Vec<EventId>,
    }

    impl Recorded {
        /// `events` recorded in the appended stream from `version`, at
        /// positions `version + 10` on.
        fn here(mut self, events: &[NewEvent], version: Version) -> Self {
            for (event, version) in events.iter().zip(version..) {
                let position = version + 10;
                self.ids
                    .insert(event.id, RecordedAt::ThisStream { version, position });
            }
            self
        }

        fn elsewhere(mut self, event: &NewEvent) -> Self {
            self.ids.insert(event.id, RecordedAt::OtherStream(other()));
            self
        }

        fn decide(
            &mut self,
            expected: ExpectedVersion,
            events: &[NewEvent],
            state: StreamState,
            ids: IdCheck,
        ) -> Result<AppendDecision, StoreError> {
            decide_append(&stream(), expected, events, state, ids, |id| {
                self.asked.push(*id);
                Ok(self.ids.get(id).cloned())
            })
        }
    }

    #[test]
    fn a_new_batch_is_written_after_the_streams_version() {
        // Given a stream at version 4 and a batch of new ids
        let events = batch(3);
        let mut store = Recorded::default();
        // When it is appended expecting version 4
        let decision = store
            .decide(ExpectedVersion::Exact(4), &events, at(4), IdCheck::Lookup)
            .unwrap();
        // Then it is written as versions 5 to 7, every id looked up once
        let AppendDecision::Write(plan) = decision else {
            panic!("{decision:?}");
        };
        assert_eq!(
            (plan.first_version, plan.len, plan.last_version()),
            (5, 3, 7)
        );
        assert_eq!(store.asked, events.iter().map(|e| e.id).collect::<Vec<_>>());
        let outcome = plan.outcome(20);
        assert_eq!(
            (
                outcome.stream_version,
                outcome.first_position,
                outcome.last_position
            ),
            (Some(7), Some(20), Some(22))
        );
        assert!(!outcome.already_recorded);
    }

    #[test]
    fn a_new_stream_starts_at_version_one() {
        // Given no stream; when a batch of two is appended with NoStream
        let decision = Recorded::default()
            .decide(
                ExpectedVersion::NoStream,
                &batch(2),
                StreamState::default(),
                IdCheck::Lookup,
            )
            .unwrap();
        // Then it takes versions 1 and 2
        assert_eq!(
            decision,
            AppendDecision::Write(WritePlan {
                first_version: 1,
                len: 2
            })
        );
    }

    #[test]
    fn a_deleted_stream_refuses_even_a_retry_and_looks_nothing_up() {
        // Given a deleted stream whose last batch is recorded
        let events = batch(1);
        let mut store = Recorded::default().here(&events, 1);
        let state = StreamState {
            version: Some(2),
            deleted: true,
        };
        // When that batch is sent again
        let err = store
            .decide(ExpectedVersion::Any, &events, state, IdCheck::Lookup)
            .unwrap_err();
        // Then the stream is deleted, and no id was looked up
        assert!(matches!(err, StoreError::StreamDeleted { .. }), "{err:?}");
        assert!(store.asked.is_empty());
    }

    #[test]
    fn a_first_id_recorded_in_another_stream_is_a_duplicate_naming_that_stream() {
        // Given the batch's first id recorded in another stream
        let events = batch(2);
        let mut store = Recorded::default().elsewhere(&events[0]);
        // When appended with an expectation that does not even hold
        let err = store
            .decide(ExpectedVersion::Exact(9), &events, at(1), IdCheck::Lookup)
            .unwrap_err();
        // Then it reuses the other stream's id
        assert!(
            matches!(&err, StoreError::DuplicateEventId { event_id, stream }
                if *event_id == events[0].id && *stream == other()),
            "{err:?}"
        );
    }

    #[test]
    fn a_batch_recorded_at_the_expected_place_is_a_retry() {
        // Given a batch recorded as versions 3 and 4 (positions 13, 14)
        let events = batch(2);
        let mut store = Recorded::default().here(&events, 3);
        // When it is sent again with the expectation it was written with
        let decision = store
            .decide(ExpectedVersion::Exact(2), &events, at(4), IdCheck::Lookup)
            .unwrap();
        // Then nothing is written and the outcome is the recorded one
        assert_eq!(
            decision,
            AppendDecision::Done(AppendOutcome {
                stream_version: Some(4),
                first_position: Some(13),
                last_position: Some(14),
                already_recorded: true,
            })
        );
        // And with Any too, even with later events in the stream
        let decision = store
            .decide(ExpectedVersion::Any, &events, at(6), IdCheck::ByWrite)
            .unwrap();
        assert!(matches!(decision, AppendDecision::Done(o) if o.already_recorded));
    }

    #[test]
    fn a_recorded_batch_sent_with_another_expectation_conflicts() {
        // Given a batch recorded as versions 3 and 4
        let events = batch(2);
        let mut store = Recorded::default().here(&events, 3);
        // When it is sent again expecting a place it was not written at
        for expected in [ExpectedVersion::Exact(1), ExpectedVersion::NoStream] {
            let err = store
                .decide(expected, &events, at(4), IdCheck::Lookup)
                .unwrap_err();
            // Then it conflicts with the stream's version
            assert!(
                matches!(
                    &err,
                    StoreError::WrongExpectedVersion {
                        actual: Some(4),
                        ..
                    }
                ),
                "{err:?}"
            );
        }
    }

    #[test]
    fn a_batch_that_only_starts_like_a_recorded_one_is_no_retry() {
        // Given a stream whose first event's id starts the batch, but whose
        // second event is another one
        let events = batch(2);
        let mut store = Recorded::default().here(&events[..1], 1);
        store.ids.insert(
            EventId::new(),
            RecordedAt::ThisStream {
                version: 2,
                position: 12,
            },
        );
        // When the caller expects the stream elsewhere: a conflict
        let err = store
            .decide(ExpectedVersion::NoStream, &events, at(2), IdCheck::Lookup)
            .unwrap_err();
        assert!(err.is_conflict(), "{err:?}");
        // When the expectation holds now: the batch reuses a recorded id
        let err = store
            .decide(ExpectedVersion::Any, &events, at(2), IdCheck::Lookup)
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::DuplicateEventId { event_id, stream: s }
                if *event_id == events[0].id && *s == stream()),
            "{err:?}"
        );
    }

    #[test]
    fn a_batch_longer_than_the_recorded_stream_is_a_duplicate_when_expected_holds() {
        // Given a stream of one event, the batch's first
        let events = batch(2);
        let mut store = Recorded::default().here(&events[..1], 1);
        // When the batch of two is sent with Any
        let err = store
            .decide(ExpectedVersion::Any, &events, at(1), IdCheck::Lookup)
            .unwrap_err();
        // Then it reuses a recorded id
        assert!(
            matches!(err, StoreError::DuplicateEventId { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn a_stale_expectation_conflicts_before_any_later_id_is_looked_up() {
        // Given a stream at version 3 and a batch whose second id is
        // recorded elsewhere
        let events = batch(2);
        let mut store = Recorded::default().elsewhere(&events[1]);
        // When it is appended expecting version 2
        let err = store
            .decide(ExpectedVersion::Exact(2), &events, at(3), IdCheck::Lookup)
            .unwrap_err();
        // Then it conflicts, naming both versions, and only the first id
        // was looked up
        assert!(
            matches!(
                &err,
                StoreError::WrongExpectedVersion {
                    expected: ExpectedVersion::Exact(2),
                    actual: Some(3),
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(store.asked, [events[0].id]);
    }

    #[test]
    fn a_later_id_recorded_anywhere_is_a_duplicate_naming_its_stream() {
        // Given a batch whose second id is recorded in another stream and
        // whose third is recorded in this one
        let events = batch(3);
        let mut store = Recorded::default().elsewhere(&events[1]);
        // When it is appended where the expectation holds
        let err = store
            .decide(ExpectedVersion::Any, &events, at(1), IdCheck::Lookup)
            .unwrap_err();
        // Then the second id is the duplicate, in the other stream
        assert!(
            matches!(&err, StoreError::DuplicateEventId { event_id, stream }
                if *event_id == events[1].id && *stream == other()),
            "{err:?}"
        );
        // And an id recorded in this stream is named with this stream
        let mut store = Recorded::default().here(&events[2..], 1);
        let err = store
            .decide(ExpectedVersion::Any, &events, at(1), IdCheck::Lookup)
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::DuplicateEventId { event_id, stream: s }
                if *event_id == events[2].id && *s == stream()),
            "{err:?}"
        );
    }

    #[test]
    fn with_ids_checked_by_the_write_only_the_first_id_is_looked_up() {
        // Given a batch whose second id is recorded elsewhere
        let events = batch(3);
        let mut store = Recorded::default().elsewhere(&events[1]);
        // When the adapter's write refuses recorded ids itself
        let decision = store
            .decide(ExpectedVersion::Any, &events, at(1), IdCheck::ByWrite)
            .unwrap();
        // Then the decision is to write, having asked about the first id
        // only; the write reports the duplicate as the decision would
        assert!(matches!(decision, AppendDecision::Write(_)), "{decision:?}");
        assert_eq!(store.asked, [events[0].id]);
        let err = duplicate_event_id(&stream(), events[1].id, store.ids[&events[1].id].clone());
        assert!(
            matches!(&err, StoreError::DuplicateEventId { stream, .. } if *stream == other()),
            "{err:?}"
        );
    }

    #[test]
    fn an_empty_batch_checks_the_expectation_and_writes_nothing() {
        let mut store = Recorded::default();
        // Given a stream at version 2; when an empty batch expects 2
        let decision = store
            .decide(ExpectedVersion::Exact(2), &[], at(2), IdCheck::Lookup)
            .unwrap();
        // Then nothing is written and the outcome is the stream's version
        assert_eq!(
            decision,
            AppendDecision::Done(AppendOutcome {
                stream_version: Some(2),
                first_position: None,
                last_position: None,
                already_recorded: false,
            })
        );
        // And when it expects no stream, it conflicts
        let err = store
            .decide(ExpectedVersion::NoStream, &[], at(2), IdCheck::Lookup)
            .unwrap_err();
        assert!(err.is_conflict(), "{err:?}");
    }

    #[test]
    fn a_lookup_failure_is_the_decisions_error() {
        // Given a lookup that fails
        let failing = |_: &EventId| -> Result<Option<RecordedAt>, StoreError> {
            Err(StoreError::Corrupt {
                location: "here".into(),
                detail: "unreadable".into(),
            })
        };
        // When a batch is decided; then the failure is returned as it is
        let err = decide_append(
            &stream(),
            ExpectedVersion::Any,
            &batch(1),
            at(1),
            IdCheck::Lookup,
            failing,
        )
        .unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    }

    #[test]
    fn a_deletion_writes_the_tombstone_after_the_streams_version() {
        let s = stream();
        // Given a stream at version 3: deleting it expecting 3 writes version 4
        let plan = decide_delete(&s, ExpectedVersion::Exact(3), at(3)).unwrap();
        assert_eq!((plan.first_version, plan.len), (4, 1));
        // A missing stream deleted with Any gets the tombstone as version 1
        // (the name is reserved)
        let plan = decide_delete(&s, ExpectedVersion::Any, StreamState::default()).unwrap();
        assert_eq!((plan.first_version, plan.len), (1, 1));
        // NoStream never holds for a deletion, nor does a stale version
        for expected in [ExpectedVersion::NoStream, ExpectedVersion::Exact(2)] {
            let err = decide_delete(&s, expected, at(3)).unwrap_err();
            assert!(err.is_conflict(), "{err:?}");
        }
        // And a deleted stream cannot be deleted again
        let deleted = StreamState {
            version: Some(4),
            deleted: true,
        };
        let err = decide_delete(&s, ExpectedVersion::Any, deleted).unwrap_err();
        assert!(matches!(err, StoreError::StreamDeleted { .. }), "{err:?}");
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
