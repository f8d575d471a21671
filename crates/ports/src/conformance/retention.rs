//! Retention: each limit hides its events on read at once, limits combine,
//! policies survive reopening and never reveal what they hid, scavenge
//! reclaims hidden events without changing what any reader sees, and the
//! global log keeps its guarantees across a reclaimed range.

use std::sync::Arc;
use std::time::Duration;

use chrono::{SubsecRound, TimeDelta, Utc};
use logbook_domain::NewEvent;

use super::Fixture;
use super::support::*;
use crate::error::StoreError;
use crate::event_store::{EventFilter, EventStore, ExpectedVersion as Expected};
use crate::read::{GlobalPages, StreamPages};
use crate::retention::{RetentionError, StreamRetention};
use crate::{ReadDirection, RecordedEvent};

fn count(n: u64) -> StreamRetention {
    StreamRetention::new(None, Some(n), None).expect("a valid policy")
}

fn truncate(v: u64) -> StreamRetention {
    StreamRetention::new(None, None, Some(v)).expect("a valid policy")
}

fn age(seconds: u64) -> StreamRetention {
    StreamRetention::new(Some(Duration::from_secs(seconds)), None, None).expect("a valid policy")
}

/// An event recorded `days` days ago.
fn old_event(n: u64, days: i64) -> NewEvent {
    let mut e = event("Happened", n);
    e.recorded_at = Some((Utc::now() - TimeDelta::days(days)).trunc_subsecs(6));
    e
}

async fn log_of(store: &dyn EventStore, prefix: &str) -> Vec<RecordedEvent> {
    store
        .read_all(1, usize::MAX, &EventFilter::stream_prefix(prefix))
        .await
        .expect("reading the global log")
}

pub(super) async fn max_count_hides_all_but_the_latest_events(fixture: Arc<dyn Fixture>) {
    // Given a stream of 5 events with max count 2.
    let store = fixture.open().await.events;
    let s = stream("Kept-1");
    store
        .append(&s, Expected::NoStream, events(5))
        .await
        .unwrap();
    store.set_retention(&s, count(2)).await.unwrap();
    // Then only versions 4 and 5 are read, from the stream and the log.
    assert_eq!(versions(&whole_stream(&*store, &s).await), [4, 5]);
    assert_eq!(versions(&log_of(&*store, "Kept-").await), [4, 5]);
    // And the stream's version is unchanged: appends go on at version 6.
    assert_eq!(store.stream_version(&s).await.unwrap(), Some(5));
    store
        .append(&s, Expected::Exact(5), events(1))
        .await
        .unwrap();
    assert_eq!(versions(&whole_stream(&*store, &s).await), [5, 6]);
    let backward = store
        .read_stream(&s, ReadDirection::Backward, u64::MAX, 10)
        .await
        .unwrap();
    assert_eq!(versions(&backward), [6, 5]);
}

pub(super) async fn truncate_before_hides_earlier_versions(fixture: Arc<dyn Fixture>) {
    // Given a stream of 6 events truncated before version 4.
    let store = fixture.open().await.events;
    let s = stream("Cut-1");
    let other = stream("Cut-2");
    store
        .append(&s, Expected::NoStream, events(6))
        .await
        .unwrap();
    store
        .append(&other, Expected::NoStream, events(2))
        .await
        .unwrap();
    store.set_retention(&s, truncate(4)).await.unwrap();
    // Then versions 4.. are read; other streams are untouched.
    assert_eq!(versions(&whole_stream(&*store, &s).await), [4, 5, 6]);
    assert_eq!(versions(&whole_stream(&*store, &other).await), [1, 2]);
    let from_2 = store
        .read_stream(&s, ReadDirection::Forward, 2, 2)
        .await
        .unwrap();
    assert_eq!(versions(&from_2), [4, 5], "a read from a hidden version");
    assert_eq!(log_of(&*store, "Cut-").await.len(), 5);
}

