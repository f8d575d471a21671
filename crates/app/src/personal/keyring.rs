//! [`Keyring`]: subject keys through the [`SubjectKeyStore`] port, sealed
//! and unsealed with the master key, and the asynchronous steps around the
//! pure [`fields`](super::fields) form: seal an event's personal fields
//! before it is appended, open them after it is read.

use std::collections::HashMap;
use std::sync::Arc;

use logbook_domain::{DomainEvent, NewEvent, Payload, RecordedEvent, StreamId, SubjectId, Version};
use logbook_ports::{SubjectKey, SubjectKeyStore, WrappedKey};

use super::PersonalDataError;
use super::cipher::{KEY_LEN, Sealed, SecretKey, binding};
use super::fields::{self, Access};
use super::master_key::MasterKey;

/// The version byte that opens a wrapped key.
const WRAP_VERSION: u8 = 1;

fn wrap_binding(subject: &SubjectId) -> Vec<u8> {
    binding(&[b"logbook subject key v1", subject.as_str().as_bytes()])
}

/// Seals a subject key with the master key (version byte, nonce, ciphertext).
fn wrap(master: &MasterKey, subject: &SubjectId, key: &SecretKey) -> WrappedKey {
    let sealed = master.key().seal(key.as_bytes(), &wrap_binding(subject));
    let mut bytes = vec![WRAP_VERSION];
    bytes.extend_from_slice(&sealed.to_bytes());
    WrappedKey::new(bytes)
}

/// Opens a wrapped subject key; `None` with another master key (or bytes
/// that are not a wrapped key).
fn unwrap(master: &MasterKey, subject: &SubjectId, wrapped: &WrappedKey) -> Option<SecretKey> {
    let (version, rest) = wrapped.as_bytes().split_first()?;
    if *version != WRAP_VERSION {
        return None;
    }
    let plain = master
        .key()
        .open(&Sealed::from_bytes(rest)?, &wrap_binding(subject))?;
    let bytes: [u8; KEY_LEN] = plain.try_into().ok()?;
    Some(SecretKey::from_bytes(bytes))
}

/// What [`Keyring::rotate_master_key`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rotation {
    /// Keys sealed anew with the new master key.
    pub rewrapped: u64,
    /// Keys already sealed with the new master key (a rotation run again).
    pub already_new: u64,
    /// Tombstones passed over.
    pub shredded: u64,
}

/// Subject keys for one store, with the operator's master key (or none:
/// then personal fields of a store that holds no keys are written in plain
/// text, and encrypted ones cannot be read).
///
/// Nothing is cached: every use asks the port, so a shred by another process
/// is seen at once.
#[derive(Clone)]
pub struct Keyring {
    keys: Arc<dyn SubjectKeyStore>,
    master: Option<MasterKey>,
    /// Why the configured master key could not be read, if it could not.
    unreadable: Option<String>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("master_key", &self.master.is_some())
            .finish_non_exhaustive()
    }
}

impl Keyring {
    /// Keys kept in `keys`, sealed with `master`.
    pub fn new(keys: Arc<dyn SubjectKeyStore>, master: Option<MasterKey>) -> Self {
        Self {
            keys,
            master,
            unreadable: None,
        }
    }

    /// Keys kept in `keys`, sealed with this process's master key
    /// ([`process_master_key`](super::master_key::process_master_key)). A
    /// key that could not be read is reported on first use.
    pub fn for_process(keys: Arc<dyn SubjectKeyStore>) -> Self {
        match super::master_key::process_master_key() {
            Ok(master) => Self::new(keys, master),
            Err(reason) => Self {
                keys,
                master: None,
                unreadable: Some(reason),
            },
        }
    }

    /// The master key, or why there is none.
    fn master(&self, subject: &SubjectId) -> Result<&MasterKey, PersonalDataError> {
        if let Some(reason) = &self.unreadable {
            return Err(PersonalDataError::UnreadableMasterKey {
                reason: reason.clone(),
            });
        }
        self.master
            .as_ref()
            .ok_or_else(|| PersonalDataError::NoMasterKey {
                subject: subject.clone(),
            })
    }

    /// The key port.
    #[must_use]
    pub fn keys(&self) -> &Arc<dyn SubjectKeyStore> {
        &self.keys
    }

    /// True when a master key is configured.
    #[must_use]
    pub fn has_master_key(&self) -> bool {
        self.master.is_some()
    }

