//! Projection catch-up rate: folding a log of 1,000,000 bank account events
//! into the account-summary read model, from position 1, per store.
//!
//! PostgreSQL is measured when the build has the `postgres` feature (it has
//! under `cargo xtask bench`: the command line turns it on for the whole
//! workspace), on the server `LOGBOOK_TEST_POSTGRES_URL` names or a
//! throwaway one with durable settings; the run says so when it is left out.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use logbook::StoreUrl;
use logbook::projection::{AccountSummaries, Projector, ProjectorOptions, ReadModel};
use logbook_domain::{NewEvent, Payload, StreamId};
use logbook_ports::{ExpectedVersion, Stores};
use tokio::runtime::Runtime;

const EVENTS: u64 = 1_000_000;
const ACCOUNTS: u64 = 1_000;

fn fill(rt: &Runtime, stores: &Stores) {
    let opened = Payload::from_serialize(
        &serde_json::json!({"owner": "bench", "initial_balance": "0.00", "currency": "USD"}),
    )
    .unwrap();
    let deposit =
        Payload::from_serialize(&serde_json::json!({"amount": "10.00", "description": "salary"}))
            .unwrap();
    rt.block_on(async {
        for account in 0..ACCOUNTS {
            let stream = StreamId::new(format!("BankAccount-{account}")).unwrap();
            let mut batch = vec![NewEvent::new("AccountOpened", opened.clone())];
            batch.extend(
                (1..EVENTS / ACCOUNTS).map(|_| NewEvent::new("MoneyDeposited", deposit.clone())),
            );
            stores
                .events
                .append(&stream, ExpectedVersion::NoStream, batch)
                .await
                .unwrap();
        }
    });
}

fn catch_up(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let postgres = cfg!(feature = "postgres").then(|| {
        match std::env::var(logbook_test_postgres::URL_VARIABLE) {
            Ok(url) if !url.is_empty() => logbook_test_postgres::TestDatabase::External(url),
            _ => logbook_test_postgres::TestDatabase::Owned(
                logbook_test_postgres::TestServer::start_with(true).expect("a PostgreSQL server"),
            ),
        }
    });
    if postgres.is_none() {
        eprintln!("projection/catch_up_1m/postgres: left out (build without the postgres feature)");
    }
    let mut group = c.benchmark_group("projection/catch_up_1m");
    group.sample_size(10);
    group.throughput(Throughput::Elements(EVENTS));
    let urls = [
        StoreUrl::Memory,
        StoreUrl::Sqlite(dir.path().join("bench.db")),
        StoreUrl::File(dir.path().join("log")),
    ]
    .into_iter()
    .chain(
        postgres
            .iter()
            .map(|database| StoreUrl::Postgres(database.fresh_schema_url("bench"))),
    );
    for url in urls {
        // On a runtime worker: a PostgreSQL store's connections live there.
        let opened = {
            let url = url.clone();
            rt.block_on(rt.spawn(async move { url.open() })).unwrap()
        };
        let Ok(stores) = opened else { continue };
        fill(&rt, &stores);
        let name = url.to_string();
        let scheme = name.split(':').next().unwrap_or("store").to_owned();
        group.bench_function(scheme, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let projector = Projector::<AccountSummaries>::with_options(
                        &stores,
                        ProjectorOptions {
                            batch: 10_000,
                            ..Default::default()
                        },
                    );
                    projector.rebuild(|_| {}).await.unwrap()
                })
            });
        });
        // The fold itself, without reading the store: the bound of any store.
        if matches!(url, StoreUrl::Memory) {
            let events = rt
                .block_on(
                    stores
                        .events
                        .read_all(1, usize::MAX, &AccountSummaries::filter()),
                )
                .unwrap();
            group.bench_function("fold_only", |b| {
                b.iter(|| {
                    let mut model = AccountSummaries::default();
                    for event in &events {
                        model.apply(event).unwrap();
                    }
                    model
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, catch_up);
criterion_main!(benches);
