//! Throughput of the PostgreSQL store beside raw baselines measured in the
//! same run on the same server: appends of one event (1 and 16 concurrent
//! appenders: group commit) against a free single-row INSERT and against the
//! single-counter design (`UPDATE head SET position = position + 1` per
//! transaction); batches of 1,000 against one raw multi-row INSERT; and
//! reading the global log.
//!
//! The server is the one `LOGBOOK_TEST_POSTGRES_URL` names, or a throwaway
//! one with PostgreSQL's default (durable) fsync settings. Run with
//! `cargo bench -p logbook-adapters-postgres` (or `cargo xtask bench`);
//! figures are recorded in docs/benchmarks.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use logbook_adapters_postgres::{PostgresOptions, PostgresStore};
use logbook_domain::{EventId, NewEvent, Payload, StreamId};
use logbook_ports::{EventFilter, EventStore, ExpectedVersion};
use logbook_test_postgres::{TestDatabase, TestServer, unique_schema, with_schema};
use tokio::runtime::Runtime;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, NoTls};

/// Concurrent appenders (and raw clients) in the concurrent benchmarks.
const APPENDERS: u64 = 16;
/// Events the global-log read reads, in pages of [`PAGE`].
const LOG_EVENTS: usize = 50_000;
const PAGE: usize = 1_000;

/// A payload of about 200 bytes, as in the other stores' benchmarks.
fn payload() -> Payload {
    Payload::from_serialize(&serde_json::json!({
        "amount": "1400.00",
        "description": "Monthly salary deposit from ACME Corporation, reference 2026-11",
        "currency": "USD",
        "account": "BankAccount-acc_001",
        "tags": ["salary", "recurring", "payroll"]
    }))
    .expect("serializable")
}

fn batch(size: usize) -> Vec<NewEvent> {
    let payload = payload();
    (0..size)
        .map(|_| NewEvent::new("MoneyDeposited", payload.clone()))
        .collect()
}

fn stream(name: &str) -> StreamId {
    StreamId::new(name).expect("valid stream id")
}

fn database() -> TestDatabase {
    match std::env::var(logbook_test_postgres::URL_VARIABLE) {
        Ok(url) if !url.is_empty() => TestDatabase::External(url),
        _ => TestDatabase::Owned(TestServer::start_with(true).expect("a PostgreSQL server")),
    }
}

async fn client(url: &str) -> Client {
    let (client, connection) = url
        .parse::<tokio_postgres::Config>()
        .unwrap()
        .connect(NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// The raw baselines' tables, in a schema of their own: the events table's
/// shape, with a plain sequence for the free insert.
async fn raw_schema(url: &str) -> String {
    let schema = unique_schema("raw");
    client(url)
        .await
        .batch_execute(&format!(
            "CREATE SCHEMA {schema};
             CREATE TABLE {schema}.free (position bigserial PRIMARY KEY, stream text NOT NULL,
                 version bigint NOT NULL, event_id uuid NOT NULL UNIQUE, event_type text NOT NULL,
                 payload json NOT NULL, recorded_at timestamptz NOT NULL DEFAULT now());
             CREATE TABLE {schema}.counted (position bigint PRIMARY KEY, stream text NOT NULL,
                 version bigint NOT NULL, event_id uuid NOT NULL UNIQUE, event_type text NOT NULL,
                 payload json NOT NULL, recorded_at timestamptz NOT NULL DEFAULT now());
             CREATE TABLE {schema}.copied (position bigint PRIMARY KEY, stream text NOT NULL,
                 version bigint NOT NULL, event_id uuid NOT NULL UNIQUE, event_type text NOT NULL,
                 schema_version bigint NOT NULL, payload json NOT NULL, metadata json,
                 recorded_at timestamptz NOT NULL, UNIQUE (stream, version));
             CREATE INDEX ON {schema}.copied (event_type, position);
             CREATE TABLE {schema}.head (position bigint NOT NULL);
             INSERT INTO {schema}.head VALUES (0);"
        ))
        .await
        .unwrap();
    schema
}

/// Runs `iters` operations spread over `clients` concurrent workers made by
/// `make`, and returns the time they took together.
async fn concurrently<F, Fut>(iters: u64, clients: u64, make: F) -> Duration
where
    F: Fn(u64, u64) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let per_client = iters.div_ceil(clients);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| tokio::spawn(make(c, per_client)))
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    started.elapsed()
}

