//! Recovery: scanning the segments on open to rebuild the index, cutting a
//! torn tail (a crash mid-write), and refusing corruption anywhere else.
//!
//! The rules (docs/file-format.md, "Recovery"):
//! - segments must start where the previous one ended, with a valid header;
//! - every record of every segment but the last must be whole and valid,
//!   and each of those segments must end on a batch boundary;
//! - in the last segment, zeros from the end of a whole batch to the end
//!   of the file are preallocated free space, not damage: the log ends
//!   there and the writer reuses them;
//! - in the last segment, at the first record that is not whole and valid,
//!   the bytes from there on are a *torn tail* if they hold nothing valid
//!   beyond the one write that was in flight (no write-end record followed
//!   by another valid record); the tail is cut back to the last complete
//!   batch, with a warning. Anything else is corruption: open fails naming
//!   the file and offset. Nothing is ever skipped silently.
//!
//! A sealed segment (every one but the last) whose index sidecar binds to
//! it is read from the sidecar instead of scanned ([`Sidecars::Use`],
//! `sidecar.rs`); `verify` scans every segment ([`Sidecars::Ignore`]).

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use logbook_ports::StoreError;

use crate::durable::{self, DurableMark};
use crate::format::{self, HeaderError, SEGMENT_HEADER_LEN, TEMP_SUFFIX};
use crate::index::{Entry, Index, MAX_EVENTS, SegmentRef};
use crate::record::{self, DecodeError};
use crate::segment;
use crate::sidecar;

/// How much of a segment the scan reads at a time.
const SCAN_CHUNK: usize = 8 << 20;

/// Whether the scan may change files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The writer's open: cut a torn tail, remove leftover temporary files.
    Repair,
    /// A reader's open or a verify: change nothing; a torn tail is ignored.
    ReadOnly,
}

/// Whether the open scan reads the index sidecars of sealed segments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sidecars {
    /// Read each sealed segment's sidecar instead of its records when it
    /// binds to the segment; scan (and, in [`Mode::Repair`], write the
    /// sidecar again) when it does not.
    Use,
    /// Scan every record of every segment (`verify`).
    #[default]
    Ignore,
}

/// A torn tail found at the end of the last segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The segment.
    pub segment: PathBuf,
    /// Offset the segment was (or, read-only, would be) cut back to.
    pub offset: u64,
    /// Bytes after that offset.
    pub bytes_cut: u64,
    /// Whole records of an incomplete batch among those bytes (their batch
    /// was never acknowledged).
    pub events_dropped: u64,
    /// What was wrong at the first bad byte.
    pub reason: String,
    /// The file beside the segment that keeps the bytes cut (their
    /// trailing preallocated zeros left out), once they were cut.
    pub kept_in: Option<PathBuf>,
    /// Whether the bytes were cut (an open for writing) or left in place (a
    /// reader's open or a verify, which change nothing).
    pub cut: bool,
}

impl fmt::Display for TornTail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "torn tail in {}: {} bytes {} at offset {} ({} whole records of an unfinished batch; {})",
            self.segment.display(),
            self.bytes_cut,
            if self.cut {
                "cut"
            } else {
                "left in place (the next open for writing cuts them)"
            },
            self.offset,
            self.events_dropped,
            self.reason
        )?;
        match &self.kept_in {
            Some(kept) => write!(f, "; the bytes cut are kept in {}", kept.display()),
            None => Ok(()),
        }
    }
}

/// The first corruption found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corruption {
    /// The damaged file.
    pub file: PathBuf,
    /// Byte offset of the damage in it.
    pub offset: u64,
    /// What check failed.
    pub detail: String,
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}",
            format::location(&self.file, self.offset),
            self.detail
        )
    }
}

impl Corruption {
    /// As a [`StoreError::Corrupt`].
    pub fn to_error(&self) -> StoreError {
        StoreError::Corrupt {
            location: format::location(&self.file, self.offset),
            detail: self.detail.clone(),
        }
    }
}

