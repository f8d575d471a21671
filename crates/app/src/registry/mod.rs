//! Aggregates by name: run any command of any registered aggregate from its
//! name and JSON arguments (as the seed's `ShipEventProcessor.handle(
//! 'dock_ship', ship_id=..., port=...)` did), and read any registered
//! aggregate's state, now or in the past. Front ends (the command line, the
//! HTTP server) share this one registry, so a team's own aggregates work in
//! every front end once registered.
//!
//! Errors are typed ([`ExecError`]) so a front end can tell a refused
//! command from a conflict from bad arguments from a store failure without
//! reading messages.

mod arguments;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use logbook_domain::bank_account::BankAccount;
use logbook_domain::cargo_ship::CargoShip;
use logbook_domain::user_wallet::UserWallet;
use logbook_domain::{Aggregate, RecordedEvent, StreamId, StreamIdError, Version};
use logbook_ports::append::is_tombstone;
use logbook_ports::{BoxError, StoreError, Stores};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use arguments::{ArgumentError, ArgumentErrorKind};

use crate::codec::{CodecError, Decoder};
use crate::repository::{Repository, RepositoryError};

/// Why a command by name, or a state by name, could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// No aggregate of that name is registered.
    #[error("unknown aggregate {name:?}; known: {}", known.join(", "))]
    UnknownAggregate {
        /// The name given.
        name: String,
        /// The registered names.
        known: Vec<&'static str>,
    },
    /// The command name is not one of the aggregate's.
    #[error("unknown command {command:?} for {aggregate}; valid commands: {}", valid.join(", "))]
    UnknownCommand {
        /// The aggregate.
        aggregate: &'static str,
        /// The name given.
        command: String,
        /// Its commands.
        valid: Vec<&'static str>,
    },
    /// The arguments are not a JSON object, or miss, mistype or add a field.
    #[error("invalid arguments for {aggregate} {command}: {problem}")]
    InvalidArguments {
        /// The aggregate.
        aggregate: &'static str,
        /// The command.
        command: String,
        /// The field at fault and what was expected.
        problem: ArgumentError,
    },
    /// The id does not make a valid stream id.
    #[error("invalid {aggregate} id {id:?}: {source}")]
    InvalidId {
        /// The aggregate.
        aggregate: &'static str,
        /// The id given.
        id: String,
        /// Why it is not valid.
        #[source]
        source: StreamIdError,
    },
    /// The aggregate refused the command (an invariant); nothing was
    /// appended. `source` is the aggregate's own error.
    #[error("{aggregate} {id}: {source}")]
    Refused {
        /// The aggregate.
        aggregate: &'static str,
        /// The id.
        id: String,
        /// The domain error.
        #[source]
        source: BoxError,
    },
    /// Other writers kept changing the stream through every retry; nothing
    /// was appended.
    #[error(
        "{aggregate} {id}: stream {stream} kept changing under concurrent writers; gave up after {attempts} attempts"
    )]
    Conflict {
        /// The aggregate.
        aggregate: &'static str,
        /// The id.
        id: String,
        /// The contended stream.
        stream: StreamId,
        /// Attempts made.
        attempts: u32,
    },
    /// The aggregate has no events (or none yet at the point asked for).
    #[error("{aggregate} {id} {}", if *at_a_past_point { "did not exist yet at that point" } else { "does not exist" })]
    NotFound {
        /// The aggregate.
        aggregate: &'static str,
        /// The id.
        id: String,
        /// True when a past version or time was asked for.
        at_a_past_point: bool,
    },
    /// A version past the stream's end was asked for.
    #[error("{aggregate} {id} has no version {asked}; its stream is at version {current}")]
    VersionNotReached {
        /// The aggregate.
        aggregate: &'static str,
        /// The id.
        id: String,
        /// The version asked for.
        asked: Version,
        /// The stream's version.
        current: Version,
    },
    /// The store failed.
    #[error("{aggregate} {id}: {source}")]
    Store {
        /// The aggregate.
        aggregate: &'static str,
        /// The id.
        id: String,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// Personal data could not be sealed or opened (no or a wrong master
    /// key, new data for a shredded subject); nothing was appended.
    #[error("{aggregate} {id}: {source}")]
    Personal {
        /// The aggregate.
        aggregate: &'static str,
        /// The id.
        id: String,
        /// Why.
        #[source]
        source: Box<crate::personal::PersonalDataError>,
    },
    /// A stored event could not be read as this aggregate's event.
    #[error("{aggregate} {id}: {source}")]
    Codec {
        /// The aggregate.
        aggregate: &'static str,
        /// The id.
        id: String,
        /// Why.
        #[source]
        source: Box<CodecError>,
    },
}

