//! Streams and the global log: append (with an expected version, event ids
//! for idempotent retries), read a stream either way with paging links,
//! list streams, delete a stream, and read the global log with filters,
//! paging and long-polling.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use logbook::{StreamQuery, Subscription};
use logbook_domain::{EventId, Metadata, NewEvent, Payload, RecordedEvent, StreamId};
use logbook_ports::{EventFilter, ExpectedVersion, ReadDirection};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::Shared;
use crate::error::ApiError;

/// The header that carries an expected version.
pub const EXPECTED_VERSION: &str = "expected-version";

/// Default page size of reads.
const DEFAULT_LIMIT: usize = 100;

/// A validated stream id from the path.
pub fn stream_id(raw: &str) -> Result<StreamId, ApiError> {
    StreamId::new(raw).map_err(|error| {
        ApiError::bad_request("invalid_stream_id", error.to_string())
            .with_details(json!({ "field": "stream" }))
    })
}

/// A query string, or 400 naming what is wrong with it.
pub fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query
        .map(|Query(q)| q)
        .map_err(|rejection| ApiError::bad_request("invalid_query", rejection.body_text()))
}

/// A JSON body of type `T`, with 413 for an oversize body, 400
/// `malformed_json` for text that is not JSON and 400 `invalid_body` naming
/// the field for JSON of the wrong shape.
pub fn json_body<T: serde::de::DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let bytes = body.map_err(|rejection| {
        let status = rejection.status();
        ApiError::new(
            status,
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                "payload_too_large"
            } else {
                "bad_request"
            },
            rejection.body_text(),
        )
    })?;
    let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
    let value = match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
        Ok(value) => deserializer
            .end()
            .map(|()| value)
            .map_err(|error| (".".to_owned(), error)),
        Err(error) => Err((error.path().to_string(), error.into_inner())),
    };
    value.map_err(|(field, inner)| {
        use serde_json::error::Category;
        match inner.classify() {
            Category::Data => {
                let message = if field == "." {
                    inner.to_string()
                } else {
                    format!("{field}: {inner}")
                };
                ApiError::bad_request("invalid_body", message)
                    .with_details(json!({ "field": (field != ".").then_some(field) }))
            }
            Category::Syntax | Category::Eof | Category::Io => {
                ApiError::bad_request("malformed_json", format!("body is not valid JSON: {inner}"))
            }
        }
    })
}

/// Parses `any`, `no_stream`, `exists` or a version number.
pub fn parse_expected(value: &Value) -> Result<ExpectedVersion, ApiError> {
    let bad = || {
        ApiError::bad_request(
            "invalid_expected_version",
            format!(
                "expected_version must be \"any\", \"no_stream\", \"exists\" or a version number, not {value}"
            ),
        )
        .with_details(json!({ "field": "expected_version" }))
    };
    match value {
        Value::Number(n) => n.as_u64().map(ExpectedVersion::Exact).ok_or_else(bad),
        Value::String(s) => match s.as_str() {
            "any" => Ok(ExpectedVersion::Any),
            "no_stream" => Ok(ExpectedVersion::NoStream),
            "exists" | "stream_exists" => Ok(ExpectedVersion::StreamExists),
            digits => digits
                .parse::<u64>()
                .map(ExpectedVersion::Exact)
                .map_err(|_| bad()),
        },
        _ => Err(bad()),
    }
}

/// The expected version of a request: its header, or `field` of the body
/// or query; both must agree when both are given. `default` when neither.
pub fn expected_version(
    headers: &HeaderMap,
    field: Option<&Value>,
    default: ExpectedVersion,
) -> Result<ExpectedVersion, ApiError> {
    let header = match headers.get(EXPECTED_VERSION) {
        Some(value) => {
            let text = value.to_str().map_err(|_| {
                ApiError::bad_request("invalid_expected_version", "Expected-Version is not text")
            })?;
            Some(parse_expected(&Value::String(text.trim().to_owned()))?)
        }
        None => None,
    };
    let field = field.map(parse_expected).transpose()?;
    match (header, field) {
        (Some(h), Some(f)) if h != f => Err(ApiError::bad_request(
            "invalid_expected_version",
            "the Expected-Version header and the expected_version field disagree",
        )),
        (Some(e), _) | (None, Some(e)) => Ok(e),
        (None, None) => Ok(default),
    }
}

/// An event as the API shows it, serialized straight from the recorded
/// event (no intermediate JSON tree: reads and subscriptions serialize
/// many).
pub struct EventOut<'a>(pub &'a RecordedEvent);