/// What a scan found.
#[derive(Debug, Default)]
pub struct Scan {
    /// The index of every whole batch before any corruption.
    pub index: Index,
    /// Segment files scanned.
    pub segments: usize,
    /// Bytes of the log that hold whole batches.
    pub bytes: u64,
    /// The torn tail, if any.
    pub torn: Option<TornTail>,
    /// The first corruption, if any (the scan stopped there).
    pub corruption: Option<Corruption>,
    /// The last segment and its valid length, if there is a segment.
    pub last_segment: Option<(PathBuf, u64)>,
    /// Leftover temporary files removed (repair mode).
    pub removed: Vec<PathBuf>,
    /// Sealed segments whose index sidecar was read instead of the segment.
    pub sidecars_read: usize,
    /// Sidecars found missing, damaged or stale, so their segments were
    /// scanned; in repair mode each was written again.
    pub sidecars_rebuilt: Vec<PathBuf>,
    /// Whether sealed segments' sidecars are read.
    sidecars: Sidecars,
    /// The writer's durable mark, when the store has one: damage before it
    /// in the last segment is corruption, never a torn tail.
    mark: Option<DurableMark>,
    /// True when ids are indexed (and checked for duplicates) record by
    /// record, as [`follow`] does on an index that already has its ids;
    /// false for the open scan, which indexes them all at the end.
    indexed: bool,
}

/// Where a read-only store's view of the log ends: the last segment it
/// read and the end of the last whole batch in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tail {
    /// The last segment read.
    pub segment: PathBuf,
    /// Its first position.
    pub first_position: u64,
    /// The offset just past its last whole batch.
    pub end: u64,
}

impl Tail {
    /// Where `scan` (of a read-only open) left off, if it read a segment.
    pub fn of(scan: &Scan) -> Option<Self> {
        let (segment, end) = scan.last_segment.clone()?;
        let first_position = scan.index.segments.last()?.first_position;
        Some(Self {
            segment,
            first_position,
            end,
        })
    }
}

/// Scans the store in `dir`.
///
/// # Errors
/// [`StoreError::Io`] for unreadable files and
/// [`StoreError::IncompatibleFormat`] for a newer format. Corruption is not
/// an error here: it is in [`Scan::corruption`].
pub fn scan(dir: &Path, mode: Mode, sidecars: Sidecars) -> Result<Scan, StoreError> {
    let mut scan = Scan {
        mark: durable::load(dir)?,
        sidecars,
        ..Scan::default()
    };
    let mut segments = Vec::new();
    let entries =
        std::fs::read_dir(dir).map_err(|e| StoreError::io(format!("list {}", dir.display()), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io(format!("list {}", dir.display()), e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(first) = format::parse_segment_name(name) {
            segments.push((first, entry.path()));
        } else if name.ends_with(TEMP_SUFFIX) && mode == Mode::Repair {
            // A write that never reached its rename: its content never counted.
            segment::remove_durably(&entry.path())?;
            scan.removed.push(entry.path());
        }
    }
    segments.sort();
    let sizes: Vec<u64> = segments
        .iter()
        .map(|(_, path)| std::fs::metadata(path).map_or(0, |m| m.len()))
        .collect();
    let total: u64 = sizes.iter().sum();
    let mut seen = 0u64;
    let count = segments.len();
    for (i, (first, path)) in segments.into_iter().enumerate() {
        scan.segments += 1;
        let last = i + 1 == count;
        let rebuilt = scan.sidecars_rebuilt.len();
        if !scan_segment(&mut scan, &path, first, last)? {
            break;
        }
        if scan.sidecars_rebuilt.len() > rebuilt && mode == Mode::Repair {
            // The segment was scanned whole: its sidecar is written again
            // from what the scan found.
            let number = scan.index.segments.len() - 1;
            if let Err(e) = sidecar::write(&scan.index, number, sizes[i]) {
                tracing::warn!(
                    segment = %path.display(),
                    "the index sidecar could not be written again: {e}"
                );
            }
        }
        seen += sizes[i];
        // After the first segment, size the index for the rest of the log
        // (from the bytes per event so far), so it never rehashes.
        let head = scan.index.head();
        if i == 0 && scan.index.cold_segments() == 0 && head > 0 && !last {
            let per_event = (seen / head).max(1);
            scan.index
                .reserve(((total - seen) / per_event) as usize + 1024);
        }
    }
    // Every event id, checked for duplicates: the first one found in log
    // order is corruption at its record, and comes before any found by the
    // scan (the index holds only records before that).
    if let Err((position, earlier)) = scan.index.build_ids() {
        let id = scan.index.entry(position)?.id;
        let (file, offset) = scan.index.location(position)?;
        scan.corruption = Some(Corruption {
            file: file.to_path_buf(),
            offset,
            detail: format!("event id {id} is also at position {earlier}"),
        });
        scan.index.truncate(position - 1);
        scan.torn = None;
        scan.last_segment = None;
        return Ok(scan);
    }
    if let (Some(torn), Mode::Repair, None) = (&mut scan.torn, mode, &scan.corruption) {
        let kept_in = quarantine(torn)?;
        let writable = segment::open_for_append(&torn.segment)?;
        writable
            .set_len(torn.offset)
            .and_then(|()| writable.sync_all())
            .map_err(io_error(&torn.segment, "truncate"))?;
        torn.kept_in = kept_in;
        torn.cut = true;
        tracing::warn!(
            segment = %torn.segment.display(),
            offset = torn.offset,
            bytes_cut = torn.bytes_cut,
            "{torn}"
        );
    }
    Ok(scan)
}

/// Copies the bytes a torn-tail cut removes (without the preallocated
/// zeros that end them) into `<segment>.torn-<offset>` beside the segment,
/// synced, before the cut: nothing is destroyed without a trace. Returns
/// the file, or `None` when the cut holds only zeros.
///
/// # Errors
/// [`StoreError::Io`] when the bytes cannot be read or kept (the segment is
/// then not cut).
fn quarantine(torn: &TornTail) -> Result<Option<PathBuf>, StoreError> {
    use std::os::unix::fs::FileExt;
    let file = segment::open_for_read(&torn.segment)?;
    let mut bytes = vec![0u8; torn.bytes_cut as usize];
    file.read_exact_at(&mut bytes, torn.offset)
        .map_err(io_error(&torn.segment, "read"))?;
    let kept = bytes.len() - bytes.iter().rev().take_while(|&&b| b == 0).count();
    if kept == 0 {
        return Ok(None);
    }
    bytes.truncate(kept);
    let mut name = torn.segment.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".torn-{}", torn.offset));
    let path = torn.segment.with_file_name(name);
    segment::write_atomically(&path, &bytes)?;
    tracing::warn!(
        segment = %torn.segment.display(),
        kept_in = %path.display(),
        "the {kept} bytes of the torn tail at offset {} are kept in {}",
        torn.offset,
        path.display()
    );
    Ok(Some(path))
}

