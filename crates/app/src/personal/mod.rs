//! Personal data and crypto-shredding: the fields an event declares personal
//! ([`DomainEvent::personal_fields`](logbook_domain::DomainEvent::personal_fields))
//! are stored encrypted with their subject's key, that key is stored sealed
//! by the operator's [`MasterKey`], and [`shred`] destroys the key, after
//! which those fields read as
//! [`SHREDDED_PLACEHOLDER`](logbook_domain::SHREDDED_PLACEHOLDER) everywhere.
//! See docs/personal-data.md.
//!
//! [`cipher`] is the one AEAD, [`fields`] the stored form (pure), and
//! [`Keyring`] the asynchronous part that reaches the key port.

pub mod cipher;
pub mod fields;
mod keyring;
pub mod master_key;
mod shred;

use logbook_domain::SubjectId;
use logbook_ports::StoreError;

pub use fields::{Access, FormError};
pub use keyring::{Keyring, Rotation};
pub use master_key::{
    MASTER_KEY_FILE_VAR, MASTER_KEY_VAR, MasterKey, MasterKeyError, process_master_key,
    use_master_key,
};
pub use shred::{PersonalDataEvent, Shredded, shred, shred_subject, subject_stream};

/// Why personal data could not be sealed, opened or shredded.
#[derive(Debug, thiserror::Error)]
pub enum PersonalDataError {
    /// Encrypted data of a subject with an active key, and no master key.
    #[error(
        "the personal data of subject {subject} is encrypted and no master key is configured (set {MASTER_KEY_VAR} or {MASTER_KEY_FILE_VAR}, or pass --master-key-file)"
    )]
    NoMasterKey {
        /// The subject.
        subject: SubjectId,
    },
    /// The configured master key could not be read.
    #[error("{reason}")]
    UnreadableMasterKey {
        /// Why, in one line.
        reason: String,
    },
    /// Personal data to record in a store that holds subject keys, and no
    /// master key: it is refused rather than stored in plain text.
    #[error(
        "this store protects personal data (it holds subject keys) but no master key is configured (set {MASTER_KEY_VAR} or {MASTER_KEY_FILE_VAR}, or pass --master-key-file); the personal data of {subject} was not recorded"
    )]
    MasterKeyRequired {
        /// The subject.
        subject: SubjectId,
    },
    /// The master key does not open a stored subject key.
    #[error(
        "the master key does not open the key of subject {subject}: it is not the master key this store's keys were sealed with"
    )]
    WrongMasterKey {
        /// The subject.
        subject: SubjectId,
    },
    /// Encrypted data of a subject this store has no key record of.
    #[error(
        "the personal data of subject {subject} is encrypted but this store has no key for it (keys are not exported with events)"
    )]
    NoKey {
        /// The subject.
        subject: SubjectId,
    },
    /// New personal data of a shredded subject.
    #[error("subject {subject} is shredded: no personal data of theirs can be recorded again")]
    Shredded {
        /// The subject.
        subject: SubjectId,
    },
    /// A stored encrypted value that is malformed or does not open.
    #[error("{location}: {source}")]
    Form {
        /// Where it is (event or snapshot).
        location: String,
        /// What is wrong.
        #[source]
        source: FormError,
    },
    /// An event's personal fields could not be sealed.
    #[error("cannot seal the personal fields of event {event_type}: {source}")]
    Seal {
        /// The event type.
        event_type: String,
        /// What is wrong.
        #[source]
        source: FormError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
