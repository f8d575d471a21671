//! The [`ProjectionStore`] port: each read model's document (its model, its
//! checkpoint, its parked events and its generation), saved whole and
//! atomically, with compare-and-swap on the generation.
//!
//! The generation counts saves: a document that was never saved is at
//! generation 0, the first save makes it 1, each save adds one. A saver
//! says which generation it read; the store writes only if that is still
//! the stored one, so two runners of one projection (a live follower and a
//! rebuild, two processes) can never silently undo each other's work. The
//! rule every adapter applies is [`decide_save`], written once here.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use logbook_domain::{EventId, Payload, Position};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// A read model's saved state, with what is needed to resume it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectionDocument {
    /// On [`ProjectionStore::load`]: the stored generation (1 after the
    /// first save). On [`ProjectionStore::save`]: the generation the saver
    /// read (0 when there was no document), which the store compares with
    /// the stored one.
    pub generation: u64,
    /// Position of the last event applied or skipped (`None`: nothing yet).
    pub checkpoint: Option<Position>,
    /// The model, as JSON.
    pub model: Payload,
    /// Events set aside because the model could not apply them.
    pub parked: Vec<ParkedEvent>,
    /// When it was saved.
    pub saved_at: DateTime<Utc>,
}

/// An event a read model could not apply, set aside to be retried on
/// request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParkedEvent {
    /// Its global position.
    pub position: Position,
    /// Its id.
    pub event_id: EventId,
    /// Its stream.
    pub stream: String,
    /// Its type.
    pub event_type: String,
    /// Why it could not be applied (the last attempt).
    pub error: String,
}

/// Parked events as every store keeps them: a JSON array (readable with
/// SQL's JSON functions where the store allows).
pub fn encode_parked(parked: &[ParkedEvent]) -> Vec<u8> {
    serde_json::to_vec(parked).expect("parked events are plain data and always serialize")
}

/// Parked events back from [`encode_parked`]'s form.
///
/// # Errors
/// Bytes that are not such an array (damaged data): the store reports it
/// as [`StoreError::Corrupt`] with where it read them.
pub fn decode_parked(bytes: &[u8]) -> Result<Vec<ParkedEvent>, serde_json::Error> {
    serde_json::from_slice(bytes)
}

/// How a save may move the checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProjectionSave {
    /// The checkpoint stays or moves forward: a runner folding the log on.
    Advance,
    /// The document is replaced whatever its checkpoint: a rebuild, which
    /// may end before the stored checkpoint (a log that lost events it had
    /// acknowledged, or was replaced).
    Replace,
}

/// Keeps one document per read model.
#[async_trait]
pub trait ProjectionStore: Send + Sync {
    /// The document of the read model `name`, if it was ever saved.
    ///
    /// # Errors
    /// MUST return [`StoreError::Corrupt`] when the stored document cannot
    /// be read back (a checksum, a field out of range); backend failures
    /// otherwise.
    async fn load(&self, name: &str) -> Result<Option<ProjectionDocument>, StoreError>;

    /// Stores `document` as the read model's document, atomically (a reader
    /// sees the old document or the new one, never a mix, also after a
    /// crash), as generation `document.generation + 1`, which it returns.
    ///
    /// # Errors
    /// Nothing is written when it fails. It:
    /// - MUST return [`StoreError::ProjectionConflict`] when the stored
    ///   generation (0 for none) is not `document.generation`: another
    ///   saver got there first, even one racing this save at the same
    ///   instant;
    /// - MUST return [`StoreError::ProjectionCheckpointBehind`] when `save`
    ///   is [`ProjectionSave::Advance`] and `document.checkpoint` is before
    ///   the stored one (`None` counts as before any position);
    /// - MUST return [`StoreError::InvalidEvent`] when the document is too
    ///   large for the store;
    /// - backend failures otherwise.
    async fn save(
        &self,
        name: &str,
        document: &ProjectionDocument,
        save: ProjectionSave,
    ) -> Result<u64, StoreError>;
}

/// The generation a save writes, or why it must not: the one rule of
/// [`ProjectionStore::save`], which every adapter calls with what it
/// stores (`stored`: generation and checkpoint, `None` for no document)
/// while holding whatever makes its read and its write one step.
///
/// # Errors
/// [`StoreError::ProjectionConflict`] and
/// [`StoreError::ProjectionCheckpointBehind`], as the port says.
pub fn decide_save(
    name: &str,
    stored: Option<(u64, Option<Position>)>,
    document: &ProjectionDocument,
    save: ProjectionSave,
) -> Result<u64, StoreError> {
    let (generation, checkpoint) = stored.unwrap_or((0, None));
    if generation != document.generation {
        return Err(StoreError::ProjectionConflict {
            name: name.to_owned(),
            expected: document.generation,
            actual: generation,
        });
    }
    if save == ProjectionSave::Advance && document.checkpoint < checkpoint {
        return Err(StoreError::ProjectionCheckpointBehind {
            name: name.to_owned(),
            stored: checkpoint,
            attempted: document.checkpoint,
        });
    }
    Ok(generation + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(generation: u64, checkpoint: Option<Position>) -> ProjectionDocument {
        ProjectionDocument {
            generation,
            checkpoint,
            model: Payload::from_json(b"{}".to_vec()).unwrap(),
            parked: Vec::new(),
            saved_at: Utc::now(),
        }
    }

    #[test]
    fn a_first_save_expects_generation_zero() {
        assert_eq!(
            decide_save("p", None, &document(0, None), ProjectionSave::Advance).unwrap(),
            1
        );
        assert!(matches!(
            decide_save("p", None, &document(1, None), ProjectionSave::Advance),
            Err(StoreError::ProjectionConflict {
                expected: 1,
                actual: 0,
                ..
            })
        ));
    }

    #[test]
    fn only_a_replacement_moves_the_checkpoint_back() {
        let stored = Some((4, Some(10)));
        assert!(matches!(
            decide_save("p", stored, &document(4, Some(9)), ProjectionSave::Advance),
            Err(StoreError::ProjectionCheckpointBehind {
                stored: Some(10),
                attempted: Some(9),
                ..
            })
        ));
        assert!(matches!(
            decide_save("p", stored, &document(4, None), ProjectionSave::Advance),
            Err(StoreError::ProjectionCheckpointBehind { .. })
        ));
        assert_eq!(
            decide_save("p", stored, &document(4, Some(10)), ProjectionSave::Advance).unwrap(),
            5
        );
        assert_eq!(
            decide_save("p", stored, &document(4, Some(2)), ProjectionSave::Replace).unwrap(),
            5
        );
        // A replacement still checks the generation.
        assert!(matches!(
            decide_save("p", stored, &document(3, Some(20)), ProjectionSave::Replace),
            Err(StoreError::ProjectionConflict { .. })
        ));
    }
}
