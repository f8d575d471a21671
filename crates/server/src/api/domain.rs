//! The domain side of the API: server information, commands by name,
//! aggregate state now or at a version or time, projections, metrics and
//! the OpenAPI document.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use logbook::projection::{PoisonPolicy, ProjectionError, ProjectorOptions, RegisteredProjection};
use logbook::registry::At;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Shared;
use super::streams::{json_body, query};
use crate::error::ApiError;

/// `GET /api/v1/info`: what the dashboard shows.
pub async fn info(State(state): State<Shared>) -> Result<Json<Value>, ApiError> {
    let head = state.stores.events.head_position().await?;
    let streams = state.catalog.count().await?;
    Ok(Json(json!({
        "store": state.options.store_label,
        "head": head,
        "streams": streams,
        "server_version": env!("CARGO_PKG_VERSION"),
        "aggregates": state.options.commands.aggregates(),
        "projections": state.options.projections.names(),
        "read_only": false,
    })))
}

/// `GET /api/v1/openapi.json`.
pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], crate::OPENAPI).into_response()
}

/// `GET /metrics`: the Prometheus text exposition.
pub async fn metrics(State(state): State<Shared>) -> Result<Response, ApiError> {
    let head = state.stores.events.head_position().await?;
    let mut lags = Vec::new();
    for projection in state.options.projections.iter() {
        if let Ok(status) = projection.status(&state.stores, options()).await {
            lags.push((projection.name(), status.lag));
        }
    }
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(head, &lags),
    )
        .into_response())
}

/// `GET /api/v1/aggregates`: the registered aggregates and their commands.
pub async fn list_aggregates(State(state): State<Shared>) -> Result<Json<Value>, ApiError> {
    let registry = &state.options.commands;
    let mut aggregates = Vec::new();
    for name in registry.aggregates() {
        let commands = registry.get(name)?.command_names();
        aggregates.push(json!({ "name": name, "commands": commands }));
    }
    Ok(Json(json!({ "aggregates": aggregates })))
}

/// The query of an aggregate's state.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateQuery {
    version: Option<u64>,
    at: Option<String>,
}

/// `GET /api/v1/aggregates/{aggregate}/{id}?version=N|at=TIME`.
pub async fn aggregate_state(
    State(state): State<Shared>,
    Path((aggregate, id)): Path<(String, String)>,
    q: Result<Query<StateQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    let at = match (q.version, q.at) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "give a version or a time, not both",
            ));
        }
        (Some(version), None) => At::Version(version),
        (None, Some(at)) => At::Time(
            chrono::DateTime::parse_from_rfc3339(&at)
                .map_err(|error| {
                    ApiError::bad_request(
                        "invalid_query",
                        format!("at must be an RFC 3339 time with an offset ({error})"),
                    )
                    .with_details(json!({ "field": "at" }))
                })?
                .to_utc(),
        ),
        (None, None) => At::Latest,
    };
    let loaded = state
        .options
        .commands
        .state(&state.stores, &aggregate, &id, at)
        .await?;
    Ok(Json(json!({
        "aggregate": loaded.aggregate,
        "id": loaded.id,
        "stream": format!("{}-{}", loaded.aggregate, loaded.id),
        "version": loaded.version,
        "state": loaded.state,
    })))
}

