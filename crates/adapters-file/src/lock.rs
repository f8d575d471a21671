//! The single-writer rule: an exclusive lock on the store directory's
//! `LOCK` file, held for as long as the store is open for writing. The
//! operating system releases it when the process dies, so a crash never
//! leaves a stale lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

use logbook_ports::StoreError;

use crate::format::LOCK_FILE;

/// The held lock; released on drop.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

/// Takes the exclusive lock of the store in `dir`, without waiting.
///
/// # Errors
/// [`StoreError::Locked`] when another process (or another open store in
/// this one) holds it; [`StoreError::Io`] when the lock file cannot be
/// opened.
pub fn acquire(dir: &Path) -> Result<DirLock, StoreError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| {
            StoreError::io(
                format!("cannot open the lock file of file store {}", dir.display()),
                logbook_ports::paths::explained(&path, &e),
            )
        })?;
    match file.try_lock() {
        Ok(()) => Ok(DirLock { _file: file }),
        Err(TryLockError::WouldBlock) => Err(StoreError::Locked {
            path: dir.to_path_buf(),
        }),
        Err(TryLockError::Error(e)) => Err(StoreError::io(format!("lock {}", path.display()), e)),
    }
}
