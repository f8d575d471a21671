//! What one command costs as its aggregate's history grows, and what loading
//! an aggregate costs with and without a snapshot. The aim is a flat line:
//! executing a command on an aggregate with 10,000 past events costs what it
//! costs with 100. And what many small aggregates cost: each opened and
//! given nine deposits, one command at a time, so the cost is per command
//! (cache lookup, stale check, encoding, ids, the append), not per event.

use std::num::NonZeroU64;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use logbook::{Repository, RepositoryOptions, StoreUrl, codec};
use logbook_domain::bank_account::{BankAccount, BankAccountEvent};
use logbook_domain::{Currency, EventId, Metadata, Money, StreamId};
use logbook_ports::ExpectedVersion;
use tokio::runtime::Runtime;

mod support;
use support::{account_with_history, deposit};

const HISTORIES: [u64; 3] = [100, 1_000, 10_000];

fn execute_one_command(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let mut group = c.benchmark_group("repository/execute_one_command");
    group.throughput(Throughput::Elements(1));
    for history in HISTORIES {
        let stores = logbook_adapters_memory::stores();
        account_with_history(&rt, &stores, "acc", history);
        let accounts = Repository::<BankAccount>::new(&stores);
        group.bench_with_input(BenchmarkId::new("memory", history), &history, |b, _| {
            b.iter(|| rt.block_on(accounts.execute("acc", &deposit())).unwrap());
        });
    }
    group.finish();
}

/// Aggregates per iteration of the many-small-aggregates benchmark.
const SMALL_AGGREGATES: u64 = 1_000;

/// Many small aggregates: each iteration opens 1,000 fresh accounts and
/// gives each nine deposits, one `execute` per command (10,000 events).
fn many_small_aggregates(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let mut group = c.benchmark_group("repository/many_small_aggregates");
    group.throughput(Throughput::Elements(SMALL_AGGREGATES * 10));
    group.sample_size(20);
    let stores = logbook_adapters_memory::stores();
    let accounts = Repository::<BankAccount>::new(&stores);
    let open = support::open();
    let mut next = 0u64;
    group.bench_function("memory/open_and_9_deposits", |b| {
        b.iter(|| {
            rt.block_on(async {
                for _ in 0..SMALL_AGGREGATES {
                    next += 1;
                    let id = format!("acc-{next}");
                    accounts.execute(&id, &open).await.unwrap();
                    for _ in 0..9 {
                        accounts.execute(&id, &deposit()).await.unwrap();
                    }
                }
            });
        });
    });
    // The raw baseline in the same run: the same 10 appends per stream,
    // one event each, straight to the store with events encoded beforehand
    // (no loading, deciding, encoding or caching).
    let raw = logbook_adapters_memory::stores();
    let opened = codec::encode(
        &BankAccountEvent::AccountOpened {
            owner: "bench".into(),
            initial_balance: Money::ZERO,
            currency: Currency::default(),
        },
        &Metadata::default(),
    )
    .unwrap();
    let deposited = codec::encode(
        &BankAccountEvent::MoneyDeposited {
            amount: Money::from_cents(100),
            description: "bench".into(),
        },
        &Metadata::default(),
    )
    .unwrap();
    let mut next = 0u64;
    group.bench_function("memory/raw_store_appends", |b| {
        b.iter(|| {
            rt.block_on(async {
                for _ in 0..SMALL_AGGREGATES {
                    next += 1;
                    let stream =
                        StreamId::for_aggregate("BankAccount", &format!("acc-{next}")).unwrap();
                    for version in 0..10 {
                        let event = if version == 0 { &opened } else { &deposited };
                        let event = event.clone().with_id(EventId::new());
                        raw.events
                            .append(&stream, ExpectedVersion::Exact(version), vec![event])
                            .await
                            .unwrap();
                    }
                }
            });
        });
    });
    group.finish();
}

/// Loading an aggregate of 10,000 events: replaying every event (typed
/// decoding included) and from a snapshot at the head, on the memory store
/// and on a SQLite file.
fn load_cold(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let mut group = c.benchmark_group("repository/load_10k_events");
    let dir = tempfile::tempdir().unwrap();
    let backends = [
        ("memory", StoreUrl::Memory),
        ("sqlite", StoreUrl::Sqlite(dir.path().join("load.db"))),
    ];
    for (name, url) in backends {
        let stores = url.open().unwrap();
        account_with_history(&rt, &stores, "acc", 10_000);
        let no_snapshots = RepositoryOptions {
            snapshot_every: None,
            cache_capacity: 0,
            ..RepositoryOptions::default()
        };
        group.bench_function(format!("{name}/replay_all"), |b| {
            let accounts = Repository::<BankAccount>::without_snapshots(
                stores.events.clone(),
                no_snapshots.clone(),
            );
            b.iter(|| rt.block_on(accounts.load("acc")).unwrap());
        });
        // One more command through a repository that snapshots every save
        // leaves a snapshot at the head.
        let snapshotting = RepositoryOptions {
            snapshot_every: NonZeroU64::new(1),
            cache_capacity: 0,
            ..RepositoryOptions::default()
        };
        let accounts = Repository::<BankAccount>::with_options(&stores, snapshotting);
        rt.block_on(accounts.execute("acc", &deposit())).unwrap();
        group.bench_function(format!("{name}/from_snapshot"), |b| {
            b.iter(|| rt.block_on(accounts.load("acc")).unwrap());
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    many_small_aggregates,
    execute_one_command,
    load_cold
);
criterion_main!(benches);
