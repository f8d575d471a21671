//! [`MemoryEventStore`]: the reference [`EventStore`].

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use chrono::DateTime;
use logbook_domain::{
    EventId, Metadata, NewEvent, Payload, Position, RecordedEvent, StreamId, Version,
};
use logbook_ports::append::{self, RecordedSlot};
use logbook_ports::event_store::timestamp_now;
use logbook_ports::{
    AppendOutcome, CommitSignal, EventFilter, EventStore, ExpectedVersion, ReadDirection,
    StoreError,
};
use tokio::sync::watch;

use crate::arena::{Arena, Slot};

/// Events per chunk of the log: the log grows a chunk at a time instead of
/// doubling (and copying) one large vector.
const LOG_CHUNK: usize = 1 << 16;

/// One recorded event, without its bytes (those are in the arena).
struct Entry {
    id: EventId,
    stream: u32,
    event_type: u32,
    schema_version: u32,
    version: Version,
    recorded_at_micros: i64,
    /// Payload followed by metadata JSON (absent when the metadata is empty).
    data: Slot,
    payload_len: u32,
}

#[derive(Default)]
struct Interner {
    names: Vec<Arc<str>>,
    index: HashMap<Arc<str>, u32>,
}

impl Interner {
    fn intern(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = u32::try_from(self.names.len()).expect("fewer than 4 billion names");
        let name: Arc<str> = Arc::from(name);
        self.names.push(Arc::clone(&name));
        self.index.insert(name, i);
        i
    }
}

#[derive(Default)]
struct Inner {
    /// The global log in chunks; position `p` is entry `p - 1`.
    log: Vec<Vec<Entry>>,
    len: usize,
    arena: Arena,
    /// Stream ids, interned; `Entry::stream` indexes this.
    streams: Vec<StreamId>,
    stream_index: HashMap<StreamId, u32>,
    /// Per stream, the position of each of its events (index = version - 1).
    stream_positions: Vec<Vec<u32>>,
    types: Interner,
    /// Every event id, as the position of its entry.
    ids: IdIndex,
}

/// Event id to position, storing only the position: the id is read back
/// from the log entry, so the index costs a few bytes per event instead of
/// a copy of every id.
#[derive(Default)]
struct IdIndex {
    table: HashTable<u32>,
    hasher: RandomState,
}

fn entry_at(log: &[Vec<Entry>], position: u32) -> &Entry {
    let index = position as usize - 1;
    &log[index / LOG_CHUNK][index % LOG_CHUNK]
}

impl IdIndex {
    fn get(&self, log: &[Vec<Entry>], id: &EventId) -> Option<u32> {
        let hash = self.hasher.hash_one(id);
        self.table
            .find(hash, |&p| entry_at(log, p).id == *id)
            .copied()
    }

    fn insert(&mut self, log: &[Vec<Entry>], id: &EventId, position: u32) {
        let hasher = &self.hasher;
        self.table
            .insert_unique(hasher.hash_one(id), position, |&p| {
                hasher.hash_one(entry_at(log, p).id)
            });
    }
}

impl Inner {
    fn entry(&self, position: Position) -> &Entry {
        let index = (position - 1) as usize;
        &self.log[index / LOG_CHUNK][index % LOG_CHUNK]
    }

    fn current_version(&self, stream: &StreamId) -> Option<Version> {
        self.stream_of(stream)
            .and_then(|p| (!p.is_empty()).then_some(p.len() as Version))
    }

    /// A stream is deleted when its last event is a tombstone.
    fn is_deleted(&self, stream: &StreamId) -> bool {
        self.stream_of(stream)
            .and_then(|p| p.last())
            .is_some_and(|&p| {
                let entry = self.entry(Position::from(p));
                append::is_tombstone(&self.types.names[entry.event_type as usize])
            })
    }

    fn position_of(&self, id: &EventId) -> Option<u32> {
        self.ids.get(&self.log, id)
    }

    fn stream_of(&self, stream: &StreamId) -> Option<&[u32]> {
        self.stream_index
            .get(stream)
            .map(|&i| self.stream_positions[i as usize].as_slice())
    }

