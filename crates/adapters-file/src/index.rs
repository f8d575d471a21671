//! The in-memory index of the log: where each event's record is, which
//! stream and type it has (interned), each stream's positions, and every
//! event id.
//!
//! Two parts. The sealed segments an open took from their index sidecar's
//! summary are *cold* (`cold.rs`): of them the index knows, per stream, the
//! event count, last type and the segments it is in, and loads a segment's
//! records the first time a read, a scavenge or an id check needs them.
//! Everything after them (the segments the open scanned, and what the
//! writer appends) is *hot*: one 28-byte [`Entry`] per event, 4 bytes in
//! its stream's position list and about 10 bytes in the id table (a
//! position and 32 bits of the id's hash, so growing the table never reads
//! the entries back). A stream read or an append check never scans the log
//! files, but for the first use of a cold segment whose sidecar's records
//! cannot be used (that segment is read once).
//!
//! The id table holds the hot ids. The cold ids get a table of their own
//! the first time an append carries an id between the smallest and the
//! largest cold id (ids made by logbook are time-ordered, so fresh ones
//! are past them), checked for duplicates then; an id outside that range
//! cannot be a cold one.

use std::fs::File;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use logbook_domain::{EventId, Position, StreamId, Version};
use logbook_ports::StoreError;
use logbook_ports::append::{self, RecordedAt, StreamState};
use logbook_ports::interner::{Interner, StreamNames};

use crate::cold::{self, ColdSegment, LoadOnce, SegmentTable};
use crate::format;
use crate::ids::IdTable;
use crate::segment;
use crate::sidecar::{self, SidecarRecord, Summary};

/// Most events one store holds: positions are kept as `u32` in memory.
pub const MAX_EVENTS: u64 = u32::MAX as u64;

/// One recorded event, as the index knows it.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// The event id.
    pub id: EventId,
    /// Byte offset of its frame in its segment.
    pub offset: u32,
    /// Interned stream.
    pub stream: u32,
    /// Interned event type.
    pub event_type: u32,
}

/// One segment file, open for reading.
#[derive(Debug, Clone)]
pub struct SegmentRef {
    /// Position of its first event.
    pub first_position: Position,
    /// Its path.
    pub path: Arc<Path>,
    /// A read handle (positioned reads only, so it is shared).
    pub file: Arc<File>,
}

/// What the cold segments hold of one stream.
#[derive(Debug, Default)]
struct ColdStream {
    /// Its events in cold segments.
    count: u32,
    /// The type of the last of them.
    last_type: u32,
    /// The cold segments it is in, each with its local stream number there.
    segments: Vec<(u32, u32)>,
    /// Its cold positions, gathered on first use.
    positions: OnceLock<Box<[u32]>>,
}

/// The cold ids' own table, or the duplicate found building it: the
/// (location, detail) of the corruption, reported to every append that
/// needs them.
type ColdIds = Result<IdTable, (String, String)>;

/// A stream's positions in version order: its cold ones, then its hot ones.
#[derive(Debug, Clone, Copy)]
pub struct Positions<'a> {
    cold: &'a [u32],
    hot: &'a [u32],
}

impl<'a> Positions<'a> {
    /// How many.
    pub fn len(&self) -> usize {
        self.cold.len() + self.hot.len()
    }

    /// The positions of versions `start + 1..=end` (indexes `start..end`,
    /// clamped to the stream).
    pub fn range(&self, start: usize, end: usize) -> impl DoubleEndedIterator<Item = u32> + 'a {
        let (c, h) = (self.cold.len(), self.hot.len());
        let cold = &self.cold[start.min(c)..end.min(c).max(start.min(c))];
        let (hot_start, hot_end) = (start.saturating_sub(c).min(h), end.saturating_sub(c).min(h));
        let hot = &self.hot[hot_start..hot_end.max(hot_start)];
        cold.iter().chain(hot).copied()
    }
}