impl ExecError {
    fn from_repository<E: std::error::Error + Send + Sync + 'static>(
        aggregate: &'static str,
        id: &str,
        error: RepositoryError<E>,
    ) -> Self {
        let id = id.to_owned();
        match error {
            RepositoryError::Rejected(source) => Self::Refused {
                aggregate,
                id,
                source: Box::new(source),
            },
            RepositoryError::InvalidId(source) => Self::InvalidId {
                aggregate,
                id,
                source,
            },
            RepositoryError::Store(source) => Self::Store {
                aggregate,
                id,
                source,
            },
            RepositoryError::Codec(source) => Self::Codec {
                aggregate,
                id,
                source: Box::new(source),
            },
            RepositoryError::Personal(source) => Self::Personal {
                aggregate,
                id,
                source: Box::new(source),
            },
            RepositoryError::NotFound { .. } => Self::NotFound {
                aggregate,
                id,
                at_a_past_point: false,
            },
            RepositoryError::TooManyConflicts { stream, attempts } => Self::Conflict {
                aggregate,
                id,
                stream,
                attempts,
            },
        }
    }
}

/// What a command by name did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecOutcome {
    /// Stream version afterwards.
    pub version: u64,
    /// Event types recorded.
    pub events: Vec<&'static str>,
    /// The aggregate's state afterwards, as JSON.
    pub state: serde_json::Value,
}

/// Which state of an aggregate to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum At {
    /// Its state now.
    #[default]
    Latest,
    /// Its state just after this version of its stream.
    Version(Version),
    /// Its state as of this time (the events recorded at or before it).
    Time(DateTime<Utc>),
}

/// An aggregate's state, as read by name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AggregateState {
    /// The aggregate type.
    pub aggregate: &'static str,
    /// Its id.
    pub id: String,
    /// The stream version the state is at.
    pub version: Version,
    /// The state, as JSON.
    pub state: serde_json::Value,
}

/// One aggregate type as front ends reach it by name.
#[async_trait]
pub trait RegisteredAggregate: Send + Sync {
    /// The aggregate's type name.
    fn aggregate(&self) -> &'static str;

    /// Its command names, as accepted by [`RegisteredAggregate::execute`].
    fn command_names(&self) -> Vec<&'static str>;

    /// Runs `command` with `arguments` (a JSON object) on aggregate `id`,
    /// re-deciding on conflicts as the repository does.
    ///
    /// # Errors
    /// [`ExecError`] naming what was wrong.
    async fn execute(
        &self,
        stores: &Stores,
        id: &str,
        command: &str,
        arguments: serde_json::Value,
    ) -> Result<ExecOutcome, ExecError>;

    /// The state of aggregate `id` at `at`.
    ///
    /// # Errors
    /// [`ExecError::NotFound`] when it has no events (by then);
    /// [`ExecError::VersionNotReached`] for a version past its stream's end.
    async fn state(&self, stores: &Stores, id: &str, at: At) -> Result<AggregateState, ExecError>;

    /// Whether `event` reads as one of this aggregate's events: `None` when
    /// it is not in this aggregate's streams (`Type-...`) or is a tombstone,
    /// otherwise whether it decodes, and if not which payload field is at
    /// fault.
    fn check_event(&self, event: &RecordedEvent) -> Option<Result<(), UndecodableEvent>>;
}

/// A stored (or imported) event that its aggregate cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{event_type} in {stream} does not decode{}: {reason}", field.as_ref().map(|f| format!(" (field `{f}`)")).unwrap_or_default())]
pub struct UndecodableEvent {
    /// The stream.
    pub stream: StreamId,
    /// The event type.
    pub event_type: String,
    /// The payload field at fault, when one is.
    pub field: Option<String>,
    /// Why, in the decoder's words.
    pub reason: String,
}

/// The registration of aggregate `A`, whose command enum is serde-tagged by
/// a `command` field (as every seed domain's is) and serializable (so
/// unknown arguments are caught).
pub struct Registration<A>(std::marker::PhantomData<fn() -> A>);

