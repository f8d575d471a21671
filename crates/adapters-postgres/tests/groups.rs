//! Appends committed in one group are decided in order, each against the
//! state the earlier ones left: a second `NoStream` on the same stream
//! conflicts, a retry of a batch written earlier in the group is
//! recognised, an append after a deletion in the group is refused, an id
//! reused within the group is a duplicate, and a refused append takes no
//! position.

use std::time::Duration;

use logbook_adapters_postgres::{PostgresOptions, PostgresStore};
use logbook_domain::{NewEvent, Payload, StreamId};
use logbook_ports::{EventFilter, EventStore, ExpectedVersion, StoreError};

fn event() -> NewEvent {
    NewEvent::new(
        "Happened",
        Payload::from_json(b"{\"n\":1}".to_vec()).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn appends_of_one_group_are_decided_in_order_against_each_other() {
    // Given a store whose writer is held in a commit, so that the next
    // appends queue up and are committed as one group
    let database = logbook_test_postgres::database();
    let url = database.fresh_schema_url("groups");
    let options = PostgresOptions::default()
        .with_pause_before_commit(Duration::from_millis(400), Duration::from_millis(400));
    let store = PostgresStore::connect(&url, options)
        .await
        .unwrap()
        .event_store();
    let (a, b, c) = (
        StreamId::new("A-1").unwrap(),
        StreamId::new("B-1").unwrap(),
        StreamId::new("C-1").unwrap(),
    );
    let holding = {
        let store = store.clone();
        let c = c.clone();
        tokio::spawn(async move {
            store
                .append(&c, ExpectedVersion::NoStream, vec![event()])
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;

    // When these appends are queued at once
    let batch = vec![event(), event()];
    let reused = event();
    let work: Vec<(StreamId, ExpectedVersion, Vec<NewEvent>, bool)> = vec![
        (a.clone(), ExpectedVersion::NoStream, batch.clone(), false),
        (a.clone(), ExpectedVersion::NoStream, vec![event()], false),
        (a.clone(), ExpectedVersion::NoStream, batch.clone(), false),
        (b.clone(), ExpectedVersion::Any, vec![reused.clone()], false),
        (
            a.clone(),
            ExpectedVersion::Exact(2),
            vec![reused.clone()],
            false,
        ),
        (c.clone(), ExpectedVersion::Any, Vec::new(), true),
        (c.clone(), ExpectedVersion::Any, vec![event()], false),
        (b.clone(), ExpectedVersion::Exact(1), vec![event()], false),
    ];
    let mut tasks = Vec::new();
    for (stream, expected, events, delete) in work {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            if delete {
                store.delete_stream(&stream, expected).await
            } else {
                store.append(&stream, expected, events).await
            }
        }));
        // Queued in this order.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    holding.await.unwrap().unwrap();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }

    // Then each was decided against what the earlier ones left
    let first = results[0].as_ref().expect("the first NoStream wins");
    assert_eq!(
        (first.first_position, first.last_position),
        (Some(2), Some(3))
    );
    assert!(
        results[1].as_ref().unwrap_err().is_conflict(),
        "{:?}",
        results[1]
    );
    let retry = results[2].as_ref().expect("the retry is recognised");
    assert!(retry.already_recorded);
    assert_eq!(retry.last_position, Some(3));
    assert_eq!(results[3].as_ref().unwrap().first_position, Some(4));
    assert!(
        matches!(&results[4], Err(StoreError::DuplicateEventId { stream, .. }) if *stream == b),
        "{:?}",
        results[4]
    );
    assert_eq!(
        results[5].as_ref().unwrap().first_position,
        Some(5),
        "tombstone"
    );
    assert!(
        matches!(&results[6], Err(StoreError::StreamDeleted { .. })),
        "{:?}",
        results[6]
    );
    assert_eq!(results[7].as_ref().unwrap().first_position, Some(6));
    // And the log is gap-free with exactly the accepted events
    let log = store.read_all(1, 100, &EventFilter::all()).await.unwrap();
    let positions: Vec<u64> = log.iter().map(|e| e.position).collect();
    assert_eq!(positions, vec![1, 2, 3, 4, 5, 6]);
    let streams: Vec<&str> = log.iter().map(|e| e.stream.as_str()).collect();
    assert_eq!(streams, vec!["C-1", "A-1", "A-1", "B-1", "C-1", "B-1"]);
}