impl Serialize for EventOut<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let event = self.0;
        let mut map = serializer.serialize_map(Some(9))?;
        map.serialize_entry("id", &event.id)?;
        map.serialize_entry("stream", event.stream.as_str())?;
        map.serialize_entry("version", &event.version)?;
        map.serialize_entry("position", &event.position)?;
        map.serialize_entry("type", &*event.event_type)?;
        map.serialize_entry("schema_version", &event.schema_version)?;
        map.serialize_entry("payload", &event.payload)?;
        map.serialize_entry("metadata", &MetadataOut(&event.metadata))?;
        map.serialize_entry(
            "recorded_at",
            &event
                .recorded_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        )?;
        map.end()
    }
}

/// Metadata as one flat object: `correlation_id`, `causation_id` and the
/// free keys.
struct MetadataOut<'a>(&'a Metadata);

impl Serialize for MetadataOut<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let metadata = self.0;
        let mut map = serializer.serialize_map(None)?;
        if let Some(id) = &metadata.correlation_id {
            map.serialize_entry("correlation_id", id)?;
        }
        if let Some(id) = &metadata.causation_id {
            map.serialize_entry("causation_id", id)?;
        }
        for (key, value) in &metadata.extra {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// An event as a JSON text (one SSE `data` line).
pub fn event_text(event: &RecordedEvent) -> String {
    serde_json::to_string(&EventOut(event)).unwrap_or_default()
}

/// The reverse of [`MetadataOut`], naming the field that is wrong.
fn parse_metadata(index: usize, value: Option<Map<String, Value>>) -> Result<Metadata, ApiError> {
    let mut metadata = Metadata::default();
    for (key, value) in value.unwrap_or_default() {
        let field = format!("events[{index}].metadata.{key}");
        let bad = |what: &str| {
            ApiError::bad_request("invalid_body", format!("{field} must be {what}"))
                .with_details(json!({ "field": field }))
        };
        let Value::String(text) = value else {
            return Err(bad("a string"));
        };
        match key.as_str() {
            "correlation_id" | "causation_id" => {
                let id = uuid::Uuid::parse_str(&text).map_err(|_| bad("a UUID"))?;
                if key == "correlation_id" {
                    metadata.correlation_id = Some(id);
                } else {
                    metadata.causation_id = Some(id);
                }
            }
            _ => {
                metadata.extra.insert(key, text);
            }
        }
    }
    Ok(metadata)
}

/// One event of an append's body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventIn {
    id: Option<uuid::Uuid>,
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default)]
    schema_version: Option<u32>,
    payload: Box<serde_json::value::RawValue>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
}

/// An append's body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AppendIn {
    #[serde(default)]
    expected_version: Option<Value>,
    events: Vec<EventIn>,
}

/// `POST /api/v1/streams/{stream}`.
pub async fn append(
    State(state): State<Shared>,
    Path(stream): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let stream = stream_id(&stream)?;
    let body: AppendIn = json_body(body)?;
    let expected = expected_version(
        &headers,
        body.expected_version.as_ref(),
        ExpectedVersion::Any,
    )?;
    let max = state.options.max_batch;
    if body.events.len() > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!(
                "{} events in one append; at most {max} are accepted",
                body.events.len()
            ),
        ));
    }
    if body.events.is_empty() {
        return Err(
            ApiError::bad_request("invalid_body", "events must hold at least one event")
                .with_details(json!({ "field": "events" })),
        );
    }
    let mut batch = Vec::with_capacity(body.events.len());
    for (index, event) in body.events.into_iter().enumerate() {
        let payload = Payload::from_json(event.payload.get().as_bytes().to_vec())
            .map_err(|error| ApiError::bad_request("invalid_body", error.to_string()))?;
        let mut new = NewEvent::new(event.event_type, payload)
            .with_metadata(parse_metadata(index, event.metadata)?)
            .with_schema_version(event.schema_version.unwrap_or(1));
        if let Some(id) = event.id {
            new = new.with_id(EventId(id));
        }
        batch.push(new);
    }
    let count = batch.len();
    let ids: Vec<String> = batch.iter().map(|e| e.id.to_string()).collect();
    let span = tracing::Span::current();
    span.record("stream", stream.as_str());
    let outcome = match state.stores.events.append(&stream, expected, batch).await {
        Ok(outcome) => outcome,
        Err(error) => {
            if error.is_conflict() {
                state.metrics.conflict();
            }
            return Err(error.into());
        }
    };
    let version = outcome.stream_version.unwrap_or(0);
    let first_version = version + 1 - count as u64;
    if let Some(position) = outcome.last_position {
        span.record("position", position);
    }
    span.record("version", version);
    let first_position = outcome.first_position.unwrap_or(0);
    let events: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            json!({
                "id": id,
                "version": first_version + i as u64,
                "position": first_position + i as u64,
            })
        })
        .collect();
    let status = if outcome.already_recorded {
        StatusCode::OK
    } else {
        state.metrics.appended(count);
        StatusCode::CREATED
    };
    tracing::debug!(stream = %stream, version, already_recorded = outcome.already_recorded, "appended");
    Ok((
        status,
        Json(json!({
            "stream": stream.as_str(),
            "first_version": first_version,
            "version": version,
            "first_position": outcome.first_position,
            "last_position": outcome.last_position,
            "already_recorded": outcome.already_recorded,
            "events": events,
        })),
    )
        .into_response())
}