    /// The key to seal `subject`'s data with, created (random, sealed by the
    /// master key) when the subject has none; `None` when no master key is
    /// configured and the store holds no keys at all (protection is off).
    ///
    /// # Errors
    /// [`PersonalDataError::Shredded`] for a shredded subject;
    /// [`PersonalDataError::MasterKeyRequired`] without a master key in a
    /// store that holds keys; [`PersonalDataError::WrongMasterKey`]; store
    /// failures.
    pub async fn key_for_writing(
        &self,
        subject: &SubjectId,
    ) -> Result<Option<SecretKey>, PersonalDataError> {
        if let Some(reason) = &self.unreadable {
            return Err(PersonalDataError::UnreadableMasterKey {
                reason: reason.clone(),
            });
        }
        let Some(master) = &self.master else {
            if self.keys.list(None, 1).await?.is_empty() {
                tracing::debug!(%subject, "no master key configured: personal data stored in plain text");
                return Ok(None);
            }
            return Err(PersonalDataError::MasterKeyRequired {
                subject: subject.clone(),
            });
        };
        let record = match self.keys.get(subject).await? {
            Some(record) => record,
            None => {
                let candidate = SecretKey::generate();
                self.keys
                    .get_or_create(subject, wrap(master, subject, &candidate))
                    .await?
            }
        };
        match record {
            SubjectKey::Active { wrapped, .. } => unwrap(master, subject, &wrapped)
                .map(Some)
                .ok_or_else(|| PersonalDataError::WrongMasterKey {
                    subject: subject.clone(),
                }),
            SubjectKey::Shredded { .. } => Err(PersonalDataError::Shredded {
                subject: subject.clone(),
            }),
        }
    }

    /// How `subject`'s data reads: with its key, or as shredded.
    ///
    /// # Errors
    /// [`PersonalDataError::NoKey`] when the store has no record of the
    /// subject; [`PersonalDataError::NoMasterKey`] /
    /// [`PersonalDataError::WrongMasterKey`] for an active key the master
    /// key cannot open; store failures.
    pub async fn access(&self, subject: &SubjectId) -> Result<Access, PersonalDataError> {
        match self.keys.get(subject).await? {
            None => Err(PersonalDataError::NoKey {
                subject: subject.clone(),
            }),
            Some(SubjectKey::Shredded { .. }) => Ok(Access::Shredded),
            Some(SubjectKey::Active { wrapped, .. }) => {
                let master = self.master(subject)?;
                unwrap(master, subject, &wrapped)
                    .map(Access::Open)
                    .ok_or_else(|| PersonalDataError::WrongMasterKey {
                        subject: subject.clone(),
                    })
            }
        }
    }

    async fn accesses(
        &self,
        subjects: Vec<SubjectId>,
    ) -> Result<HashMap<SubjectId, Access>, PersonalDataError> {
        let mut found = HashMap::with_capacity(subjects.len());
        for subject in subjects {
            let access = self.access(&subject).await?;
            found.insert(subject, access);
        }
        Ok(found)
    }

    /// `envelope` (encoded from `event` for `stream`) with the fields the
    /// event declares personal sealed by their subjects' keys; unchanged
    /// when it declares none, or when protection is off.
    ///
    /// # Errors
    /// As [`Keyring::key_for_writing`]; [`PersonalDataError::Seal`] for a
    /// payload that is not an object.
    pub async fn seal_event<E: DomainEvent>(
        &self,
        stream: &StreamId,
        event: &E,
        envelope: NewEvent,
    ) -> Result<NewEvent, PersonalDataError> {
        self.seal_event_naming(stream, event, envelope, &mut Vec::new())
            .await
    }

    /// As [`Keyring::seal_event`], adding to `sealed` (once each) the
    /// subjects whose keys sealed a field: what the repository learns of a
    /// stream's subjects as it appends, without scanning the payload again.
    pub(crate) async fn seal_event_naming<E: DomainEvent>(
        &self,
        stream: &StreamId,
        event: &E,
        envelope: NewEvent,
        sealed: &mut Vec<SubjectId>,
    ) -> Result<NewEvent, PersonalDataError> {
        let declared = event.personal_fields(stream);
        if declared.is_empty() {
            return Ok(envelope);
        }
        let mut fields = Vec::with_capacity(declared.len());
        for personal in declared {
            let Some(key) = self.key_for_writing(&personal.subject).await? else {
                continue;
            };
            fields.push((personal.field, personal.subject, key));
        }
        if fields.is_empty() {
            return Ok(envelope);
        }
        let payload = fields::seal_fields_naming(&envelope.payload, envelope.id, &fields, sealed)
            .map_err(|source| PersonalDataError::Seal {
            event_type: envelope.event_type.clone(),
            source,
        })?;
        Ok(NewEvent {
            payload,
            ..envelope
        })
    }