fn single_event_appends(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let database = database();
    let url = with_schema(&database.url(), &unique_schema("bench"));
    let store: Arc<dyn EventStore> = rt
        .block_on(PostgresStore::connect(&url, PostgresOptions::default()))
        .unwrap()
        .stores()
        .events;
    let raw = rt.block_on(raw_schema(&database.url()));
    let payload_text = String::from_utf8(payload().as_bytes().to_vec()).unwrap();
    let mut group = c.benchmark_group("postgres/append_one");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Elements(1));

    for clients in [1, APPENDERS] {
        group.bench_function(format!("store_{clients}_appenders"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(concurrently(iters, clients, |c, n| {
                    let store = Arc::clone(&store);
                    async move {
                        let s = stream(&format!("BankAccount-{c}-{}", EventId::new()));
                        for _ in 0..n {
                            store
                                .append(&s, ExpectedVersion::Any, batch(1))
                                .await
                                .unwrap();
                        }
                    }
                }))
            });
        });
        group.bench_function(format!("raw_free_insert_{clients}_clients"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(concurrently(iters, clients, |c, n| {
                    let (url, raw, payload) = (database.url(), raw.clone(), payload_text.clone());
                    async move {
                        let client = client(&url).await;
                        let insert = client
                            .prepare(&format!(
                                "INSERT INTO {raw}.free (stream, version, event_id, event_type, payload) \
                                 VALUES ($1, $2, $3, 'MoneyDeposited', $4::text::json)"
                            ))
                            .await
                            .unwrap();
                        let s = format!("BankAccount-{c}-{}", EventId::new());
                        for v in 0..n as i64 {
                            client
                                .execute(&insert, &[&s, &v, &EventId::new().0, &payload])
                                .await
                                .unwrap();
                        }
                    }
                }))
            });
        });
        group.bench_function(format!("raw_single_counter_{clients}_clients"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(concurrently(iters, clients, |c, n| {
                    let (url, raw, payload) = (database.url(), raw.clone(), payload_text.clone());
                    async move {
                        let mut client = client(&url).await;
                        let take = client
                            .prepare(&format!(
                                "UPDATE {raw}.head SET position = position + 1 RETURNING position"
                            ))
                            .await
                            .unwrap();
                        let insert = client
                            .prepare(&format!(
                                "INSERT INTO {raw}.counted (position, stream, version, event_id, \
                                 event_type, payload) VALUES ($1, $2, $3, $4, 'MoneyDeposited', \
                                 $5::text::json)"
                            ))
                            .await
                            .unwrap();
                        let s = format!("BankAccount-{c}-{}", EventId::new());
                        for v in 0..n as i64 {
                            let tx = client.transaction().await.unwrap();
                            let position: i64 = tx.query_one(&take, &[]).await.unwrap().get(0);
                            tx.execute(&insert, &[&position, &s, &v, &EventId::new().0, &payload])
                                .await
                                .unwrap();
                            tx.commit().await.unwrap();
                        }
                    }
                }))
            });
        });
    }
    group.finish();
}

