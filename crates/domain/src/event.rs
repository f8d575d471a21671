//! Events: the typed [`DomainEvent`] an aggregate emits, and the serialized
//! envelopes ([`NewEvent`] to append, [`RecordedEvent`] once stored) that
//! every store works on, so stores never need to know an aggregate's types.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::stream::{Position, StreamId, Version};

/// A typed event of one aggregate. Events are facts, named in the past tense
/// (`MoneyDeposited`).
///
/// Implemented by an aggregate's event enum. logbook serializes such an enum
/// with serde's default (externally tagged) form: the variant name is the
/// event type and the variant's content is the payload, so every variant
/// must carry named fields or one value.
pub trait DomainEvent:
    Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + 'static
{
    /// The stable name stored with the event, e.g. `"MoneyDeposited"`; it must
    /// equal the enum variant's serde name.
    fn event_type(&self) -> &'static str;

    /// Version of this event type's payload shape; bump it when the shape
    /// changes and teach the readers (upcasters) the old shape.
    fn schema_version(&self) -> u32 {
        1
    }

    /// The pure functions that read payloads stored at older schema
    /// versions (none by default).
    fn upcasters() -> crate::upcast::Upcasters {
        crate::upcast::Upcasters::new()
    }

    /// The payload fields of this event that are personal data, each with
    /// the subject it belongs to, for an event recorded on `stream` (none by
    /// default). A pure declaration: the codec encrypts these fields with the
    /// subject's key, so shredding that key erases them.
    fn personal_fields(&self, stream: &StreamId) -> Vec<crate::subject::PersonalField> {
        let _ = stream;
        Vec::new()
    }
}

/// Unique id of one event (UUID v4 or v7). Appending the same id twice at the
/// same place is an idempotent retry, not a second event.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(pub Uuid);

impl EventId {
    /// A new time-ordered id (UUID v7), from this thread's generator: no
    /// system call per id, and ids made on one thread only ever grow.
    pub fn new() -> Self {
        Self(id_generator::next())
    }

    /// The id as a UUID.
    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

impl Default for EventId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({})", self.0)
    }
}

impl std::str::FromStr for EventId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

/// A fast UUID v7 generator, one per thread.
///
/// Layout (RFC 9562, "fixed-length dedicated counter"): 48 bits of Unix
/// milliseconds, the version (7), a 42-bit counter split around the variant
/// bits (12 bits in `rand_a`, 30 at the top of `rand_b`), then 32 random bits.
/// The counter restarts from a random value (top bit clear, leaving room to
/// count) each new millisecond and counts up within one; when it would
/// overflow, or the clock steps back, the millisecond is carried forward,
/// so ids from one thread strictly increase. Randomness comes from a
/// SplitMix64 state seeded once per thread from the operating system
/// (through `uuid`'s v4), not from a system call per id.
mod id_generator {
    use std::cell::Cell;
    use std::time::{SystemTime, UNIX_EPOCH};

    use uuid::Uuid;

    const COUNTER_BITS: u32 = 42;
    const COUNTER_MAX: u64 = (1 << COUNTER_BITS) - 1;

    struct State {
        millis: Cell<u64>,
        counter: Cell<u64>,
        random: Cell<u64>,
    }

    thread_local! {
        static STATE: State = {
            let seed = Uuid::new_v4().as_u128();
            State {
                millis: Cell::new(0),
                counter: Cell::new(0),
                random: Cell::new((seed as u64) ^ ((seed >> 64) as u64)),
            }
        };
    }

    /// SplitMix64: a full-period 64-bit generator, plenty for id entropy.
    fn next_random(state: &Cell<u64>) -> u64 {
        let s = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        state.set(s);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn now_millis() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            & ((1 << 48) - 1)
    }

    pub(super) fn next() -> Uuid {
        STATE.with(|state| {
            let now = now_millis();
            let random = next_random(&state.random);
            let (millis, counter) = if now > state.millis.get() {
                (now, (random >> 32) & (COUNTER_MAX >> 1))
            } else if state.counter.get() < COUNTER_MAX {
                (state.millis.get(), state.counter.get() + 1)
            } else {
                (state.millis.get() + 1, (random >> 32) & (COUNTER_MAX >> 1))
            };
            state.millis.set(millis);
            state.counter.set(counter);
            let bits = (u128::from(millis) << 80)
                | (0x7 << 76)
                | (u128::from(counter >> 30) << 64)
                | (0b10 << 62)
                | (u128::from(counter & ((1 << 30) - 1)) << 32)
                | u128::from(random & 0xFFFF_FFFF);
            Uuid::from_u128(bits)
        })
    }
}

