//! The pure core of logbook: what an event, a stream and an aggregate are, and
//! the seed domains (bank account, cargo ship, user wallet) with their
//! invariants.
//!
//! An aggregate *decides* (`handle` turns a command into events or a typed
//! error, without mutating) and *evolves* (`apply` folds one event into the
//! state, infallibly). Everything here is deterministic and synchronous.
//!
//! **Architecture invariant:** this crate performs no I/O and never depends on
//! tokio, rusqlite, async-trait or any storage crate; decisions never read the
//! clock. `cargo xtask ci` fails if that changes.

pub mod aggregate;
pub mod bank_account;
pub mod cargo_ship;
pub mod event;
pub mod money;
pub mod stream;
pub mod subject;
pub mod upcast;
pub mod user_wallet;

pub use aggregate::Aggregate;
pub use event::{
    DomainEvent, EventId, Metadata, NewEvent, Payload, PayloadError, RecordedEvent,
    RecordedEventRef, RecordedTime,
};
pub use money::{Currency, CurrencyError, Money, MoneyError};
pub use stream::{Position, StreamId, StreamIdError, Version};
pub use subject::{PersonalField, SHREDDED_PLACEHOLDER, SubjectId, SubjectIdError};
pub use upcast::{UpcastError, Upcasters};
