//! Typed domain events to stored envelopes and back.
//!
//! An aggregate's event enum is serialized in serde's default (externally
//! tagged) form, `{"MoneyDeposited": {...}}`: the variant name becomes the
//! envelope's event type and the variant's content its payload. Decoding
//! reverses it, so stores never see a Rust type.
//!
//! Decoding reads the payload first with a reader for plain JSON (no
//! escapes, integers only: `plain_json`), which hands serde exactly what
//! serde_json would and gives up on anything else; serde_json then reads
//! what it gave up on, so its results and errors stand.

mod plain_json;
mod variant_content;

use std::cell::Cell;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::value::StrDeserializer;
use serde::de::{DeserializeSeed, EnumAccess, VariantAccess, Visitor};

use self::plain_json::{GaveUp, PlainJson};
use self::variant_content::VariantContent;
use logbook_domain::{
    DomainEvent, EventId, Metadata, NewEvent, Payload, RecordedEvent, RecordedEventRef,
    UpcastError, Upcasters,
};

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
    /// An upcaster refused a stored payload.
    #[error("cannot read the event at global position {position} of stream {stream}: {source}")]
    Upcast {
        /// The stream.
        stream: String,
        /// Global position.
        position: u64,
        /// The refusing step.
        #[source]
        source: UpcastError,
    },
    /// A stored schema version that this code cannot read: newer than the
    /// code, or older with no upcaster to bridge the gap.
    #[error(
        "cannot read event {event_type} at global position {position} of stream {stream}: it has schema version {stored}, this code reads version {current}{}",
        if stored < current { " and has no upcaster from it" } else { " (written by a newer program?)" }
    )]
    SchemaVersion {
        /// The stream.
        stream: String,
        /// Global position.
        position: u64,
        /// Stored event type.
        event_type: String,
        /// Version reached after any upcasting.
        stored: u32,
        /// Version the code's event has.
        current: u32,
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
    // serde's derived form: the variant's content written alone, valid JSON
    // by construction.
    let variant = Cell::new(None);
    let content = Payload::from_serialize(&VariantContent {
        event,
        variant: &variant,
    });
    let payload = match (content, variant.get()) {
        (Ok(payload), Some(name)) if name == event_type => payload,
        (Ok(_), Some(name)) => {
            return Err(shape(format!("serialized as the variant {name:?}")));
        }
        (Err(e), Some(_)) => return Err(shape(e.to_string())),
        // Not a variant with content (a hand-written form): the general path.
        (_, None) => encode_tagged(event)?,
    };
    // Built in place: no default metadata made to be dropped again.
    Ok(NewEvent {
        id: EventId::new(),
        event_type: event_type.to_owned(),
        schema_version: event.schema_version(),
        payload,
        metadata: metadata.clone(),
        recorded_at: None,
    })
}

/// The payload of an event whose serde form is not a variant with
/// content, checked to be `{"<type>": <payload>}`.
fn encode_tagged<E: DomainEvent>(event: &E) -> Result<Payload, CodecError> {
    let event_type = event.event_type();
    let shape = |detail: String| CodecError::Shape { event_type, detail };
    // Serialize once to `{"<type>":<payload>}` and cut the payload out of
    // the same buffer: no `serde_json::Value` tree, no second serialization.
    let mut json = serde_json::to_vec(event).map_err(|e| shape(e.to_string()))?;
    let key = serde_json::to_string(event_type).map_err(|e| shape(e.to_string()))?;
    let prefix = 1 + key.len() + 1;
    let tagged = json.len() > prefix + 1
        && json[0] == b'{'
        && json[1..=key.len()] == *key.as_bytes()
        && json[prefix - 1] == b':'
        && json.last() == Some(&b'}');
    if !tagged {
        let found = String::from_utf8_lossy(&json);
        return Err(shape(format!("serialized as {found}")));
    }
    json.pop();
    json.drain(..prefix);
    // The cut must leave exactly one JSON document (an event serializing to
    // an object of several keys would not).
    Payload::from_json(json).map_err(|e| {
        shape(format!(
            "an object whose {event_type:?} entry is not alone or not JSON: {e}"
        ))
    })
}