/// Context recorded with an event: why it happened and what else it relates to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// Id shared by every event caused, directly or not, by one request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Uuid>,
    /// Id of the command or event that directly caused this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    /// Free key/values (user, tenant, source, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, String>,
}

impl Metadata {
    /// True when nothing is set, so stores may keep no bytes for it.
    pub fn is_empty(&self) -> bool {
        self.correlation_id.is_none() && self.causation_id.is_none() && self.extra.is_empty()
    }
}

/// A JSON document, kept as its UTF-8 bytes so stores copy it without parsing.
///
/// Only valid JSON gets in: through [`Payload::from_json`] (validated) or
/// [`Payload::from_serialize`] (produced by serde).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Payload(Vec<u8>);

/// Why bytes are not a [`Payload`].
#[derive(Debug, thiserror::Error)]
#[error("payload is not valid JSON: {0}")]
pub struct PayloadError(#[from] serde_json::Error);

impl Payload {
    /// Validates `bytes` as one JSON document.
    ///
    /// # Errors
    /// [`PayloadError`] when the bytes are not valid UTF-8 JSON.
    pub fn from_json(bytes: impl Into<Vec<u8>>) -> Result<Self, PayloadError> {
        let bytes = bytes.into();
        serde_json::from_slice::<serde::de::IgnoredAny>(&bytes)?;
        Ok(Self(bytes))
    }

    /// Serializes `value` as JSON.
    ///
    /// # Errors
    /// [`PayloadError`] when serde cannot serialize the value (a map with
    /// non-string keys, for example).
    pub fn from_serialize<T: Serialize + ?Sized>(value: &T) -> Result<Self, PayloadError> {
        Ok(Self(serde_json::to_vec(value)?))
    }

    /// Wraps bytes that a store wrote from a `Payload` earlier and has
    /// checked since (by checksum or by its database). Not for user input:
    /// use [`Payload::from_json`] there.
    pub fn from_stored(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The JSON text's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The JSON text. Payloads are UTF-8 by construction; stored bytes that
    /// are not are shown lossily.
    pub fn as_str(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }

    /// Deserializes the JSON into `T`.
    ///
    /// # Errors
    /// The serde error when the JSON does not have `T`'s shape.
    pub fn to_value<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.0)
    }

    /// Gives back the bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for a zero-length payload (never produced by the constructors).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Payload({})", self.as_str())
    }
}

impl Serialize for Payload {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Embedded as JSON, not as a string of JSON.
        let raw: &serde_json::value::RawValue =
            serde_json::from_slice(&self.0).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<serde_json::value::RawValue>::deserialize(deserializer)?;
        Ok(Self(raw.get().as_bytes().to_vec()))
    }
}

/// An event to append: what the caller decides; the store assigns the
/// stream version, the global position and (unless given) the time.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Unique id; re-sending the same id is how a retry is recognised.
    pub id: EventId,
    /// Event type name, e.g. `MoneyDeposited`. Must not be empty.
    pub event_type: String,
    /// Version of the payload's shape.
    pub schema_version: u32,
    /// The event's data.
    pub payload: Payload,
    /// Correlation, causation and free key/values.
    pub metadata: Metadata,
    /// `None`: the store records the time of the append. `Some`: kept as is
    /// (imports that must preserve history).
    pub recorded_at: Option<DateTime<Utc>>,
}

impl NewEvent {
    /// An event with a fresh id, schema version 1, no metadata.
    pub fn new(event_type: impl Into<String>, payload: Payload) -> Self {
        Self {
            id: EventId::new(),
            event_type: event_type.into(),
            schema_version: 1,
            payload,
            metadata: Metadata::default(),
            recorded_at: None,
        }
    }