impl<A> Default for Registration<A> {
    fn default() -> Self {
        Self(std::marker::PhantomData)
    }
}

#[async_trait]
impl<A> RegisteredAggregate for Registration<A>
where
    A: Aggregate,
    A::Command: DeserializeOwned + Serialize,
{
    fn aggregate(&self) -> &'static str {
        A::TYPE
    }

    fn command_names(&self) -> Vec<&'static str> {
        arguments::command_names::<A::Command>()
    }

    async fn execute(
        &self,
        stores: &Stores,
        id: &str,
        command: &str,
        arguments: serde_json::Value,
    ) -> Result<ExecOutcome, ExecError> {
        let parsed = arguments::parse_command::<A::Command>(command, arguments)
            .map_err(|problem| ExecError::InvalidArguments {
                aggregate: A::TYPE,
                command: command.to_owned(),
                problem,
            })?
            .ok_or_else(|| ExecError::UnknownCommand {
                aggregate: A::TYPE,
                command: command.to_owned(),
                valid: self.command_names(),
            })?;
        let done = Repository::<A>::new(stores)
            .execute(id, &parsed)
            .await
            .map_err(|error| ExecError::from_repository(A::TYPE, id, error))?;
        Ok(ExecOutcome {
            version: done.version,
            events: done
                .events
                .iter()
                .map(logbook_domain::DomainEvent::event_type)
                .collect(),
            state: serde_json::to_value(&done.state).unwrap_or_default(),
        })
    }

    async fn state(&self, stores: &Stores, id: &str, at: At) -> Result<AggregateState, ExecError> {
        let repository = Repository::<A>::new(stores);
        let failed = |error| ExecError::from_repository(A::TYPE, id, error);
        let loaded = match at {
            At::Latest => repository.load(id).await,
            At::Version(version) => repository.load_at_version(id, version).await,
            At::Time(time) => repository.load_at_time(id, time).await,
        }
        .map_err(failed)?;
        if loaded.version == 0 {
            return Err(ExecError::NotFound {
                aggregate: A::TYPE,
                id: id.to_owned(),
                at_a_past_point: at != At::Latest,
            });
        }
        if let At::Version(asked) = at
            && asked > loaded.version
        {
            return Err(ExecError::VersionNotReached {
                aggregate: A::TYPE,
                id: id.to_owned(),
                asked,
                current: loaded.version,
            });
        }
        Ok(AggregateState {
            aggregate: A::TYPE,
            id: id.to_owned(),
            version: loaded.version,
            state: serde_json::to_value(&loaded.state).unwrap_or_default(),
        })
    }

    fn check_event(&self, event: &RecordedEvent) -> Option<Result<(), UndecodableEvent>> {
        (event.stream.category() == A::TYPE && !is_tombstone(&event.event_type))
            .then(|| check_decodes::<A::Event>(event))
    }
}

/// Checks that `event` decodes as an `E`; when not, finds the payload field
/// at fault as the first whose removal changes the decoder's complaint.
fn check_decodes<E: logbook_domain::DomainEvent>(
    event: &RecordedEvent,
) -> Result<(), UndecodableEvent> {
    // Encrypted personal fields are checked in the shape they read as
    // without their key (the placeholder): a check needs no key, and an
    // export carries them encrypted.
    let placeholder;
    let event = if crate::personal::fields::may_be_encrypted(&event.payload) {
        match crate::personal::fields::open_fields(&event.payload, event.id, |_| {
            crate::personal::Access::Shredded
        }) {
            Ok(payload) => {
                placeholder = RecordedEvent {
                    payload,
                    ..event.clone()
                };
                &placeholder
            }
            Err(error) => {
                return Err(UndecodableEvent {
                    stream: event.stream.clone(),
                    event_type: event.event_type.to_string(),
                    field: None,
                    reason: error.to_string(),
                });
            }
        }
    } else {
        event
    };
    let decoder = Decoder::<E>::new();
    let complaint = |event: &RecordedEvent| {
        decoder.decode(event).err().map(|error| match error {
            CodecError::Decode { source, .. } => source.to_string(),
            other => other.to_string(),
        })
    };
    let Some(reason) = complaint(event) else {
        return Ok(());
    };
    let field = event
        .payload
        .to_value::<serde_json::Map<String, serde_json::Value>>()
        .ok()
        .and_then(|object| {
            object
                .keys()
                .find(|key| {
                    let mut without = object.clone();
                    without.remove(*key);
                    let mut probe = event.clone();
                    match serde_json::to_vec(&without).map(logbook_domain::Payload::from_json) {
                        Ok(Ok(payload)) => probe.payload = payload,
                        _ => return false,
                    }
                    complaint(&probe).as_deref() != Some(reason.as_str())
                })
                .cloned()
        });
    Err(UndecodableEvent {
        stream: event.stream.clone(),
        event_type: event.event_type.to_string(),
        field,
        reason,
    })
}

