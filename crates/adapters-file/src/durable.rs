//! The durable mark: a small sidecar file (`durable`) in which the writer
//! records, after each fsync of the open segment, how far that segment is
//! known to be on disk. Recovery uses it to tell damage from a torn tail:
//! a bad record *before* the mark was acknowledged after its fsync, so it is
//! corruption, reported and never cut; only bytes past the mark can be the
//! one write a crash interrupted.
//!
//! The file is one sealed envelope (magic `LBDURABL`, CRC32C) holding the
//! segment's first position and the offset, 36 bytes rewritten in place
//! with one positioned write after the segment's fsync has returned, so it
//! never claims more than is durable. It is not synced itself: after a
//! power cut it may lag (protecting fewer bytes), never lead.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use logbook_ports::StoreError;

use crate::format::{self, DURABLE_FILE, DURABLE_MAGIC};

/// How far a segment is known to be durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurableMark {
    /// The first position of the segment (its name).
    pub segment_first: u64,
    /// Every byte of that segment before this offset was synced to disk.
    pub offset: u64,
}

impl DurableMark {
    fn encode(self) -> Vec<u8> {
        let mut body = Vec::with_capacity(16);
        body.extend_from_slice(&self.segment_first.to_le_bytes());
        body.extend_from_slice(&self.offset.to_le_bytes());
        format::seal(DURABLE_MAGIC, &body)
    }
}

/// The mark in `dir`, if the store has one (stores written before the mark
/// existed, or never synced, have none; an empty file is none).
///
/// # Errors
/// [`StoreError::Corrupt`] naming the file when it fails its checksum or
/// framing (removing it makes recovery fall back to the torn-tail rule
/// alone); [`StoreError::IncompatibleFormat`] for a newer format;
/// [`StoreError::Io`] when it cannot be read.
pub fn load(dir: &Path) -> Result<Option<DurableMark>, StoreError> {
    let path = dir.join(DURABLE_FILE);
    // A writer rewrites the mark in place while a reader may read it: a
    // mark that does not check out is read again a few times first.
    let mut attempts = 0;
    let bytes = loop {
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io(format!("read {}", path.display()), e)),
        };
        // Created by a writer that has not synced anything yet.
        if bytes.is_empty() {
            return Ok(None);
        }
        match format::unseal(DURABLE_MAGIC, &path, &bytes, "durable mark") {
            Err(StoreError::Corrupt { .. }) if attempts < 3 => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            Err(error) => return Err(error),
            Ok(_) => break bytes,
        }
    };
    let body = format::unseal(DURABLE_MAGIC, &path, &bytes, "durable mark")?;
    let (Some(first), Some(offset)) = (body.get(..8), body.get(8..16)) else {
        return Err(StoreError::Corrupt {
            location: format::location(&path, 0),
            detail: "durable mark is shorter than its 16 bytes".into(),
        });
    };
    Ok(Some(DurableMark {
        segment_first: u64::from_le_bytes(first.try_into().expect("8 bytes")),
        offset: u64::from_le_bytes(offset.try_into().expect("8 bytes")),
    }))
}

/// The writer's handle on the mark file.
#[derive(Debug)]
pub struct MarkWriter {
    file: File,
    path: PathBuf,
}

impl MarkWriter {
    /// Opens (creating it if needed) the mark file of the store in `dir`.
    ///
    /// # Errors
    /// [`StoreError::Io`] when it cannot be opened for writing.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(DURABLE_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::io(format!("open {}", path.display()), e))?;
        Ok(Self { file, path })
    }

    /// Records that the segment whose first position is `segment_first` is
    /// durable up to `offset`. Call only after its fsync returned. A
    /// failure is logged, not returned: the mark then protects less, and
    /// nothing acknowledged is at risk.
    pub fn record(&self, segment_first: u64, offset: u64) {
        let bytes = DurableMark {
            segment_first,
            offset,
        }
        .encode();
        if let Err(e) = self.file.write_all_at(&bytes, 0) {
            tracing::warn!(file = %self.path.display(), "updating the durable mark failed: {e}");
        }
    }
}
