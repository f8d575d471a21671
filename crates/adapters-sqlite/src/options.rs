//! [`SqliteOptions`]: how a store is opened, and what an acknowledged append
//! survives ([`Synchronous`]).

use std::time::Duration;

/// When SQLite makes a commit durable: the trade between the speed of one
/// append and what a crash can take away. Either way the database is never
/// corrupted by a crash, and WAL mode keeps readers and the writer apart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Synchronous {
    /// `PRAGMA synchronous = FULL` (the default): every commit waits for the
    /// write-ahead log to reach the disk (one fsync per commit). An append
    /// that was acknowledged survives a crash of the process, of the
    /// operating system and a power cut.
    #[default]
    Full,
    /// `PRAGMA synchronous = NORMAL`: commits are written to the write-ahead
    /// log but only synced at checkpoints. An acknowledged append survives a
    /// crash of the process; an operating-system crash or a power cut may
    /// take away the last commits (the database stays consistent: it rolls
    /// back to an earlier commit, never to half of one).
    Normal,
}

impl Synchronous {
    /// The value given to `PRAGMA synchronous`.
    pub fn pragma_value(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Normal => "NORMAL",
        }
    }
}

/// How [`crate::SqliteStore::open`] opens a database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    /// Durability of each commit; [`Synchronous::Full`] by default.
    pub synchronous: Synchronous,
    /// How long a connection waits for another one (usually another
    /// process) that holds the write lock before giving up with
    /// [`logbook_ports::StoreError::Locked`]; 5 seconds by default.
    pub busy_timeout: Duration,
    /// Read connections kept open for reads running in parallel (at least
    /// one); 4 by default.
    pub readers: usize,
    /// Most events one group commit writes in one transaction before it
    /// commits and starts the next (a larger batch is never split: it is
    /// one transaction on its own); 10,000 by default.
    pub max_group_events: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Full,
            busy_timeout: Duration::from_secs(5),
            readers: 4,
            max_group_events: 10_000,
        }
    }
}

impl SqliteOptions {
    /// The defaults with `synchronous` set.
    pub fn with_synchronous(mut self, synchronous: Synchronous) -> Self {
        self.synchronous = synchronous;
        self
    }

    /// The defaults with `busy_timeout` set.
    pub fn with_busy_timeout(mut self, busy_timeout: Duration) -> Self {
        self.busy_timeout = busy_timeout;
        self
    }

    /// The defaults with the reader pool's size set (at least one).
    pub fn with_readers(mut self, readers: usize) -> Self {
        self.readers = readers.max(1);
        self
    }
}
