//! Faults on a server the test owns (started here, restarted with
//! `pg_ctl restart`, whatever `LOGBOOK_TEST_POSTGRES_URL` says): a restart
//! mid-append is a clear error and the retry with the same ids is
//! idempotent; a subscriber survives a restart and resumes with nothing
//! lost or repeated; dropped connections come back to the pool healthy.

use std::sync::Arc;
use std::time::{Duration, Instant};

use logbook_adapters_postgres::{PostgresOptions, PostgresStore};
use logbook_domain::{NewEvent, Payload, StreamId};
use logbook_ports::{EventFilter, EventStore, ExpectedVersion, StoreError};
use logbook_test_postgres::{TestServer, unique_schema, with_schema};

fn events(n: usize) -> Vec<NewEvent> {
    (0..n)
        .map(|i| {
            NewEvent::new(
                "Happened",
                Payload::from_json(format!("{{\"i\":{i}}}").into_bytes()).unwrap(),
            )
        })
        .collect()
}

async fn restart(server: &Arc<TestServer>) {
    let server = Arc::clone(server);
    tokio::task::spawn_blocking(move || server.restart())
        .await
        .unwrap()
        .expect("the server restarts");
}

/// Appends `batch` until it is acknowledged (the same ids each time), as a
/// caller riding out a restart would.
async fn append_until_acknowledged(
    store: &dyn EventStore,
    stream: &StreamId,
    expected: ExpectedVersion,
    batch: Vec<NewEvent>,
) -> logbook_ports::AppendOutcome {
    let started = Instant::now();
    loop {
        match store.append(stream, expected, batch.clone()).await {
            Ok(outcome) => return outcome,
            Err(error) if started.elapsed() < Duration::from_secs(30) => {
                assert!(matches!(error, StoreError::Backend { .. }), "{error}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => panic!("never acknowledged: {error}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restart_mid_append_is_a_clear_error_and_the_retry_is_idempotent() {
    // Given a server of this test, and a store whose writer holds its
    // transaction open for a while before COMMIT
    let server = Arc::new(TestServer::start().expect("a server of the test starts"));
    let url = with_schema(&server.url(), &unique_schema("faults"));
    let slow = PostgresOptions::default()
        .with_pause_before_commit(Duration::from_millis(1500), Duration::from_millis(1500));
    let slow = PostgresStore::connect(&url, slow)
        .await
        .unwrap()
        .event_store();
    let stream = StreamId::new("Account-1").unwrap();
    let batch = events(2);

    // When the server restarts while an append waits to commit
    let appending = {
        let (slow, stream, batch) = (slow.clone(), stream.clone(), batch.clone());
        tokio::spawn(async move { slow.append(&stream, ExpectedVersion::NoStream, batch).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    restart(&server).await;

    // Then the append fails with a clear error saying what to do
    let error = appending
        .await
        .unwrap()
        .expect_err("the append was cut off");
    let message = error.to_string();
    assert!(matches!(error, StoreError::Backend { .. }), "{message}");
    assert!(
        message.contains("retry it with the same event ids")
            || message.contains("nothing was written"),
        "{message}"
    );
    // And the retry with the same ids writes the batch once
    let store = PostgresStore::connect(&url, PostgresOptions::default())
        .await
        .unwrap()
        .event_store();
    let first =
        append_until_acknowledged(&store, &stream, ExpectedVersion::NoStream, batch.clone()).await;
    let again = store
        .append(&stream, ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    assert!(again.already_recorded, "the second retry writes nothing");
    assert_eq!(again.last_position, first.last_position);
    let log = store
        .read_all(1, usize::MAX, &EventFilter::all())
        .await
        .unwrap();
    let ids: Vec<_> = log.iter().map(|e| e.id).collect();
    let want: Vec<_> = batch.iter().map(|e| e.id).collect();
    assert_eq!(ids, want, "the batch is recorded exactly once");
    // And the store that was cut off works again on a new connection
    let outcome = slow
        .append(&stream, ExpectedVersion::Exact(2), events(1))
        .await
        .expect("the writer reconnects");
    assert_eq!(outcome.first_position, Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscriber_survives_a_restart_with_nothing_lost_or_repeated() {
    // Given a writer store and a subscriber on another store (its own pool
    // and listener), on a server of this test
    let server = Arc::new(TestServer::start().expect("a server of the test starts"));
    let url = with_schema(&server.url(), &unique_schema("faults"));
    let writer = PostgresStore::connect(&url, PostgresOptions::default())
        .await
        .unwrap()
        .event_store();
    let reader = PostgresStore::connect(
        &url,
        PostgresOptions::default().with_poll_interval(Duration::from_millis(200)),
    )
    .await
    .unwrap()
    .event_store();
    let total = 20u64;
    let subscriber = {
        let reader = reader.clone();
        tokio::spawn(async move {
            let mut signal = reader.commits().expect("the store signals");
            let mut seen = Vec::new();
            let mut read_errors = 0;
            while (seen.len() as u64) < total {
                let next = seen.last().map_or(1, |(p, _)| p + 1);
                match reader.read_all(next, 100, &EventFilter::all()).await {
                    Ok(page) if page.is_empty() => {
                        let _ =
                            tokio::time::timeout(Duration::from_secs(1), signal.changed()).await;
                    }
                    Ok(page) => seen.extend(page.iter().map(|e| (e.position, e.id))),
                    Err(_) => {
                        read_errors += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
            (seen, read_errors)
        })
    };
    let stream = StreamId::new("Account-1").unwrap();
    let mut appended = Vec::new();

    // When ten events are appended, the server restarts, and ten more are
    let mut version = 0;
    for half in 0..2 {
        for _ in 0..total / 2 {
            let batch = events(1);
            appended.push(batch[0].id);
            append_until_acknowledged(&writer, &stream, ExpectedVersion::Exact(version), batch)
                .await;
            version += 1;
        }
        if half == 0 {
            restart(&server).await;
        }
    }

    // Then the subscriber saw all twenty, in order, each once
    let (seen, read_errors) = tokio::time::timeout(Duration::from_secs(30), subscriber)
        .await
        .expect("the subscriber resumed after the restart")
        .unwrap();
    let positions: Vec<u64> = seen.iter().map(|(p, _)| *p).collect();
    assert_eq!(positions, (1..=total).collect::<Vec<_>>());
    let ids: Vec<_> = seen.iter().map(|(_, id)| *id).collect();
    assert_eq!(ids, appended);
    // And the reader's pool came back healthy: at most the connections it
    // held when the server went away failed, once each
    assert!(read_errors <= 8, "{read_errors} reads failed");
    assert_eq!(reader.head_position().await.unwrap(), Some(total));
}