pub(super) async fn max_age_hides_old_events_and_an_expired_stream_still_exists(
    fixture: Arc<dyn Fixture>,
) {
    // Given a stream with events from 10 and 5 days ago and one of now.
    let store = fixture.open().await.events;
    let s = stream("Aged-1");
    let batch = vec![old_event(1, 10), old_event(2, 5), event("Happened", 3)];
    store.append(&s, Expected::NoStream, batch).await.unwrap();
    // When max age is 7 days, then the 10-day-old event is hidden.
    store.set_retention(&s, age(7 * 86_400)).await.unwrap();
    assert_eq!(ns(&whole_stream(&*store, &s).await), [2, 3]);
    // Given a stream whose events all expired.
    let gone = stream("Aged-2");
    store
        .append(
            &gone,
            Expected::NoStream,
            vec![old_event(1, 3), old_event(2, 3)],
        )
        .await
        .unwrap();
    store.set_retention(&gone, age(86_400)).await.unwrap();
    // Then it reads as empty but is not "no stream".
    assert!(whole_stream(&*store, &gone).await.is_empty());
    assert_eq!(store.stream_version(&gone).await.unwrap(), Some(2));
    let refused = store
        .append(&gone, Expected::NoStream, events(1))
        .await
        .unwrap_err();
    assert!(refused.is_conflict(), "{refused}");
    store
        .append(&gone, Expected::Exact(2), events(1))
        .await
        .unwrap();
    assert_eq!(versions(&whole_stream(&*store, &gone).await), [3]);
}

pub(super) async fn limits_combine_and_the_strictest_wins(fixture: Arc<dyn Fixture>) {
    // Given 8 events, the first 3 of them old, with all three limits set.
    let store = fixture.open().await.events;
    let s = stream("Both-1");
    let mut batch: Vec<NewEvent> = (1..=3).map(|n| old_event(n, 30)).collect();
    batch.extend((4..=8).map(|n| event("Happened", n)));
    store.append(&s, Expected::NoStream, batch).await.unwrap();
    let policy = StreamRetention::new(Some(Duration::from_secs(86_400)), Some(6), Some(2)).unwrap();
    store.set_retention(&s, policy).await.unwrap();
    // Then age hides 1..=3, count hides 1..=2, truncate hides 1: 4..=8 stay.
    assert_eq!(versions(&whole_stream(&*store, &s).await), [4, 5, 6, 7, 8]);
    // And tightening the count hides more.
    let tighter =
        StreamRetention::new(Some(Duration::from_secs(86_400)), Some(2), Some(2)).unwrap();
    let state = store.set_retention(&s, tighter).await.unwrap();
    assert_eq!(state.policy, tighter);
    assert_eq!(versions(&whole_stream(&*store, &s).await), [7, 8]);
}

pub(super) async fn a_policy_survives_reopening_and_never_reveals_what_it_hid(
    fixture: Arc<dyn Fixture>,
) {
    // Given a stream of 5 with max count 2, set, then the store reopened.
    let s = stream("Durable-1");
    {
        let store = fixture.open().await.events;
        store
            .append(&s, Expected::NoStream, events(5))
            .await
            .unwrap();
        store.set_retention(&s, count(2)).await.unwrap();
    }
    let store = fixture.open().await.events;
    // Then the policy and what it hides are still in force.
    assert_eq!(store.retention(&s).await.unwrap().policy, count(2));
    assert_eq!(versions(&whole_stream(&*store, &s).await), [4, 5]);
    // When the policy is cleared, then what it hid stays hidden.
    let cleared = store
        .set_retention(&s, StreamRetention::none())
        .await
        .unwrap();
    assert!(cleared.policy.is_none());
    assert_eq!(cleared.hidden_below, 4);
    store
        .append(&s, Expected::Exact(5), events(3))
        .await
        .unwrap();
    assert_eq!(versions(&whole_stream(&*store, &s).await), [4, 5, 6, 7, 8]);
    drop(store);
    let store = fixture.open().await.events;
    assert_eq!(versions(&whole_stream(&*store, &s).await), [4, 5, 6, 7, 8]);
    // And a stream that never had a policy has the empty state.
    assert!(
        store
            .retention(&stream("Durable-2"))
            .await
            .unwrap()
            .is_empty()
    );
}

