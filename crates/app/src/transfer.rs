//! Moving events between stores and files: the global log as JSON lines
//! (one recorded event per line, payload bytes untouched), and the JSON
//! array that the first seed's `EventStore.persist` wrote for its ships.
//!
//! Imports check everything before writing anything: a malformed line, a gap
//! in a stream's versions, an id used twice or a clash with events already
//! in the target store is reported and nothing is appended. Events are
//! written in the file's order, so the target's global log keeps the
//! source's order. Importing the same file twice appends nothing the second
//! time (the event ids are recognised). A deleted stream is deleted again in
//! the target: its tombstone is the target's own (same stream and version,
//! a new id and time).

use std::collections::{HashMap, HashSet};
use std::io::Write;

use chrono::{DateTime, NaiveDateTime, Utc};
use logbook_domain::cargo_ship::{CargoShip, CargoShipEvent};
use logbook_domain::{
    Aggregate, EventId, Metadata, NewEvent, Payload, RecordedEvent, StreamId, Version,
};
use logbook_ports::append::{self, is_tombstone};
use logbook_ports::{EventFilter, EventStore, ExpectedVersion, GlobalPages, StoreError};
use serde::{Deserialize, Serialize};

use crate::codec::Decoder;
use crate::registry::{AggregateRegistry, UndecodableEvent};

/// How far a long transfer or check has come: `done` of `total` events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Events handled so far.
    pub done: u64,
    /// Events in all.
    pub total: u64,
}

/// Events read per page while exporting.
const PAGE: usize = 10_000;

/// Why an export or import failed.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the output failed.
    #[error("cannot write the export: {0}")]
    Write(#[from] std::io::Error),
    /// The input is malformed at this line (JSON lines) or entry (seed JSON).
    #[error("{what} {number}: {reason}")]
    Malformed {
        /// "line" or "entry".
        what: &'static str,
        /// 1-based.
        number: usize,
        /// What is wrong.
        reason: String,
    },
    /// An event of a registered aggregate's stream does not decode: no
    /// reader could use it, so nothing is imported.
    #[error("event {number}: {problem}; nothing was imported")]
    Undecodable {
        /// 1-based, in input order.
        number: usize,
        /// The stream, type, field and reason.
        problem: UndecodableEvent,
    },
    /// The input clashes with what the target store holds.
    #[error(
        "stream {stream} in the target store already has different events (first at version {version}); nothing was imported"
    )]
    Clash {
        /// The stream.
        stream: StreamId,
        /// The first version that differs.
        version: Version,
    },
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportReport {
    /// Events appended.
    pub imported: u64,
    /// Events that the target already held (same ids, same places).
    pub already_present: u64,
    /// Streams touched.
    pub streams: u64,
    /// Events kept whose streams no registered aggregate claims (their
    /// payloads could not be checked).
    pub unchecked: u64,
}

/// Writes the whole global log as JSON lines; returns the number of events.
///
/// # Errors
/// Store and write failures.
pub async fn export_json_lines(
    store: &dyn EventStore,
    out: &mut dyn Write,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<u64, TransferError> {
    let total = store.head_position().await?.unwrap_or(0);
    let mut count = 0;
    let all = EventFilter::all();
    let mut pages = GlobalPages::new(store, 1, &all, PAGE);
    while let Some(page) = pages.next_page().await? {
        for event in &page {
            serde_json::to_writer(&mut *out, event).map_err(std::io::Error::from)?;
            out.write_all(b"\n")?;
            count += 1;
        }
        progress(Progress {
            done: pages.position().map_or(total, |next| next - 1),
            total,
        });
    }
    out.flush()?;
    Ok(count)
}

/// Reads JSON lines written by [`export_json_lines`] (blank lines are
/// skipped).
///
/// # Errors
/// [`TransferError::Malformed`] naming the first bad line.
pub fn parse_json_lines(input: &str) -> Result<Vec<RecordedEvent>, TransferError> {
    input
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| TransferError::Malformed {
                what: "line",
                number: i + 1,
                reason: e.to_string(),
            })
        })
        .collect()
}

