//! Segment files and the small file operations everything else builds on:
//! creating a segment atomically, fsyncing a directory, replacing a file
//! atomically, and reading records at an offset through a window buffer.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use logbook_ports::StoreError;

use crate::format::{self, SEGMENT_HEADER_LEN, TEMP_SUFFIX};
use crate::record::{self, DecodeError, FRAME_HEADER_LEN, Record};

/// Fsyncs a directory, so that names created, renamed or removed in it
/// survive a crash.
///
/// # Errors
/// [`StoreError::Io`] naming the directory.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(format!("fsync directory {}", dir.display()), e))
}

/// Replaces `path` with `bytes` atomically: write a temporary file, fsync
/// it, rename it over `path`, fsync the directory. A crash leaves either
/// the old file or the new one, never a mix.
///
/// # Errors
/// [`StoreError::Io`] naming the file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let temp = temp_path(path);
    let io = |what: &str, e| StoreError::io(format!("{what} {}", temp.display()), e);
    let mut file = File::create(&temp).map_err(|e| io("create", e))?;
    file.write_all(bytes).map_err(|e| io("write", e))?;
    file.sync_all().map_err(|e| io("fsync", e))?;
    drop(file);
    std::fs::rename(&temp, path).map_err(|e| {
        StoreError::io(
            format!("rename {} over {}", temp.display(), path.display()),
            e,
        )
    })?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Removes `path` if it exists and fsyncs its directory.
///
/// # Errors
/// [`StoreError::Io`] naming the file.
pub fn remove_durably(path: &Path) -> Result<(), StoreError> {
    match std::fs::remove_file(path) {
        Ok(()) => sync_dir(path.parent().unwrap_or(Path::new("."))),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::io(format!("remove {}", path.display()), e)),
    }
}

/// `path` with the temporary suffix.
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(TEMP_SUFFIX);
    path.with_file_name(name)
}

/// Creates the segment starting at `first_position` in `dir`, atomically
/// (header written to a temporary file, fsynced, renamed, directory
/// fsynced), and opens it for appending. Returns the path and the handle.
///
/// # Errors
/// [`StoreError::Io`] naming the segment.
pub fn create(dir: &Path, first_position: u64) -> Result<(PathBuf, File), StoreError> {
    let path = dir.join(format::segment_name(first_position));
    write_atomically(&path, &format::encode_segment_header(first_position))?;
    let file = open_for_append(&path)?;
    Ok((path, file))
}

/// Opens an existing segment for writing at its end (positioned writes).
///
/// # Errors
/// [`StoreError::Io`] naming the segment.
pub fn open_for_append(path: &Path) -> Result<File, StoreError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| StoreError::io(format!("open {} for writing", path.display()), e))
}

/// Opens a segment for reading.
///
/// # Errors
/// [`StoreError::Io`] naming the segment.
pub fn open_for_read(path: &Path) -> Result<File, StoreError> {
    File::open(path).map_err(|e| StoreError::io(format!("open {}", path.display()), e))
}

/// Reads up to `len` bytes at `offset` into `buf` (fewer at the end of the
/// file). Returns how many.
fn read_up_to(file: &File, offset: u64, buf: &mut Vec<u8>, len: usize) -> std::io::Result<usize> {
    buf.clear();
    buf.resize(len, 0);
    let mut filled = 0;
    while filled < len {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(filled)
}

/// Reads records at known offsets, keeping a window of the file in memory
/// so that neighbouring records (a replay, a stream written in batches)
/// cost one read call, not one each.
#[derive(Debug)]
pub struct RecordReader {
    buf: Vec<u8>,
    segment: Option<u64>,
    start: u64,
    window: usize,
}

impl RecordReader {
    /// A reader that reads `window` bytes at a time (at least one frame).
    pub fn new(window: usize) -> Self {
        Self {
            buf: Vec::new(),
            segment: None,
            start: 0,
            window: window.max(SEGMENT_HEADER_LEN),
        }
    }

    /// The record at `offset` of the segment (`first_position` names it,
    /// `path` is for errors), checksum verified.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] naming the file and offset when the bytes
    /// there are not a whole, valid record; [`StoreError::Io`].
    pub fn read(
        &mut self,
        file: &File,
        first_position: u64,
        path: &Path,
        offset: u64,
    ) -> Result<Record<'_>, StoreError> {
        let cached = self.segment == Some(first_position)
            && offset >= self.start
            && offset < self.start + self.buf.len() as u64;
        // The checksum is computed once per record: a cached frame that
        // checks out is decoded in place; anything else (incomplete,
        // invalid: perhaps a stale window read before the record was
        // written) is read again from the record's start.
        let needed = if cached {
            let at = (offset - self.start) as usize;
            match record::check_frame(&self.buf[at..]) {
                Ok(_) => None,
                Err(DecodeError::Incomplete { needed, .. }) => Some(needed),
                Err(DecodeError::Invalid(_)) => Some(0),
            }
        } else {
            Some(0)
        };
        if let Some(needed) = needed {
            let len = self.window.max(needed);
            read_up_to(file, offset, &mut self.buf, len).map_err(|e| {
                StoreError::io(format!("read {} at offset {offset}", path.display()), e)
            })?;
            self.segment = Some(first_position);
            self.start = offset;
        }
        let at = (offset - self.start) as usize;
        let bytes = &self.buf[at..];
        let checked = match needed {
            None => record::frame_body_len(bytes).map(|len| FRAME_HEADER_LEN + len),
            Some(_) => record::check_frame(bytes),
        };
        match checked.and_then(|len| record::decode_checked(&bytes[..len])) {
            Ok(record) => Ok(record),
            Err(e) => Err(StoreError::Corrupt {
                location: format::location(path, offset),
                detail: e.to_string(),
            }),
        }
    }
}
