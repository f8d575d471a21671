//! Projections: read models folded from the global log, each with a
//! checkpoint (the position of the last event applied).
//!
//! A [`ReadModel`] is a pure fold. A [`Projector`] keeps it caught up: it
//! loads the read model's document once, reads the log from the checkpoint
//! in batches, folds each batch into the model it keeps in memory, and saves
//! the model *together with* its checkpoint (and its parked events) as one
//! document through the [`ProjectionStore`](logbook_ports::ProjectionStore)
//! port, which every store writes atomically, with compare-and-swap on the
//! document's generation. So a restart resumes exactly where the last save
//! left off (nothing is applied twice, nothing skipped, on every store), and
//! two runners of one read model never undo each other: the one that loses
//! a race reloads the winner's document and goes on from it.
//!
//! Rebuilding folds the whole log into a fresh model beside the live one and
//! replaces the live document only once the new one has caught up: readers
//! never see an empty or half-built model.

mod read_models;
mod registry;
mod runner;

pub use read_models::{
    AccountBalances, AccountSummaries, AccountSummary, ShipsByPort, UserDirectory, UserEntry,
};
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
///
/// ```
/// use logbook::projection::{Projector, ReadModel};
/// use logbook_domain::{NewEvent, Payload, RecordedEvent, StreamId};
/// use logbook_ports::{EventFilter, ExpectedVersion};
///
/// /// How many events each category of stream has had.
/// #[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
/// struct PerCategory(std::collections::BTreeMap<String, u64>);
///
/// impl ReadModel for PerCategory {
///     const NAME: &'static str = "per-category";
///     fn filter() -> EventFilter {
///         EventFilter::all()
///     }
///     fn apply(&mut self, event: &RecordedEvent) -> Result<(), String> {
///         *self.0.entry(event.stream.category().to_owned()).or_default() += 1;
///         Ok(())
///     }
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let stores = logbook_adapters_memory::stores();
/// for name in ["Cart-1", "Cart-2", "User-1"] {
///     let event = NewEvent::new("Happened", Payload::from_json(b"{}".to_vec()).unwrap());
///     let stream = StreamId::new(name).unwrap();
///     stores.events.append(&stream, ExpectedVersion::Any, vec![event]).await.unwrap();
/// }
/// let projector = Projector::<PerCategory>::new(&stores);
/// projector.catch_up().await.unwrap();
/// let model = projector.state().await.unwrap().model;
/// assert_eq!((model.0["Cart"], model.0["User"]), (2, 1));
/// # });
/// ```
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
