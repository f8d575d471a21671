//! Commands by name: run any command of any registered aggregate from its
//! name and JSON arguments, as the seed's `ShipEventProcessor.handle(
//! 'dock_ship', ship_id=..., port=...)` did. Front ends (the CLI's `exec`, an
//! HTTP API later) share this one registry.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use logbook_domain::Aggregate;
use logbook_domain::bank_account::BankAccount;
use logbook_domain::cargo_ship::CargoShip;
use logbook_domain::user_wallet::UserWallet;
use logbook_ports::Stores;
use serde::de::DeserializeOwned;

use crate::repository::{Repository, RepositoryError};

/// Why a command by name could not run.
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
        valid: Vec<String>,
    },
    /// The arguments are not a JSON object, or miss or mistype a field.
    #[error("invalid arguments for {aggregate} {command}: {reason}")]
    InvalidArguments {
        /// The aggregate.
        aggregate: &'static str,
        /// The command.
        command: String,
        /// What is wrong (serde's words: the missing field, the wrong type).
        reason: String,
    },
    /// The command ran and failed (refused, conflict, store error).
    #[error("{aggregate} {id}: {reason}")]
    Failed {
        /// The aggregate.
        aggregate: &'static str,
        /// The id.
        id: String,
        /// The error's message.
        reason: String,
        /// True when the aggregate refused the command (an invariant).
        rejected: bool,
    },
}

/// What a command by name did.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecOutcome {
    /// Stream version afterwards.
    pub version: u64,
    /// Event types recorded.
    pub events: Vec<&'static str>,
    /// The aggregate's state afterwards, as JSON.
    pub state: serde_json::Value,
}

/// Which state of an aggregate [`NamedCommands::state`] folds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateAt {
    /// All its events.
    Now,
    /// Its events up to this stream version.
    Version(u64),
    /// Its events recorded up to this time.
    Time(chrono::DateTime<chrono::Utc>),
}

/// An aggregate's state, as JSON, and the version it was folded to.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateState {
    /// Version of the last event folded in (0: the aggregate has no events
    /// at that point).
    pub version: u64,
    /// The state, as JSON.
    pub state: serde_json::Value,
}

/// One aggregate's commands, by name.
#[async_trait]
pub trait NamedCommands: Send + Sync {
    /// The aggregate's type name.
    fn aggregate(&self) -> &'static str;

    /// Its command names, as accepted by [`NamedCommands::execute`].
    fn command_names(&self) -> Vec<String>;

    /// Runs `command` with `arguments` (a JSON object) on aggregate `id`.
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

    /// The state of aggregate `id` now, at a version or at a time.
    ///
    /// # Errors
    /// [`ExecError::Failed`] for an id that makes no stream id, a store or
    /// decoding failure.
    async fn state(&self, stores: &Stores, id: &str, at: StateAt)
    -> Result<AggregateState, ExecError>;
}

/// The commands of aggregate `A`, whose command enum is serde-tagged by a
/// `command` field (as every seed domain's is).
pub struct Commands<A>(std::marker::PhantomData<fn() -> A>);

impl<A> Default for Commands<A> {
    fn default() -> Self {
        Self(std::marker::PhantomData)
    }
}

