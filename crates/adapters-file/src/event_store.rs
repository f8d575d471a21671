//! [`FileEventStore`]: the [`EventStore`] over the segment log. Appends go
//! to the writer thread; reads look up the index and read records at their
//! offsets on a blocking thread, never on the caller's task.

use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};

use async_trait::async_trait;
use chrono::DateTime;
use logbook_domain::{NewEvent, Payload, Position, RecordedEvent, StreamId, Version};
use logbook_ports::{
    AppendOutcome, CommitSignal, EventFilter, EventStore, ExpectedVersion, ReadDirection,
    StoreError,
};
use logbook_ports::{append, metadata};
use tokio::sync::{oneshot, watch};

use crate::blocking::blocking;
use crate::format;
use crate::index::{Index, SegmentRef};
use crate::record::{self, Record};
use crate::segment::RecordReader;
use crate::store::Core;
use crate::writer::{self, AppendRequest};

/// Largest batch accepted, in log bytes.
const MAX_BATCH_BYTES: u64 = 1 << 30;
/// Read window for a global-log read (records are contiguous).
const LOG_WINDOW: usize = 1 << 20;
/// Read window for a stream read (records may be scattered).
const STREAM_WINDOW: usize = 64 << 10;

/// What the writer, the readers and the store handles share.
#[derive(Debug)]
pub struct Shared {
    /// The store directory.
    pub dir: PathBuf,
    /// The index.
    pub index: RwLock<Index>,
    /// Signals the head after each commit.
    pub commits: watch::Sender<Position>,
}

impl Shared {
    /// The index, for reading.
    pub fn index(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The event store of a [`crate::FileStore`].
#[derive(Clone)]
pub struct FileEventStore {
    core: Arc<Core>,
}

impl std::fmt::Debug for FileEventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileEventStore")
            .field("dir", &self.core.shared.dir)
            .finish_non_exhaustive()
    }
}

impl FileEventStore {
    pub(crate) fn new(core: Arc<Core>) -> Self {
        Self { core }
    }

    /// Queues a batch (or, with `delete`, a tombstone) to the writer and
    /// waits for its outcome.
    async fn send(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        delete: bool,
    ) -> Result<AppendOutcome, StoreError> {
        let (metadata, bytes) = encode_metadata(&events)?;
        let frame_bytes = bytes + (stream.as_str().len() * events.len()) as u64;
        if frame_bytes > MAX_BATCH_BYTES {
            return Err(StoreError::InvalidEvent {
                index: 0,
                reason: format!(
                    "the batch takes {frame_bytes} bytes; at most {MAX_BATCH_BYTES} fit in one append"
                ),
            });
        }
        let writer = self.core.writer()?;
        let (reply, answer) = oneshot::channel();
        writer.send(AppendRequest {
            stream: stream.clone(),
            expected,
            events,
            metadata,
            frame_bytes,
            delete,
            reply,
        })?;
        answer.await.map_err(|_| writer::stopped())?
    }
}

/// One record to read: where it is and what the index says about it.
struct Target {
    position: Position,
    segment: usize,
    offset: u32,
    stream: StreamId,
    event_type: Arc<str>,
}

/// The segments a set of targets refers to, copied out of the index so the
/// lock is not held during file reads.
struct Plan {
    segments: Vec<SegmentRef>,
    targets: Vec<Target>,
}

impl Plan {
    fn new(index: &Index) -> Self {
        Self {
            segments: index.segments.clone(),
            targets: Vec::new(),
        }
    }

    fn add(&mut self, index: &Index, position: Position) {
        let entry = index.entry(position);
        let segment = self
            .segments
            .partition_point(|s| s.first_position <= position)
            .saturating_sub(1);
        self.targets.push(Target {
            position,
            segment,
            offset: entry.offset,
            stream: index.stream_id(entry.stream).clone(),
            event_type: Arc::clone(index.types.name(entry.event_type)),
        });
    }

    /// Reads every target, checking each record against the index.
    fn read(self, window: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut reader = RecordReader::new(window);
        let mut out = Vec::with_capacity(self.targets.len());
        for target in self.targets {
            let segment = &self.segments[target.segment];
            let offset = u64::from(target.offset);
            let record =
                reader.read(&segment.file, segment.first_position, &segment.path, offset)?;
            out.push(to_recorded(&record, target, segment, offset)?);
        }
        Ok(out)
    }
}

fn to_recorded(
    record: &Record<'_>,
    target: Target,
    segment: &SegmentRef,
    offset: u64,
) -> Result<RecordedEvent, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        location: format::location(&segment.path, offset),
        detail,
    };
    if record.position != target.position || record.stream != target.stream.as_str() {
        return Err(corrupt(format!(
            "the index expects position {} of {}, the record is position {} of {}",
            target.position, target.stream, record.position, record.stream
        )));
    }
    let metadata = metadata::decode(record.metadata)
        .map_err(|e| corrupt(format!("metadata is not valid: {e}")))?;
    Ok(RecordedEvent {
        id: record.id,
        stream: target.stream,
        version: record.version,
        position: record.position,
        event_type: target.event_type,
        schema_version: record.schema_version,
        payload: Payload::from_stored(record.payload.to_vec()),
        metadata,
        recorded_at: DateTime::from_timestamp_micros(record.recorded_at_micros)
            .ok_or_else(|| corrupt("timestamp out of range".into()))?,
    })
}

