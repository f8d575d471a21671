//! Projections: read models folded from the global log, each with a
//! checkpoint (the position of the last event applied).
//!
//! A [`ReadModel`] is a pure fold. A [`Projector`] keeps it caught up: it
//! reads the log from the checkpoint in batches, folds each batch into a copy
//! of the model, and saves the model *together with* its checkpoint (and its
//! parked events) as one document through the
//! [`SnapshotStore`](logbook_ports::SnapshotStore) port, which
//! every store writes atomically. So a restart resumes exactly where the last
//! save left off: nothing is applied twice, nothing skipped, on every store.
//!
//! Rebuilding folds the whole log into a fresh model beside the live one and
//! replaces the live document only once the new one has caught up: readers
//! never see an empty or half-built model.

mod read_models;
mod registry;
mod runner;

pub use read_models::{AccountBalances, AccountSummaries, AccountSummary, ShipsByPort};
pub use registry::{
    ProjectionRegistration, ProjectionRegistry, RegisteredProjection, UnknownProjection,
};
pub use runner::{
    CatchUp, ParkedEvent, PoisonPolicy, Progress, ProjectionError, ProjectionState, Projector,
    ProjectorOptions, Status,
};

use logbook_domain::RecordedEvent;
use logbook_ports::EventFilter;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A read model: state folded from events of the global log.
pub trait ReadModel:
    Default + Clone + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// The projection's name, e.g. `account-summary`.
    const NAME: &'static str;

    /// The events it reads (others are skipped without being fetched when
    /// the store can filter).
    fn filter() -> EventFilter;

    /// Folds one event in. An error leaves the model as it was before the
    /// call and is handled by the projector's [`PoisonPolicy`].
    ///
    /// # Errors
    /// Why the event cannot be applied (an unreadable payload, say).
    fn apply(&mut self, event: &RecordedEvent) -> Result<(), String>;
}
