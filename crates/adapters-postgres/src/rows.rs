//! Events as rows of the `events` table, and back.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use logbook_domain::{EventId, Metadata, Payload, RecordedEvent, StreamId};
use logbook_ports::StoreError;
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, Type};
use uuid::Uuid;

use crate::config::PostgresUrl;
use crate::error::corrupt;

/// The columns every event read selects, in the order [`Decoder`] reads.
/// `payload` and `metadata` are selected as `json`, not cast to text: the
/// binary form of `json` is its text, so [`JsonText`] reads the stored
/// bytes as they are, without a cast on the server.
pub(crate) const EVENT_COLUMNS: &str = "position, stream, version, event_id, event_type, \
     schema_version, payload, metadata, recorded_at";

/// A `json` column's bytes as stored (its binary form is its text), or a
/// `text` column's.
pub(crate) struct JsonText<'a>(pub(crate) &'a [u8]);

impl<'a> FromSql<'a> for JsonText<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Self(raw))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSON || *ty == Type::TEXT
    }
}

/// A `u64` (version, position, limit) as an SQL bigint, saturating.
pub(crate) fn sql_int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A non-negative bigint as `u64`.
pub(crate) fn unsigned(value: i64) -> Option<u64> {
    u64::try_from(value).ok()
}

/// Metadata as stored: JSON text, or `NULL` when empty.
pub(crate) fn encode_metadata(
    metadata: &Metadata,
    index: usize,
) -> Result<Option<String>, StoreError> {
    if metadata.is_empty() {
        return Ok(None);
    }
    serde_json::to_string(metadata)
        .map(Some)
        .map_err(|e| StoreError::InvalidEvent {
            index,
            reason: format!("metadata does not serialize: {e}"),
        })
}

/// Decodes event rows, sharing the stream id and type names between rows.
pub(crate) struct Decoder<'a> {
    url: &'a PostgresUrl,
    stream: Option<StreamId>,
    types: Vec<Arc<str>>,
}

impl<'a> Decoder<'a> {
    pub(crate) fn new(url: &'a PostgresUrl, stream: Option<StreamId>) -> Self {
        Self {
            url,
            stream,
            types: Vec::new(),
        }
    }

    /// One row selected with [`EVENT_COLUMNS`].
    pub(crate) fn decode(&mut self, row: &Row) -> Result<RecordedEvent, StoreError> {
        let position: i64 = row
            .try_get(0)
            .map_err(|e| corrupt(self.url, "events", "a row", e.to_string()))?;
        let url = self.url;
        let bad = |detail: String| corrupt(url, "events", &format!("position {position}"), detail);
        let stream_name: &str = row.try_get(1).map_err(|e| bad(format!("stream: {e}")))?;
        let stream = match &self.stream {
            Some(known) if known.as_str() == stream_name => known.clone(),
            _ => {
                let id = StreamId::new(stream_name).map_err(|e| bad(format!("stream: {e}")))?;
                self.stream = Some(id.clone());
                id
            }
        };
        let version: i64 = row.try_get(2).map_err(|e| bad(format!("version: {e}")))?;
        let id: Uuid = row.try_get(3).map_err(|e| bad(format!("event_id: {e}")))?;
        let event_type: &str = row
            .try_get(4)
            .map_err(|e| bad(format!("event_type: {e}")))?;
        let event_type = match self.types.iter().find(|t| &***t == event_type) {
            Some(known) => Arc::clone(known),
            None => {
                let name: Arc<str> = Arc::from(event_type);
                if self.types.len() < 64 {
                    self.types.push(Arc::clone(&name));
                }
                name
            }
        };
        let schema_version: i64 = row
            .try_get(5)
            .map_err(|e| bad(format!("schema_version: {e}")))?;
        let payload: JsonText = row.try_get(6).map_err(|e| bad(format!("payload: {e}")))?;
        let metadata: Option<JsonText> =
            row.try_get(7).map_err(|e| bad(format!("metadata: {e}")))?;
        let metadata = match metadata {
            None => Metadata::default(),
            Some(JsonText(text)) => {
                serde_json::from_slice(text).map_err(|e| bad(format!("metadata: {e}")))?
            }
        };
        let recorded_at: DateTime<Utc> = row
            .try_get(8)
            .map_err(|e| bad(format!("recorded_at: {e}")))?;
        Ok(RecordedEvent {
            id: EventId(id),
            stream,
            version: unsigned(version).ok_or_else(|| bad("negative version".into()))?,
            position: unsigned(position).ok_or_else(|| bad("negative position".into()))?,
            event_type,
            schema_version: u32::try_from(schema_version)
                .map_err(|e| bad(format!("schema_version: {e}")))?,
            payload: Payload::from_stored(payload.0.to_vec()),
            metadata,
            recorded_at,
        })
    }
}