/// The query of a stream read.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadStreamQuery {
    direction: Option<String>,
    from: Option<u64>,
    limit: Option<usize>,
}

/// A path segment with everything but unreserved characters escaped.
pub fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn limit(state: &Shared, asked: Option<usize>) -> usize {
    asked
        .unwrap_or(DEFAULT_LIMIT)
        .clamp(1, state.options.max_page)
}

/// `GET /api/v1/streams/{stream}`.
pub async fn read_stream(
    State(state): State<Shared>,
    Path(raw): Path<String>,
    q: Result<Query<ReadStreamQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let stream = stream_id(&raw)?;
    let q = query(q)?;
    let direction = match q.direction.as_deref() {
        None | Some("forward") => ReadDirection::Forward,
        Some("backward") => ReadDirection::Backward,
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("direction must be forward or backward, not {other:?}"),
            )
            .with_details(json!({ "field": "direction" })));
        }
    };
    let limit = limit(&state, q.limit);
    tracing::Span::current().record("stream", stream.as_str());
    let Some(version) = state.stores.events.stream_version(&stream).await? else {
        return Err(ApiError::not_found(
            "stream_not_found",
            format!("stream {stream} has no events"),
        )
        .with_details(json!({ "stream": stream.as_str() })));
    };
    let from = q.from.unwrap_or(match direction {
        ReadDirection::Forward => 1,
        ReadDirection::Backward => version,
    });
    let events = state
        .stores
        .events
        .read_stream(&stream, direction, from, limit)
        .await?;
    let base = format!("/api/v1/streams/{}", encode(stream.as_str()));
    let (name, next_from) = match direction {
        ReadDirection::Forward => (
            "forward",
            events
                .last()
                .map(|e| e.version + 1)
                .filter(|next| *next <= version),
        ),
        ReadDirection::Backward => (
            "backward",
            events
                .last()
                .map(|e| e.version.saturating_sub(1))
                .filter(|next| *next >= 1),
        ),
    };
    let link = |from: u64| format!("{base}?direction={name}&from={from}&limit={limit}");
    let first = match direction {
        ReadDirection::Forward => 1,
        ReadDirection::Backward => version,
    };
    Ok(Json(StreamRead {
        stream: stream.as_str(),
        version,
        direction: name,
        events: events.iter().map(EventOut).collect(),
        links: StreamLinks {
            this: link(from),
            next: next_from.map(link),
            first: link(first),
        },
    })
    .into_response())
}

/// A page of a stream.
#[derive(Serialize)]
struct StreamRead<'a> {
    stream: &'a str,
    version: u64,
    direction: &'static str,
    events: Vec<EventOut<'a>>,
    links: StreamLinks,
}

#[derive(Serialize)]
struct StreamLinks {
    #[serde(rename = "self")]
    this: String,
    next: Option<String>,
    first: String,
}

/// The query of a deletion.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    expected_version: Option<String>,
}

/// `DELETE /api/v1/streams/{stream}`.
pub async fn delete_stream(
    State(state): State<Shared>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    q: Result<Query<DeleteQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let stream = stream_id(&raw)?;
    let q = query(q)?;
    let field = q.expected_version.map(Value::String);
    let expected = expected_version(&headers, field.as_ref(), ExpectedVersion::StreamExists)?;
    tracing::Span::current().record("stream", stream.as_str());
    let outcome = match state.stores.events.delete_stream(&stream, expected).await {
        Ok(outcome) => outcome,
        Err(error) => {
            if error.is_conflict() {
                state.metrics.conflict();
            }
            return Err(error.into());
        }
    };
    Ok(Json(json!({
        "stream": stream.as_str(),
        "deleted": true,
        "tombstone_version": outcome.stream_version,
        "position": outcome.last_position,
    })))
}

