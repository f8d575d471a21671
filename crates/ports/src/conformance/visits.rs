//! Visiting reads: [`EventStore::visit_stream`] lends exactly the events
//! [`EventStore::read_stream`] returns, in the same order, under the same
//! rules (deletion, retention, short pages only at the end), and the page
//! helper visits a whole stream once in order.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use logbook_domain::{Metadata, StreamId};
use serde_json::json;
use uuid::Uuid;

use super::Fixture;
use super::support::*;
use crate::error::StoreError;
use crate::event_store::{EventStore, ExpectedVersion as Expected, ReadDirection};
use crate::read::StreamPages;
use crate::retention::StreamRetention;
use crate::{RecordedEvent, Version};

/// What `visit_stream` lends for these arguments, as owned envelopes, and
/// the count it returns.
async fn lent(
    store: &dyn EventStore,
    stream: &StreamId,
    direction: ReadDirection,
    from: Version,
    limit: usize,
) -> Result<(Vec<RecordedEvent>, usize), StoreError> {
    let mut events = Vec::new();
    let count = store
        .visit_stream(stream, direction, from, limit, &mut |event| {
            events.push(event.to_recorded());
        })
        .await?;
    Ok((events, count))
}

/// Checks that a visiting read of every window of `stream` lends what the
/// plain read returns, field by field.
async fn assert_visits_match_reads(store: &dyn EventStore, stream: &StreamId, what: &str) {
    let len = store
        .read_stream(stream, ReadDirection::Forward, 1, usize::MAX)
        .await
        .expect("reading the stream")
        .len() as u64;
    for direction in [ReadDirection::Forward, ReadDirection::Backward] {
        for from in [0, 1, 2, len / 2 + 1, len, len + 1, u64::MAX] {
            for limit in [0, 1, 3, len as usize, usize::MAX] {
                let read = store
                    .read_stream(stream, direction, from, limit)
                    .await
                    .expect("reading a window");
                let (visited, count) = lent(store, stream, direction, from, limit)
                    .await
                    .expect("visiting a window");
                let window = format!("{what}: {direction:?} from {from}, limit {limit}");
                assert_eq!(visited, read, "{window}: the events lent");
                assert_eq!(count, read.len(), "{window}: the count returned");
            }
        }
    }
}

pub(super) async fn visiting_a_stream_lends_what_reading_it_returns(fixture: Arc<dyn Fixture>) {
    // Given a stream whose events carry metadata, another schema version,
    // a time of their own and a non-ASCII payload, interleaved with another
    // stream's events
    let store = fixture.open().await.events;
    let s = stream("Visited-1");
    let mut extra = std::collections::BTreeMap::new();
    extra.insert("user".to_owned(), "zoë".to_owned());
    let metadata = Metadata {
        correlation_id: Some(Uuid::new_v4()),
        causation_id: None,
        extra,
    };
    let historic: DateTime<Utc> = DateTime::from_timestamp_micros(1_746_634_114_633_698).unwrap();
    for n in 1..=7u64 {
        let mut new = event(if n % 2 == 0 { "Even" } else { "Odd" }, n);
        if n == 2 {
            new = new.with_metadata(metadata.clone()).with_schema_version(4);
        }
        if n == 3 {
            new.recorded_at = Some(historic);
            new.payload = payload(json!({"n": 3, "note": "naïve café ☕"}));
        }
        store.append(&s, Expected::Any, vec![new]).await.unwrap();
        store
            .append(&stream("Visited-2"), Expected::Any, events(1))
            .await
            .unwrap();
    }
    // When every window of it is visited and read, then both give the same
    // events in the same order, and the visit counts what it lent
    assert_visits_match_reads(&*store, &s, "Visited-1").await;
    let (visited, _) = lent(&*store, &s, ReadDirection::Forward, 1, usize::MAX)
        .await
        .unwrap();
    assert_eq!(visited[1].metadata, metadata, "metadata is lent");
    assert_eq!(visited[1].schema_version, 4);
    assert_eq!(visited[2].recorded_at, historic, "a kept time is lent");
    assert_eq!(ns(&visited), (1..=7).collect::<Vec<_>>());
    // And a stream that does not exist lends nothing
    let (none, count) = lent(&*store, &stream("Nobody-1"), ReadDirection::Forward, 1, 10)
        .await
        .unwrap();
    assert!(none.is_empty() && count == 0);
}

