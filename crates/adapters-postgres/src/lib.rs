//! The PostgreSQL adapter of logbook: event, snapshot, projection-document,
//! checkpoint and subject-key stores in one PostgreSQL schema, the store that processes
//! on several hosts share.
//!
//! **Architecture invariant:** depends on `logbook-ports` and
//! `logbook-domain` only among logbook's crates; never on another adapter or
//! on the application.
//!
//! Connect with a URL (`postgres://user@host:port/db?schema=NAME`, also
//! `postgresql://`) and hand the application its [`PostgresStore::stores`]:
//!
//! ```no_run
//! # async fn demo() -> Result<(), logbook_ports::StoreError> {
//! use logbook_adapters_postgres::{PostgresOptions, PostgresStore};
//!
//! let store = PostgresStore::connect(
//!     "postgres://app@db.internal/ledger?schema=logbook",
//!     PostgresOptions::default(),
//! )
//! .await?;
//! let head = store.stores().events.head_position().await?;
//! # let _ = head;
//! # Ok(())
//! # }
//! ```
//!
//! How it works: one writer task per store owns a write connection and
//! commits the appends of concurrent callers in groups, one transaction per
//! group, each append decided by `logbook_ports::append::decide_append` (an
//! append that is refused fails alone and takes no position). Each group takes its global positions under the lock of the one
//! `head` row, held until COMMIT, so positions are gap-free and become
//! visible in position order: no reader can skip an event (the argument is
//! in `docs/postgres.md`). Reads use a pool of connections. Commits are
//! announced with `pg_notify` inside the appending transaction; every store
//! listens on a connection of its own, polls the head now and then as a
//! fallback, and catches up after each reconnect, so subscribers in any
//! process see every commit.

mod checkpoints;
mod config;
mod error;
mod event_store;
mod listener;
mod projections;
mod retention;
mod rows;
mod schema;
mod snapshots;
mod subject_keys;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use logbook_domain::Position;
use logbook_ports::{StoreError, Stores};
use tokio::sync::{oneshot, watch};

pub use checkpoints::PostgresCheckpointStore;
pub use config::{PostgresUrl, PostgresUrlError};
pub use event_store::PostgresEventStore;
pub use projections::PostgresProjectionStore;
pub use schema::SCHEMA_VERSION;
pub use snapshots::PostgresSnapshotStore;
pub use subject_keys::PostgresSubjectKeyStore;

/// How a store uses its server. The defaults suit most deployments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    /// Read connections in the pool (the writer and the listener have one
    /// connection each besides).
    pub pool_size: usize,
    /// `statement_timeout` of every connection: no statement runs longer,
    /// so a stuck query cannot hang a command forever.
    pub statement_timeout: Duration,
    /// How often the head is read to notice commits even when no
    /// notification arrives (a lost connection, a proxy that drops them).
    pub poll_interval: Duration,
    /// Whether to LISTEN for other processes' commits; without it, commits
    /// of other processes are noticed by polling alone.
    pub listen: bool,
    /// Most events the writer commits in one transaction.
    pub max_group_events: usize,
    /// For fault tests only (`None` in production): the writer sleeps a
    /// random time in this range after writing a group and before its
    /// COMMIT, holding the head row lock, to widen every window between
    /// taking positions and making them visible.
    pub pause_before_commit: Option<(Duration, Duration)>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            pool_size: 8,
            statement_timeout: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            listen: true,
            max_group_events: 10_000,
            pause_before_commit: None,
        }
    }
}

impl PostgresOptions {
    /// These options with `poll_interval`.
    #[must_use]
    pub fn with_poll_interval(mut self, poll_interval: Duration) -> Self {
        self.poll_interval = poll_interval;
        self
    }

    /// These options with notifications on or off.
    #[must_use]
    pub fn with_listen(mut self, listen: bool) -> Self {
        self.listen = listen;
        self
    }

    /// These options with a random pause in `min..=max` before each COMMIT
    /// (fault tests only).
    #[must_use]
    pub fn with_pause_before_commit(mut self, min: Duration, max: Duration) -> Self {
        self.pause_before_commit = Some((min, max.max(min)));
        self
    }

    /// These options with `statement_timeout`.
    #[must_use]
    pub fn with_statement_timeout(mut self, statement_timeout: Duration) -> Self {
        self.statement_timeout = statement_timeout;
        self
    }
}

