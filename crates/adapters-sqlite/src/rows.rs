//! Events as rows of the `events` table, and back.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use logbook_domain::{
    EventId, Metadata, Payload, Position, RecordedEvent, RecordedEventRef, RecordedTime, StreamId,
    Version,
};
use logbook_ports::{StoreError, StoredTimes, StreamVisitor, metadata};
use rusqlite::Row;
use rusqlite::types::{ToSqlOutput, ValueRef};
use uuid::Uuid;

use crate::error::corrupt;

/// The columns every global-log read selects, in the order [`Decoder`] reads.
///
/// `recorded_at`, the table's last column, comes first: SQLite reads a
/// row's record header only as far as the column asked for, and again from
/// there for each later column, so asking for the last one first reads the
/// header once and every other column finds its place already known
/// (about 190 instructions a row fewer on a stream read than in table
/// order, 270 on the log).
pub(crate) const EVENT_COLUMNS: &str = "recorded_at, position, stream, version, event_id, event_type, schema_version, payload, metadata";

/// The columns a stream read selects: [`EVENT_COLUMNS`] but the stream,
/// which the read names (`stream = ?`), so SQLite need not extract it.
pub(crate) const STREAM_EVENT_COLUMNS: &str =
    "recorded_at, position, version, event_id, event_type, schema_version, payload, metadata";

/// Where [`EVENT_COLUMNS`] puts each field; a stream read's columns after
/// the position are one to the left ([`STREAM_EVENT_COLUMNS`]).
mod column {
    pub(super) const RECORDED_AT: usize = 0;
    pub(super) const POSITION: usize = 1;
    pub(super) const STREAM: usize = 2;
    pub(super) const VERSION: usize = 3;
    pub(super) const EVENT_ID: usize = 4;
    pub(super) const EVENT_TYPE: usize = 5;
    pub(super) const SCHEMA_VERSION: usize = 6;
    pub(super) const PAYLOAD: usize = 7;
    pub(super) const METADATA: usize = 8;
}

/// An event id as stored: lower-case hyphenated text, on the stack.
pub(crate) struct IdText([u8; 36]);

impl IdText {
    pub(crate) fn new(id: &EventId) -> Self {
        let mut buf = [0u8; 36];
        id.as_uuid().hyphenated().encode_lower(&mut buf);
        Self(buf)
    }

    pub(crate) fn as_sql(&self) -> ToSqlOutput<'_> {
        ToSqlOutput::Borrowed(ValueRef::Text(&self.0))
    }
}

/// JSON bytes bound as TEXT (so that `sqlite3` shows them and SQLite's JSON
/// functions read them) without a second UTF-8 check: payloads are UTF-8
/// JSON by construction.
pub(crate) fn json_text(bytes: &[u8]) -> ToSqlOutput<'_> {
    ToSqlOutput::Borrowed(ValueRef::Text(bytes))
}

/// A stored time in microseconds since the Unix epoch, as UTC.
pub(crate) fn from_micros(micros: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros)
}

/// Converts a non-negative integer column to `u64`.
pub(crate) fn unsigned(value: i64) -> Option<u64> {
    u64::try_from(value).ok()
}

/// A `u64` (version, position, limit) as an SQL integer, saturating.
pub(crate) fn sql_int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Event type names a decoder keeps for the rows after (a page of the log
/// names few types; a long tail of distinct ones replaces the oldest).
const MAX_TYPES: usize = 64;

/// The fields of one event row, checked; the payload borrowed from the row.
pub(crate) struct RowFields<'r> {
    pub(crate) id: EventId,
    pub(crate) stream: &'r StreamId,
    pub(crate) version: Version,
    pub(crate) position: Position,
    pub(crate) event_type: &'r Arc<str>,
    pub(crate) schema_version: u32,
    pub(crate) payload: &'r [u8],
    /// `None` when the column is NULL (no metadata).
    pub(crate) metadata: Option<Metadata>,
    pub(crate) recorded_at: RecordedTime,
    /// The same time as stored.
    pub(crate) recorded_at_micros: i64,
}

