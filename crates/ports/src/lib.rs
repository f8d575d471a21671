//! The ports of logbook: the async traits through which the application
//! reaches storage ([`EventStore`], [`SnapshotStore`], [`ProjectionStore`],
//! [`CheckpointStore`], [`SubjectKeyStore`]) and delivery ([`EventBus`]), the [`StoreError`] every adapter maps its
//! backend errors into, and (feature `conformance`) the behaviour suite that
//! every adapter runs from its own tests.
//!
//! Ports work on serialized envelopes ([`NewEvent`], [`RecordedEvent`]), so
//! adapters are never generic over aggregates. Every trait is dyn-compatible:
//! an application picks `Arc<dyn EventStore>` at run time.
//!
//! **Architecture invariant:** this crate depends on `logbook-domain` and
//! nothing of logbook's outer rings; it must never depend on an adapter, on
//! rusqlite or on the application.

pub mod append;
pub mod bus;
pub mod checkpoint;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod error;
pub mod event_store;
pub mod interner;
pub mod metadata;
pub mod paths;
pub mod projection;
pub mod read;
pub mod retention;
pub mod snapshot;
pub mod subject_key;

use std::sync::Arc;

pub use bus::{BoxError, DeliveryFailure, EventBus, EventHandler, PublishReport};
pub use checkpoint::CheckpointStore;
pub use error::StoreError;
pub use event_store::{
    AppendOutcome, CommitSignal, EventFilter, EventStore, ExpectedVersion, ReadDirection,
    StoredTimes, StreamVisitor,
};
pub use logbook_domain::{
    EventId, Metadata, NewEvent, Payload, Position, RecordedEvent, RecordedEventRef, RecordedTime,
    StreamId, SubjectId, Version,
};
pub use projection::{ParkedEvent, ProjectionDocument, ProjectionSave, ProjectionStore};
pub use read::{GlobalPages, StreamPages, read_stream_to_end};
pub use retention::{Cutoff, RetentionError, RetentionState, ScavengeReport, StreamRetention};
pub use snapshot::{Snapshot, SnapshotStore};
pub use subject_key::{SubjectKey, SubjectKeyStore, WrappedKey};

/// The stores of one storage location, as the application uses them.
///
/// Which holds what: a read model's whole document (model, checkpoint,
/// parked events, generation) is in `projections`; `checkpoints` holds bare
/// positions of subscribers that keep no state of their own (the
/// dispatcher, whose handlers act on other systems).
#[derive(Clone)]
pub struct Stores {
    /// Events.
    pub events: Arc<dyn EventStore>,
    /// Aggregate snapshots.
    pub snapshots: Arc<dyn SnapshotStore>,
    /// Read models' documents.
    pub projections: Arc<dyn ProjectionStore>,
    /// Subscribers' positions (the dispatcher's).
    pub checkpoints: Arc<dyn CheckpointStore>,
    /// Data subjects' keys (wrapped) and the tombstones of shredded ones.
    pub subject_keys: Arc<dyn SubjectKeyStore>,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores").finish_non_exhaustive()
    }
}