    /// Sets the id.
    pub fn with_id(mut self, id: EventId) -> Self {
        self.id = id;
        self
    }

    /// Sets the metadata.
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// Sets the schema version.
    pub fn with_schema_version(mut self, schema_version: u32) -> Self {
        self.schema_version = schema_version;
        self
    }
}

/// An event as the store recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedEvent {
    /// Unique id.
    pub id: EventId,
    /// The stream it belongs to.
    pub stream: StreamId,
    /// Its version in that stream (1-based, contiguous).
    pub version: Version,
    /// Its position in the global log (1-based, strictly increasing).
    pub position: Position,
    /// Event type name.
    pub event_type: Arc<str>,
    /// Version of the payload's shape.
    pub schema_version: u32,
    /// The event's data.
    pub payload: Payload,
    /// Correlation, causation and free key/values.
    #[serde(default)]
    pub metadata: Metadata,
    /// When the store recorded it (UTC, microsecond precision).
    pub recorded_at: DateTime<Utc>,
}

impl RecordedEvent {
    /// This event lent as a [`RecordedEventRef`] (what a store's visiting
    /// read hands out).
    pub fn as_lent(&self) -> RecordedEventRef<'_> {
        RecordedEventRef {
            id: self.id,
            stream: &self.stream,
            version: self.version,
            position: self.position,
            event_type: &self.event_type,
            schema_version: self.schema_version,
            payload: self.payload.as_bytes(),
            metadata: &self.metadata,
            recorded_at: RecordedTime::from(self.recorded_at),
        }
    }
}

/// A recorded event lent by a store: the fields of a [`RecordedEvent`], with
/// the stream id, type name, payload bytes and metadata borrowed from where
/// the store keeps them, so reading it allocates nothing. The payload bytes
/// are exactly as stored (valid JSON, as a [`Payload`] is).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecordedEventRef<'a> {
    /// Unique id.
    pub id: EventId,
    /// The stream it belongs to.
    pub stream: &'a StreamId,
    /// Its version in that stream (1-based, contiguous).
    pub version: Version,
    /// Its position in the global log (1-based, strictly increasing).
    pub position: Position,
    /// Event type name.
    pub event_type: &'a str,
    /// Version of the payload's shape.
    pub schema_version: u32,
    /// The payload's JSON bytes, as stored.
    pub payload: &'a [u8],
    /// Correlation, causation and free key/values.
    pub metadata: &'a Metadata,
    /// When the store recorded it (UTC, microsecond precision), as the
    /// store keeps it: [`RecordedTime::time`] makes it a time.
    pub recorded_at: RecordedTime,
}

impl RecordedEventRef<'_> {
    /// An owned copy: the envelope a store's `read_stream` returns for this
    /// event.
    pub fn to_recorded(&self) -> RecordedEvent {
        RecordedEvent {
            id: self.id,
            stream: self.stream.clone(),
            version: self.version,
            position: self.position,
            event_type: Arc::from(self.event_type),
            schema_version: self.schema_version,
            payload: Payload::from_stored(self.payload.to_vec()),
            metadata: self.metadata.clone(),
            recorded_at: self.recorded_at.time(),
        }
    }
}

/// When a store recorded an event, kept in the form the store hands it
/// over (microseconds since the Unix epoch, as stores keep times, or a
/// time) and made a time only when asked: most readers of a lent event
/// never ask, and the conversion is a good part of lending one.
#[derive(Clone, Copy)]
pub struct RecordedTime(TimeForm);

#[derive(Clone, Copy)]
enum TimeForm {
    /// Microseconds since the epoch, within the range of a `DateTime`.
    Micros(i64),
    Time(DateTime<Utc>),
}

/// The first and last microseconds a `DateTime<Utc>` holds: every count
/// between them is a time.
const MIN_MICROS: i64 = DateTime::<Utc>::MIN_UTC.timestamp_micros();
const MAX_MICROS: i64 = DateTime::<Utc>::MAX_UTC.timestamp_micros();

impl RecordedTime {
    /// The time `micros` microseconds after the Unix epoch; `None` when
    /// that is outside the range of a `DateTime` (then
    /// `DateTime::from_timestamp_micros` says `None` too).
    #[inline]
    pub fn from_micros(micros: i64) -> Option<Self> {
        (MIN_MICROS..=MAX_MICROS)
            .contains(&micros)
            .then_some(Self(TimeForm::Micros(micros)))
    }