/// Reads a stored envelope as a typed event (building `E`'s upcasters for
/// this one call: keep a [`Decoder`] to read many).
///
/// # Errors
/// As [`Decoder::decode`].
pub fn decode<E: DomainEvent>(recorded: &RecordedEvent) -> Result<E, CodecError> {
    Decoder::<E>::new().decode(recorded)
}

/// Reads stored envelopes as `E`, upcasting payloads of older schema
/// versions with `E::upcasters()`.
pub struct Decoder<E> {
    upcasters: Upcasters,
    _event: PhantomData<fn() -> E>,
}

impl<E: DomainEvent> Default for Decoder<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: DomainEvent> Decoder<E> {
    /// A decoder with `E`'s upcasters.
    pub fn new() -> Self {
        Self {
            upcasters: E::upcasters(),
            _event: PhantomData,
        }
    }

    /// Reads one stored event.
    ///
    /// # Errors
    /// [`CodecError::Decode`] when the type is unknown to `E` or the payload
    /// has the wrong shape; [`CodecError::Upcast`] when an upcaster refuses;
    /// [`CodecError::SchemaVersion`] when the stored schema version cannot be
    /// brought to the one `E` has. Each names the stream and position.
    pub fn decode(&self, recorded: &RecordedEvent) -> Result<E, CodecError> {
        self.decode_lent(recorded.as_lent())
    }

    /// Reads one stored event lent by a store (see
    /// `EventStore::visit_stream`), straight from the bytes it lends.
    ///
    /// # Errors
    /// As [`Decoder::decode`].
    pub fn decode_lent(&self, recorded: RecordedEventRef<'_>) -> Result<E, CodecError> {
        let (event, version) = if self
            .upcasters
            .applies_to(recorded.event_type, recorded.schema_version)
        {
            self.decode_upcast(recorded)?
        } else {
            (decode_current(recorded)?, recorded.schema_version)
        };
        let current = event.schema_version();
        if version != current {
            return Err(CodecError::SchemaVersion {
                stream: recorded.stream.to_string(),
                position: recorded.position,
                event_type: recorded.event_type.to_owned(),
                stored: version,
                current,
            });
        }
        Ok(event)
    }

    fn decode_upcast(&self, recorded: RecordedEventRef<'_>) -> Result<(E, u32), CodecError> {
        let decode_error = |source| decode_error(recorded, source);
        let stored: serde_json::Value =
            serde_json::from_slice(recorded.payload).map_err(decode_error)?;
        let (payload, version) = self
            .upcasters
            .upcast(recorded.event_type, recorded.schema_version, stored)
            .map_err(|source| CodecError::Upcast {
                stream: recorded.stream.to_string(),
                position: recorded.position,
                source,
            })?;
        let mut tagged = serde_json::Map::with_capacity(1);
        tagged.insert(recorded.event_type.to_owned(), payload);
        let event =
            serde_json::from_value(serde_json::Value::Object(tagged)).map_err(decode_error)?;
        Ok((event, version))
    }
}

/// The error naming where `recorded` is, for what serde said of it.
fn decode_error(recorded: RecordedEventRef<'_>, source: serde_json::Error) -> CodecError {
    CodecError::Decode {
        stream: recorded.stream.to_string(),
        version: recorded.version,
        position: recorded.position,
        event_type: recorded.event_type.to_owned(),
        schema_version: recorded.schema_version,
        source,
    }
}