    /// `recorded` with its encrypted fields opened (a shredded subject's as
    /// the placeholder); `None` when it holds none.
    ///
    /// # Errors
    /// As [`Keyring::access`]; [`PersonalDataError::Form`] for a value that
    /// is malformed or does not open where it is.
    pub async fn open_event(
        &self,
        recorded: &RecordedEvent,
    ) -> Result<Option<RecordedEvent>, PersonalDataError> {
        let subjects = fields::subjects_in(&recorded.payload);
        if subjects.is_empty() {
            return Ok(None);
        }
        let accesses = self.accesses(subjects).await?;
        let payload = fields::open_fields(&recorded.payload, recorded.id, |s| {
            accesses.get(s).cloned().unwrap_or(Access::Shredded)
        })
        .map_err(|source| PersonalDataError::Form {
            location: format!(
                "event {} at version {} of stream {}, global position {}",
                recorded.event_type, recorded.version, recorded.stream, recorded.position
            ),
            source,
        })?;
        Ok(Some(RecordedEvent {
            payload,
            ..recorded.clone()
        }))
    }

    /// Seals a snapshot state of `stream` at `version` with the keys of
    /// `subjects` (the subjects of the events folded into it).
    ///
    /// # Errors
    /// As [`Keyring::key_for_writing`] (a shredded subject: take no snapshot).
    pub async fn seal_snapshot(
        &self,
        state: &Payload,
        stream: &StreamId,
        version: Version,
        subjects: &[SubjectId],
    ) -> Result<Payload, PersonalDataError> {
        let mut keys = Vec::with_capacity(subjects.len());
        for subject in subjects {
            if let Some(key) = self.key_for_writing(subject).await? {
                keys.push((subject.clone(), key));
            }
        }
        Ok(fields::seal_snapshot(state, stream, version, &keys))
    }

    /// A sealed snapshot state opened; `None` when one of its subjects is
    /// shredded (replay the events instead).
    ///
    /// # Errors
    /// As [`Keyring::access`]; [`PersonalDataError::Form`].
    pub async fn open_snapshot(
        &self,
        state: &Payload,
        stream: &StreamId,
        version: Version,
    ) -> Result<Option<Payload>, PersonalDataError> {
        let mut current = state.clone();
        while fields::is_sealed_whole(&current) {
            let accesses = self.accesses(fields::subjects_in(&current)).await?;
            let layer = fields::open_snapshot_layer(&current, stream, version, |s| {
                accesses.get(s).cloned().unwrap_or(Access::Shredded)
            })
            .map_err(|source| PersonalDataError::Form {
                location: format!("snapshot of stream {stream} at version {version}"),
                source,
            })?;
            match layer {
                Some(inner) => current = inner,
                None => return Ok(None),
            }
        }
        Ok(Some(current))
    }

    /// Seals every subject key anew with `new` (opened with the current
    /// master key), compare-and-set through the port, so a concurrent
    /// rotation or shred is never overwritten. Run again after a failure:
    /// keys already sealed with `new` are counted and left alone.
    ///
    /// # Errors
    /// [`PersonalDataError::NoMasterKey`] without a current master key;
    /// [`PersonalDataError::WrongMasterKey`] for a key neither master key
    /// opens; store failures.
    pub async fn rotate_master_key(&self, new: &MasterKey) -> Result<Rotation, PersonalDataError> {
        let mut rotation = Rotation::default();
        let mut after: Option<SubjectId> = None;
        loop {
            let page = self.keys.list(after.as_ref(), 256).await?;
            let Some((last, _)) = page.last() else {
                return Ok(rotation);
            };
            let last = last.clone();
            let done = page.len() < 256;
            for (subject, record) in page {
                let SubjectKey::Active { wrapped, .. } = record else {
                    rotation.shredded += 1;
                    continue;
                };
                if unwrap(new, &subject, &wrapped).is_some() {
                    rotation.already_new += 1;
                    continue;
                }
                let master = self.master(&subject)?;
                let key = unwrap(master, &subject, &wrapped).ok_or_else(|| {
                    PersonalDataError::WrongMasterKey {
                        subject: subject.clone(),
                    }
                })?;
                if self
                    .keys
                    .rewrap(&subject, &wrapped, wrap(new, &subject, &key))
                    .await?
                {
                    rotation.rewrapped += 1;
                } else {
                    // Shredded or changed meanwhile: what is stored now wins.
                    rotation.shredded += 1;
                }
            }
            if done {
                return Ok(rotation);
            }
            after = Some(last);
        }
    }
}