    fn push(&mut self, entry: Entry) {
        if self.log.last().is_none_or(|chunk| chunk.len() == LOG_CHUNK) {
            self.log.push(Vec::with_capacity(LOG_CHUNK));
        }
        self.log
            .last_mut()
            .expect("a chunk was just ensured")
            .push(entry);
        self.len += 1;
    }

    fn record(&self, position: Position) -> Result<RecordedEvent, StoreError> {
        let entry = self.entry(position);
        let data = self.arena.get(entry.data);
        let (payload, metadata) = data.split_at(entry.payload_len as usize);
        let corrupt = |detail: String| StoreError::Corrupt {
            location: format!("memory store, position {position}"),
            detail,
        };
        let metadata = if metadata.is_empty() {
            Metadata::default()
        } else {
            serde_json::from_slice(metadata).map_err(|e| corrupt(format!("metadata: {e}")))?
        };
        Ok(RecordedEvent {
            id: entry.id,
            stream: self.streams[entry.stream as usize].clone(),
            version: entry.version,
            position,
            event_type: Arc::clone(&self.types.names[entry.event_type as usize]),
            schema_version: entry.schema_version,
            payload: Payload::from_stored(payload.to_vec()),
            metadata,
            recorded_at: DateTime::from_timestamp_micros(entry.recorded_at_micros)
                .ok_or_else(|| corrupt("timestamp out of range".into()))?,
        })
    }

    fn slots(&self, positions: &[u32]) -> Vec<RecordedSlot> {
        positions
            .iter()
            .map(|&p| {
                let entry = self.entry(Position::from(p));
                RecordedSlot {
                    id: entry.id,
                    version: entry.version,
                    position: Position::from(p),
                }
            })
            .collect()
    }
}

/// The in-memory event store: everything lives in this process and is lost
/// with it. Reads of one stream go through that stream's index only.
pub struct MemoryEventStore {
    inner: RwLock<Inner>,
    commits: watch::Sender<Position>,
}

impl Default for MemoryEventStore {
    fn default() -> Self {
        Self {
            inner: RwLock::default(),
            commits: watch::Sender::new(0),
        }
    }
}

