//! The index sidecar of a sealed segment: what the open scan would learn
//! from the segment's records, kept in a small checksummed file beside the
//! segment, so open reads it instead of the segment.
//!
//! The file has two parts. The *summary* (its own checksummed envelope)
//! holds the segment's binding, its event types and, per stream, its
//! version before the segment, its event count and its last event type,
//! and the smallest and largest event id: all an open needs, a few
//! kilobytes. The *records* (32 bytes per event: id, offset, stream, type,
//! version, with their checksum in the summary) follow it and are read only
//! when something needs the segment's events (`cold.rs`).
//!
//! The log is the truth; a sidecar is only a shortcut to it. It is bound
//! to its segment by the segment's first position, byte length, and the
//! offset and stored checksum of its last record's frame, all checked
//! against the segment file on open (a `stat` and one 8-byte read at the
//! last record). A sidecar that is missing, damaged, of another layout, or
//! bound to other bytes is ignored with a warning, the segment is scanned,
//! and (when the store is opened for writing) the sidecar is written again
//! from what the scan found.
//!
//! Written with [`segment::write_atomically`] (temporary file, fsync,
//! rename, directory fsync): a crash leaves the old sidecar or the new
//! one, never a mix. docs/file-format.md describes the bytes.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use logbook_domain::{EventId, Position, StreamId};
use logbook_ports::StoreError;

use crate::format::{self, ENVELOPE_LEN, SIDECAR_EXT, SIDECAR_MAGIC, SIDECAR_V1_MAGIC};
use crate::index::{Index, MAX_EVENTS};
use crate::record::FRAME_HEADER_LEN;
use crate::segment;

/// Bytes of the summary body before its name tables.
const FIXED_LEN: usize = 8 + 8 + 4 + 4 + 4 + 4 + 4 + 4 + 16 + 16;
/// Bytes per record: id (16), offset (4), stream (4), type (4), version (4).
pub const RECORD_LEN: usize = 32;
/// Bytes read at once for the summary: most summaries fit.
const FIRST_READ: usize = 16 << 10;

/// The sidecar path of the segment at `segment_path`.
pub fn path_of(segment_path: &Path) -> PathBuf {
    segment_path.with_extension(SIDECAR_EXT)
}

/// One record as the sidecar holds it, with its stream and type by name.
#[derive(Debug, Clone, Copy)]
pub struct SidecarRecord<'a> {
    /// Event id.
    pub id: EventId,
    /// Frame offset in the segment.
    pub offset: u32,
    /// Stream id.
    pub stream: &'a str,
    /// Event type.
    pub event_type: &'a str,
    /// Stream version.
    pub version: u32,
}

/// Encodes the sidecar of a segment starting at `first_position`,
/// `segment_len` bytes long, whose last record's frame has the stored
/// checksum `last_crc`, from its records in position order.
pub fn encode<'a>(
    first_position: Position,
    segment_len: u64,
    last_crc: u32,
    records: impl ExactSizeIterator<Item = SidecarRecord<'a>>,
) -> Vec<u8> {
    let count = records.len();
    let mut streams: HashMap<&str, u32> = HashMap::new();
    let mut parts: Vec<(&str, StreamPart)> = Vec::new();
    let mut types: HashMap<&str, u32> = HashMap::new();
    let mut type_names: Vec<&str> = Vec::new();
    let mut bytes = Vec::with_capacity(count * RECORD_LEN);
    let (mut min_id, mut max_id) = ([0xFF; 16], [0u8; 16]);
    let mut last_offset = 0u32;
    for record in records {
        let next_type = type_names.len() as u32;
        let event_type = *types.entry(record.event_type).or_insert_with(|| {
            type_names.push(record.event_type);
            next_type
        });
        let next_stream = parts.len() as u32;
        let local = *streams.entry(record.stream).or_insert_with(|| {
            parts.push((
                record.stream,
                StreamPart {
                    version_before: record.version.saturating_sub(1),
                    count: 0,
                    last_type: 0,
                },
            ));
            next_stream
        });
        let part = &mut parts[local as usize].1;
        part.count += 1;
        part.last_type = event_type;
        let id = *record.id.as_uuid().as_bytes();
        min_id = min_id.min(id);
        max_id = max_id.max(id);
        bytes.extend_from_slice(&id);
        bytes.extend_from_slice(&record.offset.to_le_bytes());
        bytes.extend_from_slice(&local.to_le_bytes());
        bytes.extend_from_slice(&event_type.to_le_bytes());
        bytes.extend_from_slice(&record.version.to_le_bytes());
        last_offset = record.offset;
    }
    let mut body = Vec::with_capacity(FIXED_LEN + 64 * (parts.len() + type_names.len()));
    body.extend_from_slice(&first_position.to_le_bytes());
    body.extend_from_slice(&segment_len.to_le_bytes());
    body.extend_from_slice(&last_offset.to_le_bytes());
    body.extend_from_slice(&last_crc.to_le_bytes());
    body.extend_from_slice(&(count as u32).to_le_bytes());
    body.extend_from_slice(&(parts.len() as u32).to_le_bytes());
    body.extend_from_slice(&(type_names.len() as u32).to_le_bytes());
    body.extend_from_slice(&crc32c::crc32c(&bytes).to_le_bytes());
    body.extend_from_slice(&min_id);
    body.extend_from_slice(&max_id);
    for name in &type_names {
        push_name(&mut body, name);
    }
    for (name, part) in &parts {
        push_name(&mut body, name);
        body.extend_from_slice(&part.version_before.to_le_bytes());
        body.extend_from_slice(&part.count.to_le_bytes());
        body.extend_from_slice(&part.last_type.to_le_bytes());
    }
    let mut out = format::seal(SIDECAR_MAGIC, &body);
    out.extend_from_slice(&bytes);
    out
}

