//! How every store keeps an event's [`Metadata`]: as its JSON bytes, and
//! as no bytes at all when it is empty (most events carry none), so the
//! encoding and the error naming the event that cannot be encoded are the
//! same on every store.

use logbook_domain::{Metadata, NewEvent};

use crate::error::StoreError;

/// The stored form of each event's metadata, in batch order: its JSON, or
/// no bytes when it is empty.
///
/// # Errors
/// [`StoreError::InvalidEvent`] naming the first event whose metadata does
/// not serialize.
pub fn encode(events: &[NewEvent]) -> Result<Vec<Vec<u8>>, StoreError> {
    events
        .iter()
        .enumerate()
        .map(|(index, event)| {
            if event.metadata.is_empty() {
                return Ok(Vec::new());
            }
            serde_json::to_vec(&event.metadata).map_err(|e| StoreError::InvalidEvent {
                index,
                reason: format!("metadata does not serialize: {e}"),
            })
        })
        .collect()
}

/// Metadata back from its stored form (no bytes: empty metadata).
///
/// # Errors
/// The serde error when the bytes are not the JSON of a [`Metadata`]; the
/// store names where they were found.
pub fn decode(stored: &[u8]) -> Result<Metadata, serde_json::Error> {
    if stored.is_empty() {
        Ok(Metadata::default())
    } else {
        serde_json::from_slice(stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logbook_domain::Payload;

    #[test]
    fn empty_metadata_takes_no_bytes_and_the_rest_round_trips() {
        // Given one event without metadata and one with
        let bare = NewEvent::new("Happened", Payload::from_stored(b"{}".to_vec()));
        let mut metadata = Metadata::default();
        metadata.extra.insert("user".into(), "ada".into());
        let tagged = bare.clone().with_metadata(metadata.clone());
        // When they are encoded
        let stored = encode(&[bare, tagged]).unwrap();
        // Then the first takes no bytes and both decode to what they were
        assert!(stored[0].is_empty());
        assert_eq!(stored[1], br#"{"extra":{"user":"ada"}}"#);
        assert_eq!(decode(&stored[0]).unwrap(), Metadata::default());
        assert_eq!(decode(&stored[1]).unwrap(), metadata);
    }

    #[test]
    fn bytes_that_are_not_metadata_do_not_decode() {
        assert!(decode(b"{not json").is_err());
        assert!(decode(br#"{"correlation_id":"not a uuid"}"#).is_err());
    }
}
