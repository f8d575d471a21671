//! A small pool of read connections. rusqlite blocks, so every read runs on
//! tokio's blocking pool, never on a runtime worker; a semaphore keeps at
//! most [`SqliteOptions::readers`] of them at once, each on its own
//! connection (WAL lets them read while the writer writes).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use logbook_ports::StoreError;
use rusqlite::Connection;
use tokio::sync::Semaphore;

use crate::connection::{self, ReadMode, open_reader};
use crate::options::SqliteOptions;

/// The pool: idle connections, opened lazily up to the pool's size.
pub(crate) struct Readers {
    path: PathBuf,
    options: SqliteOptions,
    mode: ReadMode,
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
}

impl Readers {
    /// A pool for the database at `path` (already opened by the writer),
    /// with one connection opened now so that a file that cannot be read
    /// fails at open, not at the first read.
    ///
    /// # Errors
    /// As [`open_reader`].
    pub(crate) fn open(path: &Path, options: &SqliteOptions) -> Result<Arc<Self>, StoreError> {
        let first = open_reader(path, options, ReadMode::BesideWriter)?;
        Ok(Self::pool(path, options, ReadMode::BesideWriter, first))
    }

    /// A pool for a store opened read-only, with its first connection
    /// opened and the database checked now.
    ///
    /// # Errors
    /// As [`connection::open_read_only`].
    pub(crate) fn open_read_only(
        path: &Path,
        options: &SqliteOptions,
    ) -> Result<Arc<Self>, StoreError> {
        let (first, mode) = connection::open_read_only(path, options)?;
        Ok(Self::pool(path, options, mode, first))
    }

    fn pool(path: &Path, options: &SqliteOptions, mode: ReadMode, first: Connection) -> Arc<Self> {
        Arc::new(Self {
            path: path.to_path_buf(),
            options: options.clone(),
            mode,
            idle: Mutex::new(vec![first]),
            permits: Semaphore::new(options.readers.max(1)),
        })
    }

    /// Runs `read` at once on a pooled connection, on the calling thread
    /// (for opening, before any task runs).
    ///
    /// # Errors
    /// `read`'s own error.
    pub(crate) fn read_now<T>(
        &self,
        read: impl FnOnce(&Connection, &Path) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => open_reader(&self.path, &self.options, self.mode)?,
        };
        let result = read(&conn, &self.path);
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(conn);
        result
    }

    /// Runs `read` on a pooled connection, on the blocking pool.
    ///
    /// # Errors
    /// `read`'s own error, or a failure to open a connection.
    pub(crate) async fn read<T, R>(self: &Arc<Self>, read: R) -> Result<T, StoreError>
    where
        T: Send + 'static,
        R: FnOnce(&Connection, &Path) -> Result<T, StoreError> + Send + 'static,
    {
        let _permit = self.permits.acquire().await.map_err(|_| {
            StoreError::backend(
                crate::error::BACKEND,
                "reading",
                "the reader pool is closed",
            )
        })?;
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || pool.read_now(read))
            .await
            .map_err(|e| {
                StoreError::backend(
                    crate::error::BACKEND,
                    format!("reading SQLite database {}", self.path.display()),
                    e,
                )
            })?
    }
}
