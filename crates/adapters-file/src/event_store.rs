//! [`FileEventStore`]: the [`EventStore`] over the segment log. Appends go
//! to the writer thread; reads look up the index and read records at their
//! offsets on a blocking thread, never on the caller's task.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use logbook_domain::{NewEvent, Payload, Position, RecordedEvent, StreamId, Version};
use logbook_ports::retention::{Cutoff, RetentionState, ScavengeReport, StreamRetention};
use logbook_ports::{
    AppendOutcome, CommitSignal, EventFilter, EventStore, ExpectedVersion, ReadDirection,
    StoreError,
};
use logbook_ports::{append, metadata};
use tokio::sync::{oneshot, watch};

use crate::blocking::blocking;
use crate::format;
use crate::index::{Entry, Index, SegmentRef};
use crate::record::{self, Record};
use crate::retention;
use crate::segment::{self, RecordReader};
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
            seal: false,
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

    fn add(&mut self, index: &Index, position: Position) -> Result<(), StoreError> {
        let entry = *index.entry(position)?;
        self.add_entry(index, position, &entry);
        Ok(())
    }

    /// As [`Plan::add`], with the entry at `position` already looked up.
    fn add_entry(&mut self, index: &Index, position: Position, entry: &Entry) {
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

    /// Reads every target, checking each record against the index, and
    /// keeps those `visible` lets through. A record a scavenge reclaimed
    /// that `visible` would show is corruption: retention never shows
    /// one again, so its policy must have been lost.
    fn read(
        self,
        window: usize,
        visible: impl Fn(&RecordedEvent) -> bool,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut reader = RecordReader::new(window);
        let mut out = Vec::with_capacity(self.targets.len());
        for target in self.targets {
            let segment = &self.segments[target.segment];
            let offset = u64::from(target.offset);
            let record =
                reader.read(&segment.file, segment.first_position, &segment.path, offset)?;
            let reclaimed = record.is_reclaimed();
            let event = to_recorded(&record, target, segment, offset)?;
            if !visible(&event) {
                continue;
            }
            if reclaimed {
                return Err(StoreError::Corrupt {
                    location: format::location(&segment.path, offset),
                    detail: format!(
                        "position {} of {} was reclaimed by a scavenge, yet its stream's retention does not hide it (is the retention file missing?)",
                        event.position, event.stream
                    ),
                });
            }
            out.push(event);
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

/// The cutoff of `stream` among `cutoffs` (keyed by stream number).
fn stream_cutoff(core: &Core, cutoffs: &HashMap<u32, Cutoff>, stream: &StreamId) -> Option<Cutoff> {
    let number = core.shared.index().stream_number(stream.as_str())?;
    cutoffs.get(&number).copied()
}

/// Reads `candidates` (positions, in the order to return them) until
/// `limit` are visible under `cutoff` or none are left: the ones its
/// version floor hides were left out by the caller, the ones its age hides
/// are known only once read.
fn read_visible(
    core: &Core,
    candidates: &[u32],
    limit: usize,
    cutoff: Option<&Cutoff>,
    window: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut out = Vec::new();
    let mut rest = candidates;
    while out.len() < limit && !rest.is_empty() {
        let (batch, tail) = rest.split_at((limit - out.len()).min(rest.len()));
        rest = tail;
        let plan = {
            let index = core.shared.index();
            let mut plan = Plan::new(&index);
            for &position in batch {
                plan.add(&index, u64::from(position))?;
            }
            plan
        };
        out.extend(plan.read(window, |e| {
            !cutoff.is_some_and(|cut| cut.hides(e.version, e.recorded_at))
        })?);
    }
    Ok(out)
}

/// Up to `limit` positions of the log from `from` on that pass `filter`
/// and are not below their stream's version cutoff, and the position after
/// the last one looked at.
fn select_log(
    index: &Index,
    from: Position,
    limit: usize,
    filter: &EventFilter,
    cutoffs: &HashMap<u32, Cutoff>,
) -> Result<(Plan, Position), StoreError> {
    let committed = index.committed();
    let mut plan = Plan::new(index);
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
    // The entries of one segment (or of the hot part) at a time.
    let mut run: &[Entry] = &[];
    while position <= committed && plan.targets.len() < limit {
        if run.is_empty() {
            run = index.entries_from(position)?;
        }
        let entry = run[0];
        run = &run[1..];
        let passes = filter.is_all() || {
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
        let kept = passes
            && match cutoffs.get(&entry.stream) {
                None => true,
                Some(cut) => index.version_at(position)? >= cut.min_version,
            };
        if kept {
            plan.add_entry(index, position, &entry);
        }
        position += 1;
    }
    Ok((plan, position))
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
            let (candidates, cutoff) = {
                let index = shared.index();
                let Some(number) = index.stream_number(stream.as_str()) else {
                    return Ok(Vec::new());
                };
                append::check_not_deleted(&stream, index.is_deleted(number, true))?;
                let positions = index.visible_positions(number)?;
                let cutoff = retention::cutoffs(&core, &index, Utc::now()).remove(&number);
                // Versions below the cutoff's are left out before reading;
                // from there on, index i is version skip + i + 1.
                let skip = cutoff.map_or(0, |cut| cut.min_version - 1);
                let skip = (skip as usize).min(positions.len());
                let from = match direction {
                    ReadDirection::Forward => from.saturating_sub(skip as u64).max(1),
                    ReadDirection::Backward => from.saturating_sub(skip as u64),
                };
                let window = if cutoff.is_some_and(|cut| cut.min_recorded_at.is_some()) {
                    usize::MAX
                } else {
                    limit
                };
                let range = direction.indexes((positions.len() - skip) as u64, from, window);
                let selected = positions.range(skip + range.start, skip + range.end);
                let candidates: Vec<u32> = match direction {
                    ReadDirection::Forward => selected.collect(),
                    ReadDirection::Backward => selected.rev().collect(),
                };
                (candidates, cutoff)
            };
            read_visible(&core, &candidates, limit, cutoff.as_ref(), STREAM_WINDOW)
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
            let now = Utc::now();
            let mut out = Vec::new();
            let mut next = from.max(1);
            // Hidden events leave a page short: select and read on until it
            // is full or the log ends, so a page is short only at the end.
            loop {
                let want = limit - out.len();
                let (plan, after, cutoffs) = {
                    let index = core.shared.index();
                    let cutoffs = retention::cutoffs(&core, &index, now);
                    let (plan, after) = select_log(&index, next, want, &filter, &cutoffs)?;
                    (plan, after, cutoffs)
                };
                let selected = plan.targets.len();
                out.extend(plan.read(LOG_WINDOW, |e| {
                    cutoffs.is_empty()
                        || !stream_cutoff(&core, &cutoffs, &e.stream)
                            .is_some_and(|cut| cut.hides(e.version, e.recorded_at))
                })?);
                if selected < want || out.len() == limit {
                    break;
                }
                next = after;
            }
            Ok(out)
        })
        .await
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<Option<Version>, StoreError> {
        self.catch_up().await?;
        let index = self.core.shared.index();
        let Some(number) = index.stream_number(stream.as_str()) else {
            return Ok(None);
        };
        append::check_not_deleted(stream, index.is_deleted(number, true))?;
        let len = index.visible_len(number);
        Ok((len > 0).then_some(len))
    }

    async fn head_position(&self) -> Result<Option<Position>, StoreError> {
        self.catch_up().await?;
        let committed = self.core.shared.index().committed();
        Ok((committed > 0).then_some(committed))
    }

    async fn set_retention(
        &self,
        stream: &StreamId,
        policy: StreamRetention,
    ) -> Result<RetentionState, StoreError> {
        self.core.check_writable()?;
        let core = Arc::clone(&self.core);
        let stream = stream.clone();
        blocking(move || {
            let mut retentions = core
                .retention
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            // The writer's view (every indexed event), so the floors kept
            // count an append that is being acknowledged right now.
            let state = {
                let index = core.shared.index();
                index.stream_state(index.stream_number(stream.as_str()))
            };
            append::check_not_deleted(&stream, state.deleted)?;
            let old = retentions.get(stream.as_str()).copied().unwrap_or_default();
            let new = old.replace(policy, Utc::now(), state.version.unwrap_or(0));
            let mut next = retentions.clone();
            if new.is_empty() {
                next.remove(stream.as_str());
            } else {
                next.insert(stream.as_str().to_owned(), new);
            }
            if next != *retentions {
                let path = core.shared.dir.join(format::RETENTION_FILE);
                segment::write_atomically(&path, &retention::encode(&next))?;
                *retentions = next;
            }
            Ok(new)
        })
        .await
    }

    async fn retention(&self, stream: &StreamId) -> Result<RetentionState, StoreError> {
        Ok(self
            .core
            .retention
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(stream.as_str())
            .copied()
            .unwrap_or_default())
    }

    async fn scavenge(&self) -> Result<ScavengeReport, StoreError> {
        // Everything written so far into sealed segments first: a scavenge
        // rewrites only those.
        let writer = self.core.writer()?;
        let (reply, answer) = oneshot::channel();
        writer.send(AppendRequest {
            stream: StreamId::new("$scavenge").expect("a valid stream id"),
            expected: ExpectedVersion::Any,
            events: Vec::new(),
            metadata: Vec::new(),
            frame_bytes: 0,
            delete: false,
            seal: true,
            reply,
        })?;
        answer.await.map_err(|_| writer::stopped())??;
        let core = Arc::clone(&self.core);
        blocking(move || retention::scavenge(&core)).await
    }

    fn commits(&self) -> Option<CommitSignal> {
        Some(self.core.shared.commits.subscribe())
    }
}
