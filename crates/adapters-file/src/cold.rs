//! Sealed segments known by their index sidecar's summary alone: the open
//! learns each stream's count, versions and last event type in the segment
//! (enough to decide appends and to answer "how long is this stream"), and
//! the segment's records — entries, versions, each stream's positions — are
//! loaded into a [`SegmentTable`] the first time something needs them (a
//! read, a retry's id check, a scavenge). So opening a large log costs a
//! few small reads per segment, not a pass over every event.
//!
//! A table is loaded from the sidecar's records, checked against their
//! checksum and against the summary the open used. When that fails (the
//! sidecar damaged, removed or replaced since the open), the segment itself
//! is read instead, through the handle the open took, every frame checked:
//! the log is the truth. Records that disagree with the summary the store
//! was opened with are corruption.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use logbook_domain::Position;
use logbook_ports::StoreError;

use crate::format::{self, SEGMENT_HEADER_LEN};
use crate::index::Entry;
use crate::record::{self, FRAME_HEADER_LEN};
use crate::sidecar::{LocalRecord, SegmentFacts, StreamPart};

/// What the open knows of a sealed segment without reading its records.
#[derive(Debug)]
pub struct ColdSegment {
    /// Its summary's numbers.
    pub facts: SegmentFacts,
    /// Global stream number of each local stream number.
    pub streams: Box<[u32]>,
    /// Each local stream's part.
    pub parts: Box<[StreamPart]>,
    /// Global event type number of each local type number.
    pub types: Box<[u32]>,
    /// Its records once loaded, or the corruption that stopped them
    /// loading: (location, detail), kept so a damaged segment is not read
    /// again at every use. (After a scavenge rewrote the segment, `facts`
    /// describes the old file: harmless, as the table was loaded before the
    /// rewrite and is never loaded again.)
    table: LoadOnce<Result<SegmentTable, (String, String)>>,
}

/// A value loaded on first use by whoever needs it first; concurrent
/// first uses load it once, and a failed load is not kept, so the next use
/// tries again.
#[derive(Debug)]
pub struct LoadOnce<T> {
    value: OnceLock<T>,
    loading: Mutex<()>,
}

impl<T> Default for LoadOnce<T> {
    fn default() -> Self {
        Self {
            value: OnceLock::new(),
            loading: Mutex::new(()),
        }
    }
}

impl<T> LoadOnce<T> {
    /// The value, if loaded.
    pub fn get(&self) -> Option<&T> {
        self.value.get()
    }

    /// The value, for changing it, if loaded.
    pub fn get_mut(&mut self) -> Option<&mut T> {
        self.value.get_mut()
    }

    /// The value, loaded by `load` if it is not yet.
    ///
    /// # Errors
    /// What `load` returns.
    pub fn get_or_load<E>(&self, load: impl FnOnce() -> Result<T, E>) -> Result<&T, E> {
        if let Some(value) = self.value.get() {
            return Ok(value);
        }
        let _one_loader = self
            .loading
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(value) = self.value.get() {
            return Ok(value);
        }
        let value = load()?;
        Ok(self.value.get_or_init(|| value))
    }
}

impl ColdSegment {
    /// A segment known by its summary, with its local stream and type
    /// numbers mapped to the index's; its table is not loaded.
    pub fn new(
        facts: SegmentFacts,
        streams: Box<[u32]>,
        parts: Box<[StreamPart]>,
        types: Box<[u32]>,
    ) -> Self {
        Self {
            facts,
            streams,
            parts,
            types,
            table: LoadOnce::default(),
        }
    }

    /// Position of its first event.
    pub fn first(&self) -> Position {
        self.facts.first
    }

    /// The table, if loaded.
    pub fn loaded(&self) -> Option<&SegmentTable> {
        self.table.get().and_then(|table| table.as_ref().ok())
    }

    /// The table, for changing it (a scavenge moved records), if loaded.
    pub fn loaded_mut(&mut self) -> Option<&mut SegmentTable> {
        self.table.get_mut().and_then(|table| table.as_mut().ok())
    }

