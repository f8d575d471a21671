//! Subscriptions over server-sent events: the global log (optionally a
//! category or event types) or one stream, history first and then live, as
//! one sequence built on the library's [`Subscription`], so the hand-over
//! neither skips nor repeats an event.
//!
//! Each event's SSE `id` is its global position: a browser that reconnects
//! sends `Last-Event-ID` and resumes right after it. Comment lines keep an
//! idle connection open. Each subscriber has a bounded buffer; one whose
//! buffer stays full for the grace period is dropped with a `dropped` event
//! naming the reason, so a slow reader costs bounded memory and never slows
//! writers (it reads the store on its own). On shutdown every subscriber
//! gets a `shutdown` event and the stream ends.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use logbook::Subscription;
use logbook_domain::{RecordedEvent, StreamId};
use logbook_ports::EventFilter;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use crate::AppState;
use crate::api::streams;
use crate::error::ApiError;

/// The query of a subscription.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscribeQuery {
    from: Option<u64>,
    #[serde(rename = "type")]
    types: Option<String>,
    category: Option<String>,
    prefix: Option<String>,
    /// Accepted here so the auth middleware's `?token=` passes the query
    /// check; read by the middleware.
    #[allow(dead_code)]
    token: Option<String>,
}

/// The first position to send: one past `Last-Event-ID` when resuming,
/// else `from` (default 1, the whole history).
fn start(headers: &HeaderMap, from: Option<u64>) -> Result<u64, ApiError> {
    match headers.get("last-event-id") {
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|last| last + 1)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_last_event_id",
                    "Last-Event-ID must be the position of the last event received",
                )
            }),
        None => Ok(from.unwrap_or(1).max(1)),
    }
}

/// `GET /api/v1/log/subscribe`.
pub async fn subscribe_log(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    q: Result<Query<SubscribeQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = streams::query(q)?;
    let filter = streams::filter_of(
        q.types.as_deref(),
        q.category.as_deref(),
        q.prefix.as_deref(),
    )?;
    let from = start(&headers, q.from)?;
    Ok(open(state, from, filter, None))
}

/// `GET /api/v1/streams/{stream}/subscribe`.
pub async fn subscribe_stream(
    State(state): State<Arc<AppState>>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    q: Result<Query<SubscribeQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let stream = streams::stream_id(&raw)?;
    let q = streams::query(q)?;
    let mut filter = streams::filter_of(q.types.as_deref(), None, None)?;
    filter.stream_prefix = Some(stream.as_str().to_owned());
    let from = start(&headers, q.from)?;
    tracing::Span::current().record("stream", stream.as_str());
    Ok(open(state, from, filter, Some(stream)))
}

/// What the producer hands the response stream.
enum Frame {
    Event(RecordedEvent),
    Closing(&'static str, String),
}

fn to_sse(frame: Frame) -> Event {
    match frame {
        Frame::Event(event) => Event::default()
            .id(event.position.to_string())
            .data(streams::event_text(&event)),
        Frame::Closing(kind, reason) => Event::default()
            .event(kind)
            .data(json!({ "reason": reason }).to_string()),
    }
}

fn open(state: Arc<AppState>, from: u64, filter: EventFilter, only: Option<StreamId>) -> Response {
    let (sender, receiver) = mpsc::channel::<Frame>(state.options.subscriber_buffer.max(1));
    let (last_words, last_words_rx) = oneshot::channel::<Frame>();
    let heartbeat = state.options.heartbeat;
    tokio::spawn(produce(state, from, filter, only, sender, last_words));
    let events = stream::unfold(
        (Some(receiver), Some(last_words_rx)),
        |(receiver, last)| async move {
            if let Some(mut receiver) = receiver
                && let Some(frame) = receiver.recv().await
            {
                return Some((Ok::<_, Infallible>(to_sse(frame)), (Some(receiver), last)));
            }
            let frame = last?.await.ok()?;
            Some((Ok(to_sse(frame)), (None, None)))
        },
    );
    sse_response(events, heartbeat)
}

fn sse_response(
    events: impl Stream<Item = Result<Event, Infallible>> + Send + 'static,
    heartbeat: std::time::Duration,
) -> Response {
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(heartbeat).text("heartbeat"))
        .into_response();
    // Proxies must not buffer a live stream.
    response.headers_mut().insert(
        "x-accel-buffering",
        axum::http::HeaderValue::from_static("no"),
    );
    response
}

/// Reads the log and feeds one subscriber until it leaves, falls behind,
/// the store fails, or the server shuts down.
async fn produce(
    state: Arc<AppState>,
    from: u64,
    filter: EventFilter,
    only: Option<StreamId>,
    sender: mpsc::Sender<Frame>,
    last_words: oneshot::Sender<Frame>,
) {
    let _subscriber = state.metrics.subscriber();
    let grace = state.options.slow_subscriber_grace;
    let mut shutdown = state.shutdown.clone();
    let mut subscription = Subscription::new(state.stores.events.clone(), from, filter);
    let closing = loop {
        let next = tokio::select! {
            next = subscription.next() => next,
            () = sender.closed() => break None,
            () = crate::stopping(&mut shutdown) => {
                break Some(Frame::Closing("shutdown", "the server is shutting down".into()));
            }
        };
        let event = match next {
            Ok(event) => event,
            Err(error) => {
                tracing::warn!(%error, "subscription stopped by a store failure");
                break Some(Frame::Closing("error", error.to_string()));
            }
        };
        if only.as_ref().is_some_and(|stream| *stream != event.stream) {
            continue;
        }
        let position = event.position;
        tokio::select! {
            sent = tokio::time::timeout(grace, sender.send(Frame::Event(event))) => match sent {
                Ok(Ok(())) => {}
                Ok(Err(_)) => break None,
                Err(_) => {
                    state.metrics.subscriber_dropped();
                    tracing::info!(position, "dropping a subscriber that does not keep up");
                    break Some(Frame::Closing(
                        "dropped",
                        format!(
                            "the subscriber fell {} events behind for {} ms; resume from Last-Event-ID",
                            state.options.subscriber_buffer,
                            grace.as_millis()
                        ),
                    ));
                }
            },
            () = crate::stopping(&mut shutdown) => {
                break Some(Frame::Closing("shutdown", "the server is shutting down".into()));
            }
        }
    };
    if let Some(frame) = closing {
        let _ = last_words.send(frame);
    }
}