fn decode_current<E: DomainEvent>(recorded: RecordedEventRef<'_>) -> Result<E, CodecError> {
    // serde picks the variant from the stored type and reads its content
    // straight from the stored bytes: no envelope copy, no `Value`. The
    // plain reader first; whatever it gives up on, serde_json reads, and
    // its result (an error above all) is the answer.
    if let Ok(payload) = std::str::from_utf8(recorded.payload)
        && let Ok(event) = E::deserialize(Tagged {
            event_type: recorded.event_type,
            content: PlainContent(payload),
        })
    {
        return Ok(event);
    }
    E::deserialize(Tagged {
        event_type: recorded.event_type,
        content: Content(recorded.payload),
    })
    .map_err(|source| decode_error(recorded, source))
}

/// A stored event seen by serde as the externally tagged enum value
/// `{"<event_type>": <payload>}` it was written from, without building it.
/// `C` reads the payload as the variant's content: [`Content`] with
/// serde_json, [`PlainContent`] with the plain reader.
struct Tagged<'a, C> {
    event_type: &'a str,
    content: C,
}

impl<'de, C: VariantAccess<'de>> serde::Deserializer<'de> for Tagged<'de, C> {
    type Error = C::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_enum(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_enum(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

impl<'de, C: VariantAccess<'de>> EnumAccess<'de> for Tagged<'de, C> {
    type Error = C::Error;
    type Variant = C;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), Self::Error> {
        let variant = seed.deserialize(StrDeserializer::<C::Error>::new(self.event_type))?;
        Ok((variant, self.content))
    }
}

/// The stored payload as the content of the variant its type names.
struct Content<'a>(&'a [u8]);

impl<'de> Content<'de> {
    /// Reads the whole payload with `read`, refusing bytes after it.
    fn read<T>(
        self,
        read: impl FnOnce(
            &mut serde_json::Deserializer<serde_json::de::SliceRead<'de>>,
        ) -> Result<T, serde_json::Error>,
    ) -> Result<T, serde_json::Error> {
        let mut json = serde_json::Deserializer::from_slice(self.0);
        let value = read(&mut json)?;
        json.end()?;
        Ok(value)
    }
}

impl<'de> VariantAccess<'de> for Content<'de> {
    type Error = serde_json::Error;

    fn unit_variant(self) -> Result<(), Self::Error> {
        self.read(|json| <()>::deserialize(json))
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, Self::Error> {
        self.read(|json| seed.deserialize(json))
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.read(|json| serde::Deserializer::deserialize_seq(json, visitor))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.read(|json| serde::Deserializer::deserialize_struct(json, "", fields, visitor))
    }
}

/// [`Content`] for the plain reader: the payload, its UTF-8 checked.
struct PlainContent<'a>(&'a str);

impl<'de> PlainContent<'de> {
    /// Reads the whole payload with `read`, refusing bytes after it.
    fn read<T>(
        self,
        read: impl FnOnce(&mut PlainJson<'de>) -> Result<T, GaveUp>,
    ) -> Result<T, GaveUp> {
        let mut json = PlainJson::new(self.0);
        let value = read(&mut json)?;
        json.end()?;
        Ok(value)
    }
}

impl<'de> VariantAccess<'de> for PlainContent<'de> {
    type Error = GaveUp;

    fn unit_variant(self) -> Result<(), Self::Error> {
        self.read(|json| <()>::deserialize(json))
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, Self::Error> {
        self.read(|json| seed.deserialize(json))
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.read(|json| serde::Deserializer::deserialize_seq(json, visitor))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.read(|json| serde::Deserializer::deserialize_struct(json, "", fields, visitor))
    }
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

    /// An event whose hand-written serde form is not `{"<type>": payload}`.
    #[derive(Clone, Debug, serde::Deserialize)]
    enum Misshapen {
        TwoKeys,
        Bare,
    }

    impl serde::Serialize for Misshapen {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            match self {
                Self::TwoKeys => {
                    let mut map = serializer.serialize_map(Some(2))?;
                    map.serialize_entry("TwoKeys", &1)?;
                    map.serialize_entry("Other", &2)?;
                    map.end()
                }
                Self::Bare => serializer.serialize_str("Bare"),
            }
        }
    }