/// `POST /api/v1/aggregates/{aggregate}/{id}/{command}` with the command's
/// arguments as a JSON object.
pub async fn run_command(
    State(state): State<Shared>,
    Path((aggregate, id, command)): Path<(String, String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let arguments: Value = match &body {
        Ok(bytes) if bytes.is_empty() => Value::Null,
        _ => json_body(body)?,
    };
    let outcome = state
        .options
        .commands
        .execute(&state.stores, &aggregate, &id, &command, arguments)
        .await?;
    let span = tracing::Span::current();
    span.record("version", outcome.version);
    state.metrics.appended(outcome.events.len());
    Ok(Json(json!({
        "aggregate": state.options.commands.get(&aggregate)?.aggregate(),
        "id": id,
        "version": outcome.version,
        "events": outcome.events,
        "state": outcome.state,
    })))
}

fn projection_error(error: ProjectionError) -> ApiError {
    let message = error.to_string();
    match error {
        ProjectionError::Store(store) => store.into(),
        ProjectionError::Stopped { .. } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "projection_stopped",
            message,
        ),
        ProjectionError::Superseded { .. } => {
            ApiError::new(StatusCode::CONFLICT, "projection_superseded", message)
        }
        ProjectionError::AheadOfLog { .. } | ProjectionError::Unreadable { .. } => {
            ApiError::new(StatusCode::CONFLICT, "projection_needs_rebuild", message)
        }
    }
}

fn projection<'a>(
    state: &'a Shared,
    name: &str,
) -> Result<&'a std::sync::Arc<dyn RegisteredProjection>, ApiError> {
    state
        .options
        .projections
        .get(name)
        .map_err(|error| ApiError::not_found("unknown_projection", error.to_string()))
}

/// The server's projectors park an event they cannot apply, so a poison
/// event shows up in the console instead of stopping the read model.
fn options() -> ProjectorOptions {
    ProjectorOptions {
        policy: PoisonPolicy::Park,
        ..ProjectorOptions::default()
    }
}

fn status_json(status: &logbook::projection::Status) -> Value {
    json!({
        "name": status.name,
        "checkpoint": status.checkpoint,
        "head": status.head,
        "lag": status.lag,
        "parked": status.parked,
    })
}

/// `GET /api/v1/projections`.
pub async fn list_projections(State(state): State<Shared>) -> Result<Json<Value>, ApiError> {
    let mut list = Vec::new();
    for projection in state.options.projections.iter() {
        let status = projection
            .status(&state.stores, options())
            .await
            .map_err(projection_error)?;
        list.push(status_json(&status));
    }
    Ok(Json(json!({ "projections": list })))
}

/// `GET /api/v1/projections/{name}`: caught up, with model and parked
/// events.
pub async fn show_projection(
    State(state): State<Shared>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let projection = projection(&state, &name)?;
    let (_, model) = projection
        .show(&state.stores, options(), &mut |_| {})
        .await
        .map_err(projection_error)?;
    let parked = projection
        .parked(&state.stores, options())
        .await
        .map_err(projection_error)?;
    let status = projection
        .status(&state.stores, options())
        .await
        .map_err(projection_error)?;
    Ok(Json(json!({
        "name": projection.name(),
        "status": status_json(&status),
        "checkpoint": status.checkpoint,
        "model": model,
        "parked": parked,
    })))
}

/// `POST /api/v1/projections/{name}/rebuild`.
pub async fn rebuild_projection(
    State(state): State<Shared>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let done = projection(&state, &name)?
        .rebuild(&state.stores, options(), &mut |_| {})
        .await
        .map_err(projection_error)?;
    Ok(Json(json!({
        "name": name,
        "applied": done.applied,
        "parked": done.parked,
        "checkpoint": done.checkpoint,
    })))
}

/// `POST /api/v1/projections/{name}/verify`.
pub async fn verify_projection(
    State(state): State<Shared>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let differences = projection(&state, &name)?
        .verify(&state.stores, options())
        .await
        .map_err(projection_error)?;
    Ok(Json(json!({
        "name": name,
        "matches": differences.is_empty(),
        "differences": differences,
    })))
}

/// `POST /api/v1/projections/{name}/retry`: applies the parked events
/// again.
pub async fn retry_projection(
    State(state): State<Shared>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (applied, still_parked) = projection(&state, &name)?
        .retry_parked(&state.stores, options())
        .await
        .map_err(projection_error)?;
    Ok(Json(json!({
        "name": name,
        "applied": applied,
        "still_parked": still_parked,
    })))
}