    /// The table, loaded by `load` on first use ([`LoadOnce`]). Corruption
    /// is kept and answered again; other failures (I/O) are not, so the
    /// next use tries again.
    ///
    /// # Errors
    /// What `load` returns.
    pub fn table(
        &self,
        load: impl FnOnce(&Self) -> Result<SegmentTable, StoreError>,
    ) -> Result<&SegmentTable, StoreError> {
        let loaded = self.table.get_or_load(|| match load(self) {
            Ok(table) => Ok(Ok(table)),
            Err(StoreError::Corrupt { location, detail }) => Ok(Err((location, detail))),
            Err(other) => Err(other),
        })?;
        loaded
            .as_ref()
            .map_err(|(location, detail)| StoreError::Corrupt {
                location: location.clone(),
                detail: detail.clone(),
            })
    }
}

/// A sealed segment's records, as the index needs them.
#[derive(Debug, Clone)]
pub struct SegmentTable {
    /// Per record in position order (global stream and type numbers).
    pub entries: Box<[Entry]>,
    /// Per record, its stream version.
    pub versions: Box<[u32]>,
    /// Local stream `l`'s positions are `positions[starts[l]..starts[l + 1]]`.
    starts: Box<[u32]>,
    positions: Box<[u32]>,
}

impl SegmentTable {
    /// The positions of local stream `local` in the segment, ascending.
    pub fn stream_positions(&self, local: u32) -> &[u32] {
        let (start, end) = (
            self.starts[local as usize] as usize,
            self.starts[local as usize + 1] as usize,
        );
        &self.positions[start..end]
    }
}

/// Builds a [`SegmentTable`] from a segment's records in position order,
/// checking them against the segment's summary: offsets ascend inside the
/// segment, numbers are in range, each stream's versions continue from
/// its version before the segment, and each stream ends with the count
/// and last type the summary gives.
///
/// # Errors
/// The first disagreement, in one line, with the position it is at.
pub fn build_table(
    cold: &ColdSegment,
    records: impl ExactSizeIterator<Item = LocalRecord>,
) -> Result<SegmentTable, String> {
    let facts = &cold.facts;
    if records.len() != facts.count as usize {
        return Err(format!(
            "{} records where the summary has {}",
            records.len(),
            facts.count
        ));
    }
    let mut next: Vec<u32> = cold.parts.iter().map(|p| p.version_before).collect();
    let mut last_types = vec![u32::MAX; cold.parts.len()];
    let mut counts = vec![0u32; cold.parts.len() + 1];
    let mut entries = Vec::with_capacity(records.len());
    let mut versions = Vec::with_capacity(records.len());
    let mut locals = Vec::with_capacity(records.len());
    let mut previous_end = SEGMENT_HEADER_LEN as u64;
    for (i, record) in records.enumerate() {
        let position = facts.first + i as u64;
        let offset = u64::from(record.offset);
        if offset < previous_end || offset >= facts.segment_len {
            return Err(format!(
                "position {position} has offset {offset}, out of order or past the segment"
            ));
        }
        previous_end = offset + FRAME_HEADER_LEN as u64;
        let (Some(&stream), Some(&event_type)) = (
            cold.streams.get(record.stream as usize),
            cold.types.get(record.event_type as usize),
        ) else {
            return Err(format!(
                "position {position} names a stream or type the summary does not have"
            ));
        };
        let expected = &mut next[record.stream as usize];
        if Some(record.version) != expected.checked_add(1) {
            return Err(format!(
                "position {position} has version {}, its stream is at {}",
                record.version, *expected
            ));
        }
        *expected = record.version;
        if facts
            .id_range
            .is_some_and(|(min, max)| !(min..=max).contains(&record.id))
        {
            return Err(format!(
                "position {position} has an id outside the summary's range"
            ));
        }
        last_types[record.stream as usize] = record.event_type;
        counts[record.stream as usize + 1] += 1;
        entries.push(Entry {
            id: record.id,
            offset: record.offset,
            stream,
            event_type,
        });
        versions.push(record.version);
        locals.push(record.stream);
    }
    if facts.count > 0 && entries.last().map(|e| e.offset) != Some(facts.last_offset) {
        return Err("its last record is not the one the summary names".into());
    }
    for (local, part) in cold.parts.iter().enumerate() {
        if counts[local + 1] != part.count || last_types[local] != part.last_type {
            return Err(format!(
                "stream {local} of the segment has {} events ending with type {}; the summary says {} ending with type {}",
                counts[local + 1],
                last_types[local],
                part.count,
                part.last_type
            ));
        }
    }
    // Each local stream's positions, grouped: counts become start offsets.
    for i in 1..counts.len() {
        counts[i] += counts[i - 1];
    }
    let mut fill = counts.clone();
    let mut positions = vec![0u32; locals.len()];
    for (i, local) in locals.into_iter().enumerate() {
        let at = &mut fill[local as usize];
        positions[*at as usize] = (facts.first + i as u64) as u32;
        *at += 1;
    }
    Ok(SegmentTable {
        entries: entries.into_boxed_slice(),
        versions: versions.into_boxed_slice(),
        starts: counts.into_boxed_slice(),
        positions: positions.into_boxed_slice(),
    })
}