    impl DomainEvent for Misshapen {
        fn event_type(&self) -> &'static str {
            match self {
                Self::TwoKeys => "TwoKeys",
                Self::Bare => "Bare",
            }
        }
    }

    #[test]
    fn an_event_not_serialized_as_its_type_alone_is_a_shape_error() {
        // Given events whose serde form has a second key, or no object at all
        for event in [Misshapen::TwoKeys, Misshapen::Bare] {
            // When encoded
            let err = encode(&event, &Metadata::default()).unwrap_err();
            // Then the shape error names the type
            assert!(
                matches!(err, CodecError::Shape { event_type, .. } if event_type == event.event_type()),
                "{err}"
            );
        }
    }

    /// A derived event enum whose `event_type()` names another variant.
    #[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
    enum Misnamed {
        Deposited { cents: u64 },
    }

    impl DomainEvent for Misnamed {
        fn event_type(&self) -> &'static str {
            "Withdrawn"
        }
    }

    #[test]
    fn a_variant_not_named_as_its_event_type_is_a_shape_error() {
        // Given an event serialized as variant Deposited but typed Withdrawn
        let err = encode(&Misnamed::Deposited { cents: 1 }, &Metadata::default()).unwrap_err();
        // Then encoding refuses it, naming both
        let text = err.to_string();
        assert!(
            matches!(
                err,
                CodecError::Shape {
                    event_type: "Withdrawn",
                    ..
                }
            ) && text.contains("Deposited"),
            "{text}"
        );
    }

    #[test]
    fn a_payload_with_bytes_after_its_document_is_a_decode_error() {
        // Given a stored deposit with trailing bytes after its payload
        let mut new = encode(&BankAccountEvent::AccountClosed {}, &Metadata::default()).unwrap();
        new.payload = Payload::from_stored(b"{} {}".to_vec());
        // When decoded, then it is refused, naming where it is
        let err = decode::<BankAccountEvent>(&recorded(&new))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("AccountClosed") && err.contains("position 9"),
            "{err}"
        );
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

    #[test]
    fn a_seed_shaped_version_1_event_is_read_as_version_2() {
        use logbook_domain::user_wallet::UserWalletEvent;
        let v1 = NewEvent::new(
            "UserBalanceChanged",
            Payload::from_json(br#"{"id":1,"balance_change":-50}"#.to_vec()).unwrap(),
        );
        let event: UserWalletEvent = decode(&recorded(&v1)).unwrap();
        assert_eq!(
            event,
            UserWalletEvent::UserBalanceChanged {
                balance_change: "-50.00".parse().unwrap()
            }
        );
    }

    #[test]
    fn a_schema_version_nothing_can_read_is_an_error_naming_type_version_and_position() {
        use logbook_domain::user_wallet::UserWalletEvent;
        let change = UserWalletEvent::UserBalanceChanged {
            balance_change: "1.00".parse().unwrap(),
        };
        let mut newer = encode(&change, &Metadata::default()).unwrap();
        newer.schema_version = 3;
        let err = decode::<UserWalletEvent>(&recorded(&newer))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("UserBalanceChanged")
                && err.contains("schema version 3")
                && err.contains("position 9"),
            "{err}"
        );
        let mut unknown_old =
            encode(&BankAccountEvent::AccountClosed {}, &Metadata::default()).unwrap();
        unknown_old.schema_version = 0;
        let err = decode::<BankAccountEvent>(&recorded(&unknown_old))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no upcaster"), "{err}");
        let refused = NewEvent::new(
            "UserCreated",
            Payload::from_json(br#"{"id":1,"username":"x"}"#.to_vec()).unwrap(),
        );
        let err = decode::<UserWalletEvent>(&recorded(&refused))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cannot upcast UserCreated from schema version 1"),
            "{err}"
        );
    }
}
