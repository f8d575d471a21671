//! [`StoreError`]: what any store can answer instead of a result.

use std::path::PathBuf;

use logbook_domain::{EventId, Position, StreamId, Version};

use crate::event_store::ExpectedVersion;

/// A boxed error from a storage backend.
pub type BackendError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a store operation failed. Each variant carries what a user needs to
/// act: the stream and versions of a conflict, the file and offset of a
/// corruption.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The stream was not at the version the append expected. Nothing was
    /// written.
    #[error("wrong expected version on stream {stream}: expected {expected}, stream is at {}", display_version(*.actual))]
    WrongExpectedVersion {
        /// The stream appended to.
        stream: StreamId,
        /// What the caller expected.
        expected: ExpectedVersion,
        /// The stream's version at the time (`None`: no such stream).
        actual: Option<Version>,
    },
    /// The stream was deleted: it can be neither read nor appended to (its
    /// events stay in the global log).
    #[error("stream {stream} is deleted")]
    StreamDeleted {
        /// The deleted stream.
        stream: StreamId,
    },
    /// An event id in the batch is already recorded, and not as part of the
    /// same batch at the same place (which would be an idempotent retry).
    /// Nothing was written.
    #[error("event id {event_id} is already recorded in stream {stream}")]
    DuplicateEventId {
        /// The id.
        event_id: EventId,
        /// The stream that holds it.
        stream: StreamId,
    },
    /// A projection document was saved expecting a generation that is no
    /// longer the stored one: another saver got there first. Nothing was
    /// written; reload the document and go on from it.
    #[error(
        "projection {name} was saved by another runner: expected generation {expected}, stored is {actual}"
    )]
    ProjectionConflict {
        /// The projection.
        name: String,
        /// The generation the saver read.
        expected: u64,
        /// The stored generation (0: no document).
        actual: u64,
    },
    /// A projection save would have moved its checkpoint back without being
    /// a replacement (a rebuild). Nothing was written.
    #[error("projection {name} would move back from checkpoint {} to {}", display_position(*.stored), display_position(*.attempted))]
    ProjectionCheckpointBehind {
        /// The projection.
        name: String,
        /// The stored checkpoint.
        stored: Option<Position>,
        /// The checkpoint of the refused save.
        attempted: Option<Position>,
    },
    /// An event of the batch is malformed. Nothing was written.
    #[error("event {index} of the batch is invalid: {reason}")]
    InvalidEvent {
        /// Index in the batch, from 0.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// Stored data failed a check (checksum, framing, decoding).
    #[error("corrupt data in {location}: {detail}")]
    Corrupt {
        /// Where: a file and byte offset, a table and row.
        location: String,
        /// What check failed.
        detail: String,
    },
    /// Another process holds the store's write lock.
    #[error("store at {} is locked by another process", path.display())]
    Locked {
        /// The locked location.
        path: PathBuf,
    },
    /// The store was written by a newer, incompatible logbook.
    #[error("store at {location} has format version {found}; this logbook reads up to {supported}")]
    IncompatibleFormat {
        /// The store.
        location: String,
        /// Version found.
        found: u32,
        /// Newest version this build understands.
        supported: u32,
    },
    /// An operating-system error on a file.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, and to which path.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Any other failure of the backend, mapped at the adapter's edge.
    #[error("{backend} error while {context}: {source}")]
    Backend {
        /// Which backend (`sqlite`, ...).
        backend: &'static str,
        /// What was being done.
        context: String,
        /// The backend's error.
        #[source]
        source: BackendError,
    },
}

fn display_position(position: Option<Position>) -> String {
    position.map_or_else(|| "none".to_owned(), |p| p.to_string())
}

fn display_version(version: Option<Version>) -> String {
    version.map_or_else(|| "no stream".to_owned(), |v| format!("version {v}"))
}

impl StoreError {
    /// An [`StoreError::Io`] with its context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// A [`StoreError::Backend`] with its context.
    pub fn backend(
        backend: &'static str,
        context: impl Into<String>,
        source: impl Into<BackendError>,
    ) -> Self {
        Self::Backend {
            backend,
            context: context.into(),
            source: source.into(),
        }
    }

    /// True for [`StoreError::WrongExpectedVersion`]: the caller may reload
    /// and retry.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::WrongExpectedVersion { .. })
    }
}