/// Reads a sealed segment's records from the segment itself (through
/// `file`, the handle the open took, so a segment replaced since is not
/// mixed in), every frame's checksum checked, and builds its table.
/// `stream_names` and `type_names` give the name of each local number.
///
/// # Errors
/// [`StoreError::Corrupt`] naming the segment and offset where a frame is
/// damaged or a record disagrees with the summary; [`StoreError::Io`].
pub fn scan_table(
    cold: &ColdSegment,
    file: &File,
    path: &Path,
    stream_names: &[&str],
    type_names: &[&str],
) -> Result<SegmentTable, StoreError> {
    let facts = &cold.facts;
    let len = usize::try_from(facts.segment_len).unwrap_or(usize::MAX);
    let mut bytes = vec![0u8; len];
    file.read_exact_at(&mut bytes, 0)
        .map_err(|e| StoreError::io(format!("read {}", path.display()), e))?;
    let corrupt = |offset: usize, detail: String| StoreError::Corrupt {
        location: format::location(path, offset as u64),
        detail,
    };
    match format::decode_segment_header(&bytes) {
        Ok(first) if first == facts.first => {}
        Ok(first) => {
            return Err(corrupt(
                0,
                format!("segment starts at position {first}, not {}", facts.first),
            ));
        }
        Err(format::HeaderError::Short) => {
            return Err(corrupt(0, "segment is shorter than its header".into()));
        }
        Err(format::HeaderError::Invalid(detail)) => return Err(corrupt(0, detail)),
        Err(format::HeaderError::Version(found)) => {
            return Err(corrupt(0, format!("segment has format version {found}")));
        }
    }
    let local_streams: HashMap<&str, u32> = stream_names
        .iter()
        .enumerate()
        .map(|(i, name)| (*name, i as u32))
        .collect();
    let local_types: HashMap<&str, u32> = type_names
        .iter()
        .enumerate()
        .map(|(i, name)| (*name, i as u32))
        .collect();
    let mut records = Vec::with_capacity(facts.count as usize);
    let mut at = SEGMENT_HEADER_LEN;
    while at < bytes.len() {
        let (record, frame) =
            record::decode(&bytes[at..]).map_err(|e| corrupt(at, e.to_string()))?;
        let position = facts.first + records.len() as u64;
        let (Some(&stream), Some(&event_type)) = (
            local_streams.get(record.stream),
            local_types.get(record.event_type),
        ) else {
            return Err(corrupt(
                at,
                format!(
                    "record of stream {} and type {} is not in the segment's index sidecar summary",
                    record.stream, record.event_type
                ),
            ));
        };
        if record.position != position {
            return Err(corrupt(
                at,
                format!(
                    "record has position {}, expected {position}",
                    record.position
                ),
            ));
        }
        records.push(LocalRecord {
            id: record.id,
            offset: at as u32,
            stream,
            event_type,
            version: u32::try_from(record.version).unwrap_or(u32::MAX),
        });
        at += frame;
    }
    build_table(cold, records.into_iter()).map_err(|detail| {
        corrupt(
            0,
            format!(
                "the segment disagrees with its index sidecar's summary read at open: {detail}"
            ),
        )
    })
}
