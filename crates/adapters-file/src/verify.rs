//! [`verify`]: walk a store and report what it holds and the first
//! corruption, without taking the write lock and without changing a byte.
//! It reads every record of every segment and checks its checksum: it never
//! uses the index sidecars (they only let an open skip that work).

use std::fmt;
use std::path::Path;

use logbook_ports::StoreError;

use crate::format::{PROJECTIONS_DIR, SNAPSHOTS_DIR};
use crate::recovery::{self, Corruption, Mode, Sidecars, TornTail};
use crate::{checkpoints, subject_keys};
use crate::{projections, snapshots};

/// What [`verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Segment files read.
    pub segments: usize,
    /// Events in whole batches, before any corruption.
    pub events: u64,
    /// Streams among them.
    pub streams: usize,
    /// Bytes of the log holding them.
    pub bytes: u64,
    /// Snapshot files checked.
    pub snapshots: usize,
    /// Read models' document files checked.
    pub projections: usize,
    /// Subscribers' checkpoints read.
    pub checkpoints: usize,
    /// Data subjects' keys and tombstones read.
    pub subject_keys: usize,
    /// A torn tail (a write cut short by a crash, or in progress now): not
    /// corruption; opening the store for writing cuts it off.
    pub torn_tail: Option<TornTail>,
    /// The first corruption found; the walk stopped there.
    pub corruption: Option<Corruption>,
}

impl VerifyReport {
    /// True when no corruption was found.
    pub fn is_ok(&self) -> bool {
        self.corruption.is_none()
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} events in {} streams, {} segments ({} bytes), {} snapshots, {} projections, {} checkpoints, {} subject keys",
            self.events,
            self.streams,
            self.segments,
            self.bytes,
            self.snapshots,
            self.projections,
            self.checkpoints,
            self.subject_keys
        )?;
        if let Some(torn) = &self.torn_tail {
            writeln!(f, "{torn}")?;
        }
        match &self.corruption {
            Some(corruption) => writeln!(f, "CORRUPT: {corruption}"),
            None => writeln!(f, "no corruption found"),
        }
    }
}

/// Reads every record of the store in `dir` (checksums, framing, positions,
/// versions, unique ids), every snapshot file, every read model's document
/// file, the checkpoints file and the subject-keys file.
/// Takes no lock and writes nothing, so it may run while the store is open.
///
/// # Errors
/// [`StoreError::Io`] when `dir` or a file cannot be read and
/// [`StoreError::IncompatibleFormat`] for a newer format. Corruption is
/// not an error: it is [`VerifyReport::corruption`].
pub fn verify(dir: impl AsRef<Path>) -> Result<VerifyReport, StoreError> {
    let dir = dir.as_ref();
    let scan = recovery::scan(dir, Mode::ReadOnly, Sidecars::Ignore)?;
    let mut report = VerifyReport {
        segments: scan.segments,
        events: scan.index.head(),
        streams: (0..scan.index.stream_count())
            .filter(|&i| scan.index.stream_len(i as u32) > 0)
            .count(),
        bytes: scan.bytes,
        torn_tail: scan.torn,
        corruption: scan.corruption,
        ..VerifyReport::default()
    };
    if report.corruption.is_some() {
        return Ok(report);
    }
    match checkpoints::load(dir) {
        Ok(map) => report.checkpoints = map.len(),
        Err(StoreError::Corrupt { .. }) => {
            report.corruption = Some(Corruption {
                file: dir.join(crate::format::CHECKPOINTS_FILE),
                offset: 0,
                detail: "checkpoints file fails its checksum or framing".into(),
            });
            return Ok(report);
        }
        Err(e) => return Err(e),
    }
    match subject_keys::load(dir) {
        Ok(keys) => report.subject_keys = keys.len(),
        Err(StoreError::Corrupt { location, detail }) => {
            report.corruption = Some(Corruption {
                file: dir.join(crate::format::SUBJECT_KEYS_FILE),
                offset: 0,
                detail: format!("{detail} ({location})"),
            });
            return Ok(report);
        }
        Err(e) => return Err(e),
    }
    report.snapshots = match check_files(&dir.join(SNAPSHOTS_DIR), |path, bytes| {
        snapshots::decode(path, bytes, None).map(drop)
    })? {
        Ok(count) => count,
        Err(corruption) => {
            report.corruption = Some(corruption);
            return Ok(report);
        }
    };
    report.projections = match check_files(&dir.join(PROJECTIONS_DIR), |path, bytes| {
        projections::decode(path, bytes, None).map(drop)
    })? {
        Ok(count) => count,
        Err(corruption) => {
            report.corruption = Some(corruption);
            return Ok(report);
        }
    };
    Ok(report)
}

/// Decodes every file of `dir` (none when it is missing) but unfinished
/// temporary ones: how many, or the first corruption.
fn check_files(
    dir: &Path,
    decode: impl Fn(&Path, &[u8]) -> Result<(), StoreError>,
) -> Result<Result<usize, Corruption>, StoreError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Ok(0));
    };
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    let mut count = 0;
    for path in paths {
        if path.extension().is_some_and(|ext| ext == "tmp") {
            continue;
        }
        let bytes = std::fs::read(&path)
            .map_err(|e| StoreError::io(format!("read {}", path.display()), e))?;
        match decode(&path, &bytes) {
            Ok(()) => count += 1,
            Err(StoreError::Corrupt { detail, .. }) => {
                return Ok(Err(Corruption {
                    file: path,
                    offset: 0,
                    detail,
                }));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Ok(count))
}