/// What every handle of one store shares.
pub(crate) struct Shared {
    url: PostgresUrl,
    pool: deadpool_postgres::Pool,
    writer: writer::Writer,
    commits: Arc<watch::Sender<Position>>,
    /// Dropped with the store: ends the listener task.
    _stop_listener: oneshot::Sender<()>,
}

impl Shared {
    /// A pooled read connection.
    pub(crate) async fn client(
        &self,
        doing: &str,
    ) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| error::pool_error(&self.url, doing, &e))
    }
}

/// One PostgreSQL schema's event, snapshot and checkpoint stores, which
/// share one writer task, one pool of read connections and one listener.
/// Cheap to clone; the connections close when the last handle is dropped.
#[derive(Clone)]
pub struct PostgresStore {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("url", &self.shared.url)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the server `url` names, creates the schema (`?schema=`,
    /// default `public`) or migrates an older one, and starts the writer and
    /// the listener. Needs a tokio runtime with I/O and time enabled.
    ///
    /// # Errors
    /// - [`StoreError::Backend`] for a malformed URL, a server that cannot
    ///   be reached, or a failed migration;
    /// - [`StoreError::IncompatibleFormat`] when the schema was written by a
    ///   newer logbook (it is left untouched);
    /// - [`StoreError::Corrupt`] when the schema holds tables of the same
    ///   names that logbook did not create.
    pub async fn connect(url: &str, options: PostgresOptions) -> Result<Self, StoreError> {
        let url: PostgresUrl = url.parse().map_err(|e: PostgresUrlError| {
            StoreError::backend(error::BACKEND, "reading the store URL", e)
        })?;
        Self::connect_to(url, options).await
    }

    /// As [`PostgresStore::connect`], with a parsed URL.
    ///
    /// # Errors
    /// As [`PostgresStore::connect`].
    pub async fn connect_to(
        url: PostgresUrl,
        options: PostgresOptions,
    ) -> Result<Self, StoreError> {
        let config = url.client_config(&options);
        let mut client = config::connect(&config, &url).await?;
        schema::migrate(&mut client, &url).await?;
        let head = schema::head(&client, &url).await?;
        let commits = Arc::new(watch::Sender::new(head));
        let manager = deadpool_postgres::Manager::from_config(
            config.clone(),
            tokio_postgres::NoTls,
            deadpool_postgres::ManagerConfig {
                recycling_method: deadpool_postgres::RecyclingMethod::Fast,
            },
        );
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .create_timeout(Some(options.statement_timeout))
            .wait_timeout(Some(options.statement_timeout))
            .build()
            .map_err(|e| StoreError::backend(error::BACKEND, "building the pool", e.to_string()))?;
        let writer = writer::Writer::start(
            client,
            config.clone(),
            url.clone(),
            options.max_group_events.max(1),
            options.pause_before_commit,
            Arc::clone(&commits),
        );
        let (stop_listener, stopped) = oneshot::channel();
        listener::start(
            config,
            url.clone(),
            options.listen,
            options.poll_interval,
            Arc::clone(&commits),
            stopped,
        );
        Ok(Self {
            shared: Arc::new(Shared {
                url,
                pool,
                writer,
                commits,
                _stop_listener: stop_listener,
            }),
        })
    }

    /// The URL this store was opened with (without its password).
    pub fn url(&self) -> &PostgresUrl {
        &self.shared.url
    }

    /// The event store.
    pub fn event_store(&self) -> PostgresEventStore {
        PostgresEventStore::new(Arc::clone(&self.shared))
    }

    /// The snapshot store.
    pub fn snapshot_store(&self) -> PostgresSnapshotStore {
        PostgresSnapshotStore::new(Arc::clone(&self.shared))
    }

    /// The projection-document store.
    pub fn projection_store(&self) -> PostgresProjectionStore {
        PostgresProjectionStore::new(Arc::clone(&self.shared))
    }

    /// The checkpoint store.
    pub fn checkpoint_store(&self) -> PostgresCheckpointStore {
        PostgresCheckpointStore::new(Arc::clone(&self.shared))
    }

    /// The subject-key store (wrapped data keys and tombstones).
    pub fn subject_key_store(&self) -> PostgresSubjectKeyStore {
        PostgresSubjectKeyStore::new(Arc::clone(&self.shared))
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
