//! Events as rows of the `events` table, and back.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use logbook_domain::{EventId, Metadata, Payload, Position, RecordedEvent, StreamId};
use logbook_ports::{StoreError, metadata};
use rusqlite::Row;
use rusqlite::types::{ToSqlOutput, ValueRef};
use uuid::Uuid;

use crate::error::corrupt;

/// The columns every event read selects, in the order [`Decoder`] reads.
pub(crate) const EVENT_COLUMNS: &str = "position, stream, version, event_id, event_type, schema_version, payload, metadata, recorded_at";

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

/// Decodes event rows, sharing the stream id and type names between rows
/// (a page of the log names few streams and fewer types).
pub(crate) struct Decoder<'a> {
    path: &'a Path,
    stream: Option<StreamId>,
    types: Vec<Arc<str>>,
}

impl<'a> Decoder<'a> {
    /// A decoder for rows of the database at `path`; `stream`, when known,
    /// is the stream every row belongs to.
    pub(crate) fn new(path: &'a Path, stream: Option<StreamId>) -> Self {
        Self {
            path,
            stream,
            types: Vec::new(),
        }
    }

    /// One row selected with [`EVENT_COLUMNS`].
    pub(crate) fn decode(&mut self, row: &Row<'_>) -> Result<RecordedEvent, StoreError> {
        let position: i64 = row.get(0).map_err(|e| self.bad_row(None, &e))?;
        let bad =
            |detail: String| corrupt(self.path, "events", &format!("position {position}"), detail);
        let text = |index: usize, name: &str| -> Result<&[u8], StoreError> {
            match row.get_ref(index) {
                Ok(ValueRef::Text(bytes)) => Ok(bytes),
                Ok(other) => Err(bad(format!("{name} is {:?}, not text", other.data_type()))),
                Err(e) => Err(bad(format!("{name}: {e}"))),
            }
        };
        let int = |index: usize, name: &str| -> Result<i64, StoreError> {
            match row.get_ref(index) {
                Ok(ValueRef::Integer(value)) => Ok(value),
                Ok(other) => Err(bad(format!(
                    "{name} is {:?}, not an integer",
                    other.data_type()
                ))),
                Err(e) => Err(bad(format!("{name}: {e}"))),
            }
        };

        let stream_bytes = text(1, "stream")?;
        let stream = match &self.stream {
            Some(known) if known.as_str().as_bytes() == stream_bytes => known.clone(),
            _ => {
                let name =
                    std::str::from_utf8(stream_bytes).map_err(|e| bad(format!("stream: {e}")))?;
                let id = StreamId::new(name).map_err(|e| bad(format!("stream: {e}")))?;
                self.stream = Some(id.clone());
                id
            }
        };
        let version = unsigned(int(2, "version")?).ok_or_else(|| bad("negative version".into()))?;
        let id = Uuid::try_parse_ascii(text(3, "event_id")?)
            .map(EventId)
            .map_err(|e| bad(format!("event_id: {e}")))?;
        let event_type = self.event_type(text(4, "event_type")?, &bad)?;
        let schema_version = u32::try_from(int(5, "schema_version")?)
            .map_err(|e| bad(format!("schema_version: {e}")))?;
        let payload = Payload::from_stored(text(6, "payload")?.to_vec());
        let metadata = match row.get_ref(7) {
            Ok(ValueRef::Null) => Metadata::default(),
            Ok(ValueRef::Text(bytes)) => {
                metadata::decode(bytes).map_err(|e| bad(format!("metadata: {e}")))?
            }
            Ok(other) => {
                return Err(bad(format!(
                    "metadata is {:?}, not text",
                    other.data_type()
                )));
            }
            Err(e) => return Err(bad(format!("metadata: {e}"))),
        };
        let recorded_at = from_micros(int(8, "recorded_at")?)
            .ok_or_else(|| bad("recorded_at is out of range".into()))?;
        Ok(RecordedEvent {
            id,
            stream,
            version,
            position: unsigned(position).ok_or_else(|| bad("negative position".into()))?
                as Position,
            event_type,
            schema_version,
            payload,
            metadata,
            recorded_at,
        })
    }

    fn event_type(
        &mut self,
        bytes: &[u8],
        bad: &dyn Fn(String) -> StoreError,
    ) -> Result<Arc<str>, StoreError> {
        if let Some(known) = self.types.iter().find(|t| t.as_bytes() == bytes) {
            return Ok(Arc::clone(known));
        }
        let name: Arc<str> =
            Arc::from(std::str::from_utf8(bytes).map_err(|e| bad(format!("event_type: {e}")))?);
        // Few types per page; a long tail of distinct ones is not kept.
        if self.types.len() < 64 {
            self.types.push(Arc::clone(&name));
        }
        Ok(name)
    }

    fn bad_row(&self, position: Option<i64>, error: &rusqlite::Error) -> StoreError {
        let row = position.map_or_else(|| "a row".to_owned(), |p| format!("position {p}"));
        corrupt(self.path, "events", &row, error.to_string())
    }
}
