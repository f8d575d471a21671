//! The [`Aggregate`] trait: decide with `handle`, evolve with `apply`.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::event::DomainEvent;

/// A consistency boundary whose state is the fold of its events.
///
/// `handle` decides: it checks the invariants against the current state and
/// returns the events a command causes, or a typed error; it never mutates,
/// so a rejected command appends nothing. `apply` evolves: it folds one event
/// into the state, infallibly and deterministically (events are facts; the
/// decision was made when they were recorded).
///
/// The state is `Serialize + DeserializeOwned` so it can be snapshotted, and
/// `Default` is the state before the first event.
pub trait Aggregate:
    Default + Clone + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// Name of the aggregate type; streams are named `TYPE-<id>`.
    const TYPE: &'static str;
    /// Version of the state's serialized shape. Bump it when the state
    /// struct changes: snapshots of another version are ignored and the
    /// state is rebuilt from events instead.
    const SNAPSHOT_VERSION: u32 = 1;
    /// What can be asked of it, in the imperative (`Deposit`).
    type Command: Clone + Send + Sync + 'static;
    /// What it records, in the past tense (`MoneyDeposited`).
    type Event: DomainEvent;
    /// Why a command is refused.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Decides what `command` causes, without changing `self`.
    ///
    /// # Errors
    /// The invariant the command would break.
    fn handle(&self, command: &Self::Command) -> Result<Vec<Self::Event>, Self::Error>;

    /// Folds one event into the state.
    fn apply(&mut self, event: &Self::Event);

    /// Folds events into the state in order.
    fn apply_all<'a>(&mut self, events: impl IntoIterator<Item = &'a Self::Event>) {
        for event in events {
            self.apply(event);
        }
    }
}
