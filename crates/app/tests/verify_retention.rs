//! `verify` on a store with retention: the holes retention explains pass,
//! an event lost from a stream without retention is still caught.

mod support;

use logbook::StoreUrl;
use logbook::verify::walk;
use logbook_domain::{NewEvent, Payload, StreamId};
use logbook_ports::{EventStore, ExpectedVersion, StreamRetention};

fn event(n: u64) -> NewEvent {
    NewEvent::new(
        "Happened",
        Payload::from_serialize(&serde_json::json!({ "n": n })).unwrap(),
    )
}

/// Stream `A-1` of 5 events kept to its latest 2, interleaved with `B-1`
/// of 3 events and no limit, scavenged.
async fn retained_and_scavenged(store: &dyn EventStore) {
    let (a, b) = (StreamId::new("A-1").unwrap(), StreamId::new("B-1").unwrap());
    for n in 0..5 {
        store
            .append(&a, ExpectedVersion::Any, vec![event(n)])
            .await
            .unwrap();
        if n < 3 {
            store
                .append(&b, ExpectedVersion::Any, vec![event(n)])
                .await
                .unwrap();
        }
    }
    let policy = StreamRetention::new(None, Some(2), None).unwrap();
    store.set_retention(&a, policy).await.unwrap();
    assert_eq!(store.scavenge().await.unwrap().events, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holes_that_retention_explains_pass_on_every_store() {
    for (url, stores, _dir) in support::every_store() {
        retained_and_scavenged(&*stores.events).await;
        let report = walk(&*stores.events, &mut |_| {}).await.unwrap();
        assert!(report.is_ok(), "{url}: {report}");
        assert_eq!((report.events, report.streams), (5, 2), "{url}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_lost_from_a_stream_without_retention_is_still_caught() {
    for (lost_version, says) in [(2, "version 2 was expected"), (3, "events are missing")] {
        // Given a scavenged store, then one of B-1's events deleted behind
        // the library's back.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logbook.db");
        let url = StoreUrl::Sqlite(path.clone());
        {
            let stores = url.open().unwrap();
            retained_and_scavenged(&*stores.events).await;
        }
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute(
                "DELETE FROM events WHERE stream = 'B-1' AND version = ?1",
                [lost_version],
            )
            .unwrap();
        // When walked, then the loss is reported.
        let stores = url.open().unwrap();
        let report = walk(&*stores.events, &mut |_| {}).await.unwrap();
        let problem = report.problem.unwrap_or_default();
        assert!(
            problem.contains(says),
            "lost version {lost_version}: {problem:?}"
        );
    }
}
