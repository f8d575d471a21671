//! Throughput of the SQLite store: appends of one event per commit (FULL and
//! NORMAL durability, 1 and 16 concurrent appenders: group commit), batched
//! appends beside a raw rusqlite insert into the same schema, reading one
//! stream and reading the global log of a million events.
//!
//! Run with `cargo bench -p logbook-adapters-sqlite` (or `cargo xtask
//! bench`); figures are recorded in docs/benchmarks.md.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use logbook_adapters_sqlite::{SqliteEventStore, SqliteOptions, SqliteStore, Synchronous};
use logbook_domain::{EventId, NewEvent, Payload, StreamId};
use logbook_ports::{EventFilter, EventStore, ExpectedVersion, ReadDirection};
use tokio::runtime::Runtime;

/// Concurrent appenders in the group-commit benchmark.
const APPENDERS: u64 = 16;
/// Events in the database the read benchmarks read.
const LOG_EVENTS: usize = 1_000_000;
/// Events per stream in that database (100 streams).
const STREAM_EVENTS: usize = 10_000;
/// Page size of the global-log read.
const PAGE: usize = 10_000;

/// A payload of about 200 bytes, as in the memory store's benchmarks.
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

fn open(path: &Path, synchronous: Synchronous) -> SqliteEventStore {
    SqliteStore::open(path, SqliteOptions::default().with_synchronous(synchronous))
        .expect("the database opens")
        .event_store()
}

/// One event per append, one append per commit, from 1 and from 16
/// concurrent appenders (each on its own stream).
fn single_event_appends(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let mut group = c.benchmark_group("sqlite/append_one");
    for (name, synchronous) in [("full", Synchronous::Full), ("normal", Synchronous::Normal)] {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(open(&dir.path().join("bench.db"), synchronous));
        let event = batch(1).remove(0);

        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("{name}_1_appender"), |b| {
            let s = stream("BankAccount-solo");
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let started = Instant::now();
                    for _ in 0..iters {
                        let mut e = event.clone();
                        e.id = EventId::new();
                        store
                            .append(&s, ExpectedVersion::Any, vec![e])
                            .await
                            .unwrap();
                    }
                    started.elapsed()
                })
            });
        });

        // The baseline: the same one-row commit from the benchmark's own
        // thread with raw rusqlite (no queue, no thread hop, no checks).
        let raw_path = dir.path().join("raw.db");
        drop(SqliteStore::open(&raw_path, SqliteOptions::default()).unwrap());
        let mut raw = rusqlite::Connection::open(&raw_path).unwrap();
        raw.pragma_update(None, "synchronous", synchronous.pragma_value())
            .unwrap();
        let raw_payload = std::str::from_utf8(event.payload.as_bytes())
            .unwrap()
            .to_owned();
        let mut raw_version = 0i64;
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("{name}_raw_rusqlite_1_per_commit"), |b| {
            b.iter(|| {
                raw_version += 1;
                let tx = raw
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .unwrap();
                tx.prepare_cached(
                    "INSERT INTO events (stream, version, event_id, event_type, \
                     schema_version, payload, metadata, recorded_at) \
                     VALUES (?1, ?2, ?3, ?4, 1, ?5, NULL, ?6)",
                )
                .unwrap()
                .execute(rusqlite::params![
                    "BankAccount-raw",
                    raw_version,
                    EventId::new().to_string(),
                    "MoneyDeposited",
                    raw_payload,
                    1_764_000_000_000_000i64 + raw_version,
                ])
                .unwrap();
                tx.commit().unwrap();
            });
        });

        group.throughput(Throughput::Elements(APPENDERS));
        group.bench_function(format!("{name}_{APPENDERS}_appenders"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let started = Instant::now();
                    let tasks: Vec<_> = (0..APPENDERS)
                        .map(|appender| {
                            let store = Arc::clone(&store);
                            let event = event.clone();
                            tokio::spawn(async move {
                                let s = stream(&format!("BankAccount-{appender}"));
                                for _ in 0..iters {
                                    let mut e = event.clone();
                                    e.id = EventId::new();
                                    store
                                        .append(&s, ExpectedVersion::Any, vec![e])
                                        .await
                                        .unwrap();
                                }
                            })
                        })
                        .collect();
                    for task in tasks {
                        task.await.unwrap();
                    }
                    started.elapsed()
                })
            });
        });
    }
    group.finish();
}