/// Each event's metadata as stored, and the bytes the batch's records take
/// without their stream ids, after checking each record's field sizes.
fn encode_metadata(events: &[NewEvent]) -> Result<(Vec<Vec<u8>>, u64), StoreError> {
    let all = metadata::encode(events)?;
    let mut bytes = 0u64;
    for (index, (event, metadata)) in events.iter().zip(&all).enumerate() {
        record::check_sizes(
            0,
            event.event_type.len(),
            metadata.len(),
            event.payload.len(),
        )
        .map_err(|e| StoreError::InvalidEvent {
            index,
            reason: e.to_string(),
        })?;
        bytes += record::frame_len_for(
            0,
            event.event_type.len(),
            metadata.len(),
            event.payload.len(),
        ) as u64;
    }
    Ok((all, bytes))
}

impl FileEventStore {
    /// On a store opened read-only, takes in another process's commits
    /// first (on a blocking thread); nothing on a store that writes.
    async fn catch_up(&self) -> Result<(), StoreError> {
        if !self.core.is_following() {
            return Ok(());
        }
        let core = Arc::clone(&self.core);
        blocking(move || core.catch_up()).await
    }
}

#[async_trait]
impl EventStore for FileEventStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        append::validate_batch(&events)?;
        self.send(stream, expected, events, false).await
    }

    async fn delete_stream(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
    ) -> Result<AppendOutcome, StoreError> {
        self.send(stream, expected, vec![append::tombstone()], true)
            .await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        direction: ReadDirection,
        from: Version,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let core = Arc::clone(&self.core);
        let stream = stream.clone();
        blocking(move || {
            core.catch_up()?;
            let shared = &core.shared;
            let plan = {
                let index = shared.index();
                let Some(number) = index.stream_number(stream.as_str()) else {
                    return Ok(Vec::new());
                };
                let positions = index.visible_positions(number);
                append::check_not_deleted(&stream, index.ends_deleted(positions))?;
                let mut plan = Plan::new(&index);
                for &position in direction.select(positions, from, limit) {
                    plan.add(&index, u64::from(position));
                }
                plan
            };
            plan.read(STREAM_WINDOW)
        })
        .await
    }

    async fn read_all(
        &self,
        from: Position,
        limit: usize,
        filter: &EventFilter,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let core = Arc::clone(&self.core);
        let filter = filter.clone();
        blocking(move || {
            core.catch_up()?;
            let shared = &core.shared;
            let plan = {
                let index = shared.index();
                let committed = index.committed();
                let mut plan = Plan::new(&index);
                // Per stream and per type, whether the filter lets it through
                // (0: not decided yet, 1: yes, 2: no).
                let mut stream_ok = vec![
                    0u8;
                    if filter.is_all() {
                        0
                    } else {
                        index.stream_count()
                    }
                ];
                let mut type_ok = vec![
                    0u8;
                    if filter.is_all() {
                        0
                    } else {
                        index.types.len()
                    }
                ];
                let mut position = from.max(1);
                while position <= committed && plan.targets.len() < limit {
                    let passes = filter.is_all() || {
                        let entry = index.entry(position);
                        let s = &mut stream_ok[entry.stream as usize];
                        if *s == 0 {
                            let name = index.stream_id(entry.stream).as_str();
                            *s = if filter
                                .stream_prefix
                                .as_deref()
                                .is_none_or(|prefix| name.starts_with(prefix))
                            {
                                1
                            } else {
                                2
                            };
                        }
                        let t = &mut type_ok[entry.event_type as usize];
                        if *t == 0 {
                            let name = index.types.name(entry.event_type);
                            *t = if filter.event_types.is_empty()
                                || filter.event_types.iter().any(|ty| **ty == **name)
                            {
                                1
                            } else {
                                2
                            };
                        }
                        *s == 1 && *t == 1
                    };
                    if passes {
                        plan.add(&index, position);
                    }
                    position += 1;
                }
                plan
            };
            plan.read(LOG_WINDOW)
        })
        .await
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<Option<Version>, StoreError> {
        self.catch_up().await?;
        let index = self.core.shared.index();
        let Some(number) = index.stream_number(stream.as_str()) else {
            return Ok(None);
        };
        let positions = index.visible_positions(number);
        append::check_not_deleted(stream, index.ends_deleted(positions))?;
        Ok((!positions.is_empty()).then_some(positions.len() as Version))
    }

    async fn head_position(&self) -> Result<Option<Position>, StoreError> {
        self.catch_up().await?;
        let committed = self.core.shared.index().committed();
        Ok((committed > 0).then_some(committed))
    }

    fn commits(&self) -> Option<CommitSignal> {
        Some(self.core.shared.commits.subscribe())
    }
}