/// Appends `events` (grouped by stream, each stream's versions contiguous
/// from 1 in input order) to `store`, keeping ids, versions, types, schema
/// versions, payload bytes, metadata and timestamps. Global positions are
/// the target's own.
///
/// Events in the streams of an aggregate of `aggregates` must decode as its
/// events (what no reader can decode would stop every projection over it);
/// events of other streams are kept unchecked and counted.
///
/// # Errors
/// [`TransferError::Malformed`] for a gap in a stream's versions,
/// [`TransferError::Undecodable`] for an event its aggregate cannot read
/// and [`TransferError::Clash`] for a stream that already holds other
/// events; each before anything is written.
pub async fn import(
    store: &dyn EventStore,
    events: Vec<RecordedEvent>,
    aggregates: &AggregateRegistry,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<ImportReport, TransferError> {
    let total = events.len() as u64;
    check_input(&events)?;
    let mut unchecked = 0;
    for (index, event) in events.iter().enumerate() {
        match aggregates.check_event(event) {
            Some(Err(problem)) => {
                return Err(TransferError::Undecodable {
                    number: index + 1,
                    problem,
                });
            }
            Some(Ok(())) => {}
            None if is_tombstone(&event.event_type) => {}
            None => unchecked += 1,
        }
    }
    let present = check_target(store, &events).await?;
    let mut report = ImportReport {
        streams: present.len() as u64,
        unchecked,
        ..ImportReport::default()
    };
    // Write in input order, so the target's global log keeps the source's
    // order; consecutive events of one stream go in one batch.
    let mut pending: Vec<RecordedEvent> = Vec::new();
    for (done, event) in (0u64..).zip(events) {
        if done.is_multiple_of(1_000) {
            progress(Progress { done, total });
        }
        if event.version <= present[&event.stream] {
            report.already_present += 1;
            continue;
        }
        let joins = pending
            .last()
            .is_some_and(|last| last.stream == event.stream)
            && pending.len() < 1_000
            && !is_tombstone(&event.event_type);
        if !joins {
            report.imported += flush(store, &mut pending).await?;
        }
        pending.push(event);
    }
    report.imported += flush(store, &mut pending).await?;
    progress(Progress { done: total, total });
    Ok(report)
}

/// Appends `pending` (events of one stream, or one tombstone) at the
/// versions they had; returns how many were written.
async fn flush(
    store: &dyn EventStore,
    pending: &mut Vec<RecordedEvent>,
) -> Result<u64, TransferError> {
    let Some(first) = pending.first() else {
        return Ok(0);
    };
    let stream = first.stream.clone();
    let expected = ExpectedVersion::from_current(Some(first.version - 1));
    let batch: Vec<RecordedEvent> = std::mem::take(pending);
    let count = batch.len() as u64;
    if is_tombstone(&batch[0].event_type) {
        store.delete_stream(&stream, expected).await?;
        return Ok(1);
    }
    let outcome = store
        .append(
            &stream,
            expected,
            batch.into_iter().map(to_new_event).collect(),
        )
        .await?;
    Ok(if outcome.already_recorded { 0 } else { count })
}

/// What can be checked in the input alone: each stream's versions
/// contiguous from 1 in input order, nothing after a tombstone, every id
/// once, every event type acceptable.
fn check_input(events: &[RecordedEvent]) -> Result<(), TransferError> {
    let mut next: HashMap<&StreamId, (Version, bool)> = HashMap::new();
    let mut ids = HashSet::with_capacity(events.len());
    for (i, event) in events.iter().enumerate() {
        let bad = |reason: String| TransferError::Malformed {
            what: "event",
            number: i + 1,
            reason,
        };
        let (expected, deleted) = next.entry(&event.stream).or_insert((1, false));
        if *deleted {
            return Err(bad(format!(
                "stream {} has an event after its deletion",
                event.stream
            )));
        }
        if event.version != *expected {
            return Err(bad(format!(
                "stream {} jumps to version {} where {} was expected",
                event.stream, event.version, expected
            )));
        }
        *expected += 1;
        *deleted = is_tombstone(&event.event_type);
        if !ids.insert(event.id) {
            return Err(bad(format!("event id {} appears twice", event.id)));
        }
        if !*deleted {
            append::validate_batch(std::slice::from_ref(&to_new_event(event.clone())))
                .map_err(|e| bad(e.to_string()))?;
        }
    }
    Ok(())
}

/// What the target already holds must be, stream by stream, a prefix of
/// the input, and no other id of the input may be recorded anywhere. Returns
/// how many events of each input stream are already present.
async fn check_target(
    store: &dyn EventStore,
    events: &[RecordedEvent],
) -> Result<HashMap<StreamId, Version>, TransferError> {
    // The target's ids, by stream, in order (deleted streams included,
    // which only the global log still shows).
    let mut held: HashMap<StreamId, Vec<(EventId, bool)>> = HashMap::new();
    let mut owner: HashMap<EventId, StreamId> = HashMap::new();
    let all = EventFilter::all();
    let mut pages = GlobalPages::new(store, 1, &all, PAGE);
    while let Some(page) = pages.next_page().await? {
        for event in page {
            owner.insert(event.id, event.stream.clone());
            let tombstone = is_tombstone(&event.event_type);
            held.entry(event.stream)
                .or_default()
                .push((event.id, tombstone));
        }
    }
    let mut present: HashMap<StreamId, Version> = HashMap::new();
    for event in events {
        let count = present.entry(event.stream.clone()).or_insert(0);
        let ids = held.get(&event.stream).map_or(&[][..], Vec::as_slice);
        match ids.get((event.version - 1) as usize) {
            // A deletion is recorded anew on import (the store makes its
            // tombstone), so one tombstone matches another at that place.
            Some((id, tombstone))
                if *id == event.id || (*tombstone && is_tombstone(&event.event_type)) =>
            {
                *count = event.version;
            }
            Some(_) => {
                return Err(TransferError::Clash {
                    stream: event.stream.clone(),
                    version: event.version,
                });
            }
            None => {
                if let Some(stream) = owner.get(&event.id) {
                    return Err(TransferError::Store(StoreError::DuplicateEventId {
                        event_id: event.id,
                        stream: stream.clone(),
                    }));
                }
            }
        }
    }
    Ok(present)
}

fn to_new_event(event: RecordedEvent) -> NewEvent {
    NewEvent {
        id: event.id,
        event_type: event.event_type.to_string(),
        schema_version: event.schema_version,
        payload: event.payload,
        metadata: event.metadata,
        recorded_at: Some(event.recorded_at),
    }
}

/// One entry of the seed's `ship_events.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedEvent {
    event_id: EventId,
    timestamp: String,
    event_type: String,
    entity_id: String,
    data: serde_json::Value,
}