/// Batches of 100 and 1,000 events per append (one commit each), and a raw
/// rusqlite insert of 1,000 rows per transaction into the same schema.
fn batched_appends(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let mut group = c.benchmark_group("sqlite/append_batch");
    for size in [100usize, 1_000] {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir.path().join("bench.db"), Synchronous::Full);
        let s = stream("BankAccount-batched");
        group.throughput(Throughput::Elements(size as u64));
        group.bench_function(format!("batch_{size}"), |b| {
            b.iter_batched(
                || batch(size),
                |events| {
                    rt.block_on(store.append(&s, ExpectedVersion::Any, events))
                        .unwrap()
                },
                BatchSize::SmallInput,
            );
        });
    }

    // The baseline: the same schema (created by the store), the same
    // durability, one prepared INSERT per row inside one transaction.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raw.db");
    drop(SqliteStore::open(&path, SqliteOptions::default()).unwrap());
    let mut conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    let payload = payload();
    let payload = std::str::from_utf8(payload.as_bytes()).unwrap().to_owned();
    let mut version = 0i64;
    group.throughput(Throughput::Elements(1_000));
    group.bench_function("raw_rusqlite_1000", |b| {
        b.iter_batched(
            || {
                (0..1_000)
                    .map(|_| EventId::new().to_string())
                    .collect::<Vec<_>>()
            },
            |ids| {
                let tx = conn.transaction().unwrap();
                {
                    let mut insert = tx
                        .prepare_cached(
                            "INSERT INTO events (stream, version, event_id, event_type, \
                             schema_version, payload, metadata, recorded_at) \
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, ?7)",
                        )
                        .unwrap();
                    for id in &ids {
                        version += 1;
                        insert
                            .execute(rusqlite::params![
                                "BankAccount-raw",
                                version,
                                id,
                                "MoneyDeposited",
                                1,
                                payload,
                                1_764_000_000_000_000i64 + version,
                            ])
                            .unwrap();
                    }
                }
                tx.commit().unwrap();
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

/// A database of 1,000,000 events: 100 streams of 10,000, written in
/// batches of 1,000 (built once per run).
fn million_events(rt: &Runtime, path: &Path) -> SqliteEventStore {
    let store = open(path, Synchronous::Normal);
    let started = Instant::now();
    rt.block_on(async {
        for chunk in 0..LOG_EVENTS / 1_000 {
            let s = stream(&format!(
                "BankAccount-{}",
                chunk % (LOG_EVENTS / STREAM_EVENTS)
            ));
            store
                .append(&s, ExpectedVersion::Any, batch(1_000))
                .await
                .unwrap();
        }
    });
    eprintln!(
        "built a database of {LOG_EVENTS} events in {:.1?}",
        started.elapsed()
    );
    store
}

fn reads(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = million_events(&rt, &dir.path().join("million.db"));
    let mut group = c.benchmark_group("sqlite/read");

    let s = stream("BankAccount-42");
    group.throughput(Throughput::Elements(STREAM_EVENTS as u64));
    group.bench_function("stream_10k_of_1m", |b| {
        b.iter(|| {
            let events = rt
                .block_on(store.read_stream(&s, ReadDirection::Forward, 1, usize::MAX))
                .unwrap();
            assert_eq!(events.len(), STREAM_EVENTS);
        });
    });

    group.throughput(Throughput::Elements(LOG_EVENTS as u64));
    group.bench_function("global_log_1m_in_pages_of_10k", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut from = 1;
                let mut read = 0;
                loop {
                    let page = store
                        .read_all(from, PAGE, &EventFilter::all())
                        .await
                        .unwrap();
                    let Some(last) = page.last() else { break };
                    from = last.position + 1;
                    read += page.len();
                }
                assert_eq!(read, LOG_EVENTS);
            });
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(6));
    targets = single_event_appends, batched_appends, reads
}
criterion_main!(benches);
