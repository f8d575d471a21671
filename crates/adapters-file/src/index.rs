//! The in-memory index of the log: where each event's record is, which
//! stream and type it has (interned), each stream's positions, and every
//! event id. Built by scanning the segments on open (or loaded from the
//! sidecar), then kept up to date by the writer.
//!
//! Per event it keeps one 28-byte [`Entry`], 4 bytes in its stream's
//! position list and about 10 bytes in the id table (a position and 32 bits
//! of the id's hash, so growing the table never reads the entries back): a
//! stream read or an append check never touches the log files.

use std::fs::File;
use std::hash::{BuildHasher, RandomState};
use std::path::Path;
use std::sync::Arc;

use hashbrown::HashTable;
use logbook_domain::{EventId, Position, StreamId, Version};
use logbook_ports::append::{self, RecordedAt, StreamState};
use logbook_ports::interner::{Interner, StreamNames};

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

/// The whole index. Positions up to `committed` are visible to readers;
/// those after it are written (or being written) by the writer and not yet
/// acknowledged.
#[derive(Debug, Default)]
pub struct Index {
    entries: Vec<Entry>,
    committed: Position,
    /// Segment files in position order.
    pub segments: Vec<SegmentRef>,
    /// Stream ids, interned; `Entry::stream` is a number of this.
    streams: StreamNames,
    /// Per stream number, the position of each of its events (index =
    /// version - 1), ascending.
    positions: Vec<Vec<u32>>,
    /// Interned event types.
    pub types: Interner,
    ids: HashTable<IdSlot>,
    hasher: IdHasher,
}

/// One id in the id table: where the event is, and 32 bits of its id's
/// hash. The table's hash is widened from those bits ([`widen`]), so a
/// rehash while the table grows reads the table only, not one entry per id
/// (a cache miss each in a table of millions), and a probe compares ids
/// only when the 32 bits match.
#[derive(Debug, Clone, Copy)]
struct IdSlot {
    position: u32,
    hash: u32,
}

impl IdSlot {
    fn table_hash(self) -> u64 {
        widen(self.hash)
    }
}

/// The table's 64-bit hash of a 32-bit id hash: the bits themselves pick
/// the bucket (the low bits), and a multiple of them fills the high bits,
/// from which the table takes its 7-bit tags, so tags stay independent of
/// the bucket.
fn widen(hash: u32) -> u64 {
    u64::from(hash) | (u64::from(hash.wrapping_mul(0x9E37_79B9)) << 32)
}

/// Hashes event ids for the id table: a folded multiply of the id's two
/// halves with per-process random seeds (as `foldhash` does). Ids are
/// mostly random bits already; the seeds keep crafted ids from aiming at
/// one bucket. Several times cheaper than SipHash, which dominated the
/// open scan.
#[derive(Debug, Clone, Copy)]
struct IdHasher {
    seeds: [u64; 3],
}

impl Default for IdHasher {
    fn default() -> Self {
        let state = RandomState::new();
        Self {
            seeds: [
                state.hash_one(0u8) | 1,
                state.hash_one(1u8) | 1,
                state.hash_one(2u8) | 1,
            ],
        }
    }
}

