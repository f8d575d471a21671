//! The router: every route of `/api/v1` from one table (which the OpenAPI
//! test reads too), the console and `/metrics`, and the middleware every
//! request passes: observation (a tracing span, latency, the request
//! timeout, the one error shape), tokens, the body cap and CORS when asked.

mod domain;
pub(crate) mod streams;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post};
use tracing::Instrument;

use crate::AppState;
use crate::error::{self, ApiError};

type Shared = Arc<AppState>;

/// The API's routes: method, path, handler.
fn table() -> Vec<(&'static str, &'static str, MethodRouter<Shared>)> {
    vec![
        ("GET", "/api/v1/info", get(domain::info)),
        ("GET", "/api/v1/openapi.json", get(domain::openapi)),
        ("GET", "/api/v1/streams", get(streams::list_streams)),
        ("GET", "/api/v1/streams/{stream}", get(streams::read_stream)),
        ("POST", "/api/v1/streams/{stream}", post(streams::append)),
        (
            "DELETE",
            "/api/v1/streams/{stream}",
            delete(streams::delete_stream),
        ),
        (
            "GET",
            "/api/v1/streams/{stream}/subscribe",
            get(crate::sse::subscribe_stream),
        ),
        ("GET", "/api/v1/log", get(streams::read_log)),
        (
            "GET",
            "/api/v1/log/subscribe",
            get(crate::sse::subscribe_log),
        ),
        ("GET", "/api/v1/aggregates", get(domain::list_aggregates)),
        (
            "GET",
            "/api/v1/aggregates/{aggregate}/{id}",
            get(domain::aggregate_state),
        ),
        (
            "POST",
            "/api/v1/aggregates/{aggregate}/{id}/{command}",
            post(domain::run_command),
        ),
        ("GET", "/api/v1/projections", get(domain::list_projections)),
        (
            "GET",
            "/api/v1/projections/{name}",
            get(domain::show_projection),
        ),
        (
            "POST",
            "/api/v1/projections/{name}/rebuild",
            post(domain::rebuild_projection),
        ),
        (
            "POST",
            "/api/v1/projections/{name}/verify",
            post(domain::verify_projection),
        ),
        (
            "POST",
            "/api/v1/projections/{name}/retry",
            post(domain::retry_projection),
        ),
    ]
}

/// `(method, path)` of every API route.
pub fn routes_table() -> Vec<(&'static str, &'static str)> {
    table()
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect()
}

/// The whole application.
pub fn router(state: Shared) -> Router {
    let mut api: Router<Shared> = Router::new();
    let mut by_path: std::collections::BTreeMap<&str, MethodRouter<Shared>> = Default::default();
    for (_, path, route) in table() {
        let merged = match by_path.remove(path) {
            Some(existing) => existing.merge(route),
            None => route,
        };
        by_path.insert(path, merged);
    }
    for (path, route) in by_path {
        api = api.route(path, route);
    }
    let max_body = state.options.max_body_bytes;
    api.route("/metrics", get(domain::metrics))
        .merge(crate::console::routes())
        .fallback(unknown_route)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(from_fn_with_state(state.clone(), crate::auth::authorize))
        .layer(from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn unknown_route(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::not_found("not_found", format!("no route for {method} {}", uri.path()))
}

/// Every request: a span with its route (and, recorded by the handlers,
/// the stream, version and position it touched), the timeout, the error
/// shape, metrics, CORS headers when configured.
async fn observe(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = request.method().clone();
    let span = tracing::info_span!(
        "request",
        method = %method,
        route = %route,
        path = %request.uri().path(),
        status = tracing::field::Empty,
        stream = tracing::field::Empty,
        version = tracing::field::Empty,
        position = tracing::field::Empty,
    );
    if let Some(origin) = &state.options.cors_origin
        && method == Method::OPTIONS
    {
        // A preflight: answered here, before tokens (browsers send none).
        let mut response = axum::http::StatusCode::NO_CONTENT.into_response();
        cors(&mut response, origin);
        return response;
    }
    let started = Instant::now();
    let timeout = state.options.request_timeout;
    let response =
        match tokio::time::timeout(timeout, next.run(request).instrument(span.clone())).await {
            Ok(response) => response,
            Err(_) => error::timed_out(),
        };
    let mut response = error::normalize(response).await;
    let status = response.status().as_u16();
    let took = started.elapsed();
    span.record("status", status);
    span.in_scope(|| {
        tracing::debug!(took_ms = took.as_secs_f64() * 1e3, "answered");
    });
    state.metrics.request(method.as_str(), &route, status, took);
    if let Some(origin) = &state.options.cors_origin {
        cors(&mut response, origin);
    }
    response
}

/// The CORS headers for the configured origin.
fn cors(response: &mut Response, origin: &str) {
    if let Ok(value) = HeaderValue::from_str(origin) {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(
                "authorization, content-type, expected-version, last-event-id",
            ),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, DELETE"),
        );
    }
}
