//! [`ApiError`]: the one error shape of the API, `{"error": code,
//! "message": ...}` (plus fields a client acts on, such as a conflict's
//! current version), with its HTTP status; and the middleware that gives
//! every other error response (a rejected body, an unknown route) the same
//! shape.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use logbook::registry::ExecError;
use logbook_ports::{ExpectedVersion, StoreError};
use serde_json::{Value, json};

/// An error answered to a client.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable, machine-readable code (`wrong_expected_version`).
    pub code: &'static str,
    /// One line for a person.
    pub message: String,
    /// Extra fields merged into the body.
    pub details: Option<Value>,
}

impl ApiError {
    /// An error with no extra fields.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }

    /// 400 with `code`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404 with `code`.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// Adds fields to the body.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }
}

/// The wire form of an expectation: `any`, `no_stream`, `exists` or a
/// number.
pub fn expected_to_json(expected: ExpectedVersion) -> Value {
    match expected {
        ExpectedVersion::Any => "any".into(),
        ExpectedVersion::NoStream => "no_stream".into(),
        ExpectedVersion::StreamExists => "exists".into(),
        ExpectedVersion::Exact(v) => v.into(),
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        let message = error.to_string();
        match error {
            StoreError::WrongExpectedVersion {
                stream,
                expected,
                actual,
            } => Self::new(StatusCode::CONFLICT, "wrong_expected_version", message).with_details(
                json!({
                    "stream": stream.as_str(),
                    "expected_version": expected_to_json(expected),
                    "current_version": actual,
                }),
            ),
            StoreError::StreamDeleted { stream } => {
                Self::new(StatusCode::GONE, "stream_deleted", message)
                    .with_details(json!({ "stream": stream.as_str() }))
            }
            StoreError::DuplicateEventId { event_id, stream } => {
                Self::new(StatusCode::CONFLICT, "duplicate_event_id", message).with_details(
                    json!({ "event_id": event_id.to_string(), "stream": stream.as_str() }),
                )
            }
            StoreError::InvalidEvent { index, .. } => {
                Self::bad_request("invalid_event", message).with_details(json!({ "index": index }))
            }
            _ => {
                tracing::error!(error = %message, "store failure");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "store_error", message)
            }
        }
    }
}

impl From<ExecError> for ApiError {
    fn from(error: ExecError) -> Self {
        let message = error.to_string();
        match error {
            ExecError::UnknownAggregate { .. } => Self::not_found("unknown_aggregate", message),
            ExecError::UnknownCommand { .. } => Self::not_found("unknown_command", message),
            ExecError::InvalidArguments { problem, .. } => {
                Self::bad_request("invalid_arguments", message)
                    .with_details(json!({ "field": problem.field }))
            }
            ExecError::InvalidId { .. } => {
                Self::bad_request("invalid_id", message).with_details(json!({ "field": "id" }))
            }
            ExecError::Refused { .. } => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "command_refused", message)
            }
            ExecError::Conflict {
                stream, attempts, ..
            } => Self::new(StatusCode::CONFLICT, "too_many_conflicts", message)
                .with_details(json!({ "stream": stream.as_str(), "attempts": attempts })),
            ExecError::NotFound { .. } => Self::not_found("aggregate_not_found", message),
            ExecError::VersionNotReached { current, .. } => {
                Self::not_found("version_not_reached", message)
                    .with_details(json!({ "current_version": current }))
            }
            ExecError::Store { source, .. } => {
                let mut mapped = Self::from(source);
                mapped.message = message;
                mapped
            }
            ExecError::Personal { source, .. } => match *source {
                logbook::personal::PersonalDataError::Shredded { .. } => Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "subject_shredded",
                    message,
                ),
                logbook::personal::PersonalDataError::Store(store) => {
                    let mut mapped = Self::from(store);
                    mapped.message = message;
                    mapped
                }
                _ => Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "personal_data_unavailable",
                    message,
                ),
            },
            ExecError::Codec { .. } => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "undecodable_event",
                message,
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.code, "message": self.message });
        if let (Some(Value::Object(extra)), Value::Object(map)) = (self.details, &mut body) {
            for (key, value) in extra {
                map.entry(key).or_insert(value);
            }
        }
        (self.status, axum::Json(body)).into_response()
    }
}

/// The code of an error status that no handler produced itself.
fn code_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        _ if status.is_server_error() => "internal_error",
        _ => "error",
    }
}

/// Gives an error response that is not JSON yet (axum's rejections, the
/// 405 of a known path) the API's error shape, keeping its message.
pub async fn normalize(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, 64 * 1024).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_owned()
    } else {
        text
    };
    let mut fixed = ApiError::new(status, code_for(status), message).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            fixed.headers_mut().insert(name.clone(), value.clone());
        }
    }
    fixed
}

/// A body-less 503 when a request ran past its timeout.
pub fn timed_out() -> Response {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "timeout",
        "the request took longer than the server's request timeout",
    )
    .into_response()
}