fn fold(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

impl IdHasher {
    /// The 32 bits of `id`'s hash the table keeps.
    fn hash_one(&self, id: EventId) -> u32 {
        let bytes = id.as_uuid().as_bytes();
        let lo = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
        let hi = u64::from_le_bytes(bytes[8..].try_into().expect("8 bytes"));
        fold(fold(lo ^ self.seeds[0], hi ^ self.seeds[1]), self.seeds[2]) as u32
    }
}

impl Index {
    /// Position of the last event indexed (committed or not); 0 when none.
    pub fn head(&self) -> Position {
        self.entries.len() as Position
    }

    /// Position of the last event readers may see.
    pub fn committed(&self) -> Position {
        self.committed
    }

    /// Makes everything indexed so far visible.
    pub fn commit(&mut self) {
        self.committed = self.head();
    }

    /// The entry at `position` (1-based, at most [`Index::head`]).
    pub fn entry(&self, position: Position) -> &Entry {
        &self.entries[(position - 1) as usize]
    }

    /// Moves the record at `position` to `offset` of its segment (after a
    /// scavenge rewrote the segment).
    pub fn set_offset(&mut self, position: Position, offset: u32) {
        self.entries[(position - 1) as usize].offset = offset;
    }

    /// Number of streams.
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// The id of the stream numbered `i`.
    pub fn stream_id(&self, i: u32) -> &StreamId {
        self.streams.name(i)
    }

    /// Every indexed position of the stream numbered `i` (committed or
    /// not), in version order.
    pub fn positions(&self, i: u32) -> &[u32] {
        &self.positions[i as usize]
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

    /// Positions of stream `i` that readers may see.
    pub fn visible_positions(&self, i: u32) -> &[u32] {
        let positions = &self.positions[i as usize];
        let committed = self.committed;
        let visible = positions
            .iter()
            .rev()
            .take_while(|&&p| Position::from(p) > committed)
            .count();
        &positions[..positions.len() - visible]
    }

    /// The version of stream `i` and whether it is deleted, counting every
    /// indexed event (the writer's view); a stream never indexed
    /// (`None`) has neither.
    pub fn stream_state(&self, i: Option<u32>) -> StreamState {
        let positions = i.map_or(&[][..], |i| self.positions(i));
        StreamState {
            version: (!positions.is_empty()).then_some(positions.len() as Version),
            deleted: self.ends_deleted(positions),
        }
    }

    /// Where `id` is recorded, seen from an append to stream `i`.
    pub fn locate(&self, i: Option<u32>, id: &EventId) -> Option<RecordedAt> {
        let position = self.find_id(id)?;
        let owner = self.entry(position).stream;
        Some(if Some(owner) == i {
            RecordedAt::ThisStream {
                version: self.version_at(position),
                position,
            }
        } else {
            RecordedAt::OtherStream(self.stream_id(owner).clone())
        })
    }

    /// The position holding `id`, if any.
    pub fn find_id(&self, id: &EventId) -> Option<Position> {
        let hash = self.hasher.hash_one(*id);
        let entries = &self.entries;
        self.ids
            .find(widen(hash), |slot| {
                slot.hash == hash && entries[(slot.position - 1) as usize].id == *id
            })
            .map(|slot| Position::from(slot.position))
    }

    /// True when the last of `positions` (a stream's, all or only the
    /// visible ones) is a tombstone: the stream is deleted.
    pub fn ends_deleted(&self, positions: &[u32]) -> bool {
        positions.last().is_some_and(|&p| {
            append::is_tombstone(self.types.name(self.entry(Position::from(p)).event_type))
        })
    }

    /// The version of the event at `position` in its stream.
    pub fn version_at(&self, position: Position) -> Version {
        let entry = self.entry(position);
        let positions = &self.positions[entry.stream as usize];
        positions.partition_point(|&p| Position::from(p) < position) as Version + 1
    }

    /// Adds the next event. Returns its position and its stream version.
    ///
    /// # Panics
    /// Past [`MAX_EVENTS`]: callers check [`Index::head`] first.
    pub fn push(&mut self, entry: Entry) -> (Position, Version) {
        let position = u32::try_from(self.entries.len() + 1).expect("checked against MAX_EVENTS");
        self.entries.push(entry);
        let hash = self.hasher.hash_one(entry.id);
        self.ids
            .insert_unique(widen(hash), IdSlot { position, hash }, |slot| {
                slot.table_hash()
            });
        let positions = &mut self.positions[entry.stream as usize];
        positions.push(position);
        (Position::from(position), positions.len() as Version)
    }

    /// Adds the next event without indexing its id: for the open scan,
    /// which indexes every id at the end with [`Index::build_ids`].
    pub fn push_unindexed(&mut self, entry: Entry) -> (Position, Version) {
        let position = u32::try_from(self.entries.len() + 1).expect("checked against MAX_EVENTS");
        self.entries.push(entry);
        let positions = &mut self.positions[entry.stream as usize];
        positions.push(position);
        (Position::from(position), positions.len() as Version)
    }

    /// Indexes the id of every event (the id table must be empty, as after
    /// [`Index::push_unindexed`] only). Inserting 10 million ids in log
    /// order costs a cache miss or two each, in a table of ~100 MB; so the
    /// ids are first grouped by the part of their hash that picks the
    /// table region, and inserted region by region, where the table's
    /// memory stays in cache.
    ///
    /// # Errors
    /// The first duplicate in log order: its position and the earlier
    /// position holding the same id. Every other id is indexed.
    pub fn build_ids(&mut self) -> Result<(), (Position, Position)> {
        const PART_BITS: u32 = 8;
        debug_assert!(self.ids.is_empty());
        let n = self.entries.len();
        if n == 0 {
            return Ok(());
        }
        let (entries, hasher) = (&self.entries, &self.hasher);
        self.ids.reserve(n, |slot| slot.table_hash());
        // The table's buckets are picked by the hash's low bits; group by
        // the top PART_BITS of those.
        let buckets = self
            .ids
            .capacity()
            .max(1)
            .next_power_of_two()
            .max(n.next_power_of_two());
        let shift = buckets.trailing_zeros().saturating_sub(PART_BITS);
        let part = |hash: u64| ((hash >> shift) as usize) & ((1 << PART_BITS) - 1);
        let mut starts = vec![0usize; (1 << PART_BITS) + 1];
        for entry in entries {
            starts[part(widen(hasher.hash_one(entry.id))) + 1] += 1;
        }
        for i in 1..starts.len() {
            starts[i] += starts[i - 1];
        }
        let mut grouped = vec![(0u32, 0u32); n];
        for (i, entry) in entries.iter().enumerate() {
            let hash = hasher.hash_one(entry.id);
            let slot = &mut starts[part(widen(hash))];
            grouped[*slot] = (hash, i as u32 + 1);
            *slot += 1;
        }
        let mut first_duplicate: Option<(Position, Position)> = None;
        for (hash, position) in grouped {
            // The ids are read only on a hash match: reading every one would
            // be a cache miss per insert again.
            let id = |p: u32| entries[(p - 1) as usize].id;
            match self.ids.entry(
                widen(hash),
                |slot| slot.hash == hash && id(slot.position) == id(position),
                |slot| slot.table_hash(),
            ) {
                hashbrown::hash_table::Entry::Vacant(slot) => {
                    slot.insert(IdSlot { position, hash });
                }
                hashbrown::hash_table::Entry::Occupied(mut found) => {
                    // Keep the earliest position in the table: then the
                    // second copy in log order is always found.
                    let other = found.get().position;
                    let (earlier, later) = (other.min(position), other.max(position));
                    found.get_mut().position = earlier;
                    if first_duplicate.is_none_or(|(p, _)| Position::from(later) < p) {
                        first_duplicate = Some((Position::from(later), Position::from(earlier)));
                    }
                }
            }
        }
        match first_duplicate {
            None => Ok(()),
            Some(found) => Err(found),
        }
    }

    /// Reserves room for `additional` more events, so a scan does not
    /// grow its tables as it goes.
    pub fn reserve(&mut self, additional: usize) {
        self.entries.reserve(additional);
        if self.ids.is_empty() {
            // The open scan: ids are indexed at the end, by build_ids.
            return;
        }
        self.ids.reserve(additional, |slot| slot.table_hash());
    }

    /// Forgets every event after `head` (a write that failed, or an
    /// incomplete batch found on open).
    pub fn truncate(&mut self, head: Position) {
        while self.head() > head {
            let position = self.head();
            let entry = self.entries[(position - 1) as usize];
            let hash = self.hasher.hash_one(entry.id);
            if let Ok(slot) = self.ids.find_entry(widen(hash), |slot| {
                Position::from(slot.position) == position
            }) {
                slot.remove();
            }
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
        assert_eq!(index.version_at(3), 2);
        assert_eq!(index.visible_positions(a.stream), &[1]);
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
