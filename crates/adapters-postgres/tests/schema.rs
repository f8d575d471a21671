//! Opening a schema: migrations applied once even when many processes'
//! stores open a fresh database at once, a newer schema refused clearly,
//! tables that are not logbook's left alone, payload bytes kept exactly
//! and readable with plain SQL.

use logbook_adapters_postgres::{PostgresOptions, PostgresStore, SCHEMA_VERSION};
use logbook_domain::{NewEvent, Payload, StreamId};
use logbook_ports::{EventFilter, EventStore, ExpectedVersion, StoreError};
use tokio_postgres::NoTls;

async fn client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = url
        .parse::<tokio_postgres::Config>()
        .unwrap()
        .connect(NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_stores_opening_a_fresh_schema_at_once_migrate_it_once() {
    // Given a schema nobody created yet
    let database = logbook_test_postgres::database();
    let schema = logbook_test_postgres::unique_schema("fresh");
    let url = logbook_test_postgres::with_schema(&database.url(), &schema);
    // When eight stores open it at once
    let opening: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(
                async move { PostgresStore::connect(&url, PostgresOptions::default()).await },
            )
        })
        .collect();
    // Then every one opens, and the schema is at the current version
    for open in opening {
        open.await.unwrap().expect("the store opens");
    }
    let version: i32 = client(&database.url())
        .await
        .query_one(&format!("SELECT version FROM {schema}.logbook_schema"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(version as u32, SCHEMA_VERSION);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_from_a_newer_logbook_is_refused_and_left_untouched() {
    // Given a schema a newer logbook wrote
    let database = logbook_test_postgres::database();
    let schema = logbook_test_postgres::unique_schema("newer");
    let url = logbook_test_postgres::with_schema(&database.url(), &schema);
    PostgresStore::connect(&url, PostgresOptions::default())
        .await
        .unwrap();
    let admin = client(&database.url()).await;
    admin
        .batch_execute(&format!("UPDATE {schema}.logbook_schema SET version = 99"))
        .await
        .unwrap();
    // When this logbook opens it
    let error = PostgresStore::connect(&url, PostgresOptions::default())
        .await
        .unwrap_err();
    // Then it is refused, naming both versions, and nothing changed
    assert!(
        matches!(error, StoreError::IncompatibleFormat { found: 99, supported, .. } if supported == SCHEMA_VERSION),
        "{error}"
    );
    let version: i32 = admin
        .query_one(&format!("SELECT version FROM {schema}.logbook_schema"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(version, 99);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_holding_someone_elses_events_table_is_refused() {
    let database = logbook_test_postgres::database();
    let schema = logbook_test_postgres::unique_schema("foreign");
    client(&database.url())
        .await
        .batch_execute(&format!(
            "CREATE SCHEMA {schema}; CREATE TABLE {schema}.events (x int)"
        ))
        .await
        .unwrap();
    let url = logbook_test_postgres::with_schema(&database.url(), &schema);
    let error = PostgresStore::connect(&url, PostgresOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error}");
    assert!(error.to_string().contains("not logbook's"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_bytes_round_trip_exactly_and_plain_sql_reads_them() {
    // Given a payload with spacing, key order and escapes jsonb would change
    let database = logbook_test_postgres::database();
    let schema = logbook_test_postgres::unique_schema("bytes");
    let url = logbook_test_postgres::with_schema(&database.url(), &schema);
    let store = PostgresStore::connect(&url, PostgresOptions::default())
        .await
        .unwrap()
        .event_store();
    let bytes = br#"{ "z": 1,  "amount": "12.50", "a": "\u00e9", "n": 1.50 }"#.to_vec();
    let event = NewEvent::new("MoneyDeposited", Payload::from_json(bytes.clone()).unwrap());
    let stream = StreamId::new("BankAccount-1").unwrap();
    store
        .append(&stream, ExpectedVersion::NoStream, vec![event])
        .await
        .unwrap();
    // Then the store reads back the same bytes
    let read = store.read_all(1, 10, &EventFilter::all()).await.unwrap();
    assert_eq!(read[0].payload.as_bytes(), bytes.as_slice());
    // And plain SQL reads the fields
    let amount: String = client(&database.url())
        .await
        .query_one(
            &format!("SELECT payload::jsonb ->> 'amount' FROM {schema}.events WHERE position = 1"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(amount, "12.50");
}
