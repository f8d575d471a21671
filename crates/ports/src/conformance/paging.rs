//! Pages: a read returns a short page only at the end, which is the one stop
//! rule [`StreamPages`] and [`GlobalPages`] rely on.

use std::sync::Arc;

use super::Fixture;
use super::support::*;
use crate::event_store::{EventFilter, ExpectedVersion as Expected, ReadDirection};
use crate::read::{GlobalPages, StreamPages, read_stream_to_end};

pub(super) async fn a_page_is_short_only_at_the_end(fixture: Arc<dyn Fixture>) {
    // Given a stream of 10 events among 30 others of sparse types.
    let store = fixture.open().await.events;
    let s = stream("Paged-1");
    for i in 0..40u64 {
        let (on, kind) = if i % 4 == 0 {
            (s.clone(), "Rare")
        } else {
            (stream(&format!("Other-{}", i % 3)), "Common")
        };
        store
            .append(&on, Expected::Any, vec![event(kind, i)])
            .await
            .unwrap();
    }
    // When pages of 3 are read, then every page but the last is full.
    for (direction, from) in [(ReadDirection::Forward, 1), (ReadDirection::Backward, 10)] {
        let mut next = from;
        let mut lengths = Vec::new();
        while next > 0 {
            let page = store.read_stream(&s, direction, next, 3).await.unwrap();
            lengths.push(page.len());
            if page.len() < 3 {
                break;
            }
            next = match direction {
                ReadDirection::Forward => last_version(&page) + 1,
                ReadDirection::Backward => last_version(&page) - 1,
            };
        }
        assert_eq!(
            lengths,
            [3, 3, 3, 1],
            "{direction:?}: full pages until the end"
        );
    }
    // A filtered global read counts matching events, so sparse matches
    // still fill each page until the end.
    let rare = EventFilter::event_types(["Rare"]);
    let first = store.read_all(1, 4, &rare).await.unwrap();
    assert_eq!(first.len(), 4, "a full page of sparse matches");
    let rest = store
        .read_all(first[3].position + 1, 4, &rare)
        .await
        .unwrap();
    assert_eq!(rest.len(), 4);
    let last = store
        .read_all(rest[3].position + 1, 4, &rare)
        .await
        .unwrap();
    assert_eq!(last.len(), 2, "the short page is the end");
}

fn last_version(page: &[crate::RecordedEvent]) -> u64 {
    page.last().map_or(0, |e| e.version)
}

pub(super) async fn the_page_helpers_read_everything_once_in_order(fixture: Arc<dyn Fixture>) {
    // Given 12 events in one stream and 12 in others.
    let store = fixture.open().await.events;
    let s = stream("Paged-2");
    for i in 0..24u64 {
        let on = if i % 2 == 0 {
            s.clone()
        } else {
            stream("Else-1")
        };
        store
            .append(&on, Expected::Any, vec![event("Happened", i)])
            .await
            .unwrap();
    }
    // When read with pages that divide the count exactly, and that do not.
    for page in [1, 4, 5, 12, 13, 1_000] {
        let forward = StreamPages::new(&*store, &s, ReadDirection::Forward, 1, page)
            .collect()
            .await
            .unwrap();
        // Then each event comes once, in order, whatever the page size.
        assert_eq!(
            versions(&forward),
            (1..=12).collect::<Vec<_>>(),
            "page {page}"
        );
        let backward = StreamPages::new(&*store, &s, ReadDirection::Backward, u64::MAX, page)
            .collect()
            .await
            .unwrap();
        assert_eq!(
            versions(&backward),
            (1..=12).rev().collect::<Vec<_>>(),
            "page {page}"
        );
        let all = EventFilter::all();
        let log = GlobalPages::new(&*store, 1, &all, page)
            .collect()
            .await
            .unwrap();
        let positions: Vec<u64> = log.iter().map(|e| e.position).collect();
        assert_eq!(positions, (1..=24).collect::<Vec<_>>(), "page {page}");
        let prefix = EventFilter::stream_prefix("Else-");
        let others = GlobalPages::new(&*store, 1, &prefix, page)
            .collect()
            .await
            .unwrap();
        assert_eq!(
            ns(&others),
            (0..24).filter(|i| i % 2 == 1).collect::<Vec<_>>()
        );
    }
    let tail = read_stream_to_end(&*store, &s, 11).await.unwrap();
    assert_eq!(versions(&tail), [11, 12]);
    assert!(
        read_stream_to_end(&*store, &stream("Nobody-1"), 1)
            .await
            .unwrap()
            .is_empty()
    );
}
