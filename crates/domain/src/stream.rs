//! Stream identity and the two orders every event has: its version inside its
//! stream and its position in the global log.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Version of an event inside its stream: 1 for the first event, contiguous.
/// A stream that does not exist has no version (`Option<Version>` is `None`).
pub type Version = u64;

/// Position of an event in the store's global log: 1 for the first event ever
/// appended, strictly increasing.
pub type Position = u64;

/// Longest stream id accepted, in bytes.
pub const MAX_STREAM_ID_LEN: usize = 256;

/// The name of one stream, validated: non-empty, at most
/// [`MAX_STREAM_ID_LEN`] bytes, no control characters and no invisible or
/// bidirectional-formatting characters (a U+202E override would make two
/// different ids look alike, or one look like another). By convention
/// `Type-<id>`, e.g. `BankAccount-acc_001`.
///
/// Cheap to clone (shared string).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId(Arc<str>);

/// Why a string is not a valid [`StreamId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamIdError {
    /// The id was the empty string.
    #[error("stream id must not be empty")]
    Empty,
    /// The id was longer than [`MAX_STREAM_ID_LEN`] bytes.
    #[error("stream id is {len} bytes long; at most {MAX_STREAM_ID_LEN} are allowed")]
    TooLong {
        /// Length of the rejected id, in bytes.
        len: usize,
    },
    /// The id contained a control character.
    #[error("stream id {id:?} contains a control character at byte {index}")]
    ControlCharacter {
        /// The rejected id (escaped when displayed).
        id: String,
        /// Byte offset of the first control character.
        index: usize,
    },
    /// The id contained an invisible or bidirectional-formatting character.
    #[error(
        "stream id {id:?} contains the invisible character U+{:04X} at byte {index}",
        u32::from(*character)
    )]
    InvisibleCharacter {
        /// The rejected id (escaped when displayed).
        id: String,
        /// Byte offset of the character.
        index: usize,
        /// The character.
        character: char,
    },
    /// An aggregate id was empty: `Type-` names no aggregate.
    #[error("{aggregate_type} id must not be empty")]
    EmptyAggregateId {
        /// The aggregate type.
        aggregate_type: String,
    },
}

/// Characters that show nothing, or reorder what is shown: zero-width
/// spaces and joiners, bidirectional marks, embeddings, overrides and
/// isolates, word joiners and invisible operators, the byte-order mark, the
/// soft hyphen.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
    )
}

impl StreamId {
    /// Validates `id` and makes it a stream id.
    ///
    /// # Errors
    /// [`StreamIdError`] when `id` is empty, too long or contains a control
    /// character.
    pub fn new(id: impl AsRef<str>) -> Result<Self, StreamIdError> {
        let id = id.as_ref();
        if id.is_empty() {
            return Err(StreamIdError::Empty);
        }
        if id.len() > MAX_STREAM_ID_LEN {
            return Err(StreamIdError::TooLong { len: id.len() });
        }
        // The usual id is ASCII: one pass over its bytes settles it (every
        // invisible character is outside ASCII).
        if id.bytes().all(|b| b.is_ascii() && !b.is_ascii_control()) {
            return Ok(Self(Arc::from(id)));
        }
        if let Some((index, _)) = id.char_indices().find(|(_, c)| c.is_control()) {
            return Err(StreamIdError::ControlCharacter {
                id: id.to_owned(),
                index,
            });
        }
        if let Some((index, character)) = id.char_indices().find(|(_, c)| is_invisible(*c)) {
            return Err(StreamIdError::InvisibleCharacter {
                id: id.to_owned(),
                index,
                character,
            });
        }
        Ok(Self(Arc::from(id)))
    }

    /// The stream of aggregate `id` of type `aggregate_type`: `Type-<id>`.
    /// Every front end names aggregates through this, so one rule holds for
    /// every id a user types.
    ///
    /// # Errors
    /// [`StreamIdError::EmptyAggregateId`] for an empty `id`; otherwise as
    /// [`StreamId::new`] for the joined name.
    pub fn for_aggregate(aggregate_type: &str, id: &str) -> Result<Self, StreamIdError> {
        if id.is_empty() {
            return Err(StreamIdError::EmptyAggregateId {
                aggregate_type: aggregate_type.to_owned(),
            });
        }
        let len = aggregate_type.len() + 1 + id.len();
        if len > MAX_STREAM_ID_LEN {
            return Err(StreamIdError::TooLong { len });
        }
        // Joined on the stack: the id's one allocation is its own.
        let mut joined = [0u8; MAX_STREAM_ID_LEN];
        joined[..aggregate_type.len()].copy_from_slice(aggregate_type.as_bytes());
        joined[aggregate_type.len()] = b'-';
        joined[aggregate_type.len() + 1..len].copy_from_slice(id.as_bytes());
        let joined = std::str::from_utf8(&joined[..len]).expect("two strings joined by '-'");
        Self::new(joined)
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The category of the stream: the part before the first `-`
    /// (`BankAccount` for `BankAccount-acc_001`), or the whole id.
    pub fn category(&self) -> &str {
        self.0
            .split_once('-')
            .map_or(&self.0, |(category, _)| category)
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StreamId({:?})", &*self.0)
    }
}

/// A stream id hashes and compares as its text, so maps keyed by stream id
/// are searched with a `&str`.
impl std::borrow::Borrow<str> for StreamId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for StreamId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for StreamId {
    type Err = StreamIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl Serialize for StreamId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for StreamId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::new(raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_conventional_form_and_names_its_category() {
        let id = StreamId::new("BankAccount-acc_001").unwrap();
        assert_eq!(id.as_str(), "BankAccount-acc_001");
        assert_eq!(id.category(), "BankAccount");
    }

    #[test]
    fn rejects_empty_too_long_and_control_characters() {
        assert_eq!(StreamId::new(""), Err(StreamIdError::Empty));
        assert_eq!(
            StreamId::new("x".repeat(257)),
            Err(StreamIdError::TooLong { len: 257 })
        );
        assert!(StreamId::new("x".repeat(256)).is_ok());
        assert!(matches!(
            StreamId::new("a\nb"),
            Err(StreamIdError::ControlCharacter { index: 1, .. })
        ));
    }

    #[test]
    fn rejects_invisible_and_bidirectional_characters() {
        let error = StreamId::new("BankAccount-ab\u{202E}cd").unwrap_err();
        assert!(matches!(
            error,
            StreamIdError::InvisibleCharacter {
                index: 14,
                character: '\u{202E}',
                ..
            }
        ));
        assert!(error.to_string().contains("U+202E"), "{error}");
        assert!(StreamId::new("a\u{200B}b").is_err());
        assert!(StreamId::new("Konto-Müller-ß").is_ok());
    }

    #[test]
    fn an_aggregate_id_must_not_be_empty() {
        assert_eq!(
            StreamId::for_aggregate("CargoShip", ""),
            Err(StreamIdError::EmptyAggregateId {
                aggregate_type: "CargoShip".into()
            })
        );
        assert_eq!(
            StreamId::for_aggregate("CargoShip", "s1").unwrap().as_str(),
            "CargoShip-s1"
        );
    }

    #[test]
    fn deserializing_validates() {
        assert!(serde_json::from_str::<StreamId>("\"\"").is_err());
        let id: StreamId = serde_json::from_str("\"Ship-1\"").unwrap();
        assert_eq!(id.as_str(), "Ship-1");
    }
}