/// A page of one stream's events copied out of SQLite's rows into one
/// buffer (no allocation per event), to be lent one event at a time
/// ([`EventStore::visit_stream`](logbook_ports::EventStore::visit_stream)).
pub(crate) struct LentPage {
    stream: StreamId,
    types: Vec<Arc<str>>,
    /// The payloads, back to back.
    payloads: Vec<u8>,
    events: Vec<PageEvent>,
    /// The metadata of the events that have some, in page order.
    metadata: Vec<Metadata>,
}

/// One event of a [`LentPage`], without its bytes.
struct PageEvent {
    id: EventId,
    version: Version,
    position: Position,
    /// Index in the page's types.
    event_type: u32,
    schema_version: u32,
    /// Where its payload ends in the page's payloads (it starts where the
    /// previous one ends).
    payload_end: usize,
    has_metadata: bool,
    recorded_at: RecordedTime,
}

impl LentPage {
    /// An empty page of `stream`'s events, room made for `capacity`.
    pub(crate) fn new(stream: StreamId, capacity: usize) -> Self {
        Self {
            stream,
            types: Vec::new(),
            payloads: Vec::new(),
            events: Vec::with_capacity(capacity),
            metadata: Vec::new(),
        }
    }

    /// Copies one row's fields in.
    #[inline]
    pub(crate) fn push(&mut self, fields: RowFields<'_>) {
        let event_type = match self
            .types
            .iter()
            .rposition(|t| Arc::ptr_eq(t, fields.event_type))
        {
            Some(index) => index,
            None => {
                self.types.push(Arc::clone(fields.event_type));
                self.types.len() - 1
            }
        };
        self.payloads.extend_from_slice(fields.payload);
        let has_metadata = match fields.metadata {
            Some(metadata) if !metadata.is_empty() => {
                self.metadata.push(metadata);
                true
            }
            _ => false,
        };
        self.events.push(PageEvent {
            id: fields.id,
            version: fields.version,
            position: fields.position,
            event_type: u32::try_from(event_type).unwrap_or(u32::MAX),
            schema_version: fields.schema_version,
            payload_end: self.payloads.len(),
            has_metadata,
            recorded_at: fields.recorded_at,
        });
    }

    /// Lends each event to `visit`, in page order; how many it lent.
    pub(crate) fn lend(&self, visit: &mut StreamVisitor<'_>) -> usize {
        let none = Metadata::default();
        let mut metadata = self.metadata.iter();
        let mut payload_start = 0;
        for event in &self.events {
            let payload = &self.payloads[payload_start..event.payload_end];
            payload_start = event.payload_end;
            visit(RecordedEventRef {
                id: event.id,
                stream: &self.stream,
                version: event.version,
                position: event.position,
                event_type: &self.types[event.event_type as usize],
                schema_version: event.schema_version,
                payload,
                metadata: if event.has_metadata {
                    metadata.next().unwrap_or(&none)
                } else {
                    &none
                },
                recorded_at: event.recorded_at,
            });
        }
        self.events.len()
    }
}

/// Decodes event rows, sharing the stream id and type names between rows
/// (a page of the log names few streams and fewer types). `STREAM_READ`:
/// the rows come from a read of `stream`, which they all belong to (known
/// when compiling, so the columns' places are constants).
pub(crate) struct Decoder<'a, const STREAM_READ: bool> {
    path: &'a Path,
    stream: Option<StreamId>,
    types: Vec<Arc<str>>,
    /// The index in `types` of the last row's type (rows of one stream or
    /// one stretch of the log mostly repeat it).
    last_type: usize,
}

impl<'a> Decoder<'a, false> {
    /// A decoder for rows of the global log of the database at `path`.
    pub(crate) fn for_log(path: &'a Path) -> Self {
        Self {
            path,
            stream: None,
            types: Vec::new(),
            last_type: 0,
        }
    }
}