    /// The time.
    pub fn time(self) -> DateTime<Utc> {
        match self.0 {
            // In range by construction, so never the fallback.
            TimeForm::Micros(micros) => {
                DateTime::from_timestamp_micros(micros).unwrap_or(DateTime::<Utc>::MIN_UTC)
            }
            TimeForm::Time(time) => time,
        }
    }
}

impl From<DateTime<Utc>> for RecordedTime {
    fn from(time: DateTime<Utc>) -> Self {
        Self(TimeForm::Time(time))
    }
}

impl PartialEq for RecordedTime {
    fn eq(&self, other: &Self) -> bool {
        self.time() == other.time()
    }
}

impl fmt::Debug for RecordedTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.time(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_version_7_and_strictly_increase_within_a_thread() {
        // Given many ids made in a row on one thread
        let ids: Vec<EventId> = (0..100_000).map(|_| EventId::new()).collect();
        // Then each is a UUID v7 of the RFC variant, stamped with the time now
        let now_ms = u64::try_from(Utc::now().timestamp_millis()).unwrap();
        for id in &ids {
            assert_eq!(id.as_uuid().get_version_num(), 7);
            assert_eq!(id.as_uuid().get_variant(), uuid::Variant::RFC4122);
            let (secs, nanos) = id.as_uuid().get_timestamp().unwrap().to_unix();
            let ms = secs * 1_000 + u64::from(nanos) / 1_000_000;
            assert!(
                ms.abs_diff(now_ms) < 60_000,
                "{id} stamped {ms}, now {now_ms}"
            );
        }
        // And they strictly increase
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_recorded_time_from_micros_is_the_epoch_arithmetic_and_refuses_the_same() {
        // Given counts of microseconds at and beyond the edges of a time's
        // range, and ordinary ones
        let mut counts = vec![0, -1, 1, 1_746_634_114_633_698, i64::MIN, i64::MAX];
        for edge in [MIN_MICROS, MAX_MICROS] {
            counts.extend([edge - 2, edge - 1, edge, edge + 1, edge + 2]);
        }
        for micros in counts {
            // When each is made a recorded time
            let made = RecordedTime::from_micros(micros).map(RecordedTime::time);
            // Then it is the time `from_timestamp_micros` gives, or none
            // alike
            assert_eq!(made, DateTime::from_timestamp_micros(micros), "{micros}");
        }
        // And a time given as such is kept as it is
        let now = Utc::now();
        assert_eq!(RecordedTime::from(now).time(), now);
    }

    #[test]
    fn event_ids_made_on_many_threads_are_all_distinct() {
        // Given ids made on eight threads at once
        let threads: Vec<_> = (0..8)
            .map(|_| std::thread::spawn(|| (0..20_000).map(|_| EventId::new()).collect::<Vec<_>>()))
            .collect();
        let mut all: Vec<EventId> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        // Then none repeats
        let made = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), made);
    }

    #[test]
    fn payload_accepts_json_and_rejects_anything_else() {
        assert!(Payload::from_json(br#"{"amount":100}"#.to_vec()).is_ok());
        assert!(Payload::from_json(b"{not json".to_vec()).is_err());
        assert!(Payload::from_json(Vec::new()).is_err());
    }

    #[test]
    fn recorded_event_serializes_its_payload_as_embedded_json() {
        let event = RecordedEvent {
            id: EventId::new(),
            stream: StreamId::new("A-1").unwrap(),
            version: 1,
            position: 7,
            event_type: Arc::from("Happened"),
            schema_version: 1,
            payload: Payload::from_json(br#"{"x":1}"#.to_vec()).unwrap(),
            metadata: Metadata::default(),
            recorded_at: DateTime::from_timestamp_micros(1_700_000_000_000_000).unwrap(),
        };
        let line = serde_json::to_string(&event).unwrap();
        assert!(line.contains(r#""payload":{"x":1}"#), "{line}");
        let back: RecordedEvent = serde_json::from_str(&line).unwrap();
        assert_eq!(back, event);
    }
}
