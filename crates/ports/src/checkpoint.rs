//! The [`CheckpointStore`] port: how far each projection has read the
//! global log.

use async_trait::async_trait;
use logbook_domain::Position;

use crate::error::StoreError;

/// Remembers, per projection name, the position of the last event applied.
#[async_trait]
pub trait CheckpointStore: Send + Sync {
    /// The last position applied by `projection`, or `None` if it has
    /// applied nothing (or was reset).
    ///
    /// # Errors
    /// Backend failures.
    async fn load(&self, projection: &str) -> Result<Option<Position>, StoreError>;

    /// Records that `projection` has applied everything up to `position`.
    ///
    /// # Errors
    /// Backend failures.
    async fn save(&self, projection: &str, position: Position) -> Result<(), StoreError>;

    /// Forgets `projection`'s position, so it starts again from the
    /// beginning.
    ///
    /// # Errors
    /// Backend failures.
    async fn reset(&self, projection: &str) -> Result<(), StoreError>;
}