#[async_trait]
impl<A> NamedCommands for Commands<A>
where
    A: Aggregate,
    A::Command: DeserializeOwned,
{
    fn aggregate(&self) -> &'static str {
        A::TYPE
    }

    fn command_names(&self) -> Vec<String> {
        // serde lists the variants when it meets an unknown one; asking it
        // keeps this list in step with the enum by construction.
        let probe = serde_json::json!({ "command": "\u{1}" });
        match serde_json::from_value::<A::Command>(probe) {
            Ok(_) => Vec::new(),
            Err(error) => variants_in(&error.to_string()),
        }
    }

    async fn execute(
        &self,
        stores: &Stores,
        id: &str,
        command: &str,
        arguments: serde_json::Value,
    ) -> Result<ExecOutcome, ExecError> {
        let invalid = |reason: String| ExecError::InvalidArguments {
            aggregate: A::TYPE,
            command: command.to_owned(),
            reason,
        };
        let mut object = match arguments {
            serde_json::Value::Object(object) => object,
            serde_json::Value::Null => serde_json::Map::new(),
            other => return Err(invalid(format!("expected a JSON object, got {other}"))),
        };
        if object.contains_key("command") {
            return Err(invalid(
                "`command` is given by name, not as an argument".into(),
            ));
        }
        object.insert("command".into(), command.into());
        let parsed: A::Command = match serde_json::from_value(serde_json::Value::Object(object)) {
            Ok(parsed) => parsed,
            Err(error) if error.to_string().starts_with("unknown variant") => {
                return Err(ExecError::UnknownCommand {
                    aggregate: A::TYPE,
                    command: command.to_owned(),
                    valid: self.command_names(),
                });
            }
            Err(error) => return Err(invalid(error.to_string())),
        };
        let done = Repository::<A>::new(stores)
            .execute(id, &parsed)
            .await
            .map_err(|error| ExecError::Failed {
                aggregate: A::TYPE,
                id: id.to_owned(),
                rejected: matches!(error, RepositoryError::Rejected(_)),
                reason: error.to_string(),
            })?;
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

    async fn state(
        &self,
        stores: &Stores,
        id: &str,
        at: StateAt,
    ) -> Result<AggregateState, ExecError> {
        let repository = Repository::<A>::new(stores);
        let loaded = match at {
            StateAt::Now => repository.load(id).await,
            StateAt::Version(version) => repository.load_at_version(id, version).await,
            StateAt::Time(time) => repository.load_at_time(id, time).await,
        }
        .map_err(|error| ExecError::Failed {
            aggregate: A::TYPE,
            id: id.to_owned(),
            rejected: false,
            reason: error.to_string(),
        })?;
        Ok(AggregateState {
            version: loaded.version,
            state: serde_json::to_value(&loaded.state).unwrap_or_default(),
        })
    }
}

/// The names between backticks after "expected one of" in serde's message.
fn variants_in(message: &str) -> Vec<String> {
    message
        .split_once("expected one of")
        .map(|(_, list)| {
            list.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Aggregates by name.
#[derive(Clone, Default)]
pub struct CommandRegistry {
    aggregates: BTreeMap<&'static str, Arc<dyn NamedCommands>>,
}

impl CommandRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The seed domains: `BankAccount`, `CargoShip`, `UserWallet` (names are
    /// matched without regard to case, `-` or `_`: `cargo-ship` works).
    pub fn with_seed_domains() -> Self {
        Self::new()
            .register(Commands::<BankAccount>::default())
            .register(Commands::<CargoShip>::default())
            .register(Commands::<UserWallet>::default())
    }

    /// Adds an aggregate's commands.
    pub fn register(mut self, commands: impl NamedCommands + 'static) -> Self {
        self.aggregates
            .insert(commands.aggregate(), Arc::new(commands));
        self
    }

    /// The registered aggregate names.
    pub fn aggregates(&self) -> Vec<&'static str> {
        self.aggregates.keys().copied().collect()
    }

    /// The commands of `aggregate`.
    ///
    /// # Errors
    /// [`ExecError::UnknownAggregate`].
    pub fn get(&self, aggregate: &str) -> Result<&Arc<dyn NamedCommands>, ExecError> {
        let wanted = normalize(aggregate);
        self.aggregates
            .iter()
            .find(|(name, _)| normalize(name) == wanted)
            .map(|(_, commands)| commands)
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
    fn command_names_come_from_the_enum() {
        let registry = CommandRegistry::with_seed_domains();
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
        assert_eq!(
            registry.get("BankAccount").unwrap().command_names(),
            ["open", "deposit", "withdraw", "close"]
        );
        assert!(registry.get("spaceship").is_err());
    }
}
