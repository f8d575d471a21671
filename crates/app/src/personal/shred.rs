//! [`shred`]: destroy a subject's key and record that it happened.

use logbook_domain::{DomainEvent, Metadata, StreamId, SubjectId};
use logbook_ports::{EventStore, ExpectedVersion, Stores, SubjectKey, SubjectKeyStore};

use super::PersonalDataError;
use crate::codec;

/// The events the library records about personal data; they carry no
/// personal data themselves (a subject id must be a pseudonym, never a name).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PersonalDataEvent {
    /// The subject's key was destroyed: its personal fields read as the
    /// placeholder from now on.
    SubjectShredded {
        /// The subject.
        subject: SubjectId,
    },
}

impl DomainEvent for PersonalDataEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::SubjectShredded { .. } => "SubjectShredded",
        }
    }
}

/// The stream that records what happened to `subject`'s data:
/// `$subject-<subject>`.
#[must_use]
pub fn subject_stream(subject: &SubjectId) -> StreamId {
    // A subject id is at most 256 bytes without control characters, so the
    // stream id is valid but for its length; the longest ones are cut.
    let mut name = format!("$subject-{subject}");
    while StreamId::new(&name).is_err() && !name.is_empty() {
        name.pop();
    }
    StreamId::new(name)
        .unwrap_or_else(|_| StreamId::new("$subject").unwrap_or_else(|_| unreachable!()))
}

/// What [`shred`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shredded {
    /// The subject.
    pub subject: SubjectId,
    /// True when the subject was shredded before (nothing new recorded).
    pub already: bool,
    /// Global position of the `SubjectShredded` event recorded now.
    pub position: Option<u64>,
}

/// Shreds `subject` in `stores`: see [`shred`].
///
/// # Errors
/// As [`shred`].
pub async fn shred_subject(
    stores: &Stores,
    subject: &SubjectId,
) -> Result<Shredded, PersonalDataError> {
    shred(&*stores.events, &*stores.subject_keys, subject).await
}

/// Destroys `subject`'s key (a tombstone remains, so the subject never gets
/// a new one) and appends `SubjectShredded` to [`subject_stream`]. Read
/// models that hold personal data react to that event. No master key is
/// needed. Run again after a failure: the key stays destroyed and the event
/// is recorded once.
///
/// # Errors
/// Store failures ([`PersonalDataError::Store`]).
pub async fn shred(
    events: &dyn EventStore,
    keys: &dyn SubjectKeyStore,
    subject: &SubjectId,
) -> Result<Shredded, PersonalDataError> {
    let before = keys.get(subject).await?;
    let stream = subject_stream(subject);
    let recorded = events.stream_version(&stream).await?.unwrap_or(0) > 0;
    if matches!(before, Some(SubjectKey::Shredded { .. })) && recorded {
        return Ok(Shredded {
            subject: subject.clone(),
            already: true,
            position: None,
        });
    }
    keys.shred(subject).await?;
    let event = PersonalDataEvent::SubjectShredded {
        subject: subject.clone(),
    };
    let envelope =
        codec::encode(&event, &Metadata::default()).map_err(|e| PersonalDataError::Seal {
            event_type: "SubjectShredded".into(),
            source: super::FormError::Malformed(e.to_string()),
        })?;
    let outcome = if recorded {
        None
    } else {
        Some(
            events
                .append(&stream, ExpectedVersion::NoStream, vec![envelope])
                .await,
        )
    };
    let position = match outcome {
        Some(Ok(outcome)) => outcome.first_position,
        // Another shred recorded it meanwhile.
        Some(Err(error)) if error.is_conflict() => None,
        Some(Err(error)) => return Err(error.into()),
        None => None,
    };
    Ok(Shredded {
        subject: subject.clone(),
        already: matches!(before, Some(SubjectKey::Shredded { .. })),
        position,
    })
}
