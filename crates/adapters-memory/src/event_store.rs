//! [`MemoryEventStore`]: the reference [`EventStore`].

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use logbook_domain::{
    EventId, Metadata, NewEvent, Payload, Position, RecordedEvent, RecordedEventRef, RecordedTime,
    StreamId, Version,
};
use logbook_ports::append::{self, AppendDecision, IdCheck, RecordedAt, StreamState, WritePlan};
use logbook_ports::event_store::timestamp_now_micros;
use logbook_ports::interner::{Interner, StreamNames};
use logbook_ports::metadata;
use logbook_ports::retention::{Cutoff, RetentionState, ScavengeReport, StreamRetention};
use logbook_ports::{
    AppendOutcome, CommitSignal, EventFilter, EventStore, ExpectedVersion, ReadDirection,
    StoreError, StoredTimes, StreamVisitor,
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
    /// Scavenged: its bytes are gone from the arena and it is never read.
    reclaimed: bool,
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
    /// Retention of the streams that were given a policy, by stream number.
    retention: HashMap<u32, RetentionState>,
}

/// Event id to position, storing the position and 32 bits of the id's
/// hash: the id is read back from the log entry, so the index costs a few
/// bytes per event instead of a copy of every id, and growing the table
/// rehashes from the stored bits instead of hashing every id again.
#[derive(Default)]
struct IdIndex {
    table: HashTable<IdSlot>,
}

/// The keyed (SipHash) hash of event ids, folded to the 32 bits the index
/// keeps. Outside the store's lock: appends hash their ids before taking it.
#[derive(Default)]
struct IdHasher(RandomState);

impl IdHasher {
    fn hash(&self, id: &EventId) -> u32 {
        let hash = self.0.hash_one(id);
        (hash ^ (hash >> 32)) as u32
    }
}

/// A batch's id hashes: the first event's computed once before the lock
/// (a command's batch is usually that one event), the others when asked.
struct BatchIds<'a> {
    hasher: &'a IdHasher,
    events: &'a [NewEvent],
    first: Option<u32>,
}

impl<'a> BatchIds<'a> {
    fn new(hasher: &'a IdHasher, events: &'a [NewEvent]) -> Self {
        let first = events.first().map(|event| hasher.hash(&event.id));
        Self {
            hasher,
            events,
            first,
        }
    }

    /// The hash of `id`, one of the batch's.
    fn of(&self, id: &EventId) -> u32 {
        match (self.events.first(), self.first) {
            (Some(first), Some(hash)) if first.id == *id => hash,
            _ => self.hasher.hash(id),
        }
    }

    /// The hash of event `index`'s id.
    fn at(&self, index: usize) -> u32 {
        match self.first {
            Some(hash) if index == 0 => hash,
            _ => self.hasher.hash(&self.events[index].id),
        }
    }
}

#[derive(Clone, Copy)]
struct IdSlot {
    position: u32,
    hash: u32,
}

fn entry_at(log: &[Vec<Entry>], position: u32) -> &Entry {
    let index = position as usize - 1;
    &log[index / LOG_CHUNK][index % LOG_CHUNK]
}

