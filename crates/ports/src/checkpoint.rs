//! The [`CheckpointStore`] port: how far each named subscriber that keeps
//! no state of its own (a dispatcher delivering to handlers with side
//! effects) has read the global log. Read models keep their checkpoint
//! inside their document, in the [`ProjectionStore`](crate::ProjectionStore),
//! so model and position are saved in one step.

use async_trait::async_trait;
use logbook_domain::Position;

use crate::error::StoreError;

/// Remembers, per subscriber name, the position of the last event it
/// handled.
#[async_trait]
pub trait CheckpointStore: Send + Sync {
    /// The last position applied by `subscriber`, or `None` if it has
    /// applied nothing (or was reset).
    ///
    /// # Errors
    /// MUST return [`StoreError::Corrupt`] when the stored position cannot
    /// be read back; backend failures otherwise.
    async fn load(&self, subscriber: &str) -> Result<Option<Position>, StoreError>;

    /// Records that `subscriber` has applied everything up to `position`.
    ///
    /// # Errors
    /// MUST return an error, and keep the previous position, when the
    /// position could not be stored durably (backend failures).
    async fn save(&self, subscriber: &str, position: Position) -> Result<(), StoreError>;

    /// Forgets `subscriber`'s position, so it starts again from the
    /// beginning.
    ///
    /// # Errors
    /// MUST return an error, and keep the position, when it could not be
    /// forgotten durably (backend failures).
    async fn reset(&self, subscriber: &str) -> Result<(), StoreError>;
}