/// Aggregates by name.
#[derive(Clone, Default)]
pub struct AggregateRegistry {
    aggregates: BTreeMap<&'static str, Arc<dyn RegisteredAggregate>>,
}

impl std::fmt::Debug for AggregateRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.aggregates.keys()).finish()
    }
}

impl AggregateRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The seed domains: `BankAccount`, `CargoShip`, `UserWallet`.
    pub fn with_seed_domains() -> Self {
        Self::new()
            .with::<BankAccount>()
            .with::<CargoShip>()
            .with::<UserWallet>()
    }

    /// Adds aggregate `A` (names are matched without regard to case, `-`
    /// or `_`: `cargo-ship` finds `CargoShip`).
    #[must_use]
    pub fn with<A>(self) -> Self
    where
        A: Aggregate,
        A::Command: DeserializeOwned + Serialize,
    {
        self.register(Registration::<A>::default())
    }

    /// Adds a registration of one's own.
    #[must_use]
    pub fn register(mut self, aggregate: impl RegisteredAggregate + 'static) -> Self {
        self.aggregates
            .insert(aggregate.aggregate(), Arc::new(aggregate));
        self
    }

    /// Adds every registration of `other` (replacing one of the same name).
    #[must_use]
    pub fn merge(mut self, other: &Self) -> Self {
        for (name, registered) in &other.aggregates {
            self.aggregates.insert(name, registered.clone());
        }
        self
    }

    /// The registered aggregate names.
    pub fn aggregates(&self) -> Vec<&'static str> {
        self.aggregates.keys().copied().collect()
    }

    /// The registration of `aggregate`.
    ///
    /// # Errors
    /// [`ExecError::UnknownAggregate`].
    pub fn get(&self, aggregate: &str) -> Result<&Arc<dyn RegisteredAggregate>, ExecError> {
        let wanted = normalize(aggregate);
        self.aggregates
            .iter()
            .find(|(name, _)| normalize(name) == wanted)
            .map(|(_, registered)| registered)
            .ok_or_else(|| ExecError::UnknownAggregate {
                name: aggregate.to_owned(),
                known: self.aggregates(),
            })
    }

    /// Runs `command` of `aggregate` on `id` with JSON `arguments`.
    ///
    /// # Errors
    /// [`ExecError`].
    pub async fn execute(
        &self,
        stores: &Stores,
        aggregate: &str,
        id: &str,
        command: &str,
        arguments: serde_json::Value,
    ) -> Result<ExecOutcome, ExecError> {
        self.get(aggregate)?
            .execute(stores, id, command, arguments)
            .await
    }

    /// Whether `event` reads as an event of the registered aggregate whose
    /// streams it is in: `None` when no registered aggregate claims it.
    pub fn check_event(&self, event: &RecordedEvent) -> Option<Result<(), UndecodableEvent>> {
        self.aggregates
            .values()
            .find_map(|registered| registered.check_event(event))
    }

    /// The state of `aggregate` `id` at `at`.
    ///
    /// # Errors
    /// [`ExecError`].
    pub async fn state(
        &self,
        stores: &Stores,
        aggregate: &str,
        id: &str,
        at: At,
    ) -> Result<AggregateState, ExecError> {
        self.get(aggregate)?.state(stores, id, at).await
    }
}

fn normalize(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '-' && *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_are_found_by_loose_name() {
        let registry = AggregateRegistry::with_seed_domains();
        assert_eq!(
            registry.get("cargo-ship").unwrap().command_names(),
            [
                "register",
                "register_ship",
                "dock",
                "dock_ship",
                "depart",
                "depart_ship",
                "load_cargo",
                "unload_cargo"
            ]
        );
        assert!(matches!(
            registry.get("spaceship"),
            Err(ExecError::UnknownAggregate { .. })
        ));
    }
}
