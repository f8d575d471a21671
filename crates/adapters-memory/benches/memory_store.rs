//! Throughput of the in-memory event store: appends (single events and
//! batches) and reads (one stream, the global log).

use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use logbook_adapters_memory::MemoryEventStore;
use logbook_domain::{NewEvent, Payload, StreamId};
use logbook_ports::{EventFilter, EventStore, ExpectedVersion, ReadDirection};
use tokio::runtime::Runtime;

/// A payload of about 200 bytes, the size the targets are stated for.
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

fn filled(rt: &Runtime, streams: usize, per_stream: usize) -> Arc<MemoryEventStore> {
    let store = Arc::new(MemoryEventStore::new());
    rt.block_on(async {
        for s in 0..streams {
            let stream = StreamId::new(format!("BankAccount-{s}")).unwrap();
            for chunk in batch(per_stream).chunks(1_000) {
                store
                    .append(&stream, ExpectedVersion::Any, chunk.to_vec())
                    .await
                    .unwrap();
            }
        }
    });
    store
}

fn appends(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let mut group = c.benchmark_group("memory/append");
    for size in [1usize, 100, 1_000] {
        group.throughput(Throughput::Elements(size as u64));
        group.bench_function(format!("batch_{size}"), |b| {
            let store = MemoryEventStore::new();
            let stream = StreamId::new("BankAccount-bench").unwrap();
            b.iter_batched(
                || batch(size),
                |events| {
                    rt.block_on(store.append(&stream, ExpectedVersion::Any, events))
                        .unwrap()
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

fn reads(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let mut group = c.benchmark_group("memory/read");
    // One stream of 10,000 events among 100 such streams.
    let store = filled(&rt, 100, 10_000);
    let stream = StreamId::new("BankAccount-42").unwrap();
    group.throughput(Throughput::Elements(10_000));
    group.bench_function("stream_10k_of_1m", |b| {
        b.iter(|| {
            rt.block_on(store.read_stream(&stream, ReadDirection::Forward, 1, usize::MAX))
                .unwrap()
        });
    });
    group.throughput(Throughput::Elements(1_000_000));
    group.sample_size(10);
    group.bench_function("global_log_1m_pages_of_10k", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut from = 1;
                loop {
                    let page = store
                        .read_all(from, 10_000, &EventFilter::all())
                        .await
                        .unwrap();
                    match page.last() {
                        Some(last) => from = last.position + 1,
                        None => break,
                    }
                }
            });
        });
    });
    group.finish();
}

criterion_group!(benches, appends, reads);
criterion_main!(benches);
