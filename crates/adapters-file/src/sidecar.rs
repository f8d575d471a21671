//! The index sidecar of a sealed segment: what the open scan would learn
//! from the segment's records (each record's offset, stream, version, type
//! and event id), kept in a small checksummed file beside the segment, so
//! open reads it instead of the segment.
//!
//! The log is the truth; a sidecar is only a shortcut to it. It is bound
//! to its segment by the segment's first position, byte length, and the
//! offset and stored checksum of its last record's frame, all checked
//! against the segment file on open (a `stat` and one 8-byte read at the
//! last record). A sidecar that is missing, damaged, from an older or
//! newer format, or bound to other bytes is ignored with a warning, the
//! segment is scanned, and (when the store is opened for writing) the
//! sidecar is written again from what the scan found.
//!
//! Written with [`segment::write_atomically`] (temporary file, fsync,
//! rename, directory fsync): a crash leaves the old sidecar or the new
//! one, never a mix. docs/file-format.md describes the bytes.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use logbook_domain::{EventId, Position};
use logbook_ports::StoreError;

use crate::blocking::read_if_present;
use crate::format::{self, SEGMENT_HEADER_LEN, SIDECAR_EXT, SIDECAR_MAGIC};
use crate::index::{Entry, Index, MAX_EVENTS};
use crate::record::FRAME_HEADER_LEN;
use crate::segment;

/// Bytes of the sidecar body before its name tables.
const FIXED_LEN: usize = 8 + 8 + 4 + 4 + 4 + 4 + 4;
/// Bytes per record in the sidecar: id (16), offset (4), stream (4),
/// type (4), version (4).
const RECORD_LEN: usize = 32;

/// The sidecar path of the segment at `segment_path`.
pub fn path_of(segment_path: &Path) -> PathBuf {
    segment_path.with_extension(SIDECAR_EXT)
}

/// Encodes the sidecar of the segment holding positions
/// `first_position..=last_position` of `index`, `segment_len` bytes long,
/// whose last record's frame has the stored checksum `last_crc`.
fn encode(
    index: &Index,
    first_position: Position,
    last_position: Position,
    segment_len: u64,
    last_crc: u32,
) -> Vec<u8> {
    let count = (last_position + 1).saturating_sub(first_position) as usize;
    let mut streams: HashMap<u32, (u32, u32)> = HashMap::new();
    let mut stream_names: Vec<&str> = Vec::new();
    let mut types: HashMap<u32, u32> = HashMap::new();
    let mut type_names: Vec<&str> = Vec::new();
    let mut records = Vec::with_capacity(count * RECORD_LEN);
    let mut last_offset = 0u32;
    for position in first_position..=last_position {
        let entry = index.entry(position);
        let next_local = stream_names.len() as u32;
        let (local, version) = streams.entry(entry.stream).or_insert_with(|| {
            stream_names.push(index.stream_id(entry.stream).as_str());
            // The stream's version just before this segment.
            (next_local, index.version_at(position) as u32 - 1)
        });
        *version += 1;
        let next_type = type_names.len() as u32;
        let event_type = *types.entry(entry.event_type).or_insert_with(|| {
            type_names.push(index.types.name(entry.event_type));
            next_type
        });
        records.extend_from_slice(entry.id.as_uuid().as_bytes());
        records.extend_from_slice(&entry.offset.to_le_bytes());
        records.extend_from_slice(&local.to_le_bytes());
        records.extend_from_slice(&event_type.to_le_bytes());
        records.extend_from_slice(&version.to_le_bytes());
        last_offset = entry.offset;
    }
    let mut body = Vec::with_capacity(FIXED_LEN + records.len() + 64);
    body.extend_from_slice(&first_position.to_le_bytes());
    body.extend_from_slice(&segment_len.to_le_bytes());
    body.extend_from_slice(&last_offset.to_le_bytes());
    body.extend_from_slice(&last_crc.to_le_bytes());
    body.extend_from_slice(&(count as u32).to_le_bytes());
    body.extend_from_slice(&(stream_names.len() as u32).to_le_bytes());
    body.extend_from_slice(&(type_names.len() as u32).to_le_bytes());
    for name in stream_names.iter().chain(type_names.iter()) {
        body.extend_from_slice(&(name.len() as u16).to_le_bytes());
        body.extend_from_slice(name.as_bytes());
    }
    body.extend_from_slice(&records);
    format::seal(SIDECAR_MAGIC, &body)
}