fn batched_appends(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let database = database();
    let url = with_schema(&database.url(), &unique_schema("bench"));
    let store = rt
        .block_on(PostgresStore::connect(&url, PostgresOptions::default()))
        .unwrap()
        .event_store();
    let raw = rt.block_on(raw_schema(&database.url()));
    let payload_text = String::from_utf8(payload().as_bytes().to_vec()).unwrap();
    let raw_client = rt.block_on(client(&database.url()));
    let mut group = c.benchmark_group("postgres/append_batch_1000");
    group.sample_size(10);
    group.throughput(Throughput::Elements(1_000));
    group.bench_function("store", |b| {
        let s = stream("BankAccount-batched");
        b.iter(|| {
            rt.block_on(store.append(&s, ExpectedVersion::Any, batch(1_000)))
                .unwrap()
        });
    });
    group.bench_function("raw_multi_row_insert", |b| {
        let mut next = 0i64;
        b.iter(|| {
            let ids: Vec<uuid::Uuid> = (0..1_000).map(|_| EventId::new().0).collect();
            let versions: Vec<i64> = (next..next + 1_000).collect();
            next += 1_000;
            rt.block_on(raw_client.execute(
                &format!(
                    "INSERT INTO {raw}.free (stream, version, event_id, event_type, payload) \
                     SELECT 'BankAccount-raw', v, i, 'MoneyDeposited', $3::text::json \
                     FROM UNNEST($1::bigint[], $2::uuid[]) AS u(v, i)"
                ),
                &[&versions, &ids, &payload_text],
            ))
            .unwrap()
        });
    });
    // Criterion calls the routine more than once: positions go on across
    // calls, so the primary key never sees one twice.
    let copied = std::cell::Cell::new(0i64);
    group.bench_function("raw_binary_copy", |b| {
        let types = [
            Type::INT8,
            Type::TEXT,
            Type::INT8,
            Type::UUID,
            Type::TEXT,
            Type::INT8,
            Type::JSON,
            Type::JSON,
            Type::TIMESTAMPTZ,
        ];
        let copy = format!(
            "COPY {raw}.copied (position, stream, version, event_id, event_type, \
             schema_version, payload, metadata, recorded_at) FROM STDIN BINARY"
        );
        b.iter(|| {
            let next = copied.get();
            copied.set(next + 1_000);
            rt.block_on(async {
                let sink = raw_client.copy_in(&copy).await.unwrap();
                let writer = BinaryCopyInWriter::new(sink, &types);
                let mut writer = std::pin::pin!(writer);
                let now = chrono::Utc::now();
                for i in next..next + 1_000 {
                    writer
                        .as_mut()
                        .write(&[
                            &(i + 1),
                            &"BankAccount-copied",
                            &(i + 1),
                            &EventId::new().0,
                            &"MoneyDeposited",
                            &1i64,
                            &JsonText(&payload_text),
                            &None::<JsonText>,
                            &now,
                        ])
                        .await
                        .unwrap();
                }
                writer.finish().await.unwrap()
            })
        });
    });
    group.finish();
}

/// JSON text sent as a `json` value (whose binary form is the text).
#[derive(Debug)]
struct JsonText<'a>(&'a str);

impl ToSql for JsonText<'_> {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSON
    }

    to_sql_checked!();
}

fn global_log_reads(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let database = database();
    let url = with_schema(&database.url(), &unique_schema("bench"));
    let store = rt
        .block_on(PostgresStore::connect(&url, PostgresOptions::default()))
        .unwrap()
        .event_store();
    rt.block_on(async {
        for i in 0..LOG_EVENTS / 1_000 {
            store
                .append(
                    &stream(&format!("BankAccount-{i}")),
                    ExpectedVersion::Any,
                    batch(1_000),
                )
                .await
                .unwrap();
        }
    });
    let mut group = c.benchmark_group("postgres/read_all");
    group.sample_size(10);
    group.throughput(Throughput::Elements(LOG_EVENTS as u64));
    group.bench_function(format!("{LOG_EVENTS}_events_in_pages_of_{PAGE}"), |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut next = 1;
                let mut read = 0;
                loop {
                    let page = store
                        .read_all(next, PAGE, &EventFilter::all())
                        .await
                        .unwrap();
                    let Some(last) = page.last() else { break };
                    next = last.position + 1;
                    read += page.len();
                }
                assert_eq!(read, LOG_EVENTS);
            })
        });
    });
    group.finish();
}

criterion_group!(
    benches,
    single_event_appends,
    batched_appends,
    global_log_reads
);
criterion_main!(benches);
