//! Stream retention on the file store: the policies in one small file,
//! `retention`, and the scavenge that rewrites sealed segments with the
//! records retention lets go cut down to their fixed fields.
//!
//! The rule is `logbook_ports::retention`; this module keeps the states,
//! computes each stream's cutoff with it and applies the answer.
//!
//! A scavenge rewrites only sealed segments (every one but the last, which
//! the writer appends to and never goes back to). Each record it reclaims
//! keeps its frame, position, version, id, stream, type and time, loses
//! its metadata and payload, and is marked with the reclaimed flag; every
//! other record is copied byte for byte. So positions stay gap-free in the
//! files, recovery, the index and `verify` read a rewritten segment as any
//! other, and the event ids stay known (a retry of a reclaimed batch is
//! still recognised). The new segment is written to `NAME.tmp`, fsynced,
//! renamed over `NAME` and the directory fsynced; only then does the index
//! take the new offsets and file, under its write lock, so a reader uses
//! either the old file with the old offsets or the new with the new.

use std::collections::{BTreeMap, HashMap};
use std::io::ErrorKind;
use std::path::Path;
use std::sync::{Arc, PoisonError};

use chrono::{DateTime, Utc};
use logbook_ports::StoreError;
use logbook_ports::retention::{Cutoff, RetentionState, ScavengeReport};

use crate::format::{self, RETENTION_FILE, RETENTION_MAGIC, SEGMENT_HEADER_LEN};
use crate::index::{Index, SegmentRef};
use crate::record::{self, FLAG_RECLAIMED, Record};
use crate::segment;
use crate::sidecar;
use crate::store::Core;

/// Stream id to its retention state.
pub type Retentions = BTreeMap<String, RetentionState>;

/// Encodes the retention file: count u32, then per stream: id length
/// u32, id UTF-8, state length u32, the state as the ports encode it.
pub fn encode(retentions: &Retentions) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(retentions.len() as u32).to_le_bytes());
    for (stream, state) in retentions {
        let state = state.encode();
        for part in [stream.as_bytes(), state.as_bytes()] {
            body.extend_from_slice(&(part.len() as u32).to_le_bytes());
            body.extend_from_slice(part);
        }
    }
    format::seal(RETENTION_MAGIC, &body)
}

/// Decodes the retention file.
///
/// # Errors
/// [`StoreError::Corrupt`] naming the file.
pub fn decode(path: &Path, bytes: &[u8]) -> Result<Retentions, StoreError> {
    let location = || path.display().to_string();
    let corrupt = |detail: &str| StoreError::Corrupt {
        location: location(),
        detail: format!("stream retention: {detail}"),
    };
    let mut body = format::unseal(RETENTION_MAGIC, path, bytes, "retention file")?;
    let mut take = |n: usize| -> Result<&[u8], StoreError> {
        let (head, rest) = body
            .split_at_checked(n)
            .ok_or_else(|| corrupt("cut short"))?;
        body = rest;
        Ok(head)
    };
    let count = u32_at(take(4)?);
    let mut retentions = Retentions::new();
    for _ in 0..count {
        let n = u32_at(take(4)?);
        let stream = std::str::from_utf8(take(n)?)
            .map_err(|_| corrupt("stream id is not UTF-8"))?
            .to_owned();
        let n = u32_at(take(4)?);
        let text = std::str::from_utf8(take(n)?).map_err(|_| corrupt("state is not UTF-8"))?;
        retentions.insert(stream, RetentionState::decode(text, location)?);
    }
    Ok(retentions)
}

fn u32_at(bytes: &[u8]) -> usize {
    u32::from_le_bytes(bytes.try_into().expect("4 bytes")) as usize
}

/// Reads the retention file of the store in `dir` (empty when absent).
///
/// # Errors
/// [`StoreError::Corrupt`] or [`StoreError::Io`] naming the file.
pub fn load(dir: &Path) -> Result<Retentions, StoreError> {
    let path = dir.join(RETENTION_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => decode(&path, &bytes),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Retentions::new()),
        Err(e) => Err(StoreError::io(format!("read {}", path.display()), e)),
    }
}

