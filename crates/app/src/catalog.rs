//! [`StreamCatalog`]: the streams of a store, with their event counts and
//! last activity, kept from the global log so that no adapter needs a
//! stream-listing method.
//!
//! The catalog remembers the next position it has to read; every
//! [`StreamCatalog::refresh`] reads the log from there to its head, so a
//! listing costs one pass over the log once and only the new events after
//! that. It lives in memory: a process that opens a store builds it on the
//! first listing.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use logbook_domain::{Position, Version};
use logbook_ports::append::is_tombstone;
use logbook_ports::{EventFilter, EventStore, StoreError};
use serde::Serialize;
use tokio::sync::Mutex;

/// Events read per page while catching up.
const PAGE: usize = 5_000;

/// One stream as the catalog knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StreamSummary {
    /// The stream id.
    pub stream: String,
    /// Its category (the part before the first `-`).
    pub category: String,
    /// Version of its last event, the tombstone included once deleted.
    pub version: Version,
    /// Its events, the tombstone not counted.
    pub events: u64,
    /// Global position of its last event.
    pub last_position: Position,
    /// When its last event was recorded.
    pub last_recorded_at: DateTime<Utc>,
    /// True once it was deleted.
    pub deleted: bool,
}

/// Which streams a listing returns, and which page of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamQuery {
    /// Only ids starting with this prefix.
    pub prefix: Option<String>,
    /// Only streams of this category (`BankAccount` for `BankAccount-1`).
    pub category: Option<String>,
    /// Only ids after this one (the previous page's last id).
    pub after: Option<String>,
    /// At most this many (0 is read as 1).
    pub limit: usize,
    /// Deleted streams too.
    pub include_deleted: bool,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StreamPage {
    /// The streams, in id order.
    pub streams: Vec<StreamSummary>,
    /// Streams matching the query in all pages.
    pub total: usize,
    /// The id to pass as `after` for the next page (`None`: last page).
    pub next_after: Option<String>,
    /// The log position the catalog had read up to (inclusive).
    pub head: Option<Position>,
}

#[derive(Debug, Default)]
struct Index {
    next: Position,
    streams: BTreeMap<String, StreamSummary>,
}

/// The streams of one store, kept from its global log.
pub struct StreamCatalog {
    events: Arc<dyn EventStore>,
    index: Mutex<Index>,
}

impl StreamCatalog {
    /// An empty catalog of `events`; the first refresh reads the whole log.
    pub fn new(events: Arc<dyn EventStore>) -> Self {
        Self {
            events,
            index: Mutex::new(Index {
                next: 1,
                streams: BTreeMap::new(),
            }),
        }
    }

    /// Reads the log from where the catalog stopped to its head.
    ///
    /// # Errors
    /// Store failures; the catalog keeps what it had read.
    pub async fn refresh(&self) -> Result<Option<Position>, StoreError> {
        let mut index = self.index.lock().await;
        let all = EventFilter::all();
        loop {
            let page = self.events.read_all(index.next, PAGE, &all).await?;
            let full = page.len() == PAGE;
            for event in &page {
                let tombstone = is_tombstone(&event.event_type);
                let entry = index
                    .streams
                    .entry(event.stream.as_str().to_owned())
                    .or_insert_with(|| StreamSummary {
                        stream: event.stream.as_str().to_owned(),
                        category: event.stream.category().to_owned(),
                        version: 0,
                        events: 0,
                        last_position: 0,
                        last_recorded_at: event.recorded_at,
                        deleted: false,
                    });
                entry.version = event.version;
                entry.events += u64::from(!tombstone);
                entry.last_position = event.position;
                entry.last_recorded_at = event.recorded_at;
                entry.deleted |= tombstone;
            }
            if let Some(last) = page.last() {
                index.next = last.position + 1;
            }
            if !full {
                return Ok(index.next.checked_sub(1).filter(|p| *p > 0));
            }
        }
    }

    /// One page of the streams matching `query`, after a refresh.
    ///
    /// # Errors
    /// Store failures.
    pub async fn list(&self, query: &StreamQuery) -> Result<StreamPage, StoreError> {
        let head = self.refresh().await?;
        let index = self.index.lock().await;
        let limit = query.limit.max(1);
        let matches = |s: &&StreamSummary| {
            (query.include_deleted || !s.deleted)
                && query
                    .prefix
                    .as_deref()
                    .is_none_or(|p| s.stream.starts_with(p))
                && query.category.as_deref().is_none_or(|c| s.category == c)
        };
        let total = index.streams.values().filter(matches).count();
        let start = match &query.after {
            Some(after) => std::ops::Bound::Excluded(after.clone()),
            None => std::ops::Bound::Unbounded,
        };
        let mut streams: Vec<StreamSummary> = index
            .streams
            .range((start, std::ops::Bound::Unbounded))
            .map(|(_, s)| s)
            .filter(matches)
            .take(limit + 1)
            .cloned()
            .collect();
        let next_after = if streams.len() > limit {
            streams.truncate(limit);
            streams.last().map(|s| s.stream.clone())
        } else {
            None
        };
        Ok(StreamPage {
            streams,
            total,
            next_after,
            head,
        })
    }

    /// Streams known (deleted ones included), after a refresh.
    ///
    /// # Errors
    /// Store failures.
    pub async fn count(&self) -> Result<usize, StoreError> {
        self.refresh().await?;
        Ok(self.index.lock().await.streams.len())
    }
}

#[cfg(test)]
mod tests {
    use logbook_domain::{NewEvent, Payload, StreamId};
    use logbook_ports::ExpectedVersion;

    use super::*;

    async fn append(events: &Arc<dyn EventStore>, stream: &str, n: usize) {
        let batch = (0..n)
            .map(|_| NewEvent::new("Happened", Payload::from_json(b"{}".to_vec()).unwrap()))
            .collect();
        events
            .append(&StreamId::new(stream).unwrap(), ExpectedVersion::Any, batch)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn lists_streams_by_prefix_and_category_in_pages_and_follows_new_events() {
        // Given three streams in two categories
        let events = logbook_adapters_memory::stores().events;
        append(&events, "Ship-1", 2).await;
        append(&events, "Ship-2", 1).await;
        append(&events, "Account-1", 3).await;
        let catalog = StreamCatalog::new(events.clone());

        // When listing a category one stream per page
        let query = StreamQuery {
            category: Some("Ship".into()),
            limit: 1,
            ..StreamQuery::default()
        };
        let first = catalog.list(&query).await.unwrap();
        let second = catalog
            .list(&StreamQuery {
                after: first.next_after.clone(),
                ..query.clone()
            })
            .await
            .unwrap();

        // Then the pages hold each stream once, with counts
        assert_eq!(first.total, 2);
        assert_eq!(first.streams[0].stream, "Ship-1");
        assert_eq!(first.streams[0].events, 2);
        assert_eq!(second.streams[0].stream, "Ship-2");
        assert_eq!(second.next_after, None);

        // And later events and deletions are picked up
        append(&events, "Ship-1", 1).await;
        events
            .delete_stream(&StreamId::new("Ship-2").unwrap(), ExpectedVersion::Any)
            .await
            .unwrap();
        let page = catalog
            .list(&StreamQuery {
                prefix: Some("Ship-".into()),
                limit: 10,
                ..StreamQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(page.streams.len(), 1);
        assert_eq!(page.streams[0].events, 3);
        assert_eq!(page.head, Some(8));
    }
}