/// Reads the JSON array the first seed's `EventStore.persist` wrote into
/// cargo ship events (`CargoShip-<entity_id>` streams, versions in file
/// order, the seed's ids and timestamps kept; naive timestamps are taken as
/// UTC).
///
/// # Errors
/// [`TransferError::Malformed`] naming the entry: not the seed's shape, an
/// unknown event type, data that is not that event's, a bad timestamp.
pub fn parse_seed_json(input: &str) -> Result<Vec<RecordedEvent>, TransferError> {
    let whole = |reason: String| TransferError::Malformed {
        what: "entry",
        number: 0,
        reason,
    };
    let entries: Vec<serde_json::Value> = serde_json::from_str(input)
        .map_err(|e| whole(format!("not a JSON array of seed events: {e}")))?;
    let decoder = Decoder::<CargoShipEvent>::new();
    let mut versions: HashMap<String, Version> = HashMap::new();
    let mut events = Vec::with_capacity(entries.len());
    for (i, entry) in entries.into_iter().enumerate() {
        let bad = |reason: String| TransferError::Malformed {
            what: "entry",
            number: i + 1,
            reason,
        };
        let seed: SeedEvent = serde_json::from_value(entry).map_err(|e| bad(e.to_string()))?;
        let stream = StreamId::for_aggregate(CargoShip::TYPE, &seed.entity_id)
            .map_err(|e| bad(e.to_string()))?;
        let version = versions.entry(seed.entity_id.clone()).or_insert(0);
        *version += 1;
        let event = RecordedEvent {
            id: seed.event_id,
            stream,
            version: *version,
            position: 0,
            event_type: seed.event_type.as_str().into(),
            schema_version: 1,
            payload: Payload::from_serialize(&seed.data).map_err(|e| bad(e.to_string()))?,
            metadata: Metadata::default(),
            recorded_at: parse_seed_time(&seed.timestamp).map_err(bad)?,
        };
        decoder.decode(&event).map_err(|e| bad(e.to_string()))?;
        events.push(event);
    }
    Ok(events)
}

fn parse_seed_time(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .map(|naive| naive.and_utc())
        .map_err(|e| format!("timestamp {text:?} is not ISO 8601 ({e})"))
}

/// Writes every cargo ship event as the seed's JSON array, leaving out
/// deleted ships (the format cannot express a deletion).
///
/// # Errors
/// Store and write failures.
pub async fn export_seed_json(
    store: &dyn EventStore,
    out: &mut dyn Write,
) -> Result<SeedExport, TransferError> {
    let filter = EventFilter::stream_prefix(format!("{}-", CargoShip::TYPE));
    let mut entries = Vec::new();
    let mut deleted = HashSet::new();
    let mut pages = GlobalPages::new(store, 1, &filter, PAGE);
    while let Some(page) = pages.next_page().await? {
        for event in page {
            let entity_id = event.stream.as_str()[CargoShip::TYPE.len() + 1..].to_owned();
            if is_tombstone(&event.event_type) {
                deleted.insert(entity_id);
                continue;
            }
            entries.push(SeedEvent {
                event_id: event.id,
                timestamp: event
                    .recorded_at
                    .naive_utc()
                    .format("%Y-%m-%dT%H:%M:%S%.6f")
                    .to_string(),
                event_type: event.event_type.to_string(),
                entity_id,
                data: event.payload.to_value().map_err(|e| StoreError::Corrupt {
                    location: format!("global position {}", event.position),
                    detail: format!("payload: {e}"),
                })?,
            });
        }
    }
    // The seed's format cannot say "deleted": a deleted ship is left out
    // rather than brought back to life by whoever reads the file.
    entries.retain(|entry| !deleted.contains(&entry.entity_id));
    serde_json::to_writer_pretty(&mut *out, &entries).map_err(std::io::Error::from)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(SeedExport {
        events: entries.len() as u64,
        deleted_ships_left_out: deleted.len(),
    })
}

/// What [`export_seed_json`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedExport {
    /// Events written.
    pub events: u64,
    /// Deleted ships, whose events were left out.
    pub deleted_ships_left_out: usize,
}
