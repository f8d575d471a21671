//! What every file-store port shares to reach the disk from async code:
//! running blocking work off the async threads, and reading a small file
//! that may not exist yet (snapshots, projection documents, index sidecars).

use std::io::ErrorKind;
use std::path::Path;

use logbook_ports::StoreError;

/// Runs `work` on tokio's blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StoreError::backend("file", "running on a blocking thread", e))?
}

/// The bytes of the file at `path`, or `None` when there is none.
pub(crate) fn read_if_present(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::io(format!("read {}", path.display()), e)),
    }
}