/// Writes the sidecar of the sealed segment `number` of `index` (an
/// index in [`Index::segments`] that is not the last one, or the last one
/// when it is being sealed: it must hold every record up to
/// [`Index::head`]), whose file is `segment_len` bytes long.
///
/// # Errors
/// [`StoreError::Io`] naming the file.
pub fn write(index: &Index, number: usize, segment_len: u64) -> Result<(), StoreError> {
    let segment = &index.segments[number];
    let first = segment.first_position;
    let last = index
        .segments
        .get(number + 1)
        .map_or(index.head(), |next| next.first_position - 1);
    let last_crc = if last >= first {
        let offset = u64::from(index.entry(last).offset);
        frame_crc(&segment.file, offset, &segment.path)?
    } else {
        0
    };
    let bytes = encode(index, first, last, segment_len, last_crc);
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

/// Reads the sidecar of the segment at `path` (first position `first`,
/// `segment_len` bytes, read handle `file`) into `index`, which must end
/// just before `first`. On success the segment's records are in `index`
/// (ids not indexed: the open builds the id table at the end). On failure
/// `index` is unchanged and the reason says why the sidecar was not used.
///
/// # Errors
/// The reason the sidecar cannot be used, in one line.
pub fn load(
    index: &mut Index,
    path: &Path,
    file: &File,
    first: Position,
    segment_len: u64,
) -> Result<(), String> {
    let sidecar = path_of(path);
    let bytes = read_if_present(&sidecar)
        .map_err(|e| format!("it cannot be read: {e}"))?
        .ok_or("it is missing")?;
    let body = format::open_sealed(SIDECAR_MAGIC, &bytes).map_err(|e| match e {
        format::HeaderError::Short => "it is truncated".to_owned(),
        format::HeaderError::Invalid(detail) => detail,
        format::HeaderError::Version(found) => format!("it has format version {found}"),
    })?;
    let parsed = parse(body, index, first, segment_len)?;
    // Bound to these bytes of the segment: its last record's frame is where
    // the sidecar says, has the checksum it says, and ends the file.
    if parsed.count > 0 {
        let offset = u64::from(parsed.last_offset);
        let mut header = [0u8; FRAME_HEADER_LEN];
        file.read_exact_at(&mut header, offset)
            .map_err(|e| format!("the segment cannot be read at offset {offset}: {e}"))?;
        let body_len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
        if offset + (FRAME_HEADER_LEN as u64) + u64::from(body_len) != segment_len
            || crc != parsed.last_crc
        {
            return Err(format!(
                "the segment's record at offset {offset} is not the last record it describes"
            ));
        }
    }
    apply(index, body, &parsed)
}

/// The checked fixed fields and tables of a sidecar body.
struct Parsed<'a> {
    count: usize,
    last_offset: u32,
    last_crc: u32,
    streams: Vec<&'a str>,
    types: Vec<&'a str>,
    records_at: usize,
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

/// Checks everything in `body` that does not change `index`: the binding
/// to the segment's first position and length, the tables, each record's
/// offset (ascending, inside the segment) and numbers, and each record's
/// version (continuing its stream as `index` holds it).
fn parse<'a>(
    body: &'a [u8],
    index: &Index,
    first: Position,
    segment_len: u64,
) -> Result<Parsed<'a>, String> {
    let fixed = body
        .get(..FIXED_LEN)
        .ok_or("its body is shorter than its fixed fields")?;
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
    let count = u32_at(fixed, 24) as usize;
    if (first - 1).saturating_add(count as u64) > MAX_EVENTS {
        return Err(format!("it holds more than {MAX_EVENTS} events"));
    }
    let last_offset = u32_at(fixed, 16);
    let last_crc = u32_at(fixed, 20);
    let (stream_count, type_count) = (u32_at(fixed, 28) as usize, u32_at(fixed, 32) as usize);
    let mut at = FIXED_LEN;
    let mut names = Vec::with_capacity(stream_count.min(count) + type_count.min(count));
    for _ in 0..stream_count.saturating_add(type_count) {
        let len = body
            .get(at..at + 2)
            .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])))
            .ok_or("its name tables are cut short")?;
        let name = body
            .get(at + 2..at + 2 + len)
            .ok_or("its name tables are cut short")?;
        names.push(std::str::from_utf8(name).map_err(|_| "a name in it is not UTF-8")?);
        at += 2 + len;
    }
    let types = names.split_off(stream_count);
    let streams = names;
    if body.len() - at != count * RECORD_LEN {
        return Err(format!(
            "it holds {} bytes of records for {count} records",
            body.len() - at
        ));
    }
    // Versions continue each stream from where the index has it.
    let mut versions: Vec<u32> = streams
        .iter()
        .map(|name| {
            index
                .stream_number(name)
                .map_or(0, |i| index.positions(i).len() as u32)
        })
        .collect();
    let mut previous_end = SEGMENT_HEADER_LEN as u64;
    for (i, record) in body[at..].chunks_exact(RECORD_LEN).enumerate() {
        let offset = u32_at(record, 16);
        let (stream, event_type) = (u32_at(record, 20) as usize, u32_at(record, 24) as usize);
        let version = u32_at(record, 28);
        let position = first + i as u64;
        if u64::from(offset) < previous_end || u64::from(offset) >= segment_len {
            return Err(format!(
                "position {position} has offset {offset}, out of order or past the segment"
            ));
        }
        previous_end = u64::from(offset) + (FRAME_HEADER_LEN as u64);
        if event_type >= types.len() {
            return Err(format!("position {position} names an unknown event type"));
        }
        let Some(expected) = versions.get_mut(stream) else {
            return Err(format!("position {position} names an unknown stream"));
        };
        *expected += 1;
        if version != *expected {
            return Err(format!(
                "position {position} has version {version}, its stream is at {}",
                *expected - 1
            ));
        }
        if i + 1 == count && offset != last_offset {
            return Err("its last record is not the one its header names".into());
        }
    }
    Ok(Parsed {
        count,
        last_offset,
        last_crc,
        streams,
        types,
        records_at: at,
    })
}

/// Adds the records of a parsed sidecar to `index`.
fn apply(index: &mut Index, body: &[u8], parsed: &Parsed<'_>) -> Result<(), String> {
    // Stream ids are checked before anything is added.
    let ids: Vec<logbook_domain::StreamId> = parsed
        .streams
        .iter()
        .map(|name| {
            logbook_domain::StreamId::new(*name).map_err(|e| format!("a stream id in it: {e}"))
        })
        .collect::<Result<_, _>>()?;
    let streams: Vec<u32> = ids.iter().map(|id| index.intern_stream_id(id)).collect();
    let types: Vec<u32> = parsed.types.iter().map(|t| index.types.intern(t)).collect();
    index.reserve(parsed.count);
    for record in body[parsed.records_at..].chunks_exact(RECORD_LEN) {
        let id = EventId(uuid::Uuid::from_bytes(
            record[..16].try_into().expect("16 bytes"),
        ));
        index.push_unindexed(Entry {
            id,
            offset: u32_at(record, 16),
            stream: streams[u32_at(record, 20) as usize],
            event_type: types[u32_at(record, 24) as usize],
        });
    }
    Ok(())
}