pub(super) async fn invalid_policies_are_refused_and_deleted_streams_take_none(
    fixture: Arc<dyn Fixture>,
) {
    // Invalid limits cannot be built, each with its reason.
    assert_eq!(
        StreamRetention::new(None, Some(0), None),
        Err(RetentionError::ZeroMaxCount)
    );
    assert_eq!(
        StreamRetention::new(None, None, Some(0)),
        Err(RetentionError::ZeroTruncateBefore)
    );
    assert_eq!(
        StreamRetention::new(Some(Duration::ZERO), None, None),
        Err(RetentionError::ZeroMaxAge)
    );
    // Given a deleted stream, then setting a policy is refused and changes nothing.
    let store = fixture.open().await.events;
    let s = stream("Gone-1");
    store
        .append(&s, Expected::NoStream, events(2))
        .await
        .unwrap();
    store.delete_stream(&s, Expected::Any).await.unwrap();
    let refused = store.set_retention(&s, count(1)).await.unwrap_err();
    assert!(
        matches!(refused, StoreError::StreamDeleted { .. }),
        "{refused}"
    );
    assert!(store.retention(&s).await.unwrap().is_empty());
    // A stream that does not exist yet may be given one.
    let fresh = stream("Gone-2");
    store.set_retention(&fresh, count(1)).await.unwrap();
    assert_eq!(store.stream_version(&fresh).await.unwrap(), None);
    store
        .append(&fresh, Expected::NoStream, events(3))
        .await
        .unwrap();
    assert_eq!(versions(&whole_stream(&*store, &fresh).await), [3]);
}

pub(super) async fn scavenge_reclaims_hidden_events_and_changes_no_read(fixture: Arc<dyn Fixture>) {
    // Given two streams with policies and one without, interleaved.
    let store = fixture.open().await.events;
    let (a, b, c) = (stream("Sc-a"), stream("Sc-b"), stream("Sc-c"));
    for n in 0..6 {
        store.append(&a, Expected::Any, events(1)).await.unwrap();
        store
            .append(&b, Expected::Any, vec![old_event(n, 9)])
            .await
            .unwrap();
        store.append(&c, Expected::Any, events(1)).await.unwrap();
    }
    store.set_retention(&a, count(2)).await.unwrap();
    store.set_retention(&b, age(86_400)).await.unwrap();
    let before = whole_log(&*store).await;
    let head = store.head_position().await.unwrap();
    // When scavenged.
    let report = store.scavenge().await.unwrap();
    // Then a's 4 hidden events and b's 5 (its last event stays) are reclaimed.
    assert_eq!((report.streams, report.events), (2, 9), "{report:?}");
    assert!(report.bytes >= 9 * 7, "{} bytes for 9 events", report.bytes);
    // And every read sees what it saw before.
    assert_eq!(whole_log(&*store).await, before);
    assert_eq!(versions(&whole_stream(&*store, &a).await), [5, 6]);
    assert!(whole_stream(&*store, &b).await.is_empty());
    assert_eq!(
        versions(&whole_stream(&*store, &c).await),
        [1, 2, 3, 4, 5, 6]
    );
    assert_eq!(store.head_position().await.unwrap(), head);
    // And a second scavenge has nothing left to reclaim.
    assert_eq!(store.scavenge().await.unwrap().events, 0);
    // And appends go on at the next version and a new, higher position.
    assert_eq!(store.stream_version(&b).await.unwrap(), Some(6));
    let next = store
        .append(&b, Expected::Exact(6), events(1))
        .await
        .unwrap();
    assert_eq!(next.stream_version, Some(7));
    assert!(next.first_position > head);
    // And it all holds after reopening.
    drop(store);
    let store = fixture.open().await.events;
    assert_eq!(versions(&whole_stream(&*store, &a).await), [5, 6]);
    assert_eq!(versions(&whole_stream(&*store, &b).await), [7]);
    assert_eq!(
        store.scavenge().await.unwrap().events,
        1,
        "b's 6 is no longer last"
    );
}