fn push_name(body: &mut Vec<u8>, name: &str) {
    body.extend_from_slice(&(name.len() as u16).to_le_bytes());
    body.extend_from_slice(name.as_bytes());
}

/// Writes the sidecar of segment `number` of `index` (an index in
/// [`Index::segments`] that is not the last one, or the last one when it
/// is being sealed: it must hold every record up to [`Index::head`]),
/// whose file is `segment_len` bytes long.
///
/// # Errors
/// [`StoreError::Io`] naming the file; what [`Index::entry`] returns.
pub fn write(index: &Index, number: usize, segment_len: u64) -> Result<(), StoreError> {
    let segment = &index.segments[number];
    let first = segment.first_position;
    let last = index
        .segments
        .get(number + 1)
        .map_or(index.head(), |next| next.first_position - 1);
    let last_crc = if last >= first {
        let offset = u64::from(index.entry(last)?.offset);
        frame_crc(&segment.file, offset, &segment.path)?
    } else {
        0
    };
    // Each stream's version at its first record here, then counted on.
    let mut versions: HashMap<u32, u32> = HashMap::new();
    let mut records = Vec::with_capacity((last + 1).saturating_sub(first) as usize);
    for position in first..=last {
        let entry = *index.entry(position)?;
        let version = match versions.get_mut(&entry.stream) {
            Some(version) => {
                *version += 1;
                *version
            }
            None => {
                let version = index.version_at(position)? as u32;
                versions.insert(entry.stream, version);
                version
            }
        };
        records.push(SidecarRecord {
            id: entry.id,
            offset: entry.offset,
            stream: index.stream_id(entry.stream).as_str(),
            event_type: index.types.name(entry.event_type),
            version,
        });
    }
    let bytes = encode(first, segment_len, last_crc, records.into_iter());
    segment::write_atomically(&path_of(&segment.path), &bytes)
}

/// The stored checksum of the frame at `offset`.
fn frame_crc(file: &File, offset: u64, path: &Path) -> Result<u32, StoreError> {
    let mut header = [0u8; FRAME_HEADER_LEN];
    file.read_exact_at(&mut header, offset)
        .map_err(|e| StoreError::io(format!("read {} at offset {offset}", path.display()), e))?;
    Ok(u32::from_le_bytes(
        header[4..8].try_into().expect("4 bytes"),
    ))
}

/// Removes the sidecar of the segment at `segment_path`, durably, if it
/// exists.
///
/// # Errors
/// [`StoreError::Io`] naming the file.
pub fn remove(segment_path: &Path) -> Result<(), StoreError> {
    segment::remove_durably(&path_of(segment_path))
}

/// One stream's part in a sealed segment, as the sidecar's summary says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamPart {
    /// The stream's version before the segment.
    pub version_before: u32,
    /// Its events in the segment (at least one).
    pub count: u32,
    /// The type of its last event in the segment (a local type number).
    pub last_type: u32,
}

/// One record of a sealed segment, with local stream and type numbers.
#[derive(Debug, Clone, Copy)]
pub struct LocalRecord {
    /// Event id.
    pub id: EventId,
    /// Frame offset in the segment.
    pub offset: u32,
    /// Local stream number.
    pub stream: u32,
    /// Local event type number.
    pub event_type: u32,
    /// Stream version.
    pub version: u32,
}