fn io_error(path: &Path, what: &str) -> impl FnOnce(std::io::Error) -> StoreError {
    let context = format!("{what} {}", path.display());
    move |e| StoreError::io(context, e)
}

/// Reads into `index` what another process's writer committed after
/// `tail` (the rest of the segment, and any segments it rolled over to;
/// with no tail, the log from its first segment), by the same rules as the
/// open scan: a batch still being written is left for the next call, damage
/// is corruption. Cheap when nothing was written: one `stat` and one lookup
/// of the next segment's name. Changes no file.
///
/// # Errors
/// As [`scan`]; corruption is returned as `Ok(Some(..))`, and `index` then
/// holds every whole batch before it.
pub fn follow(
    dir: &Path,
    index: &mut Index,
    tail: &mut Option<Tail>,
) -> Result<Option<Corruption>, StoreError> {
    // The writer rolled over when the segment the next event would start
    // exists and is not the one already being read (which, holding no
    // event yet, has that name too).
    let next = dir.join(format::segment_name(index.head() + 1));
    let rolled = tail.as_ref().is_none_or(|t| t.segment != next) && next.exists();
    let grew = match tail {
        Some(tail) => {
            std::fs::metadata(&tail.segment)
                .map_err(io_error(&tail.segment, "stat"))?
                .len()
                > tail.end
        }
        None => false,
    };
    if !grew && !rolled {
        return Ok(None);
    }
    // A segment the writer trims (on a roll) while it is read ends early:
    // forget what this pass read and read again.
    let (head, segments) = (index.committed(), index.segments.len());
    let mut attempts = 0;
    let scan = loop {
        let mut scan = Scan {
            index: std::mem::take(index),
            indexed: true,
            ..Scan::default()
        };
        let result = follow_segments(&mut scan, dir, tail.as_ref(), rolled);
        *index = scan.index;
        match result {
            // Bytes read while the writer wrote can look damaged when part
            // of a write was seen and part not (a record of zeros before a
            // later whole one): read again before calling it corruption.
            Ok(()) if scan.corruption.is_some() && attempts < 3 => {
                attempts += 1;
                index.truncate(head);
                index.segments.truncate(segments);
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            Ok(()) => {
                scan.index = Index::default();
                break scan;
            }
            Err(StoreError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::UnexpectedEof && attempts < 3 =>
            {
                attempts += 1;
                index.truncate(head);
                index.segments.truncate(segments);
            }
            Err(error) => {
                index.truncate(head);
                index.segments.truncate(segments);
                return Err(error);
            }
        }
    };
    if let Some((segment, end)) = scan.last_segment {
        *tail = Some(Tail {
            segment,
            first_position: index.segments.last().map_or(1, |s| s.first_position),
            end,
        });
    }
    Ok(scan.corruption)
}

fn follow_segments(
    scan: &mut Scan,
    dir: &Path,
    tail: Option<&Tail>,
    rolled: bool,
) -> Result<(), StoreError> {
    if let Some(tail) = tail
        && (!scan_segment_from(
            scan,
            &tail.segment,
            tail.first_position,
            !rolled,
            Some(tail.end),
        )? || !rolled)
    {
        return Ok(());
    }
    loop {
        let first = scan.index.head() + 1;
        let path = dir.join(format::segment_name(first));
        if !path.exists() {
            return Ok(());
        }
        // The writer creates the next segment only once it has finished
        // this one; a segment with no successor yet may still grow.
        let last = !later_segment_exists(dir, first)?;
        if !scan_segment_from(scan, &path, first, last, None)? || last {
            return Ok(());
        }
    }
}

/// True when `dir` holds a segment starting after position `first`.
fn later_segment_exists(dir: &Path, first: u64) -> Result<bool, StoreError> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| StoreError::io(format!("list {}", dir.display()), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io(format!("list {}", dir.display()), e))?;
        if let Some(name) = entry.file_name().to_str()
            && format::parse_segment_name(name).is_some_and(|n| n > first)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Takes a sealed segment from its index sidecar instead of its records:
/// as cold when every segment before it is (only its summary is read),
/// otherwise into the hot part (its records read too).
///
/// # Errors
/// Why the sidecar is not used, in one line; `index` is then unchanged.
fn use_sidecar(
    index: &mut Index,
    path: &Path,
    file: &File,
    first: u64,
    segment_len: u64,
) -> Result<(), String> {
    let summary = sidecar::read_summary(path, file, first, segment_len)?;
    if index.takes_cold() {
        return index.add_cold(summary);
    }
    let records = sidecar::read_records(path, &summary.facts)?;
    index.add_hot(&summary, &records)
}

/// Scans one segment into `scan`. Returns false when the scan must stop
/// (corruption found).
fn scan_segment(
    scan: &mut Scan,
    path: &Path,
    name_position: u64,
    last: bool,
) -> Result<bool, StoreError> {
    scan_segment_from(scan, path, name_position, last, None)
}

/// As [`scan_segment`]; with `resume`, continues a segment already in the
/// index from that offset (the end of its last whole batch read before).
fn scan_segment_from(
    scan: &mut Scan,
    path: &Path,
    name_position: u64,
    last: bool,
    resume: Option<u64>,
) -> Result<bool, StoreError> {
    let corrupt = |scan: &mut Scan, offset: u64, detail: String| {
        scan.corruption = Some(Corruption {
            file: path.to_path_buf(),
            offset,
            detail,
        });
        Ok(false)
    };
    let mut file = segment::open_for_read(path)?;
    let file_len = file.metadata().map_err(io_error(path, "stat"))?.len();
    let start = resume.unwrap_or(SEGMENT_HEADER_LEN as u64);
    if resume.is_none() {
        let mut buf = vec![0u8; SEGMENT_HEADER_LEN.min(file_len as usize)];
        file.read_exact(&mut buf).map_err(io_error(path, "read"))?;
        let first = match format::decode_segment_header(&buf) {
            Ok(first) => first,
            Err(HeaderError::Version(found)) => {
                return Err(StoreError::IncompatibleFormat {
                    location: path.display().to_string(),
                    found,
                    supported: format::FORMAT_VERSION,
                });
            }
            Err(HeaderError::Short) => {
                return corrupt(scan, 0, "segment is shorter than its header".into());
            }
            Err(HeaderError::Invalid(detail)) => return corrupt(scan, 0, detail),
        };
        let expected = scan.index.head() + 1;
        if first != name_position || first != expected {
            return corrupt(
                scan,
                0,
                format!(
                    "segment starts at position {first} (named {name_position}) but the log so far ends at {}",
                    expected - 1
                ),
            );
        }
        let read_file = Arc::new(segment::open_for_read(path)?);
        scan.index.segments.push(SegmentRef {
            first_position: first,
            path: Arc::from(path),
            file: Arc::clone(&read_file),
        });
        if !last && scan.sidecars == Sidecars::Use {
            match use_sidecar(&mut scan.index, path, &read_file, first, file_len) {
                Ok(()) => {
                    scan.bytes += file_len;
                    scan.index.commit();
                    scan.sidecars_read += 1;
                    return Ok(true);
                }
                Err(reason) => {
                    tracing::warn!(
                        segment = %path.display(),
                        "the segment's index sidecar is not used ({reason}): scanning the segment"
                    );
                    scan.sidecars_rebuilt.push(sidecar::path_of(path));
                }
            }
        }
    }
    // A resumed segment may have been trimmed below where it was read.
    let file_len = file_len.max(start);

    // Records. A read-ahead thread reads the segment and checks every
    // frame's checksum while this thread decodes and indexes.
    let chunks = ReadAhead::start(segment::open_for_read(path)?, path, start, file_len)?;
    let mut buf: Vec<u8> = Vec::new();
    let mut buf_start = start;
    // Frames before this offset had their length and checksum checked.
    let mut verified_end = buf_start;
    let mut pos = 0usize;
    let mut batch_end = start;
    let mut batch_head = scan.index.head();
    let mut last_stream: Option<(String, u32)> = None;
    let mut last_type: Option<(String, u32)> = None;
    let failure: Option<(u64, String)> = loop {
        let offset = buf_start + pos as u64;
        if offset == file_len {
            break None;
        }
        let decoded = if offset < verified_end {
            record::frame_body_len(&buf[pos..]).and_then(|body| {
                let len = record::FRAME_HEADER_LEN + body;
                record::decode_checked(&buf[pos..pos + len]).map(|record| (record, len))
            })
        } else {
            record::decode(&buf[pos..])
        };
        let (record, len) = match decoded {
            Ok(ok) => ok,
            Err(DecodeError::Incomplete { needed, .. }) => {
                if offset + needed as u64 > file_len {
                    break Some((
                        offset,
                        format!(
                            "record of {needed} bytes runs past the end of the file ({} bytes left)",
                            file_len - offset
                        ),
                    ));
                }
                let Some(chunk) = chunks.next()? else {
                    return Err(StoreError::io(
                        format!("scan {}", path.display()),
                        std::io::Error::other("the read-ahead thread stopped early"),
                    ));
                };
                if pos == buf.len() {
                    buf = chunk.bytes;
                } else {
                    buf.drain(..pos);
                    buf.extend_from_slice(&chunk.bytes);
                }
                buf_start = offset;
                pos = 0;
                if chunk.verified {
                    verified_end = chunk.end;
                }
                continue;
            }
            Err(DecodeError::Invalid(detail)) => break Some((offset, detail)),
        };
        // A whole record with a good checksum: it must continue the log.
        let position = scan.index.head() + 1;
        if record.position != position {
            return corrupt(
                scan,
                offset,
                format!(
                    "record has position {}, expected {position}",
                    record.position
                ),
            );
        }
        if position > MAX_EVENTS {
            return corrupt(scan, offset, format!("more than {MAX_EVENTS} events"));
        }
        let stream = match &last_stream {
            Some((name, i)) if name == record.stream => *i,
            _ => match scan.index.intern_stream(record.stream) {
                Ok(i) => {
                    last_stream = Some((record.stream.to_owned(), i));
                    i
                }
                Err(reason) => return corrupt(scan, offset, reason),
            },
        };
        let event_type = match &last_type {
            Some((name, i)) if name == record.event_type => *i,
            _ => {
                let i = scan.index.types.intern(record.event_type);
                last_type = Some((record.event_type.to_owned(), i));
                i
            }
        };
        let version = scan.index.stream_len(stream) + 1;
        if record.version != version {
            return corrupt(
                scan,
                offset,
                format!(
                    "record of stream {} has version {}, expected {version}",
                    record.stream, record.version
                ),
            );
        }
        let Ok(entry_offset) = u32::try_from(offset) else {
            return corrupt(scan, offset, "segment is larger than 4 GiB".into());
        };
        let entry = Entry {
            id: record.id,
            offset: entry_offset,
            stream,
            event_type,
        };
        if scan.indexed {
            // A reader following a writer: a new id among the cold ones
            // (rare: fresh ids lie past them) is checked against them too.
            scan.index.index_cold_ids_for(std::iter::once(&record.id))?;
            if let Some(earlier) = scan.index.find_id(&record.id) {
                scan.index.truncate(batch_head);
                return corrupt(
                    scan,
                    offset,
                    format!("event id {} is also at position {earlier}", record.id),
                );
            }
            scan.index.push(entry);
        } else {
            // Ids are indexed, and checked for duplicates, after the scan.
            scan.index.push_unindexed(entry);
        }
        pos += len;
        if record.ends_batch() {
            batch_end = offset + len as u64;
            batch_head = scan.index.head();
        }
    };

    // Every byte of this segment before the durable mark was acknowledged
    // after its fsync: damage there is corruption, never a torn tail.
    let durable_to = scan
        .mark
        .filter(|mark| last && mark.segment_first == name_position)
        .map_or(0, |mark| mark.offset);
    let before_mark = |what: &str| {
        format!(
            "{what}; the segment was durable up to offset {durable_to} (acknowledged after \
             fsync), so this is damage, not a torn tail"
        )
    };
    let (offset, reason) = match failure {
        None if batch_end == file_len && file_len < durable_to => {
            scan.index.truncate(batch_head);
            let detail = before_mark("the segment ends early");
            return corrupt(scan, file_len, detail);
        }
        None if batch_end == file_len => {
            scan.bytes += file_len;
            scan.index.commit();
            if last {
                scan.last_segment = Some((path.to_path_buf(), file_len));
            }
            return Ok(true);
        }
        None => (file_len, "the file ends inside a batch".to_owned()),
        Some(failure) => failure,
    };
    if !last {
        scan.index.truncate(batch_head);
        return corrupt(scan, offset, reason);
    }
    if offset < durable_to {
        scan.index.truncate(batch_head);
        let detail = before_mark(&reason);
        return corrupt(scan, offset, detail);
    }
    if offset == batch_end && zeros_to_end(&file, offset, file_len, path)? {
        // The preallocated free space of the open segment: the log ends here.
        scan.bytes += offset;
        scan.index.commit();
        scan.last_segment = Some((path.to_path_buf(), offset));
        return Ok(true);
    }
    // The last segment: a torn tail, or corruption?
    let bad_position = scan.index.head() + 1;
    if let Some(valid_after) = later_write_after(&mut file, offset, bad_position, path)? {
        scan.index.truncate(batch_head);
        return corrupt(
            scan,
            offset,
            format!("{reason}; a later write follows intact at offset {valid_after}"),
        );
    }
    let events_dropped = scan.index.head() - batch_head;
    scan.index.truncate(batch_head);
    scan.index.commit();
    let torn = TornTail {
        segment: path.to_path_buf(),
        offset: batch_end,
        bytes_cut: file_len - batch_end,
        events_dropped,
        reason,
        kept_in: None,
        cut: false,
    };
    // Cut (in repair mode) once the whole log is known to be sound.
    scan.bytes += batch_end;
    scan.torn = Some(torn);
    scan.last_segment = Some((path.to_path_buf(), batch_end));
    Ok(true)
}

/// Bytes of a segment read ahead by [`ReadAhead`].
struct Chunk {
    /// Offset just past the chunk.
    end: u64,
    /// The bytes.
    bytes: Vec<u8>,
    /// True when the bytes are whole frames with valid checksums; false for
    /// the rest of the file after the first frame that is not.
    verified: bool,
}

/// A thread that reads a segment in chunks and checks each frame's length
/// and checksum, so the scan decodes and indexes on one core while the
/// kernel's copying and the checksums run on another. It stops at the
/// first frame that does not check out and hands over the rest of the file
/// unchecked: the scan's own rules judge it.
struct ReadAhead {
    rx: std::sync::mpsc::Receiver<std::io::Result<Chunk>>,
    path: PathBuf,
}

impl ReadAhead {
    fn start(file: File, path: &Path, start: u64, end: u64) -> Result<Self, StoreError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(2);
        std::thread::Builder::new()
            .name("logbook-file-scan".into())
            .spawn(move || {
                if let Err(e) = read_ahead(&file, start, end, &tx) {
                    let _ = tx.send(Err(e));
                }
            })
            .map_err(|e| StoreError::io("start the file store's scan thread", e))?;
        Ok(Self {
            rx,
            path: path.to_path_buf(),
        })
    }

    /// The next chunk; `None` when the file has been read.
    fn next(&self) -> Result<Option<Chunk>, StoreError> {
        match self.rx.recv() {
            Ok(Ok(chunk)) => Ok(Some(chunk)),
            Ok(Err(e)) => Err(io_error(&self.path, "read")(e)),
            Err(_) => Ok(None),
        }
    }
}

fn read_ahead(
    file: &File,
    start: u64,
    end: u64,
    tx: &std::sync::mpsc::SyncSender<std::io::Result<Chunk>>,
) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom};
    // Reads `len` bytes at the cursor onto `buf`'s end (without zeroing
    // the room first, as `read_exact` into a resized buffer would).
    let read_onto = |file: &File, buf: &mut Vec<u8>, len: usize| -> std::io::Result<()> {
        buf.reserve(len);
        let got = file.take(len as u64).read_to_end(buf)?;
        if got < len {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    };
    (&*file).seek(SeekFrom::Start(start))?;
    // `pending` holds the bytes from `base` on not sent yet.
    let mut pending: Vec<u8> = Vec::new();
    let mut base = start;
    let mut read_to = start;
    let mut need = SCAN_CHUNK;
    while read_to < end {
        let want = (need.max(SCAN_CHUNK) as u64).min(end - read_to) as usize;
        read_onto(file, &mut pending, want)?;
        read_to += want as u64;
        let mut at = 0;
        let mut bad = false;
        need = SCAN_CHUNK;
        while at < pending.len() {
            match record::check_frame(&pending[at..]) {
                Ok(len) => at += len,
                Err(DecodeError::Incomplete { needed, .. }) => {
                    bad = base + (at + needed) as u64 > end;
                    need = needed - (pending.len() - at);
                    break;
                }
                Err(DecodeError::Invalid(_)) => {
                    bad = true;
                    break;
                }
            }
        }
        if at > 0 {
            let rest = pending.split_off(at);
            base += at as u64;
            let bytes = std::mem::replace(&mut pending, rest);
            if tx
                .send(Ok(Chunk {
                    end: base,
                    bytes,
                    verified: true,
                }))
                .is_err()
            {
                return Ok(());
            }
        }
        if bad {
            // Hand over the rest of the file as it is.
            read_onto(file, &mut pending, (end - read_to) as usize)?;
            let _ = tx.send(Ok(Chunk {
                end,
                bytes: pending,
                verified: false,
            }));
            return Ok(());
        }
    }
    if !pending.is_empty() {
        let _ = tx.send(Ok(Chunk {
            end,
            bytes: pending,
            verified: false,
        }));
    }
    Ok(())
}