/// The whole index. Positions up to `committed` are visible to readers;
/// those after it are written (or being written) by the writer and not yet
/// acknowledged.
#[derive(Debug, Default)]
pub struct Index {
    /// Cold segments: positions `1..=cold_head`; cold segment `k` is
    /// `segments[k]`.
    cold: Vec<ColdSegment>,
    /// Per stream number (those the cold segments hold), its cold part.
    cold_streams: Vec<ColdStream>,
    cold_head: Position,
    /// The smallest and largest cold id.
    cold_id_range: Option<(EventId, EventId)>,
    /// The cold ids, indexed when an append first needs them (apart from
    /// the hot ones, so building them needs no write lock).
    cold_ids: LoadOnce<ColdIds>,
    /// True when a cold segment's sidecar found damaged on first use may
    /// be written again (the store is open for writing).
    repairs_sidecars: bool,
    /// Hot entries: positions `cold_head + 1..=head`.
    entries: Vec<Entry>,
    committed: Position,
    /// Segment files in position order.
    pub segments: Vec<SegmentRef>,
    /// Stream ids, interned; `Entry::stream` is a number of this.
    streams: StreamNames,
    /// Per stream number, the hot position of each of its events,
    /// ascending (after its cold ones).
    positions: Vec<Vec<u32>>,
    /// Interned event types.
    pub types: Interner,
    ids: IdTable,
}

/// The entry at `position` when it is in memory: hot, or in a loaded cold
/// table. (A free function, so it can borrow the parts it reads while the
/// id table is borrowed for writing.)
fn loaded_entry<'a>(
    cold: &'a [ColdSegment],
    cold_head: Position,
    entries: &'a [Entry],
    position: Position,
) -> Option<&'a Entry> {
    if position > cold_head {
        return entries.get((position - cold_head - 1) as usize);
    }
    let k = cold
        .partition_point(|c| c.first() <= position)
        .checked_sub(1)?;
    let segment = &cold[k];
    segment
        .loaded()?
        .entries
        .get((position - segment.first()) as usize)
}

impl Index {
    /// Position of the last event indexed (committed or not); 0 when none.
    pub fn head(&self) -> Position {
        self.cold_head + self.entries.len() as Position
    }

    /// Position of the last event readers may see.
    pub fn committed(&self) -> Position {
        self.committed
    }

    /// Makes everything indexed so far visible.
    pub fn commit(&mut self) {
        self.committed = self.head();
    }

    /// Lets a cold segment's sidecar found damaged on first use be written
    /// again from the segment (a store open for writing).
    pub fn repair_sidecars(&mut self) {
        self.repairs_sidecars = true;
    }

    /// Number of cold segments (the first segments of
    /// [`Index::segments`]).
    pub fn cold_segments(&self) -> usize {
        self.cold.len()
    }

    /// True when the segment last pushed to [`Index::segments`] may be
    /// taken as cold: every segment before it is cold.
    pub fn takes_cold(&self) -> bool {
        self.entries.is_empty() && self.cold.len() + 1 == self.segments.len()
    }

    /// The entry at `position` (1-based, at most [`Index::head`]), loading
    /// its cold segment's records on first use.
    ///
    /// # Errors
    /// What loading a cold segment returns ([`Index::cold_table`]).
    pub fn entry(&self, position: Position) -> Result<&Entry, StoreError> {
        if position > self.cold_head {
            return Ok(&self.entries[(position - self.cold_head - 1) as usize]);
        }
        let k = self.cold_segment_of(position);
        let table = self.cold_table(k)?;
        Ok(&table.entries[(position - self.cold[k].first()) as usize])
    }

    /// The entries from `position` (at most [`Index::head`]) to the end
    /// of its cold segment, or of the hot part: a run to walk without
    /// looking each one up.
    ///
    /// # Errors
    /// What loading a cold segment returns.
    pub fn entries_from(&self, position: Position) -> Result<&[Entry], StoreError> {
        if position > self.cold_head {
            return Ok(&self.entries[(position - self.cold_head - 1) as usize..]);
        }
        let k = self.cold_segment_of(position);
        let table = self.cold_table(k)?;
        Ok(&table.entries[(position - self.cold[k].first()) as usize..])
    }

    fn hot_entry(&self, position: Position) -> &Entry {
        &self.entries[(position - self.cold_head - 1) as usize]
    }

    /// The cold segment holding `position` (from 1 to the cold head).
    fn cold_segment_of(&self, position: Position) -> usize {
        self.cold.partition_point(|c| c.first() <= position) - 1
    }