/// The query of a stream listing.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    prefix: Option<String>,
    category: Option<String>,
    after: Option<String>,
    limit: Option<usize>,
    #[serde(default)]
    deleted: bool,
}

/// `GET /api/v1/streams`.
pub async fn list_streams(
    State(state): State<Shared>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    let limit = limit(&state, q.limit);
    let page = state
        .catalog
        .list(&StreamQuery {
            prefix: q.prefix.clone(),
            category: q.category.clone(),
            after: q.after,
            limit,
            include_deleted: q.deleted,
        })
        .await?;
    let mut next = None;
    if let Some(after) = &page.next_after {
        let mut link = format!("/api/v1/streams?limit={limit}&after={}", encode(after));
        if let Some(prefix) = &q.prefix {
            link.push_str(&format!("&prefix={}", encode(prefix)));
        }
        if let Some(category) = &q.category {
            link.push_str(&format!("&category={}", encode(category)));
        }
        if q.deleted {
            link.push_str("&deleted=true");
        }
        next = Some(link);
    }
    Ok(Json(json!({
        "streams": page.streams,
        "total": page.total,
        "head": page.head,
        "next_after": page.next_after,
        "links": { "next": next },
    })))
}

/// The query of a global-log read.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    from: Option<u64>,
    limit: Option<usize>,
    #[serde(rename = "type")]
    types: Option<String>,
    category: Option<String>,
    prefix: Option<String>,
    wait: Option<u64>,
}

/// The filter of the `type`, `category` and `prefix` query fields
/// (`type` is a comma-separated list; a category `C` is the prefix `C-`).
pub fn filter_of(
    types: Option<&str>,
    category: Option<&str>,
    prefix: Option<&str>,
) -> Result<EventFilter, ApiError> {
    let event_types = types
        .map(|t| {
            t.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let stream_prefix = match (category, prefix) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "give a category or a prefix, not both",
            ));
        }
        (Some(category), None) => Some(format!("{category}-")),
        (None, prefix) => prefix.map(str::to_owned),
    };
    Ok(EventFilter {
        event_types,
        stream_prefix,
    })
}

/// `GET /api/v1/log`: a page of the global log from `from`; with `wait`
/// (seconds), an empty page waits that long for the next event.
pub async fn read_log(
    State(state): State<Shared>,
    q: Result<Query<LogQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let filter = filter_of(
        q.types.as_deref(),
        q.category.as_deref(),
        q.prefix.as_deref(),
    )?;
    let limit = limit(&state, q.limit);
    let from = q.from.unwrap_or(1).max(1);
    let wait = Duration::from_secs(q.wait.unwrap_or(0)).min(state.options.max_wait);
    let mut subscription =
        Subscription::new(state.stores.events.clone(), from, filter).with_page_size(limit);
    let mut events = subscription.next_batch(limit).await?;
    if events.is_empty() && !wait.is_zero() {
        let mut shutdown = state.shutdown.clone();
        tokio::select! {
            next = tokio::time::timeout(wait, subscription.next()) => {
                if let Ok(first) = next {
                    events.push(first?);
                    events.extend(subscription.next_batch(limit - 1).await?);
                }
            }
            () = crate::stopping(&mut shutdown) => {}
        }
    }
    let next_from = subscription.position();
    let head = state.stores.events.head_position().await?;
    let mut link = format!("/api/v1/log?from={next_from}&limit={limit}");
    for (key, value) in [
        ("type", q.types.as_deref()),
        ("category", q.category.as_deref()),
        ("prefix", q.prefix.as_deref()),
    ] {
        if let Some(value) = value {
            link.push_str(&format!("&{key}={}", encode(value)));
        }
    }
    if let Some(last) = events.last() {
        tracing::Span::current().record("position", last.position);
    }
    Ok(Json(LogPage {
        events: events.iter().map(EventOut).collect(),
        head,
        next_from,
        links: LogLinks { next: link },
    })
    .into_response())
}

/// A page of the global log.
#[derive(Serialize)]
struct LogPage<'a> {
    events: Vec<EventOut<'a>>,
    head: Option<u64>,
    next_from: u64,
    links: LogLinks,
}

#[derive(Serialize)]
struct LogLinks {
    next: String,
}