/// True when every byte of `path` from `from` to `end` is zero.
fn zeros_to_end(file: &File, from: u64, end: u64, path: &Path) -> Result<bool, StoreError> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; (end - from).min(1 << 20) as usize];
    let mut at = from;
    while at < end {
        let n = (end - at).min(buf.len() as u64) as usize;
        file.read_exact_at(&mut buf[..n], at)
            .map_err(io_error(path, "read"))?;
        if buf[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
        at += n as u64;
    }
    Ok(true)
}

/// Looks for whole records after a bad one at `bad` (which should have
/// held position `bad_position`): returns the offset of a whole record of a
/// write that began after the bad bytes, if any. Only the one write in
/// flight at a crash may be torn, so a later write that reached the disk
/// means the bad bytes are damage, not a torn tail.
fn later_write_after(
    file: &mut File,
    bad: u64,
    bad_position: u64,
    path: &Path,
) -> Result<Option<u64>, StoreError> {
    use std::io::{Seek, SeekFrom};
    let mut tail = Vec::new();
    file.seek(SeekFrom::Start(bad))
        .and_then(|_| file.read_to_end(&mut tail))
        .map_err(io_error(path, "read"))?;
    let mut at = 1usize;
    while at < tail.len() {
        match record::decode(&tail[at..]) {
            Ok((record, len)) => {
                if record.write_start() > bad_position {
                    return Ok(Some(bad + at as u64));
                }
                at += len;
            }
            Err(_) => at += 1,
        }
    }
    Ok(None)
}