pub(super) async fn visiting_a_deleted_stream_is_refused_lending_nothing(
    fixture: Arc<dyn Fixture>,
) {
    // Given a deleted stream
    let store = fixture.open().await.events;
    let s = stream("Gone-1");
    store
        .append(&s, Expected::NoStream, events(3))
        .await
        .unwrap();
    store.delete_stream(&s, Expected::Exact(3)).await.unwrap();
    for direction in [ReadDirection::Forward, ReadDirection::Backward] {
        // When it is visited
        let mut seen = 0;
        let result = store
            .visit_stream(&s, direction, 1, 10, &mut |_| seen += 1)
            .await;
        // Then the visit is refused as deleted, and nothing was lent
        match result {
            Err(StoreError::StreamDeleted { stream }) => assert_eq!(stream, s),
            other => panic!("{direction:?}: expected StreamDeleted, got {other:?}"),
        }
        assert_eq!(seen, 0, "{direction:?}: nothing lent");
    }
}

pub(super) async fn visiting_leaves_out_what_retention_hides(fixture: Arc<dyn Fixture>) {
    // Given streams trimmed by count, by version and by age, interleaved
    // with others
    let store = fixture.open().await.events;
    let counted = stream("Trim-1");
    let cut = stream("Trim-2");
    let aged = stream("Trim-3");
    for n in 0..12u64 {
        store
            .append(&counted, Expected::Any, events(1))
            .await
            .unwrap();
        store.append(&cut, Expected::Any, events(1)).await.unwrap();
        let mut old = event("Happened", n);
        if n < 5 {
            old.recorded_at = Some((Utc::now() - TimeDelta::days(30)).trunc_subsecs(6));
        }
        store.append(&aged, Expected::Any, vec![old]).await.unwrap();
    }
    let policy = |age: Option<u64>, count: Option<u64>, before: Option<u64>| {
        StreamRetention::new(age.map(Duration::from_secs), count, before).expect("a valid policy")
    };
    store
        .set_retention(&counted, policy(None, Some(5), None))
        .await
        .unwrap();
    store
        .set_retention(&cut, policy(None, None, Some(8)))
        .await
        .unwrap();
    store
        .set_retention(&aged, policy(Some(86_400), None, None))
        .await
        .unwrap();
    for scavenged in [false, true] {
        if scavenged {
            store.scavenge().await.unwrap();
        }
        // When they are visited, then each lends what a read returns: the
        // visible events only, pages full across hidden ones
        for s in [&counted, &cut, &aged] {
            assert_visits_match_reads(&*store, s, &format!("{s}, scavenged: {scavenged}")).await;
        }
        let (first, count) = lent(&*store, &counted, ReadDirection::Forward, 1, 3)
            .await
            .unwrap();
        assert_eq!(versions(&first), [8, 9, 10], "scavenged: {scavenged}");
        assert_eq!(count, 3);
    }
}

pub(super) async fn the_page_helper_visits_a_stream_once_in_order(fixture: Arc<dyn Fixture>) {
    // Given 12 events in one stream and 12 in another
    let store = fixture.open().await.events;
    let s = stream("Walked-1");
    for i in 0..24u64 {
        let on = if i % 2 == 0 {
            s.clone()
        } else {
            stream("Walked-2")
        };
        store
            .append(&on, Expected::Any, vec![event("Happened", i)])
            .await
            .unwrap();
    }
    for page in [1, 4, 5, 12, 13, 1_000] {
        for (direction, from) in [
            (ReadDirection::Forward, 1),
            (ReadDirection::Backward, u64::MAX),
        ] {
            // When the stream is visited page by page
            let mut pages = StreamPages::new(&*store, &s, direction, from, page);
            let mut visited = Vec::new();
            let mut counts = Vec::new();
            while let Some(count) = pages
                .visit_next_page(&mut |event| visited.push(event.version))
                .await
                .unwrap()
            {
                counts.push(count);
            }
            // Then each event comes once, in order, whatever the page size,
            // and every page but the last is full
            let mut expected: Vec<u64> = (1..=12).collect();
            if direction == ReadDirection::Backward {
                expected.reverse();
            }
            assert_eq!(visited, expected, "{direction:?}, page {page}");
            assert_eq!(counts.iter().sum::<usize>(), 12);
            let (last, full) = counts.split_last().unwrap();
            assert!(
                full.iter().all(|c| *c == page) && *last <= page,
                "{direction:?}, page {page}: {counts:?}"
            );
            // And once at the end it lends nothing more
            assert_eq!(pages.visit_next_page(&mut |_| {}).await.unwrap(), None);
        }
    }
}
