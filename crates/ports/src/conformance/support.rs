//! Small builders the behaviours share.

use logbook_domain::{EventId, NewEvent, Payload, StreamId};

use crate::RecordedEvent;
use crate::event_store::{EventFilter, EventStore, ReadDirection};

/// A JSON payload from a `serde_json::json!` value.
pub fn payload(value: serde_json::Value) -> Payload {
    Payload::from_serialize(&value).expect("a JSON value serializes")
}

/// A new event of `event_type` whose payload is `{"n": n}`.
pub fn event(event_type: &str, n: u64) -> NewEvent {
    NewEvent::new(event_type, payload(serde_json::json!({ "n": n })))
}

/// As [`event`], with a chosen id.
pub fn event_with_id(event_type: &str, n: u64, id: EventId) -> NewEvent {
    event(event_type, n).with_id(id)
}

pub(crate) fn stream(name: &str) -> StreamId {
    StreamId::new(name).expect("test stream ids are valid")
}

pub(crate) fn events(count: u64) -> Vec<NewEvent> {
    (1..=count).map(|n| event("Happened", n)).collect()
}

pub(crate) async fn whole_stream(store: &dyn EventStore, stream: &StreamId) -> Vec<RecordedEvent> {
    store
        .read_stream(stream, ReadDirection::Forward, 1, usize::MAX)
        .await
        .expect("reading a stream")
}

pub(crate) async fn whole_log(store: &dyn EventStore) -> Vec<RecordedEvent> {
    store
        .read_all(1, usize::MAX, &EventFilter::all())
        .await
        .expect("reading the global log")
}

pub(crate) fn ns(events: &[RecordedEvent]) -> Vec<u64> {
    events
        .iter()
        .map(|e| {
            e.payload
                .to_value::<serde_json::Value>()
                .expect("payload is JSON")["n"]
                .as_u64()
                .expect("payload has n")
        })
        .collect()
}

pub(crate) fn versions(events: &[RecordedEvent]) -> Vec<u64> {
    events.iter().map(|e| e.version).collect()
}

pub(crate) fn positions(events: &[RecordedEvent]) -> Vec<u64> {
    events.iter().map(|e| e.position).collect()
}
