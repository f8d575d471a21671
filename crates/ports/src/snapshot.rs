//! The [`SnapshotStore`] port: the latest serialized state of a stream's
//! aggregate, so loading does not replay the whole stream.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use logbook_domain::{Payload, StreamId, Version};

use crate::error::StoreError;

/// An aggregate's state serialized at a stream version.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The stream whose events folded into this state.
    pub stream: StreamId,
    /// The version of the last event folded in.
    pub version: Version,
    /// Version of the state's shape; a reader skips snapshots of a shape it
    /// does not know and replays instead.
    pub schema_version: u32,
    /// The state, as JSON.
    pub state: Payload,
    /// When it was taken.
    pub taken_at: DateTime<Utc>,
}

/// Keeps the newest snapshot of each stream. Snapshots only save time:
/// deleting every one of them changes nothing but speed.
#[async_trait]
pub trait SnapshotStore: Send + Sync {
    /// Stores `snapshot` unless the stream already has one at a higher
    /// version (an older snapshot arriving late never replaces a newer one).
    ///
    /// # Errors
    /// Backend failures.
    async fn save(&self, snapshot: Snapshot) -> Result<(), StoreError>;

    /// The newest snapshot of `stream`, if any.
    ///
    /// # Errors
    /// Backend failures; [`StoreError::Corrupt`] for unreadable data.
    async fn load(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError>;

    /// Removes the snapshot of `stream`, if any.
    ///
    /// # Errors
    /// Backend failures.
    async fn delete(&self, stream: &StreamId) -> Result<(), StoreError>;
}