impl MemoryEventStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    // A panic while holding the lock cannot leave a half-written batch (the
    // batch is checked before anything is pushed), so poisoning is ignored.
    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Releases the lock, then wakes subscribers with the new head.
    fn signal(&self, inner: RwLockWriteGuard<'_, Inner>) {
        let head = inner.len as Position;
        drop(inner);
        // Two committers may get here out of order: never move it back.
        self.commits.send_if_modified(|signalled| {
            let newer = head > *signalled;
            if newer {
                *signalled = head;
            }
            newer
        });
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Writes `events` (at least one) after the stream's `current` version. The
/// caller holds the write lock and has made every check.
fn write_locked(
    inner: &mut Inner,
    stream: &StreamId,
    current: Option<Version>,
    events: &[NewEvent],
    metadata: &[Vec<u8>],
) -> Result<AppendOutcome, StoreError> {
    if u32::try_from(inner.len + events.len()).is_err() {
        return Err(StoreError::InvalidEvent {
            index: 0,
            reason: "the in-memory store holds at most 4 billion events".into(),
        });
    }
    let stream_index = match inner.stream_index.get(stream) {
        Some(&i) => i,
        None => {
            let i = u32::try_from(inner.streams.len()).expect("fewer streams than events");
            inner.streams.push(stream.clone());
            inner.stream_index.insert(stream.clone(), i);
            inner.stream_positions.push(Vec::new());
            i
        }
    };
    let now = timestamp_now();
    let first_position = inner.len as Position + 1;
    let mut version = current.unwrap_or(0);
    for (event, metadata) in events.iter().zip(metadata) {
        version += 1;
        let position = (inner.len + 1) as u32;
        let data = inner.arena.push(&[event.payload.as_bytes(), metadata]);
        let event_type = inner.types.intern(&event.event_type);
        inner.push(Entry {
            id: event.id,
            stream: stream_index,
            event_type,
            schema_version: event.schema_version,
            version,
            recorded_at_micros: event.recorded_at.unwrap_or(now).timestamp_micros(),
            data,
            payload_len: event.payload.len() as u32,
        });
        let Inner { ids, log, .. } = inner;
        ids.insert(log, &event.id, position);
        inner.stream_positions[stream_index as usize].push(position);
    }
    Ok(AppendOutcome {
        stream_version: Some(version),
        first_position: Some(first_position),
        last_position: Some(inner.len as Position),
        already_recorded: false,
    })
}

fn encode(events: &[NewEvent]) -> Result<Vec<Vec<u8>>, StoreError> {
    events
        .iter()
        .enumerate()
        .map(|(index, event)| {
            let metadata = if event.metadata.is_empty() {
                Vec::new()
            } else {
                serde_json::to_vec(&event.metadata).map_err(|e| StoreError::InvalidEvent {
                    index,
                    reason: format!("metadata does not serialize: {e}"),
                })?
            };
            if event.payload.len() + metadata.len() > u32::MAX as usize {
                return Err(StoreError::InvalidEvent {
                    index,
                    reason: "payload and metadata exceed 4 GiB".into(),
                });
            }
            Ok(metadata)
        })
        .collect()
}

#[async_trait]
impl EventStore for MemoryEventStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        append::validate_batch(&events)?;
        let metadata = encode(&events)?;
        let mut inner = self.write();
        append::check_not_deleted(stream, inner.is_deleted(stream))?;
        let positions = inner.stream_of(stream).unwrap_or(&[]);
        let current = (!positions.is_empty()).then_some(positions.len() as Version);

        if let Some(first) = events.first()
            && let Some(position) = inner.position_of(&first.id)
        {
            let entry = inner.entry(Position::from(position));
            let owner = &inner.streams[entry.stream as usize];
            if owner != stream {
                return Err(StoreError::DuplicateEventId {
                    event_id: first.id,
                    stream: owner.clone(),
                });
            }
            let from = (entry.version - 1) as usize;
            let to = (from + events.len()).min(positions.len());
            let recorded = inner.slots(&positions[from..to]);
            return append::retry_outcome(stream, expected, &events, &recorded, current);
        }
        append::check_expected(stream, expected, current)?;
        for event in &events {
            if let Some(position) = inner.position_of(&event.id) {
                let owner = inner.entry(Position::from(position)).stream;
                return Err(StoreError::DuplicateEventId {
                    event_id: event.id,
                    stream: inner.streams[owner as usize].clone(),
                });
            }
        }
        if events.is_empty() {
            return Ok(AppendOutcome {
                stream_version: current,
                first_position: None,
                last_position: None,
                already_recorded: false,
            });
        }

        let outcome = write_locked(&mut inner, stream, current, &events, &metadata)?;
        self.signal(inner);
        Ok(outcome)
    }

    async fn delete_stream(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
    ) -> Result<AppendOutcome, StoreError> {
        let mut inner = self.write();
        let current = inner.current_version(stream);
        append::check_delete(stream, expected, current, inner.is_deleted(stream))?;
        let outcome = write_locked(
            &mut inner,
            stream,
            current,
            &[append::tombstone()],
            &[Vec::new()],
        )?;
        self.signal(inner);
        Ok(outcome)
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        direction: ReadDirection,
        from: Version,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let inner = self.read();
        append::check_not_deleted(stream, inner.is_deleted(stream))?;
        let Some(positions) = inner.stream_of(stream) else {
            return Ok(Vec::new());
        };
        direction
            .select(positions, from, limit)
            .into_iter()
            .map(|&p| inner.record(Position::from(p)))
            .collect()
    }

    async fn read_all(
        &self,
        from: Position,
        limit: usize,
        filter: &EventFilter,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let inner = self.read();
        let head = inner.len as Position;
        let mut out = Vec::new();
        let mut position = from.max(1);
        while position <= head && out.len() < limit {
            let entry = inner.entry(position);
            if filter.is_all()
                || filter.matches(
                    inner.streams[entry.stream as usize].as_str(),
                    &inner.types.names[entry.event_type as usize],
                )
            {
                out.push(inner.record(position)?);
            }
            position += 1;
        }
        Ok(out)
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<Option<Version>, StoreError> {
        let inner = self.read();
        append::check_not_deleted(stream, inner.is_deleted(stream))?;
        Ok(inner.current_version(stream))
    }

    async fn head_position(&self) -> Result<Option<Position>, StoreError> {
        let len = self.read().len;
        Ok((len > 0).then_some(len as Position))
    }

    fn commits(&self) -> Option<CommitSignal> {
        Some(self.commits.subscribe())
    }
}
