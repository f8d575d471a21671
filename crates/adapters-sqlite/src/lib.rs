//! The SQLite adapter of logbook: event, snapshot, projection, checkpoint
//! and subject-key stores on one SQLite file, the durable embedded default.
//!
//! **Architecture invariant:** depends on `logbook-ports` and
//! `logbook-domain` only among logbook's crates; never on another adapter or
//! on the application.
//!
//! Open a database with [`SqliteStore::open`] and hand the application its
//! [`SqliteStore::stores`]:
//!
//! ```no_run
//! # async fn demo() -> Result<(), logbook_ports::StoreError> {
//! use logbook_adapters_sqlite::{SqliteOptions, SqliteStore, Synchronous};
//!
//! let store = SqliteStore::open("logbook.db", SqliteOptions::default())?;
//! let stores = store.stores();
//! let head = stores.events.head_position().await?;
//! // Faster, for data that may lose its last commits in a power cut:
//! let relaxed = SqliteOptions::default().with_synchronous(Synchronous::Normal);
//! # let _ = (head, relaxed);
//! # Ok(())
//! # }
//! ```
//!
//! How it works: the database is in WAL mode. One writer thread owns the
//! write connection and commits queued writes in groups ([`writer`'s group
//! commit](SqliteOptions::max_group_events)): appends that arrive while a
//! commit is being synced are committed together in the next transaction,
//! each checked against its own expected version and failing alone. Reads
//! run on a small pool of read connections on tokio's blocking pool, so the
//! async runtime never blocks on SQLite. The schema, how to query it with
//! plain SQL, the durability settings and the query plans are documented in
//! `docs/sqlite.md`.

mod checkpoints;
mod connection;
mod error;
mod event_store;
mod integrity;
mod options;
mod projections;
mod readers;
mod retention;
mod rows;
mod schema;
mod snapshots;
mod subject_keys;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use logbook_domain::Position;
use logbook_ports::{StoreError, Stores};
use tokio::sync::watch;

pub use checkpoints::SqliteCheckpointStore;
pub use event_store::SqliteEventStore;
pub use integrity::{IntegrityCheck, IntegrityReport, integrity_check};
pub use options::{SqliteOptions, Synchronous};
pub use projections::SqliteProjectionStore;
pub use schema::{APPLICATION_ID, SCHEMA_VERSION};
pub use snapshots::SqliteSnapshotStore;
pub use subject_keys::SqliteSubjectKeyStore;

/// What every handle of one open database shares.
pub(crate) struct Shared {
    path: PathBuf,
    // Field order is drop order: the writer thread is joined (the file
    // released) before the readers close.
    writer: writer::Writer,
    readers: Arc<readers::Readers>,
    commits: Arc<watch::Sender<Position>>,
    /// How long a connection opened on the side (a shred's checkpoint)
    /// waits for other connections.
    busy_timeout: std::time::Duration,
}

/// One open SQLite database: its event, snapshot, projection and checkpoint
/// stores, which share one writer thread and one pool of readers. Cheap to
/// clone.
///
/// The database stays open while any handle (this, a clone, or a store it
/// gave out) lives; when the last one is dropped the writer finishes the
/// writes already queued, its thread ends and the file is closed.
#[derive(Clone)]
pub struct SqliteStore {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.shared.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens the database at `path`, creating it (and its schema) if it does
    /// not exist and migrating an older schema. Blocks while it opens; call
    /// it before starting work, or from `spawn_blocking`.
    ///
    /// # Errors
    /// - [`StoreError::IncompatibleFormat`] when the database was written
    ///   by a newer logbook (it is left untouched);
    /// - [`StoreError::Corrupt`] when the file is not a SQLite database, or
    ///   is a SQLite database that logbook did not create;
    /// - [`StoreError::Io`] when the location cannot be opened for writing
    ///   (missing directory, read-only file or directory);
    /// - [`StoreError::Locked`] when another process holds the write lock
    ///   for longer than the busy timeout;
    /// - [`StoreError::Backend`] for other SQLite failures.
    pub fn open(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let conn = connection::open_writer(path, &options)?;
        let readers = readers::Readers::open(path, &options)?;
        let head = {
            let conn = &conn;
            conn.query_row("SELECT max(position) FROM events", [], |row| {
                row.get::<_, Option<i64>>(0)
            })
            .map_err(|e| error::store_error(path, "reading the head position", e))?
            .and_then(rows::unsigned)
            .unwrap_or(0)
        };
        let commits = Arc::new(watch::Sender::new(head));
        let writer =
            writer::Writer::start(conn, path, options.max_group_events, Arc::clone(&commits))?;
        Ok(Self {
            shared: Arc::new(Shared {
                path: path.to_path_buf(),
                writer,
                readers,
                commits,
                busy_timeout: options.busy_timeout,
            }),
        })
    }