/// The numbers of a sidecar's summary: what binds it to its segment and
/// where its records are.
#[derive(Debug, Clone, Copy)]
pub struct SegmentFacts {
    /// Position of the segment's first event.
    pub first: Position,
    /// Events in the segment.
    pub count: u32,
    /// The segment's byte length.
    pub segment_len: u64,
    /// Offset of its last record.
    pub last_offset: u32,
    /// The stored checksum of that record's frame.
    pub last_crc: u32,
    /// Where the records start in the sidecar.
    pub records_at: u64,
    /// Their checksum.
    pub records_crc: u32,
    /// The smallest and largest event id in the segment.
    pub id_range: Option<(EventId, EventId)>,
}

/// A sidecar's summary, checked and bound to its segment.
#[derive(Debug)]
pub struct Summary {
    /// Its numbers.
    pub facts: SegmentFacts,
    /// Its event types, by local number.
    pub types: Vec<String>,
    /// Its streams, by local number, with their part in the segment.
    pub streams: Vec<(StreamId, StreamPart)>,
}

/// Reads the summary of the sidecar of the segment at `path` (first
/// position `first`, `segment_len` bytes, read handle `file`) and checks
/// that it binds to the segment: first position, length, the last
/// record's frame, and a sidecar file exactly as long as summary and
/// records. The records are not read.
///
/// # Errors
/// The reason the sidecar cannot be used, in one line.
pub fn read_summary(
    path: &Path,
    file: &File,
    first: Position,
    segment_len: u64,
) -> Result<Summary, String> {
    let sidecar_path = path_of(path);
    let sidecar = match File::open(&sidecar_path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err("it is missing".into()),
        Err(e) => return Err(format!("it cannot be read: {e}")),
    };
    let sidecar_len = sidecar
        .metadata()
        .map_err(|e| format!("it cannot be read: {e}"))?
        .len();
    let mut bytes = read_at(&sidecar, 0, FIRST_READ.min(sidecar_len as usize))?;
    if bytes.len() < ENVELOPE_LEN {
        return Err("it is truncated".into());
    }
    if bytes[..8] == SIDECAR_V1_MAGIC {
        return Err("it is in the earlier sidecar layout".into());
    }
    let body_len = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes")) as u64;
    let summary_end = ENVELOPE_LEN as u64 + body_len;
    if summary_end > sidecar_len {
        return Err(format!(
            "it is {sidecar_len} bytes, shorter than its summary of {summary_end}"
        ));
    }
    if summary_end > bytes.len() as u64 {
        let rest = read_at(
            &sidecar,
            bytes.len() as u64,
            (summary_end as usize) - bytes.len(),
        )?;
        bytes.extend_from_slice(&rest);
    }
    bytes.truncate(summary_end as usize);
    let body = format::open_sealed(SIDECAR_MAGIC, &bytes).map_err(|e| match e {
        format::HeaderError::Short => "it is truncated".to_owned(),
        format::HeaderError::Invalid(detail) => format!("its summary: {detail}"),
        format::HeaderError::Version(found) => format!("it has format version {found}"),
    })?;
    let summary = parse(body, first, segment_len, summary_end, sidecar_len)?;
    let facts = summary.facts;
    // Bound to these bytes of the segment: its last record's frame is where
    // the sidecar says, has the checksum it says, and ends the file.
    if facts.count > 0 {
        let offset = u64::from(facts.last_offset);
        let mut header = [0u8; FRAME_HEADER_LEN];
        file.read_exact_at(&mut header, offset)
            .map_err(|e| format!("the segment cannot be read at offset {offset}: {e}"))?;
        let body_len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
        if offset + (FRAME_HEADER_LEN as u64) + u64::from(body_len) != segment_len
            || crc != facts.last_crc
        {
            return Err(format!(
                "the segment's record at offset {offset} is not the last record it describes"
            ));
        }
    }
    Ok(summary)
}