impl<'a> Decoder<'a, true> {
    /// A decoder for the rows of a read of `stream` (selected with
    /// `stream = ?`) of the database at `path`.
    pub(crate) fn for_stream(path: &'a Path, stream: StreamId) -> Self {
        Self {
            path,
            stream: Some(stream),
            types: Vec::new(),
            last_type: 0,
        }
    }
}

impl<const STREAM_READ: bool> Decoder<'_, STREAM_READ> {
    /// One row selected with [`EVENT_COLUMNS`] (a stream read's with
    /// [`STREAM_EVENT_COLUMNS`]), its time made with `times`.
    pub(crate) fn decode(
        &mut self,
        row: &Row<'_>,
        times: &mut StoredTimes,
    ) -> Result<RecordedEvent, StoreError> {
        let fields = self.fields(row)?;
        Ok(RecordedEvent {
            id: fields.id,
            stream: fields.stream.clone(),
            version: fields.version,
            position: fields.position,
            event_type: Arc::clone(fields.event_type),
            schema_version: fields.schema_version,
            payload: Payload::from_stored(fields.payload.to_vec()),
            metadata: fields.metadata.unwrap_or_default(),
            // In range (`fields` checked it), so never the fallback.
            recorded_at: times
                .time(fields.recorded_at_micros)
                .unwrap_or(DateTime::<Utc>::MIN_UTC),
        })
    }

    /// The fields of one row selected with [`EVENT_COLUMNS`] (a stream
    /// read's with [`STREAM_EVENT_COLUMNS`]), each checked (in the table's
    /// column order, so the first bad one is named), borrowing the payload
    /// from the row and the stream id and type name from the decoder.
    ///
    /// Each column is read once, in one loop (so rusqlite's accessor is
    /// compiled into it once), then checked for the type it must have; only
    /// a row that fails a check reads it again, to say what it holds
    /// instead.
    #[inline]
    pub(crate) fn fields<'r>(&'r mut self, row: &'r Row<'_>) -> Result<RowFields<'r>, StoreError> {
        let mut values = [None; column::METADATA + 1];
        let selected = values.len() - usize::from(STREAM_READ);
        for (index, value) in values[..selected].iter_mut().enumerate() {
            *value = row.get_ref(index).ok();
        }
        let int = |index: usize| match values[index] {
            Some(ValueRef::Integer(value)) => Some(value),
            _ => None,
        };
        let text = |index: usize| match values[index] {
            Some(ValueRef::Text(bytes)) => Some(bytes),
            _ => None,
        };
        let Some(position) = int(column::POSITION) else {
            return Err(self.bad_position(row));
        };
        let path = self.path;
        let bad = |detail: String| corrupt(path, "events", &format!("position {position}"), detail);
        // A stream read selects `stream = ?` (TEXT, binary collation): its
        // rows hold exactly that text, and it does not select the column.
        // The log's rows name their stream after the position.
        if !STREAM_READ {
            let bytes =
                text(column::STREAM).ok_or_else(|| bad(not_text(row, column::STREAM, "stream")))?;
            if self
                .stream
                .as_ref()
                .is_none_or(|known| known.as_str().as_bytes() != bytes)
            {
                let name = std::str::from_utf8(bytes).map_err(|e| bad(format!("stream: {e}")))?;
                let id = StreamId::new(name).map_err(|e| bad(format!("stream: {e}")))?;
                self.stream = Some(id);
            }
        }
        let at = |in_log: usize| in_log - usize::from(STREAM_READ);

        let version = int(at(column::VERSION))
            .ok_or_else(|| bad(not_int(row, at(column::VERSION), "version")))?;
        let version = unsigned(version).ok_or_else(|| bad("negative version".into()))?;
        let id = text(at(column::EVENT_ID))
            .ok_or_else(|| bad(not_text(row, at(column::EVENT_ID), "event_id")))?;
        let id = Uuid::try_parse_ascii(id)
            .map(EventId)
            .map_err(|e| bad(format!("event_id: {e}")))?;
        let event_type = text(at(column::EVENT_TYPE))
            .ok_or_else(|| bad(not_text(row, at(column::EVENT_TYPE), "event_type")))?;
        let type_index = self.event_type(event_type, &bad)?;
        let schema_version = int(at(column::SCHEMA_VERSION))
            .ok_or_else(|| bad(not_int(row, at(column::SCHEMA_VERSION), "schema_version")))?;
        let schema_version =
            u32::try_from(schema_version).map_err(|e| bad(format!("schema_version: {e}")))?;
        let payload = text(at(column::PAYLOAD))
            .ok_or_else(|| bad(not_text(row, at(column::PAYLOAD), "payload")))?;
        let metadata = match values[at(column::METADATA)] {
            Some(ValueRef::Null) => None,
            Some(ValueRef::Text(bytes)) => {
                Some(metadata::decode(bytes).map_err(|e| bad(format!("metadata: {e}")))?)
            }
            _ => return Err(bad(not_text(row, at(column::METADATA), "metadata"))),
        };
        let recorded_at_micros = int(column::RECORDED_AT)
            .ok_or_else(|| bad(not_int(row, column::RECORDED_AT, "recorded_at")))?;
        let recorded_at = RecordedTime::from_micros(recorded_at_micros)
            .ok_or_else(|| bad("recorded_at is out of range".into()))?;
        let position = unsigned(position).ok_or_else(|| bad("negative position".into()))?;
        Ok(RowFields {
            id,
            stream: self
                .stream
                .as_ref()
                .ok_or_else(|| bad("no stream".into()))?,
            version,
            position,
            event_type: &self.types[type_index],
            schema_version,
            payload,
            metadata,
            recorded_at,
            recorded_at_micros,
        })
    }

    /// The event type named by `bytes`, as its index in the decoder's
    /// names (added when new).
    #[inline]
    fn event_type(
        &mut self,
        bytes: &[u8],
        bad: &dyn Fn(String) -> StoreError,
    ) -> Result<usize, StoreError> {
        match self.types.get(self.last_type) {
            Some(last) if last.as_bytes() == bytes => Ok(self.last_type),
            _ => self.other_event_type(bytes, bad),
        }
    }

    /// [`Self::event_type`] when it is not the last row's.
    fn other_event_type(
        &mut self,
        bytes: &[u8],
        bad: &dyn Fn(String) -> StoreError,
    ) -> Result<usize, StoreError> {
        if let Some(known) = self.types.iter().position(|t| t.as_bytes() == bytes) {
            self.last_type = known;
            return Ok(known);
        }
        let name: Arc<str> =
            Arc::from(std::str::from_utf8(bytes).map_err(|e| bad(format!("event_type: {e}")))?);
        // Few types per page; past a long tail of distinct ones the oldest
        // names make room.
        if self.types.len() == MAX_TYPES {
            self.types.remove(0);
        }
        self.types.push(name);
        self.last_type = self.types.len() - 1;
        Ok(self.last_type)
    }

    /// A row whose position cannot be read, said as SQLite's error for it.
    #[cold]
    fn bad_position(&self, row: &Row<'_>) -> StoreError {
        let detail = match row.get::<_, i64>(column::POSITION) {
            Ok(_) => "the position is not an integer".to_owned(),
            Err(error) => error.to_string(),
        };
        corrupt(self.path, "events", "a row", detail)
    }
}

/// What column `index` (`name`) holds instead of text.
#[cold]
fn not_text(row: &Row<'_>, index: usize, name: &str) -> String {
    match row.get_ref(index) {
        Ok(other) => format!("{name} is {:?}, not text", other.data_type()),
        Err(e) => format!("{name}: {e}"),
    }
}

/// What column `index` (`name`) holds instead of an integer.
#[cold]
fn not_int(row: &Row<'_>, index: usize, name: &str) -> String {
    match row.get_ref(index) {
        Ok(other) => format!("{name} is {:?}, not an integer", other.data_type()),
        Err(e) => format!("{name}: {e}"),
    }
}
