//! Typed domain events to stored envelopes and back.
//!
//! An aggregate's event enum is serialized in serde's default (externally
//! tagged) form, `{"MoneyDeposited": {...}}`: the variant name becomes the
//! envelope's event type and the variant's content its payload. Decoding
//! reverses it, so stores never see a Rust type.

use logbook_domain::{DomainEvent, Metadata, NewEvent, Payload, RecordedEvent};

/// Why an event could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The event does not serialize to `{"<type>": <payload>}` with the type
    /// its `event_type()` names.
    #[error(
        "event type {event_type} does not serialize as {{\"{event_type}\": payload}}: {detail}"
    )]
    Shape {
        /// The event type.
        event_type: &'static str,
        /// What was found instead.
        detail: String,
    },
    /// A stored event is not a known event of this aggregate, or its payload
    /// does not have the expected shape.
    #[error(
        "cannot read event {event_type} (schema version {schema_version}) at version {version} of stream {stream}, global position {position}: {source}"
    )]
    Decode {
        /// The stream.
        stream: String,
        /// Version in the stream.
        version: u64,
        /// Global position.
        position: u64,
        /// Stored event type.
        event_type: String,
        /// Stored schema version.
        schema_version: u32,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
}

/// Turns a typed event into an envelope with a fresh id.
///
/// # Errors
/// [`CodecError::Shape`] when the event's serde form does not match its
/// declared type name (a programming error in the event enum).
pub fn encode<E: DomainEvent>(event: &E, metadata: &Metadata) -> Result<NewEvent, CodecError> {
    let event_type = event.event_type();
    let shape = |detail: String| CodecError::Shape { event_type, detail };
    let value = serde_json::to_value(event).map_err(|e| shape(e.to_string()))?;
    let serde_json::Value::Object(mut map) = value else {
        return Err(shape(format!("serialized as {value}")));
    };
    if map.len() != 1 {
        return Err(shape(format!("an object with {} keys", map.len())));
    }
    let content = map
        .remove(event_type)
        .ok_or_else(|| shape(format!("an object keyed {:?}", map.keys().next())))?;
    let payload = Payload::from_serialize(&content).map_err(|e| shape(e.to_string()))?;
    Ok(NewEvent::new(event_type, payload)
        .with_schema_version(event.schema_version())
        .with_metadata(metadata.clone()))
}

/// Reads a stored envelope as a typed event.
///
/// # Errors
/// [`CodecError::Decode`] naming the stream, version, position and type when
/// the type is unknown to `E` or the payload has the wrong shape.
pub fn decode<E: DomainEvent>(recorded: &RecordedEvent) -> Result<E, CodecError> {
    // Rebuild `{"<type>": <payload>}` around the stored bytes and let serde
    // pick the variant; the payload is copied once, never parsed twice.
    let key = serde_json::to_string(&*recorded.event_type).unwrap_or_default();
    let payload = recorded.payload.as_bytes();
    let mut json = Vec::with_capacity(key.len() + payload.len() + 3);
    json.push(b'{');
    json.extend_from_slice(key.as_bytes());
    json.push(b':');
    json.extend_from_slice(payload);
    json.push(b'}');
    serde_json::from_slice(&json).map_err(|source| CodecError::Decode {
        stream: recorded.stream.to_string(),
        version: recorded.version,
        position: recorded.position,
        event_type: recorded.event_type.to_string(),
        schema_version: recorded.schema_version,
        source,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use logbook_domain::bank_account::BankAccountEvent;
    use logbook_domain::{EventId, StreamId};

    use super::*;

    fn recorded(new: &NewEvent) -> RecordedEvent {
        RecordedEvent {
            id: new.id,
            stream: StreamId::new("BankAccount-1").unwrap(),
            version: 3,
            position: 9,
            event_type: Arc::from(new.event_type.as_str()),
            schema_version: new.schema_version,
            payload: new.payload.clone(),
            metadata: new.metadata.clone(),
            recorded_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn an_event_round_trips_with_its_variant_name_as_type() {
        let event = BankAccountEvent::MoneyDeposited {
            amount: "500.00".parse().unwrap(),
            description: "Salary".into(),
        };
        let new = encode(&event, &Metadata::default()).unwrap();
        assert_eq!(new.event_type, "MoneyDeposited");
        assert_eq!(
            new.payload.as_str(),
            r#"{"amount":"500.00","description":"Salary"}"#
        );
        assert_eq!(decode::<BankAccountEvent>(&recorded(&new)).unwrap(), event);
    }

    #[test]
    fn an_unknown_type_is_an_error_naming_where_it_is() {
        let mut new = encode(&BankAccountEvent::AccountClosed {}, &Metadata::default()).unwrap();
        new.event_type = "AccountFrozen".into();
        new.id = EventId::new();
        let err = decode::<BankAccountEvent>(&recorded(&new))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("AccountFrozen")
                && err.contains("BankAccount-1")
                && err.contains("position 9"),
            "{err}"
        );
    }
}