fn read_at(file: &File, offset: u64, len: usize) -> Result<Vec<u8>, String> {
    let mut bytes = vec![0u8; len];
    file.read_exact_at(&mut bytes, offset)
        .map_err(|e| format!("it cannot be read at offset {offset}: {e}"))?;
    Ok(bytes)
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

/// Checks a summary body on its own, against the segment's first
/// position and length, and against the sidecar's length (summary, then
/// 32 bytes per record). Nothing is sized from a count before the bytes
/// that count describes are known to be there.
fn parse(
    body: &[u8],
    first: Position,
    segment_len: u64,
    records_at: u64,
    sidecar_len: u64,
) -> Result<Summary, String> {
    let fixed = body
        .get(..FIXED_LEN)
        .ok_or("its summary is shorter than its fixed fields")?;
    let u64_at = |at: usize| u64::from_le_bytes(fixed[at..at + 8].try_into().expect("8 bytes"));
    let (bound_first, bound_len) = (u64_at(0), u64_at(8));
    if bound_first != first {
        return Err(format!(
            "it describes the segment starting at position {bound_first}"
        ));
    }
    if bound_len != segment_len {
        return Err(format!(
            "it describes a segment of {bound_len} bytes, the segment has {segment_len}"
        ));
    }
    let count = u32_at(fixed, 24);
    if count == 0 {
        // A segment is sealed only once it holds a record.
        return Err("it describes no records".into());
    }
    if (first - 1).saturating_add(u64::from(count)) > MAX_EVENTS {
        return Err(format!("it holds more than {MAX_EVENTS} events"));
    }
    let expected_len = records_at + u64::from(count) * RECORD_LEN as u64;
    if sidecar_len != expected_len {
        return Err(format!(
            "it is {sidecar_len} bytes, its summary describes {expected_len}"
        ));
    }
    let (stream_count, type_count) = (u32_at(fixed, 28) as usize, u32_at(fixed, 32) as usize);
    let id = |at: usize| {
        EventId(uuid::Uuid::from_bytes(
            fixed[at..at + 16].try_into().expect("16 bytes"),
        ))
    };
    let mut reader = Names {
        body,
        at: FIXED_LEN,
    };
    // A name takes at least its 2-byte length, a stream 12 bytes more.
    let room = body.len() - FIXED_LEN;
    let mut types: Vec<String> = Vec::with_capacity(type_count.min(room / 2));
    let mut seen = HashSet::with_capacity(types.capacity());
    for _ in 0..type_count {
        let name = reader.name()?;
        if !seen.insert(name) {
            return Err(format!("it names event type {name} twice"));
        }
        types.push(name.to_owned());
    }
    let mut streams = Vec::with_capacity(stream_count.min(room / 14));
    let mut total = 0u64;
    for _ in 0..stream_count {
        let name = reader.name()?;
        let stream = StreamId::new(name).map_err(|e| format!("a stream id in it: {e}"))?;
        let numbers = reader.take(12)?;
        let part = StreamPart {
            version_before: u32_at(numbers, 0),
            count: u32_at(numbers, 4),
            last_type: u32_at(numbers, 8),
        };
        if part.count == 0 || part.last_type as usize >= types.len() {
            return Err(format!("its summary of stream {stream} is not valid"));
        }
        if part.version_before.checked_add(part.count).is_none() {
            return Err(format!(
                "its summary of stream {stream} runs past version {}",
                u32::MAX
            ));
        }
        total += u64::from(part.count);
        streams.push((stream, part));
    }
    if reader.at != body.len() {
        return Err("its summary has bytes after its tables".into());
    }
    if total != u64::from(count) {
        return Err(format!(
            "its streams hold {total} events, its count is {count}"
        ));
    }
    Ok(Summary {
        facts: SegmentFacts {
            first,
            count,
            segment_len,
            last_offset: u32_at(fixed, 16),
            last_crc: u32_at(fixed, 20),
            records_at,
            records_crc: u32_at(fixed, 36),
            id_range: (count > 0).then(|| (id(40), id(56))),
        },
        types,
        streams,
    })
}

/// Reads length-prefixed names and fixed fields off a summary body.
struct Names<'a> {
    body: &'a [u8],
    at: usize,
}

impl<'a> Names<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], String> {
        let bytes = self
            .body
            .get(self.at..self.at + len)
            .ok_or("its summary's tables are cut short")?;
        self.at += len;
        Ok(bytes)
    }

    fn name(&mut self) -> Result<&'a str, String> {
        let len = self.take(2)?;
        let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
        std::str::from_utf8(self.take(len)?).map_err(|_| "a name in it is not UTF-8".into())
    }
}

/// Reads the records of the sidecar of the segment at `path`, as its
/// summary (read at open) locates them, and checks their checksum.
///
/// # Errors
/// The reason they cannot be used, in one line.
pub fn read_records(path: &Path, facts: &SegmentFacts) -> Result<Vec<u8>, String> {
    let sidecar = File::open(path_of(path)).map_err(|e| format!("it cannot be opened: {e}"))?;
    let bytes = read_at(
        &sidecar,
        facts.records_at,
        facts.count as usize * RECORD_LEN,
    )?;
    if crc32c::crc32c(&bytes) != facts.records_crc {
        return Err("its records fail their checksum".into());
    }
    Ok(bytes)
}

/// The records of a sidecar, as read by [`read_records`].
pub fn records(bytes: &[u8]) -> impl ExactSizeIterator<Item = LocalRecord> + '_ {
    bytes.chunks_exact(RECORD_LEN).map(|record| LocalRecord {
        id: EventId(uuid::Uuid::from_bytes(
            record[..16].try_into().expect("16 bytes"),
        )),
        offset: u32_at(record, 16),
        stream: u32_at(record, 20),
        event_type: u32_at(record, 24),
        version: u32_at(record, 28),
    })
}