/// Each stream's cutoff at `now`, by stream number, for the streams with a
/// policy that the index knows.
pub fn cutoffs(core: &Core, index: &Index, now: DateTime<Utc>) -> HashMap<u32, Cutoff> {
    let retentions = core
        .retention
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    retentions
        .iter()
        .filter_map(|(stream, state)| {
            let number = index.stream_number(stream)?;
            let last = index.visible_len(number);
            Some((number, state.cutoff(now, last)))
        })
        .collect()
}

/// Reclaims what retention lets go in every sealed segment.
///
/// # Errors
/// [`StoreError::Io`] and [`StoreError::Corrupt`] naming the segment; a
/// segment not yet renamed into place is left as it was.
pub fn scavenge(core: &Core) -> Result<ScavengeReport, StoreError> {
    let _one_at_a_time = core
        .scavenge_lock
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let now = Utc::now();
    let (sealed, cutoffs) = {
        let index = core.shared.index();
        let cutoffs = cutoffs(core, &index, now);
        let count = index.segments.len().saturating_sub(1);
        (index.segments[..count].to_vec(), cutoffs)
    };
    let mut report = ScavengeReport::default();
    if cutoffs.is_empty() {
        return Ok(report);
    }
    let mut per_stream: HashMap<u32, (u64, u64)> = HashMap::new();
    for (i, seg) in sealed.iter().enumerate() {
        let Some(rewrite) = rewrite_segment(core, seg, &cutoffs, &mut per_stream)? else {
            continue;
        };
        // The old sidecar goes first: a crash before the new one is written
        // leaves none, and the next open scans the rewritten segment.
        sidecar::remove(&seg.path)?;
        segment::write_atomically(&seg.path, &rewrite.bytes)?;
        let file = Arc::new(segment::open_for_read(&seg.path)?);
        let mut index = core
            .shared
            .index
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        for (position, offset) in rewrite.offsets {
            index.set_offset(position, offset)?;
        }
        index.segments[i].file = file;
        drop(index);
        let index = core.shared.index();
        if let Err(e) = sidecar::write(&index, i, rewrite.bytes.len() as u64) {
            tracing::warn!(
                segment = %seg.path.display(),
                "the index sidecar of the rewritten segment could not be written: {e}"
            );
        }
    }
    for (events, bytes) in per_stream.into_values() {
        report.add_stream(events, bytes);
    }
    Ok(report)
}

/// A segment's new bytes and the new offset of each of its records.
struct Rewrite {
    bytes: Vec<u8>,
    offsets: Vec<(u64, u32)>,
}

/// The segment with its reclaimable records cut down, or `None` when it
/// has none.
fn rewrite_segment(
    core: &Core,
    seg: &SegmentRef,
    cutoffs: &HashMap<u32, Cutoff>,
    per_stream: &mut HashMap<u32, (u64, u64)>,
) -> Result<Option<Rewrite>, StoreError> {
    let bytes = std::fs::read(&seg.path)
        .map_err(|e| StoreError::io(format!("read {}", seg.path.display()), e))?;
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(bytes.get(..SEGMENT_HEADER_LEN).unwrap_or_default());
    let mut offsets = Vec::new();
    let mut changed = false;
    let mut at = SEGMENT_HEADER_LEN;
    while at < bytes.len() {
        let (record, len) = record::decode(&bytes[at..]).map_err(|e| StoreError::Corrupt {
            location: format::location(&seg.path, at as u64),
            detail: e.to_string(),
        })?;
        let number = core.shared.index().entry(record.position)?.stream;
        let recorded_at = DateTime::from_timestamp_micros(record.recorded_at_micros)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let reclaim = !record.is_reclaimed()
            && cutoffs
                .get(&number)
                .is_some_and(|cut| cut.reclaims(record.version, recorded_at));
        offsets.push((
            record.position,
            u32::try_from(out.len()).unwrap_or(u32::MAX),
        ));
        if reclaim {
            let counted = per_stream.entry(number).or_default();
            counted.0 += 1;
            counted.1 += (record.metadata.len() + record.payload.len()) as u64;
            let cut_down = Record {
                flags: record.flags | FLAG_RECLAIMED,
                metadata: &[],
                payload: &[],
                ..record
            };
            record::encode(&cut_down, &mut out);
            changed = true;
        } else {
            out.extend_from_slice(&bytes[at..at + len]);
        }
        at += len;
    }
    Ok(changed.then_some(Rewrite {
        bytes: out,
        offsets,
    }))
}
