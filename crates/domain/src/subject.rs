//! Who personal data belongs to: a [`SubjectId`] names the person (or other
//! data subject) whose fields an event carries, so those fields can be
//! encrypted with that subject's key and erased by destroying it.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest subject id accepted, in bytes.
pub const MAX_SUBJECT_ID_LEN: usize = 256;

/// The name of one data subject, validated like a stream id: non-empty, at
/// most [`MAX_SUBJECT_ID_LEN`] bytes, no control characters. By convention
/// `kind-<id>`, e.g. `user-alice`. Cheap to clone.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubjectId(Arc<str>);

/// Why a string is not a valid [`SubjectId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubjectIdError {
    /// The id was the empty string.
    #[error("subject id must not be empty")]
    Empty,
    /// The id was longer than [`MAX_SUBJECT_ID_LEN`] bytes.
    #[error("subject id is {len} bytes long; at most {MAX_SUBJECT_ID_LEN} are allowed")]
    TooLong {
        /// Length of the rejected id, in bytes.
        len: usize,
    },
    /// The id contained a control character.
    #[error("subject id {id:?} contains a control character at byte {index}")]
    ControlCharacter {
        /// The rejected id.
        id: String,
        /// Byte offset of the first control character.
        index: usize,
    },
}

impl SubjectId {
    /// Validates `id`.
    ///
    /// # Errors
    /// [`SubjectIdError`] when `id` is empty, too long or holds a control
    /// character.
    pub fn new(id: impl AsRef<str>) -> Result<Self, SubjectIdError> {
        let id = id.as_ref();
        if id.is_empty() {
            return Err(SubjectIdError::Empty);
        }
        if id.len() > MAX_SUBJECT_ID_LEN {
            return Err(SubjectIdError::TooLong { len: id.len() });
        }
        if let Some((index, _)) = id.char_indices().find(|(_, c)| c.is_control()) {
            return Err(SubjectIdError::ControlCharacter {
                id: id.to_owned(),
                index,
            });
        }
        Ok(Self(Arc::from(id)))
    }

    /// The id as a string.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SubjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SubjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SubjectId({:?})", &*self.0)
    }
}

impl AsRef<str> for SubjectId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for SubjectId {
    type Err = SubjectIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl Serialize for SubjectId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SubjectId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::new(raw).map_err(serde::de::Error::custom)
    }
}

/// One personal field of an event's payload, as the event declares it: the
/// top-level payload field `field` holds data of `subject`. The codec encrypts
/// it with that subject's key; once the key is shredded the field reads as
/// [`SHREDDED_PLACEHOLDER`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonalField {
    /// The payload field's name (a key of the payload's top-level object).
    pub field: &'static str,
    /// Whose data it is.
    pub subject: SubjectId,
}

impl PersonalField {
    /// `field` holds data of `subject`.
    #[must_use]
    pub fn new(field: &'static str, subject: SubjectId) -> Self {
        Self { field, subject }
    }
}

/// What a personal field reads as once its subject's key is shredded: the
/// JSON string `"[shredded]"`. A personal field's type must therefore read a
/// string (a `String`, or a type with a string form).
pub const SHREDDED_PLACEHOLDER: &str = "[shredded]";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_conventional_id_and_rejects_empty_long_and_control_characters() {
        assert_eq!(SubjectId::new("user-alice").unwrap().as_str(), "user-alice");
        assert_eq!(SubjectId::new(""), Err(SubjectIdError::Empty));
        assert!(matches!(
            SubjectId::new("x".repeat(MAX_SUBJECT_ID_LEN + 1)),
            Err(SubjectIdError::TooLong { .. })
        ));
        assert!(matches!(
            SubjectId::new("a\nb"),
            Err(SubjectIdError::ControlCharacter { index: 1, .. })
        ));
    }

    #[test]
    fn deserializing_validates() {
        assert!(serde_json::from_str::<SubjectId>("\"\"").is_err());
        let id: SubjectId = serde_json::from_str("\"user-bob\"").unwrap();
        assert_eq!(id.as_str(), "user-bob");
    }
}