    /// Cold segment `k`'s records, loaded on first use: from its sidecar,
    /// or, when the sidecar's records cannot be used (damaged, replaced or
    /// removed since the open), from the segment itself; then, in a store
    /// open for writing, its sidecar is written again.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] naming the segment and offset when the
    /// segment itself is damaged or disagrees with the summary the store
    /// was opened with; [`StoreError::Io`].
    fn cold_table(&self, k: usize) -> Result<&SegmentTable, StoreError> {
        self.cold[k].table(|cold| {
            let segment = &self.segments[k];
            let from_sidecar = sidecar::read_records(&segment.path, &cold.facts)
            .and_then(|bytes| cold::build_table(cold, sidecar::records(&bytes)));
            let reason = match from_sidecar {
                Ok(table) => return Ok(table),
                Err(reason) => reason,
            };
            tracing::warn!(
                segment = %segment.path.display(),
                "the records of the segment's index sidecar are not used ({reason}): reading the segment"
            );
            let stream_names: Vec<&str> = cold
                .streams
                .iter()
                .map(|&s| self.stream_id(s).as_str())
                .collect();
            let type_names: Vec<&str> = cold.types.iter().map(|&t| &**self.types.name(t)).collect();
            let table =
                cold::scan_table(cold, &segment.file, &segment.path, &stream_names, &type_names)?;
            if self.repairs_sidecars {
                let records = table.entries.iter().zip(&table.versions).map(|(e, &version)| {
                    SidecarRecord {
                        id: e.id,
                        offset: e.offset,
                        stream: self.stream_id(e.stream).as_str(),
                        event_type: self.types.name(e.event_type),
                        version,
                    }
                });
                let facts = &cold.facts;
                let bytes = sidecar::encode(facts.first, facts.segment_len, facts.last_crc, records);
                if let Err(e) =
                    segment::write_atomically(&sidecar::path_of(&segment.path), &bytes)
                {
                    tracing::warn!(
                        segment = %segment.path.display(),
                        "the index sidecar could not be written again: {e}"
                    );
                }
            }
            Ok(table)
        })
    }

    /// Moves the record at `position` to `offset` of its segment (after a
    /// scavenge rewrote the segment).
    ///
    /// # Errors
    /// What loading a cold segment returns.
    pub fn set_offset(&mut self, position: Position, offset: u32) -> Result<(), StoreError> {
        if position > self.cold_head {
            self.entries[(position - self.cold_head - 1) as usize].offset = offset;
            return Ok(());
        }
        let k = self.cold_segment_of(position);
        self.cold_table(k)?;
        let first = self.cold[k].first();
        let table = self.cold[k].loaded_mut().expect("loaded just now");
        table.entries[(position - first) as usize].offset = offset;
        Ok(())
    }

    /// Number of streams.
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// The id of the stream numbered `i`.
    pub fn stream_id(&self, i: u32) -> &StreamId {
        self.streams.name(i)
    }

    /// The number of a stream, if it has ever been indexed.
    pub fn stream_number(&self, name: &str) -> Option<u32> {
        self.streams.number(name)
    }

    /// The number of `name`'s stream, adding the stream if new.
    ///
    /// # Errors
    /// The reason `name` is not a valid stream id (only for a new one).
    pub fn intern_stream(&mut self, name: &str) -> Result<u32, String> {
        match self.streams.number(name) {
            Some(i) => Ok(i),
            None => Ok(self.intern_stream_id(&StreamId::new(name).map_err(|e| e.to_string())?)),
        }
    }

    /// As [`Index::intern_stream`] for an already valid id.
    pub fn intern_stream_id(&mut self, id: &StreamId) -> u32 {
        let i = self.streams.intern_key(id);
        if i as usize == self.positions.len() {
            self.positions.push(Vec::new());
        }
        i
    }

    fn cold_count(&self, i: u32) -> u64 {
        self.cold_streams
            .get(i as usize)
            .map_or(0, |c| u64::from(c.count))
    }

    /// The hot positions of stream `i` that readers may see.
    fn visible_hot(&self, i: u32) -> &[u32] {
        let positions = &self.positions[i as usize];
        let committed = self.committed;
        let unseen = positions
            .iter()
            .rev()
            .take_while(|&&p| Position::from(p) > committed)
            .count();
        &positions[..positions.len() - unseen]
    }