    /// Opens the database at `path` for reading only: with
    /// `SQLITE_OPEN_READ_ONLY`, no migration and no write lock, so it works
    /// while another process holds (or stalls) the write lock, and on
    /// read-only media or a directory it may not write (then it reads the
    /// database file as immutable, when no write-ahead log beside it holds
    /// commits). Appends and saves fail with [`StoreError::Io`] of kind
    /// `PermissionDenied`. Commits of other processes are not signalled:
    /// subscribers see them when they re-check the log.
    ///
    /// # Errors
    /// - [`StoreError::Io`] when there is no file at `path` or it cannot be
    ///   read;
    /// - [`StoreError::IncompatibleFormat`] when the database was written
    ///   by a newer logbook;
    /// - [`StoreError::Corrupt`] when the file is not a SQLite database, or
    ///   is a SQLite database that logbook did not create;
    /// - [`StoreError::Backend`] when the database needs migrating to this
    ///   logbook's schema (opening it once with [`SqliteStore::open`] does
    ///   that), and for other SQLite failures.
    pub fn open_read_only(
        path: impl AsRef<Path>,
        options: SqliteOptions,
    ) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let readers = readers::Readers::open_read_only(path, &options)?;
        let head = readers.read_now(|conn, path| {
            Ok(conn
                .query_row("SELECT max(position) FROM events", [], |row| {
                    row.get::<_, Option<i64>>(0)
                })
                .map_err(|e| error::store_error(path, "reading the head position", e))?
                .and_then(rows::unsigned)
                .unwrap_or(0))
        })?;
        Ok(Self {
            shared: Arc::new(Shared {
                path: path.to_path_buf(),
                writer: writer::Writer::read_only(path),
                readers,
                commits: Arc::new(watch::Sender::new(head)),
                busy_timeout: options.busy_timeout,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// The event store.
    pub fn event_store(&self) -> SqliteEventStore {
        SqliteEventStore::new(Arc::clone(&self.shared))
    }

    /// The snapshot store.
    pub fn snapshot_store(&self) -> SqliteSnapshotStore {
        SqliteSnapshotStore::new(Arc::clone(&self.shared))
    }

    /// The projection store (read models' documents).
    pub fn projection_store(&self) -> SqliteProjectionStore {
        SqliteProjectionStore::new(Arc::clone(&self.shared))
    }

    /// The checkpoint store.
    pub fn checkpoint_store(&self) -> SqliteCheckpointStore {
        SqliteCheckpointStore::new(Arc::clone(&self.shared))
    }

    /// The subject-key store (wrapped data keys and tombstones).
    pub fn subject_key_store(&self) -> SqliteSubjectKeyStore {
        SqliteSubjectKeyStore::new(Arc::clone(&self.shared))
    }

    /// The five stores, as the application uses them.
    pub fn stores(&self) -> Stores {
        Stores {
            events: Arc::new(self.event_store()),
            snapshots: Arc::new(self.snapshot_store()),
            projections: Arc::new(self.projection_store()),
            checkpoints: Arc::new(self.checkpoint_store()),
            subject_keys: Arc::new(self.subject_key_store()),
        }
    }
}