/// The table's 64-bit hash of a slot's stored 32 bits: the multiply by an
/// odd constant spreads them over the high bits the table filters on.
fn widen(hash: u32) -> u64 {
    u64::from(hash).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

impl IdIndex {
    fn get(&self, log: &[Vec<Entry>], id: &EventId, hash: u32) -> Option<u32> {
        self.table
            .find(widen(hash), |slot| {
                slot.hash == hash && entry_at(log, slot.position).id == *id
            })
            .map(|slot| slot.position)
    }

    fn remove(&mut self, log: &[Vec<Entry>], id: &EventId, hash: u32) {
        let found = self.table.find_entry(widen(hash), |slot| {
            slot.hash == hash && entry_at(log, slot.position).id == *id
        });
        if let Ok(found) = found {
            found.remove();
        }
    }

    fn insert(&mut self, hash: u32, position: u32) {
        self.table
            .insert_unique(widen(hash), IdSlot { position, hash }, |slot| {
                widen(slot.hash)
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
    fn locate(&self, number: Option<u32>, id: &EventId, hash: u32) -> Option<RecordedAt> {
        let position = self.ids.get(&self.log, id, hash)?;
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

    /// What retention hides in the stream numbered `number` at `now`
    /// (`None`: it has no policy).
    fn cutoff(&self, number: u32, now: DateTime<Utc>) -> Option<Cutoff> {
        let state = self.retention.get(&number)?;
        let last = self.stream_positions[number as usize].len() as Version;
        Some(state.cutoff(now, last))
    }

    /// True when a reader must not see the entry at `position`.
    fn hidden(&self, position: u32, cutoff: Option<&Cutoff>) -> bool {
        entry_at(&self.log, position).hidden(cutoff)
    }

    /// Reclaims what retention hides, then copies the surviving bytes into
    /// a fresh arena so the reclaimed ones are returned to the allocator.
    fn scavenge(&mut self, now: DateTime<Utc>, hasher: &IdHasher) -> ScavengeReport {
        let mut report = ScavengeReport::default();
        let numbers: Vec<u32> = self.retention.keys().copied().collect();
        for number in numbers {
            let Some(cut) = self.cutoff(number, now) else {
                continue;
            };
            let (mut events, mut bytes) = (0, 0);
            for index in 0..self.stream_positions[number as usize].len() {
                let position = self.stream_positions[number as usize][index];
                let entry = entry_at(&self.log, position);
                if entry.reclaimed || !cut.reclaims(entry.version, recorded_at(entry)) {
                    continue;
                }
                let id = entry.id;
                events += 1;
                bytes += u64::from(entry.data_len());
                let Inner { ids, log, .. } = self;
                ids.remove(log, &id, hasher.hash(&id));
                let index = position as usize - 1;
                self.log[index / LOG_CHUNK][index % LOG_CHUNK].reclaimed = true;
            }
            report.add_stream(events, bytes);
        }
        if report.events > 0 {
            let mut arena = Arena::default();
            for entry in self.log.iter_mut().flatten().filter(|e| !e.reclaimed) {
                entry.data = arena.push(&[self.arena.get(entry.data)]);
            }
            self.arena = arena;
        }
        report
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

    /// What a read of `stream` from version `from` in `direction` goes
    /// through: the stream's positions in that window, in read order.
    fn window(
        &self,
        stream: &StreamId,
        direction: ReadDirection,
        from: Version,
    ) -> Result<Window<'_>, StoreError> {
        let number = self.streams.number(stream.as_str());
        append::check_not_deleted(stream, self.state(number).deleted)?;
        let positions = self.positions(number);
        let len = positions.len() as u64;
        let positions = match direction {
            ReadDirection::Forward => &positions[(from.max(1).min(len + 1) - 1) as usize..],
            ReadDirection::Backward => &positions[..from.min(len) as usize],
        };
        Ok(Window {
            inner: self,
            positions,
            backward: direction == ReadDirection::Backward,
            cutoff: number.and_then(|n| self.cutoff(n, Utc::now())),
        })
    }

    /// The payload bytes and the metadata as stored of `entry`.
    fn bytes_of(&self, entry: &Entry) -> (&[u8], &[u8]) {
        self.arena
            .get(entry.data)
            .split_at(entry.payload_len as usize)
    }

    fn record(
        &self,
        position: Position,
        times: &mut StoredTimes,
    ) -> Result<RecordedEvent, StoreError> {
        let entry = self.entry(position);
        let (payload, metadata) = self.bytes_of(entry);
        let metadata = decode_metadata(position, metadata)?;
        Ok(RecordedEvent {
            id: entry.id,
            stream: self.streams.name(entry.stream).clone(),
            version: entry.version,
            position,
            event_type: Arc::clone(self.types.name(entry.event_type)),
            schema_version: entry.schema_version,
            payload: Payload::from_stored(payload.to_vec()),
            metadata,
            recorded_at: read_time(position, entry, times)?,
        })
    }
}

/// The positions a stream read goes through, and what retention hides.
struct Window<'a> {
    inner: &'a Inner,
    /// In version order; read from the end when `backward`.
    positions: &'a [u32],
    backward: bool,
    cutoff: Option<Cutoff>,
}

impl Window<'_> {
    /// The most events the read can return.
    fn most(&self, limit: usize) -> usize {
        limit.min(self.positions.len())
    }

    /// Gives `each` the visible events (position and entry), at most
    /// `limit`, in read order (stopping at its first error); how many it
    /// gave.
    fn each(
        &self,
        limit: usize,
        mut each: impl FnMut(Position, &Entry) -> Result<(), StoreError>,
    ) -> Result<usize, StoreError> {
        let mut given = 0;
        let mut give = |position: u32| {
            if given == limit {
                return Ok(false);
            }
            let entry = entry_at(&self.inner.log, position);
            if !entry.hidden(self.cutoff.as_ref()) {
                given += 1;
                each(Position::from(position), entry)?;
            }
            Ok(given < limit)
        };
        if self.backward {
            for &position in self.positions.iter().rev() {
                if !give(position)? {
                    break;
                }
            }
        } else {
            for &position in self.positions {
                if !give(position)? {
                    break;
                }
            }
        }
        Ok(given)
    }
}

/// Why the entry at `position` cannot be read.
fn corrupt(position: Position, detail: String) -> StoreError {
    StoreError::Corrupt {
        location: format!("memory store, position {position}"),
        detail,
    }
}

/// The time of `entry`, at `position`.
fn read_time(
    position: Position,
    entry: &Entry,
    times: &mut StoredTimes,
) -> Result<DateTime<Utc>, StoreError> {
    times
        .time(entry.recorded_at_micros)
        .ok_or_else(|| out_of_range(position))
}

/// The error for a time out of range at `position`.
fn out_of_range(position: Position) -> StoreError {
    corrupt(position, "timestamp out of range".into())
}

/// The metadata of the entry at `position` from its stored bytes.
fn decode_metadata(position: Position, stored: &[u8]) -> Result<Metadata, StoreError> {
    metadata::decode(stored).map_err(|e| corrupt(position, format!("metadata: {e}")))
}

fn recorded_at(entry: &Entry) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(entry.recorded_at_micros).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

impl Entry {
    fn data_len(&self) -> u32 {
        self.data.len()
    }

    /// True when a reader must not see this entry.
    fn hidden(&self, cutoff: Option<&Cutoff>) -> bool {
        self.reclaimed || cutoff.is_some_and(|cut| cut.hides(self.version, recorded_at(self)))
    }
}

/// The in-memory event store: everything lives in this process and is lost
/// with it. Reads of one stream go through that stream's index only.
pub struct MemoryEventStore {
    inner: RwLock<Inner>,
    id_hasher: IdHasher,
    commits: watch::Sender<Position>,
}

impl Default for MemoryEventStore {
    fn default() -> Self {
        Self {
            inner: RwLock::default(),
            id_hasher: IdHasher::default(),
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

    /// Releases the lock, then wakes subscribers with the new head. With no
    /// subscriber there is no one to wake: [`EventStore::commits`] brings
    /// the head up to date when one subscribes.
    fn signal(&self, inner: RwLockWriteGuard<'_, Inner>) {
        let head = inner.len as Position;
        drop(inner);
        // An append whose lock section follows a subscriber's head read
        // sees its receiver counted (the lock orders the two).
        if self.commits.receiver_count() == 0 {
            return;
        }
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
    number: Option<u32>,
    plan: WritePlan,
    (events, ids): (&[NewEvent], &BatchIds<'_>),
    metadata: Option<&[Vec<u8>]>,
) -> Result<AppendOutcome, StoreError> {
    if u32::try_from(inner.len + events.len()).is_err() {
        return Err(StoreError::InvalidEvent {
            index: 0,
            reason: "the in-memory store holds at most 4 billion events".into(),
        });
    }
    // The caller looked the stream up already: intern it only when new.
    let stream_number = match number {
        Some(number) => number,
        None => inner.streams.intern_key(stream),
    };
    if stream_number as usize == inner.stream_positions.len() {
        inner.stream_positions.push(Vec::new());
    }
    let now = timestamp_now_micros();
    // A stream's events mostly repeat its last event's type: compare with
    // that name before hashing into the interner.
    let mut last_type = inner.stream_positions[stream_number as usize]
        .last()
        .map(|&p| entry_at(&inner.log, p).event_type);
    let first_position = inner.len as Position + 1;
    for ((index, event), version) in events.iter().enumerate().zip(plan.first_version..) {
        let position = (inner.len + 1) as u32;
        let metadata = metadata.map_or(&[][..], |m| m[index].as_slice());
        let data = inner.arena.push(&[event.payload.as_bytes(), metadata]);
        let event_type = match last_type {
            Some(number) if **inner.types.name(number) == *event.event_type => number,
            _ => inner.types.intern(&event.event_type),
        };
        last_type = Some(event_type);
        inner.push(Entry {
            id: event.id,
            stream: stream_number,
            event_type,
            schema_version: event.schema_version,
            version,
            recorded_at_micros: event.recorded_at.map_or(now, |at| at.timestamp_micros()),
            data,
            payload_len: event.payload.len() as u32,
            reclaimed: false,
        });
        inner.ids.insert(ids.at(index), position);
        inner.stream_positions[stream_number as usize].push(position);
    }
    Ok(plan.outcome(first_position))
}

/// Each event's metadata as stored (`None` when no event has any, the
/// usual case: then nothing is allocated for it), after checking that it
/// and the payload fit the arena's 32-bit lengths.
fn encode(events: &[NewEvent]) -> Result<Option<Vec<Vec<u8>>>, StoreError> {
    let stored = if events.iter().all(|event| event.metadata.is_empty()) {
        None
    } else {
        Some(metadata::encode(events)?)
    };
    let metadata_len = |index: usize| stored.as_ref().map_or(0, |m: &Vec<Vec<u8>>| m[index].len());
    let too_large = events
        .iter()
        .enumerate()
        .position(|(index, event)| event.payload.len() + metadata_len(index) > u32::MAX as usize);
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
        let ids = BatchIds::new(&self.id_hasher, &events);
        let mut inner = self.write();
        let number = inner.streams.number(stream.as_str());
        let decision = append::decide_append(
            stream,
            expected,
            &events,
            inner.state(number),
            IdCheck::Lookup,
            |id| Ok(inner.locate(number, id, ids.of(id))),
        )?;
        let plan = match decision {
            AppendDecision::Write(plan) => plan,
            AppendDecision::Done(outcome) => return Ok(outcome),
        };
        let outcome = write_locked(
            &mut inner,
            stream,
            number,
            plan,
            (&events, &ids),
            metadata.as_deref(),
        )?;
        self.signal(inner);
        Ok(outcome)
    }

    async fn delete_stream(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
    ) -> Result<AppendOutcome, StoreError> {
        let mut inner = self.write();
        let number = inner.streams.number(stream.as_str());
        let plan = append::decide_delete(stream, expected, inner.state(number))?;
        let tombstone = [append::tombstone()];
        let outcome = write_locked(
            &mut inner,
            stream,
            number,
            plan,
            (&tombstone, &BatchIds::new(&self.id_hasher, &tombstone)),
            None,
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
        let window = inner.window(stream, direction, from)?;
        let mut events = Vec::with_capacity(window.most(limit));
        let mut times = StoredTimes::default();
        window.each(limit, |position, _| {
            events.push(inner.record(position, &mut times)?);
            Ok(())
        })?;
        Ok(events)
    }

    /// Lends each event straight from the arena, under the read lock: no
    /// envelope, no copy of the payload, metadata decoded only when an
    /// event has some.
    async fn visit_stream(
        &self,
        stream: &StreamId,
        direction: ReadDirection,
        from: Version,
        limit: usize,
        visit: &mut StreamVisitor<'_>,
    ) -> Result<usize, StoreError> {
        let inner = self.read();
        let none = Metadata::default();
        inner
            .window(stream, direction, from)?
            .each(limit, |position, entry| {
                let (payload, stored_metadata) = inner.bytes_of(entry);
                let decoded;
                let metadata = if stored_metadata.is_empty() {
                    &none
                } else {
                    decoded = decode_metadata(position, stored_metadata)?;
                    &decoded
                };
                let recorded_at = RecordedTime::from_micros(entry.recorded_at_micros)
                    .ok_or_else(|| out_of_range(position))?;
                visit(RecordedEventRef {
                    id: entry.id,
                    stream: inner.streams.name(entry.stream),
                    version: entry.version,
                    position,
                    event_type: inner.types.name(entry.event_type),
                    schema_version: entry.schema_version,
                    payload,
                    metadata,
                    recorded_at,
                });
                Ok(())
            })
    }

    async fn read_all(
        &self,
        from: Position,
        limit: usize,
        filter: &EventFilter,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let inner = self.read();
        let head = inner.len as Position;
        let now = Utc::now();
        let mut cutoffs: HashMap<u32, Option<Cutoff>> = HashMap::new();
        let mut out = Vec::new();
        let mut times = StoredTimes::default();
        let mut position = from.max(1);
        while position <= head && out.len() < limit {
            let entry = inner.entry(position);
            let cutoff = if inner.retention.is_empty() {
                &None
            } else {
                cutoffs
                    .entry(entry.stream)
                    .or_insert_with(|| inner.cutoff(entry.stream, now))
            };
            let visible = !inner.hidden(position as u32, cutoff.as_ref());
            if visible
                && (filter.is_all()
                    || filter.matches(
                        inner.streams.name(entry.stream).as_str(),
                        inner.types.name(entry.event_type),
                    ))
            {
                out.push(inner.record(position, &mut times)?);
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

    async fn set_retention(
        &self,
        stream: &StreamId,
        policy: StreamRetention,
    ) -> Result<RetentionState, StoreError> {
        let mut inner = self.write();
        let number = inner.streams.number(stream.as_str());
        let state = inner.state(number);
        append::check_not_deleted(stream, state.deleted)?;
        let number = inner.streams.intern_key(stream);
        if number as usize == inner.stream_positions.len() {
            inner.stream_positions.push(Vec::new());
        }
        let old = inner.retention.get(&number).copied().unwrap_or_default();
        let new = old.replace(policy, Utc::now(), state.version.unwrap_or(0));
        if new.is_empty() {
            inner.retention.remove(&number);
        } else {
            inner.retention.insert(number, new);
        }
        Ok(new)
    }

    async fn retention(&self, stream: &StreamId) -> Result<RetentionState, StoreError> {
        let inner = self.read();
        Ok(inner
            .streams
            .number(stream.as_str())
            .and_then(|n| inner.retention.get(&n).copied())
            .unwrap_or_default())
    }

    async fn scavenge(&self) -> Result<ScavengeReport, StoreError> {
        Ok(self.write().scavenge(Utc::now(), &self.id_hasher))
    }

    fn commits(&self) -> Option<CommitSignal> {
        // Counted first, then the head read under the lock: an append
        // either committed before that read (its head is set here) or
        // signals this receiver itself. Set without a change notification,
        // so the new receiver starts at the head.
        let receiver = self.commits.subscribe();
        let head = self.read().len as Position;
        self.commits.send_if_modified(|signalled| {
            *signalled = (*signalled).max(head);
            false
        });
        Some(receiver)
    }

    /// A read is a copy under the lock: reading ahead measured slower
    /// (docs/benchmarks.md, projection catch-up).
    fn reads_gain_from_read_ahead(&self) -> bool {
        false
    }
}
