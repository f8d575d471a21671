//! Moving events between stores and files: the global log as JSON lines
//! (one recorded event per line, payload bytes untouched), and the JSON
//! array that the first seed's `EventStore.persist` wrote for its ships.
//!
//! Imports check everything before writing anything: a malformed line, a gap
//! in a stream's versions or a clash with events already in the target store
//! is reported with its line and nothing is appended. Importing the same
//! file twice appends nothing the second time (the event ids are recognised).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use chrono::{DateTime, NaiveDateTime, Utc};
use logbook_domain::cargo_ship::{CargoShip, CargoShipEvent};
use logbook_domain::{
    Aggregate, EventId, Metadata, NewEvent, Payload, RecordedEvent, StreamId, Version,
};
use logbook_ports::{EventFilter, EventStore, ExpectedVersion, ReadDirection, StoreError};
use serde::{Deserialize, Serialize};

use crate::codec::Decoder;

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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Events appended.
    pub imported: u64,
    /// Events that the target already held (same ids, same places).
    pub already_present: u64,
    /// Streams touched.
    pub streams: u64,
}

/// Writes the whole global log as JSON lines; returns the number of events.
///
/// # Errors
/// Store and write failures.
pub async fn export_json_lines(
    store: &dyn EventStore,
    out: &mut dyn Write,
) -> Result<u64, TransferError> {
    let mut from = 1;
    let mut count = 0;
    loop {
        let page = store.read_all(from, PAGE, &EventFilter::all()).await?;
        let Some(last) = page.last() else { break };
        from = last.position + 1;
        for event in &page {
            serde_json::to_writer(&mut *out, event).map_err(std::io::Error::from)?;
            out.write_all(b"\n")?;
            count += 1;
        }
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
/// # Errors
/// [`TransferError::Malformed`] for a gap in a stream's versions and
/// [`TransferError::Clash`] for a stream that already holds other events;
/// both before anything is written.
pub async fn import(
    store: &dyn EventStore,
    events: Vec<RecordedEvent>,
) -> Result<ImportReport, TransferError> {
    // Check first: contiguous versions per stream, in input order.
    let mut next: HashMap<StreamId, Version> = HashMap::new();
    for (i, event) in events.iter().enumerate() {
        let expected = next.entry(event.stream.clone()).or_insert(1);
        if event.version != *expected {
            return Err(TransferError::Malformed {
                what: "event",
                number: i + 1,
                reason: format!(
                    "stream {} jumps to version {} where {} was expected",
                    event.stream, event.version, expected
                ),
            });
        }
        *expected += 1;
    }
    // Then against the target: what it holds must be a prefix of the input.
    let mut by_stream: BTreeMap<StreamId, Vec<RecordedEvent>> = BTreeMap::new();
    for event in events {
        by_stream
            .entry(event.stream.clone())
            .or_default()
            .push(event);
    }
    let mut present: HashMap<StreamId, u64> = HashMap::new();
    for (stream, incoming) in &by_stream {
        let held = store
            .read_stream(stream, ReadDirection::Forward, 1, incoming.len())
            .await?;
        if let Some(clash) = held.iter().zip(incoming).find(|(a, b)| a.id != b.id) {
            return Err(TransferError::Clash {
                stream: stream.clone(),
                version: clash.0.version,
            });
        }
        present.insert(stream.clone(), held.len() as u64);
    }
    let mut report = ImportReport {
        streams: by_stream.len() as u64,
        ..ImportReport::default()
    };
    for (stream, incoming) in by_stream {
        let skip = present[&stream];
        report.already_present += skip;
        let rest: Vec<NewEvent> = incoming
            .into_iter()
            .skip(skip as usize)
            .map(to_new_event)
            .collect();
        let mut version = skip;
        for chunk in rest.chunks(1_000) {
            // Exact versions: the imported stream gets the versions it had.
            let outcome = store
                .append(
                    &stream,
                    ExpectedVersion::from_current(Some(version)),
                    chunk.to_vec(),
                )
                .await?;
            if !outcome.already_recorded {
                report.imported += chunk.len() as u64;
            }
            version += chunk.len() as u64;
        }
    }
    Ok(report)
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

/// Writes every cargo ship event as the seed's JSON array; returns the
/// number of events.
///
/// # Errors
/// Store and write failures.
pub async fn export_seed_json(
    store: &dyn EventStore,
    out: &mut dyn Write,
) -> Result<u64, TransferError> {
    let filter = EventFilter::stream_prefix(format!("{}-", CargoShip::TYPE));
    let mut entries = Vec::new();
    let mut from = 1;
    loop {
        let page = store.read_all(from, PAGE, &filter).await?;
        let Some(last) = page.last() else { break };
        from = last.position + 1;
        for event in page {
            let entity_id = event.stream.as_str()[CargoShip::TYPE.len() + 1..].to_owned();
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
    serde_json::to_writer_pretty(&mut *out, &entries).map_err(std::io::Error::from)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(entries.len() as u64)
}