pub(super) async fn pages_are_filled_across_hidden_events(fixture: Arc<dyn Fixture>) {
    // Given 20 events in a stream trimmed to its latest 10, interleaved
    // with another stream.
    let store = fixture.open().await.events;
    let s = stream("Pg-1");
    for _ in 0..20 {
        store.append(&s, Expected::Any, events(1)).await.unwrap();
        store
            .append(&stream("Pg-2"), Expected::Any, events(1))
            .await
            .unwrap();
    }
    store.set_retention(&s, count(10)).await.unwrap();
    for scavenged in [false, true] {
        if scavenged {
            store.scavenge().await.unwrap();
        }
        // Then pages of 3 are full until the end, read directly.
        let first = store
            .read_stream(&s, ReadDirection::Forward, 1, 3)
            .await
            .unwrap();
        assert_eq!(versions(&first), [11, 12, 13], "scavenged: {scavenged}");
        let filter = EventFilter::stream_prefix("Pg-1");
        let page = store.read_all(1, 3, &filter).await.unwrap();
        assert_eq!(versions(&page), [11, 12, 13], "scavenged: {scavenged}");
        // And through the page helpers, every visible event once in order.
        let all = StreamPages::new(&*store, &s, ReadDirection::Forward, 1, 3)
            .collect()
            .await
            .unwrap();
        assert_eq!(versions(&all), (11..=20).collect::<Vec<_>>());
        let back = StreamPages::new(&*store, &s, ReadDirection::Backward, u64::MAX, 4)
            .collect()
            .await
            .unwrap();
        assert_eq!(versions(&back), (11..=20).rev().collect::<Vec<_>>());
        let global = GlobalPages::new(&*store, 1, &filter, 3)
            .collect()
            .await
            .unwrap();
        assert_eq!(versions(&global), (11..=20).collect::<Vec<_>>());
        let unfiltered = GlobalPages::new(&*store, 1, &EventFilter::all(), 7)
            .collect()
            .await
            .unwrap();
        assert_eq!(unfiltered.len(), 30);
    }
}

pub(super) async fn a_reader_past_a_reclaimed_range_goes_on_at_the_next_surviving_event(
    fixture: Arc<dyn Fixture>,
) {
    // Given a subscriber that has read the log up to position 3.
    let store = fixture.open().await.events;
    let s = stream("Sub-1");
    store
        .append(&s, Expected::NoStream, events(10))
        .await
        .unwrap();
    let read = store.read_all(1, 3, &EventFilter::all()).await.unwrap();
    let next = read[2].position + 1;
    // When retention hides versions 1..=7 and scavenge reclaims them.
    store.set_retention(&s, truncate(8)).await.unwrap();
    store.scavenge().await.unwrap();
    store
        .append(&s, Expected::Exact(10), events(1))
        .await
        .unwrap();
    // Then reading on from its next position gives version 8 onwards, once,
    // in increasing positions, and nothing it had read before.
    let rest = GlobalPages::new(&*store, next, &EventFilter::all(), 2)
        .collect()
        .await
        .unwrap();
    assert_eq!(versions(&rest), [8, 9, 10, 11]);
    assert!(rest.windows(2).all(|w| w[0].position < w[1].position));
    assert!(rest[0].position > next);
    // And reading from inside the reclaimed range lands on the same event.
    let inside = store
        .read_all(rest[0].position - 1, 1, &EventFilter::all())
        .await
        .unwrap();
    assert_eq!(positions(&inside), [rest[0].position]);
}
