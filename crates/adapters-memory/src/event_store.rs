//! [`MemoryEventStore`]: the reference [`EventStore`].

use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use chrono::DateTime;
use logbook_domain::{EventId, NewEvent, Payload, Position, RecordedEvent, StreamId, Version};
use logbook_ports::append::{self, AppendDecision, IdCheck, RecordedAt, StreamState, WritePlan};
use logbook_ports::event_store::timestamp_now;
use logbook_ports::interner::{Interner, StreamNames};
use logbook_ports::metadata;
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
struct Inner {
    /// The global log in chunks; position `p` is entry `p - 1`.
    log: Vec<Vec<Entry>>,
    len: usize,
    arena: Arena,
    /// Stream ids, interned; `Entry::stream` is a number of this.
    streams: StreamNames,
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

    /// The stream's version, and whether it is deleted (its last event is
    /// a tombstone), for the stream numbered `number` (`None`: never seen).
    fn state(&self, number: Option<u32>) -> StreamState {
        let positions = self.positions(number);
        StreamState {
            version: (!positions.is_empty()).then_some(positions.len() as Version),
            deleted: positions.last().is_some_and(|&p| {
                let entry = self.entry(Position::from(p));
                append::is_tombstone(self.types.name(entry.event_type))
            }),
        }
    }

    /// Where `id` is recorded, seen from an append to stream `number`.
    fn locate(&self, number: Option<u32>, id: &EventId) -> Option<RecordedAt> {
        let position = self.ids.get(&self.log, id)?;
        let entry = self.entry(Position::from(position));
        Some(if Some(entry.stream) == number {
            RecordedAt::ThisStream {
                version: entry.version,
                position: Position::from(position),
            }
        } else {
            RecordedAt::OtherStream(self.streams.name(entry.stream).clone())
        })
    }

    /// The positions of the stream numbered `number`, in version order.
    fn positions(&self, number: Option<u32>) -> &[u32] {
        number.map_or(&[], |i| self.stream_positions[i as usize].as_slice())
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
        let metadata = metadata::decode(metadata).map_err(|e| corrupt(format!("metadata: {e}")))?;
        Ok(RecordedEvent {
            id: entry.id,
            stream: self.streams.name(entry.stream).clone(),
            version: entry.version,
            position,
            event_type: Arc::clone(self.types.name(entry.event_type)),
            schema_version: entry.schema_version,
            payload: Payload::from_stored(payload.to_vec()),
            metadata,
            recorded_at: DateTime::from_timestamp_micros(entry.recorded_at_micros)
                .ok_or_else(|| corrupt("timestamp out of range".into()))?,
        })
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

/// Writes `events` as `plan` says. The caller holds the write lock and
/// has decided the append.
fn write_locked(
    inner: &mut Inner,
    stream: &StreamId,
    plan: WritePlan,
    events: &[NewEvent],
    metadata: &[Vec<u8>],
) -> Result<AppendOutcome, StoreError> {
    if u32::try_from(inner.len + events.len()).is_err() {
        return Err(StoreError::InvalidEvent {
            index: 0,
            reason: "the in-memory store holds at most 4 billion events".into(),
        });
    }
    let stream_number = inner.streams.intern_key(stream);
    if stream_number as usize == inner.stream_positions.len() {
        inner.stream_positions.push(Vec::new());
    }
    let now = timestamp_now();
    let first_position = inner.len as Position + 1;
    for ((event, metadata), version) in events.iter().zip(metadata).zip(plan.first_version..) {
        let position = (inner.len + 1) as u32;
        let data = inner.arena.push(&[event.payload.as_bytes(), metadata]);
        let event_type = inner.types.intern(&event.event_type);
        inner.push(Entry {
            id: event.id,
            stream: stream_number,
            event_type,
            schema_version: event.schema_version,
            version,
            recorded_at_micros: event.recorded_at.unwrap_or(now).timestamp_micros(),
            data,
            payload_len: event.payload.len() as u32,
        });
        let Inner { ids, log, .. } = inner;
        ids.insert(log, &event.id, position);
        inner.stream_positions[stream_number as usize].push(position);
    }
    Ok(plan.outcome(first_position))
}

/// Each event's metadata as stored, after checking that it and the payload
/// fit the arena's 32-bit lengths.
fn encode(events: &[NewEvent]) -> Result<Vec<Vec<u8>>, StoreError> {
    let stored = metadata::encode(events)?;
    let too_large = events
        .iter()
        .zip(&stored)
        .position(|(event, metadata)| event.payload.len() + metadata.len() > u32::MAX as usize);
    match too_large {
        Some(index) => Err(StoreError::InvalidEvent {
            index,
            reason: "payload and metadata exceed 4 GiB".into(),
        }),
        None => Ok(stored),
    }
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
        let number = inner.streams.number(stream.as_str());
        let decision = append::decide_append(
            stream,
            expected,
            &events,
            inner.state(number),
            IdCheck::Lookup,
            |id| Ok(inner.locate(number, id)),
        )?;
        let plan = match decision {
            AppendDecision::Write(plan) => plan,
            AppendDecision::Done(outcome) => return Ok(outcome),
        };
        let outcome = write_locked(&mut inner, stream, plan, &events, &metadata)?;
        self.signal(inner);
        Ok(outcome)
    }

    async fn delete_stream(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
    ) -> Result<AppendOutcome, StoreError> {
        let mut inner = self.write();
        let state = inner.state(inner.streams.number(stream.as_str()));
        let plan = append::decide_delete(stream, expected, state)?;
        let outcome = write_locked(
            &mut inner,
            stream,
            plan,
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
        let number = inner.streams.number(stream.as_str());
        append::check_not_deleted(stream, inner.state(number).deleted)?;
        direction
            .select(inner.positions(number), from, limit)
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
                    inner.streams.name(entry.stream).as_str(),
                    inner.types.name(entry.event_type),
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
        let state = inner.state(inner.streams.number(stream.as_str()));
        append::check_not_deleted(stream, state.deleted)?;
        Ok(state.version)
    }

    async fn head_position(&self) -> Result<Option<Position>, StoreError> {
        let len = self.read().len;
        Ok((len > 0).then_some(len as Position))
    }

    fn commits(&self) -> Option<CommitSignal> {
        Some(self.commits.subscribe())
    }
}