    /// Stream `i`'s cold positions, gathered on first use.
    fn cold_positions(&self, i: u32) -> Result<&[u32], StoreError> {
        let Some(stream) = self.cold_streams.get(i as usize).filter(|c| c.count > 0) else {
            return Ok(&[]);
        };
        if let Some(positions) = stream.positions.get() {
            return Ok(positions);
        }
        let mut all = Vec::with_capacity(stream.count as usize);
        for &(k, local) in &stream.segments {
            all.extend_from_slice(self.cold_table(k as usize)?.stream_positions(local));
        }
        Ok(stream.positions.get_or_init(|| all.into_boxed_slice()))
    }

    /// Positions of stream `i` that readers may see.
    ///
    /// # Errors
    /// What loading a cold segment returns.
    pub fn visible_positions(&self, i: u32) -> Result<Positions<'_>, StoreError> {
        Ok(Positions {
            cold: self.cold_positions(i)?,
            hot: self.visible_hot(i),
        })
    }

    /// The number of events of stream `i`, counting every indexed one.
    pub fn stream_len(&self, i: u32) -> u64 {
        self.cold_count(i) + self.positions[i as usize].len() as u64
    }

    /// The number of events of stream `i` readers may see.
    pub fn visible_len(&self, i: u32) -> u64 {
        self.cold_count(i) + self.visible_hot(i).len() as u64
    }

    /// True when stream `i`'s last event (its last visible one, with
    /// `visible`) is a tombstone: the stream is deleted.
    pub fn is_deleted(&self, i: u32, visible: bool) -> bool {
        let hot = if visible {
            self.visible_hot(i)
        } else {
            &self.positions[i as usize]
        };
        let last_type = match hot.last() {
            Some(&p) => Some(self.hot_entry(Position::from(p)).event_type),
            None => self
                .cold_streams
                .get(i as usize)
                .filter(|c| c.count > 0)
                .map(|c| c.last_type),
        };
        last_type.is_some_and(|t| append::is_tombstone(self.types.name(t)))
    }

    /// The version of stream `i` and whether it is deleted, counting every
    /// indexed event (the writer's view); a stream never indexed
    /// (`None`) has neither.
    pub fn stream_state(&self, i: Option<u32>) -> StreamState {
        let Some(i) = i else {
            return StreamState {
                version: None,
                deleted: false,
            };
        };
        let len = self.stream_len(i);
        StreamState {
            version: (len > 0).then_some(len),
            deleted: self.is_deleted(i, false),
        }
    }

    /// Where `id` is recorded, seen from an append to stream `i`. Finds a
    /// cold id only once [`Index::index_cold_ids_for`] has indexed them.
    ///
    /// # Errors
    /// What loading a cold segment returns.
    pub fn locate(&self, i: Option<u32>, id: &EventId) -> Result<Option<RecordedAt>, StoreError> {
        let Some(position) = self.find_id(id) else {
            return Ok(None);
        };
        let owner = self.entry(position)?.stream;
        Ok(Some(if Some(owner) == i {
            RecordedAt::ThisStream {
                version: self.version_at(position)?,
                position,
            }
        } else {
            RecordedAt::OtherStream(self.stream_id(owner).clone())
        }))
    }

    /// The position holding `id` among the hot ids and, once an append
    /// needed them ([`Index::index_cold_ids_for`]), the cold ones.
    pub fn find_id(&self, id: &EventId) -> Option<Position> {
        let (cold, cold_head, entries) = (&self.cold, self.cold_head, &self.entries);
        let id_of = |position| loaded_entry(cold, cold_head, entries, position).map(|e| e.id);
        self.ids.find(id, id_of).or_else(|| {
            let (min, max) = self.cold_id_range?;
            if !(min..=max).contains(id) {
                return None;
            }
            self.cold_ids.get()?.as_ref().ok()?.find(id, id_of)
        })
    }

    /// Before an append checks `ids`: when one of them lies between the
    /// smallest and the largest cold id, every cold segment's records are
    /// loaded and their ids indexed in a table of their own (once), so
    /// [`Index::locate`] finds them; ids outside that range cannot be cold
    /// ones. The writer calls it under the read lock before it takes the
    /// write lock, so readers are not held up meanwhile.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] naming the record when two events of the
    /// log have one id (then for every later append that needs the cold
    /// ids); what loading a cold segment returns.
    pub fn index_cold_ids_for<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a EventId>,
    ) -> Result<(), StoreError> {
        let Some((min, max)) = self.cold_id_range else {
            return Ok(());
        };
        if self.cold_ids.get().is_some_and(Result::is_ok)
            || !ids.into_iter().any(|id| (min..=max).contains(id))
        {
            return Ok(());
        }
        let built = self.cold_ids.get_or_load(|| {
            for k in 0..self.cold.len() {
                self.cold_table(k)?;
            }
            let (cold, cold_head, entries) = (&self.cold, self.cold_head, &self.entries);
            let id_of = |position| loaded_entry(cold, cold_head, entries, position).map(|e| e.id);
            let mut table = IdTable::default();
            let mut duplicate = table
                .index_range(1, cold_head, |p| {
                    id_of(p).expect("every cold table is loaded")
                })
                .err();
            // A hot id may repeat a cold one: the hot one is the later.
            for position in cold_head + 1..=self.head() {
                let id = self.hot_entry(position).id;
                if let Some(earlier) = table.find(&id, id_of)
                    && duplicate.is_none_or(|(later, _)| position < later)
                {
                    duplicate = Some((position, earlier));
                }
            }
            Ok::<_, StoreError>(match duplicate {
                None => Ok(table),
                Some((later, earlier)) => match self.duplicate(later, earlier) {
                    StoreError::Corrupt { location, detail } => Err((location, detail)),
                    other => return Err(other),
                },
            })
        })?;
        match built {
            Ok(_) => Ok(()),
            Err((location, detail)) => Err(StoreError::Corrupt {
                location: location.clone(),
                detail: detail.clone(),
            }),
        }
    }

    /// Where the record at `position` is: its segment file and offset.
    ///
    /// # Errors
    /// What loading a cold segment returns.
    pub fn location(&self, position: Position) -> Result<(&Path, u64), StoreError> {
        let segment = &self.segments[self
            .segments
            .partition_point(|s| s.first_position <= position)
            - 1];
        Ok((&segment.path, u64::from(self.entry(position)?.offset)))
    }

    /// The corruption of a record at `later` whose id is also at `earlier`.
    pub fn duplicate(&self, later: Position, earlier: Position) -> StoreError {
        match self.location(later) {
            Ok((path, offset)) => StoreError::Corrupt {
                location: format::location(path, offset),
                detail: format!(
                    "event id {} is also at position {earlier}",
                    self.entry(later)
                        .map(|e| e.id.to_string())
                        .unwrap_or_default()
                ),
            },
            Err(error) => error,
        }
    }

    /// The version of the event at `position` in its stream.
    ///
    /// # Errors
    /// What loading a cold segment returns.
    pub fn version_at(&self, position: Position) -> Result<Version, StoreError> {
        if position <= self.cold_head {
            let k = self.cold_segment_of(position);
            let table = self.cold_table(k)?;
            return Ok(Version::from(
                table.versions[(position - self.cold[k].first()) as usize],
            ));
        }
        let entry = self.hot_entry(position);
        let hot = &self.positions[entry.stream as usize];
        Ok(self.cold_count(entry.stream)
            + hot.partition_point(|&p| Position::from(p) < position) as Version
            + 1)
    }

    /// Takes a sealed segment (the next one: the index has no hot events)
    /// as cold, from its sidecar's summary.
    ///
    /// # Errors
    /// Why the summary does not continue the index, in one line; the index
    /// is then unchanged.
    pub fn add_cold(&mut self, summary: Summary) -> Result<(), String> {
        if !self.takes_cold() {
            return Err("a segment before it was scanned".into());
        }
        self.check_summary(&summary)?;
        let k = self.cold.len() as u32;
        let types: Box<[u32]> = summary.types.iter().map(|t| self.types.intern(t)).collect();
        let mut streams = Vec::with_capacity(summary.streams.len());
        let mut parts = Vec::with_capacity(summary.streams.len());
        for (local, (id, part)) in summary.streams.into_iter().enumerate() {
            let i = self.intern_stream_id(&id);
            if self.cold_streams.len() <= i as usize {
                self.cold_streams
                    .resize_with(i as usize + 1, ColdStream::default);
            }
            let stream = &mut self.cold_streams[i as usize];
            stream.count += part.count;
            stream.last_type = types[part.last_type as usize];
            stream.segments.push((k, local as u32));
            streams.push(i);
            parts.push(part);
        }
        let facts = summary.facts;
        if let Some((min, max)) = facts.id_range {
            self.cold_id_range = Some(match self.cold_id_range {
                Some((a, b)) => (a.min(min), b.max(max)),
                None => (min, max),
            });
        }
        self.cold_head += u64::from(facts.count);
        self.cold.push(ColdSegment::new(
            facts,
            streams.into_boxed_slice(),
            parts.into_boxed_slice(),
            types,
        ));
        Ok(())
    }

    /// Takes a sealed segment into the hot part from its sidecar's summary
    /// and records (their checksum checked), as a scan would (ids not
    /// indexed: the open builds the id table at the end).
    ///
    /// # Errors
    /// Why the sidecar cannot be used, in one line; the index is then
    /// unchanged.
    pub fn add_hot(&mut self, summary: &Summary, records: &[u8]) -> Result<(), String> {
        self.check_summary(summary)?;
        // Checked with local numbers first, so nothing is interned for a
        // sidecar that is then not used.
        let local = ColdSegment::new(
            summary.facts,
            (0..summary.streams.len() as u32).collect(),
            summary.streams.iter().map(|(_, part)| *part).collect(),
            (0..summary.types.len() as u32).collect(),
        );
        let table = cold::build_table(&local, sidecar::records(records))?;
        let streams: Vec<u32> = summary
            .streams
            .iter()
            .map(|(id, _)| self.intern_stream_id(id))
            .collect();
        let types: Vec<u32> = summary.types.iter().map(|t| self.types.intern(t)).collect();
        self.reserve(table.entries.len());
        for entry in table.entries.iter() {
            self.push_unindexed(Entry {
                stream: streams[entry.stream as usize],
                event_type: types[entry.event_type as usize],
                ..*entry
            });
        }
        Ok(())
    }

    /// Checks that a summary continues the index: it starts at the next
    /// position, names each stream once, and each stream's version before
    /// it is the stream's length so far.
    fn check_summary(&self, summary: &Summary) -> Result<(), String> {
        if summary.facts.first != self.head() + 1 {
            return Err(format!(
                "it starts at position {}, the log so far ends at {}",
                summary.facts.first,
                self.head()
            ));
        }
        let mut seen = std::collections::HashSet::with_capacity(summary.streams.len());
        for (id, part) in &summary.streams {
            if !seen.insert(id.as_str()) {
                return Err(format!("it names stream {id} twice"));
            }
            let len = self
                .stream_number(id.as_str())
                .map_or(0, |i| self.stream_len(i));
            if u64::from(part.version_before) != len {
                return Err(format!(
                    "stream {id} continues from version {}, the stream is at {len}",
                    part.version_before
                ));
            }
        }
        Ok(())
    }

    /// Adds the next event. Returns its position and its stream version.
    ///
    /// # Panics
    /// Past [`MAX_EVENTS`]: callers check [`Index::head`] first.
    pub fn push(&mut self, entry: Entry) -> (Position, Version) {
        let (position, version) = self.push_unindexed(entry);
        self.ids.insert_unique(entry.id, position as u32);
        (position, version)
    }

    /// Adds the next event without indexing its id: for the open scan,
    /// which indexes every id at the end with [`Index::build_ids`].
    pub fn push_unindexed(&mut self, entry: Entry) -> (Position, Version) {
        let position = u32::try_from(self.head() + 1).expect("checked against MAX_EVENTS");
        self.entries.push(entry);
        let cold = self.cold_count(entry.stream);
        let positions = &mut self.positions[entry.stream as usize];
        positions.push(position);
        (Position::from(position), cold + positions.len() as Version)
    }

    /// Indexes the id of every hot event (the id table must be empty, as
    /// after [`Index::push_unindexed`] only).
    ///
    /// # Errors
    /// The first duplicate in log order: its position and the earlier
    /// position holding the same id. Every other id is indexed.
    pub fn build_ids(&mut self) -> Result<(), (Position, Position)> {
        debug_assert!(self.ids.is_empty());
        self.index_ids(self.cold_head + 1, self.head())
    }

    /// Indexes the ids of positions `first..=last`, whose entries are in
    /// memory ([`IdTable::index_range`]).
    fn index_ids(&mut self, first: Position, last: Position) -> Result<(), (Position, Position)> {
        let Self {
            cold,
            cold_head,
            entries,
            ids,
            ..
        } = self;
        ids.index_range(first, last, |p| {
            loaded_entry(cold, *cold_head, entries, p)
                .expect("every entry indexed is in memory")
                .id
        })
    }

    /// Reserves room for `additional` more events, so a scan does not
    /// grow its tables as it goes.
    pub fn reserve(&mut self, additional: usize) {
        self.entries.reserve(additional);
        if self.ids.is_empty() {
            // The open scan: ids are indexed at the end, by build_ids.
            return;
        }
        self.ids.reserve(additional);
    }

    /// Forgets every hot event after `head` (a write that failed, or an
    /// incomplete batch found on open). Cold events are never forgotten.
    pub fn truncate(&mut self, head: Position) {
        debug_assert!(head >= self.cold_head, "cold events are never truncated");
        let head = head.max(self.cold_head);
        while self.head() > head {
            let position = self.head();
            let entry = *self.hot_entry(position);
            self.ids.remove(entry.id, position);
            self.positions[entry.stream as usize].pop();
            self.entries.pop();
        }
        self.committed = self.committed.min(head);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: &mut Index, stream: &str) -> Entry {
        Entry {
            id: EventId::new(),
            offset: 0,
            stream: index.intern_stream(stream).unwrap(),
            event_type: index.types.intern("Happened"),
        }
    }

    #[test]
    fn pushes_find_and_truncate() {
        let mut index = Index::default();
        let a = entry(&mut index, "A-1");
        let b = entry(&mut index, "B-1");
        let c = entry(&mut index, "A-1");
        assert_eq!(index.push(a), (1, 1));
        assert_eq!(index.push(b), (2, 1));
        index.commit();
        assert_eq!(index.push(c), (3, 2));
        assert_eq!(index.find_id(&c.id), Some(3));
        assert_eq!(index.version_at(3).unwrap(), 2);
        let visible = index.visible_positions(a.stream).unwrap();
        assert_eq!(visible.range(0, visible.len()).collect::<Vec<_>>(), [1]);
        index.truncate(2);
        assert_eq!(index.find_id(&c.id), None);
        assert_eq!(index.find_id(&a.id), Some(1));
        assert_eq!(index.stream_state(Some(a.stream)).version, Some(1));
    }

    #[test]
    fn ids_stay_found_while_the_table_grows_through_many_rehashes() {
        // Given 20,000 events pushed one by one (the table grows from empty)
        let mut index = Index::default();
        let entries: Vec<Entry> = (0..20_000)
            .map(|i| entry(&mut index, if i % 2 == 0 { "A-1" } else { "B-1" }))
            .collect();
        for &e in &entries {
            index.push(e);
        }
        // Then every id is at its position, and an unknown id is not found
        for (i, e) in entries.iter().enumerate() {
            assert_eq!(index.find_id(&e.id), Some(i as u64 + 1));
        }
        assert_eq!(index.find_id(&EventId::new()), None);
        // And after truncating, only the dropped ids are gone
        index.truncate(10_000);
        assert_eq!(index.find_id(&entries[9_999].id), Some(10_000));
        assert_eq!(index.find_id(&entries[10_000].id), None);
    }

    #[test]
    fn built_ids_find_every_event_and_the_first_duplicate_in_log_order() {
        let mut index = Index::default();
        let mut entries: Vec<Entry> = (0..5000).map(|_| entry(&mut index, "A-1")).collect();
        for &e in &entries {
            index.push_unindexed(e);
        }
        index.build_ids().unwrap();
        for (i, e) in entries.iter().enumerate() {
            assert_eq!(index.find_id(&e.id), Some(i as u64 + 1));
        }
        // Three copies of one id (at 3000, 1000 and 4000) and two of
        // another (at 2500 and 4500): the first duplicate is 3000.
        let mut index = Index::default();
        entries[2999].id = entries[999].id;
        entries[3999].id = entries[999].id;
        entries[4499].id = entries[2499].id;
        let stream = index.intern_stream("A-1").unwrap();
        for e in entries {
            index.push_unindexed(Entry { stream, ..e });
        }
        assert_eq!(index.build_ids(), Err((3000, 1000)));
    }
}
