//! File adapter benchmarks: batched and single appends under each
//! durability policy beside a bare framed log (the same batches as frames
//! written with plain `write` calls: the floor a store's batched appends are
//! measured against), group commit with 16 appenders, a full replay of the
//! global log, and (one timed run, not a criterion sample) opening a large
//! generated log with a full scan and index rebuild, through the sealed
//! segments' sidecars, and what the first uses after that open cost.
//!
//! `cargo bench -p logbook-adapters-file --bench file_store [FILTER]`.
//! `LOGBOOK_BENCH_OPEN_EVENTS` sets the size of the open run (default
//! 10,000,000 events, about 3 GB on disk, deleted afterwards; 0 skips it).

use std::fs::File;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group};
use logbook_adapters_file::record::{self, FLAG_BATCH_END, Record};
use logbook_adapters_file::{Durability, FileOptions, FileStore};
use logbook_ports::{EventFilter, EventStore, ExpectedVersion, NewEvent, Payload, StreamId};
use tempfile::TempDir;
use tokio::runtime::Runtime;

/// A JSON payload of exactly 200 bytes.
fn payload() -> Payload {
    let head = r#"{"amount":"1400.00","note":""#;
    let tail = r#""}"#;
    let pad = "x".repeat(200 - head.len() - tail.len());
    let json = format!("{head}{pad}{tail}");
    assert_eq!(json.len(), 200);
    Payload::from_json(json.into_bytes()).unwrap()
}

fn batch(size: usize, payload: &Payload) -> Vec<NewEvent> {
    (0..size)
        .map(|_| NewEvent::new("MoneyDeposited", payload.clone()))
        .collect()
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn open(durability: Durability) -> (TempDir, Arc<dyn EventStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path(), FileOptions::new().durability(durability)).unwrap();
    (dir, store.stores().events)
}

fn stream(i: usize) -> StreamId {
    StreamId::new(format!("BankAccount-acc_{i:06}")).unwrap()
}

fn batched_appends(c: &mut Criterion) {
    let rt = runtime();
    let payload = payload();
    let mut group = c.benchmark_group("file/append_batch_100");
    group.throughput(Throughput::Elements(100));
    group.measurement_time(Duration::from_secs(4));
    group.warm_up_time(Duration::from_secs(1));
    for (name, durability) in [
        ("never", Durability::Never),
        (
            "interval_10ms",
            Durability::Interval(Duration::from_millis(10)),
        ),
        ("always", Durability::Always),
    ] {
        let (_dir, store) = open(durability);
        let mut i = 0usize;
        group.bench_function(name, |b| {
            b.to_async(&rt).iter_batched(
                || {
                    i += 1;
                    (stream(i % 1000), batch(100, &payload))
                },
                |(s, events)| {
                    let store = Arc::clone(&store);
                    async move {
                        store
                            .append(&s, ExpectedVersion::Any, events)
                            .await
                            .unwrap()
                    }
                },
                BatchSize::SmallInput,
            );
        });
    }
    let mut log = BareLog::new();
    let mut i = 0usize;
    group.bench_function("bare_framed_log", |b| {
        b.iter_batched(
            || {
                i += 1;
                (stream(i % 1000), batch(100, &payload))
            },
            |(s, events)| log.append(&s, &events),
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

/// The floor for batched appends: each batch encoded as the store's frames
/// (same bytes, same CRC32C) into one buffer and written with one plain
/// `write` call on the calling thread, to files of the store's segment size.
/// No index, no version or duplicate check, no writer thread, no fsync.
struct BareLog {
    dir: TempDir,
    file: File,
    len: u64,
    files: u64,
    position: u64,
    buf: Vec<u8>,
}

impl BareLog {
    const FILE_SIZE: u64 = 64 << 20;

    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let file = File::create(dir.path().join("0.log")).unwrap();
        Self {
            dir,
            file,
            len: 0,
            files: 1,
            position: 0,
            buf: Vec::new(),
        }
    }

    fn append(&mut self, stream: &StreamId, events: &[NewEvent]) {
        let now = chrono::Utc::now().timestamp_micros();
        self.buf.clear();
        for (i, event) in events.iter().enumerate() {
            self.position += 1;
            record::encode(
                &Record {
                    flags: if i + 1 == events.len() {
                        FLAG_BATCH_END
                    } else {
                        0
                    },
                    position: self.position,
                    version: self.position,
                    id: event.id,
                    recorded_at_micros: now,
                    schema_version: event.schema_version,
                    write_index: i as u32,
                    stream: stream.as_str(),
                    event_type: &event.event_type,
                    metadata: &[],
                    payload: event.payload.as_bytes(),
                },
                &mut self.buf,
            );
        }
        if self.len + self.buf.len() as u64 > Self::FILE_SIZE {
            self.file = File::create(self.dir.path().join(format!("{}.log", self.files))).unwrap();
            self.files += 1;
            self.len = 0;
        }
        self.file.write_all(&self.buf).unwrap();
        self.len += self.buf.len() as u64;
    }
}

fn single_appends(c: &mut Criterion) {
    let rt = runtime();
    let payload = payload();
    let mut group = c.benchmark_group("file/append_single_always");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(4));
    group.warm_up_time(Duration::from_secs(1));
    for appenders in [1usize, 16] {
        let (_dir, store) = open(Durability::Always);
        group.bench_function(format!("{appenders}_appenders"), |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let store = Arc::clone(&store);
                let payload = payload.clone();
                async move {
                    let each = iters.div_ceil(appenders as u64);
                    let started = Instant::now();
                    let tasks: Vec<_> = (0..appenders)
                        .map(|a| {
                            let store = Arc::clone(&store);
                            let payload = payload.clone();
                            tokio::spawn(async move {
                                for _ in 0..each {
                                    store
                                        .append(
                                            &stream(a),
                                            ExpectedVersion::Any,
                                            batch(1, &payload),
                                        )
                                        .await
                                        .unwrap();
                                }
                            })
                        })
                        .collect();
                    for task in tasks {
                        task.await.unwrap();
                    }
                    // Scaled to `iters` appends (each appender did `each`).
                    started
                        .elapsed()
                        .mul_f64(iters as f64 / (each * appenders as u64) as f64)
                }
            });
        });
    }
    group.finish();
}

/// Fills a store with `events` events in batches of 1,000 (Never).
fn fill(rt: &Runtime, dir: &std::path::Path, events: u64) {
    let store = FileStore::open(dir, FileOptions::new().durability(Durability::Never)).unwrap();
    let events_store = store.stores().events;
    let payload = payload();
    rt.block_on(async {
        let mut written = 0;
        let mut i = 0;
        while written < events {
            let size = (events - written).min(1000) as usize;
            events_store
                .append(
                    &stream(i % 10_000),
                    ExpectedVersion::Any,
                    batch(size, &payload),
                )
                .await
                .unwrap();
            written += size as u64;
            i += 1;
        }
    });
}

fn replay(c: &mut Criterion) {
    const EVENTS: u64 = 500_000;
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    fill(&rt, dir.path(), EVENTS);
    let store = FileStore::open(dir.path(), FileOptions::new())
        .unwrap()
        .stores()
        .events;
    let mut group = c.benchmark_group("file/replay");
    group.throughput(Throughput::Elements(EVENTS));
    group.sample_size(10);
    group.bench_function("read_all_500k_pages_of_10k", |b| {
        b.to_async(&rt).iter(|| {
            let store = Arc::clone(&store);
            async move {
                let mut from = 1;
                let mut seen = 0u64;
                loop {
                    let page = store
                        .read_all(from, 10_000, &EventFilter::all())
                        .await
                        .unwrap();
                    let Some(last) = page.last() else { break };
                    from = last.position + 1;
                    seen += page.len() as u64;
                }
                assert_eq!(seen, EVENTS);
            }
        });
    });
    group.finish();
}

/// The names of the open rows for a log of `events` events.
fn open_rows(events: u64) -> [String; 6] {
    [
        "file/open_large".to_owned(),
        format!("file/open_{events}/full_scan"),
        format!("file/open_{events}/with_sidecars"),
        format!("file/open_{events}/first_stream_read"),
        format!("file/open_{events}/first_fresh_append"),
        format!("file/open_{events}/first_retry"),
    ]
}

fn open_events() -> u64 {
    std::env::var("LOGBOOK_BENCH_OPEN_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000)
}

/// Moves every index sidecar in `dir` to `to` (or back).
fn move_sidecars(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "idx") {
            std::fs::rename(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
}

/// Three timed opens of the store in `dir`.
fn time_opens(dir: &std::path::Path, events: u64, read_only: bool) -> [Duration; 3] {
    let mut opens = [Duration::ZERO; 3];
    for open in &mut opens {
        let started = Instant::now();
        let store = if read_only {
            FileStore::open_read_only(dir).unwrap()
        } else {
            FileStore::open(dir, FileOptions::new()).unwrap()
        };
        *open = started.elapsed();
        assert_eq!(store.recovery_report().events, events);
        assert!(store.recovery_report().sidecars_rebuilt.is_empty() || read_only);
    }
    opens
}

/// What the first uses after an open through the sidecars cost, three
/// times each on a fresh open for writing: reading one stream (its 1,000
/// events are in one sealed segment, whose records load), appending one
/// event with a fresh id (nothing loads), and sending the log's first
/// event again as a retry (its id lies among the sealed segments' ids:
/// every segment's records load and their ids are indexed, the work the
/// open did before sealed segments were loaded on first use).
fn time_first_uses(rt: &Runtime, dir: &std::path::Path) -> [[Duration; 3]; 3] {
    let mut times = [[Duration::ZERO; 3]; 3];
    let first = {
        let store = FileStore::open_read_only(dir).unwrap();
        rt.block_on(store.events().read_all(1, 1, &EventFilter::all()))
            .unwrap()
            .remove(0)
    };
    for run in 0..3 {
        for (use_, time) in times.iter_mut().enumerate() {
            let store = FileStore::open(dir, FileOptions::new()).unwrap();
            let events = store.events();
            let started = Instant::now();
            rt.block_on(async {
                match use_ {
                    0 => {
                        let read = events
                            .read_stream(
                                &stream(run + 1),
                                logbook_ports::ReadDirection::Forward,
                                1,
                                usize::MAX,
                            )
                            .await
                            .unwrap();
                        assert_eq!(read.len(), 1000);
                    }
                    1 => {
                        events
                            .append(&stream(10_001), ExpectedVersion::Any, batch(1, &payload()))
                            .await
                            .unwrap();
                    }
                    _ => {
                        let retry = NewEvent::new(&*first.event_type, first.payload.clone())
                            .with_id(first.id);
                        let outcome = events
                            .append(&first.stream, ExpectedVersion::Any, vec![retry])
                            .await
                            .unwrap();
                        assert!(outcome.already_recorded);
                    }
                }
            });
            time[run] = started.elapsed();
        }
    }
    times
}

/// One timed run: generate a large log, then open it three times with a
/// full scan (checksum of every record, index rebuild; the sidecars moved
/// aside, and a read-only open, so nothing writes them again: the raw
/// baseline, and what an open costs when sidecars are missing), and three
/// times through the sealed segments' index sidecars (the open segment is
/// scanned). Reports the times and disk bytes per event. Not a criterion
/// sample: one open of 10 million events takes seconds and the log takes
/// gigabytes.
fn open_large(events: u64) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    fill(&rt, dir.path(), events);
    let generated = started.elapsed();
    let bytes_of = |ext: &str| -> u64 {
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == ext))
            .map(|e| e.metadata().unwrap().len())
            .sum()
    };
    let (bytes, sidecar_bytes) = (bytes_of("seg"), bytes_of("idx"));
    let aside = tempfile::tempdir().unwrap();
    move_sidecars(dir.path(), aside.path());
    let full = time_opens(dir.path(), events, true);
    move_sidecars(aside.path(), dir.path());
    let sidecars_read_only = time_opens(dir.path(), events, true);
    let sidecars = time_opens(dir.path(), events, false);
    println!(
        "file/open_{events}: generated in {:.1?} ({:.0} events/s, batches of 1,000, Never); \
         {bytes} bytes of segments = {:.1} bytes/event, {sidecar_bytes} bytes of sidecars",
        generated,
        events as f64 / generated.as_secs_f64(),
        bytes as f64 / events as f64,
    );
    let row = |name: &str, what: &str, t: [Duration; 3]| {
        println!(
            "file/open_{events}/{name}: {what}: {:.2?} / {:.2?} / {:.2?} (3 runs)",
            t[0], t[1], t[2]
        );
    };
    row(
        "full_scan",
        "read-only open, sidecars moved aside, full scan and index rebuild",
        full,
    );
    row(
        "with_sidecars",
        "read-only open through the sealed segments' sidecars",
        sidecars_read_only,
    );
    row(
        "with_sidecars",
        "open for writing through the sealed segments' sidecars",
        sidecars,
    );
    let [read, append, retry] = time_first_uses(&rt, dir.path());
    row(
        "first_stream_read",
        "after an open, read one stream of 1,000 events (one sealed segment loads)",
        read,
    );
    row(
        "first_fresh_append",
        "after an open, append one event with a fresh id (nothing loads)",
        append,
    );
    row(
        "first_retry",
        "after an open, send the first event again (every sealed segment loads, its ids indexed)",
        retry,
    );
}

criterion_group!(benches, batched_appends, single_appends, replay);

/// The filter among criterion's arguments: the first one that is neither
/// an option nor the value of an option that takes one (so the `1` of
/// `--warm-up-time 1` is not taken for a filter).
fn criterion_filter(args: &[String]) -> Option<&String> {
    const TAKES_VALUE: [&str; 16] = [
        "--warm-up-time",
        "--measurement-time",
        "--sample-size",
        "--nresamples",
        "--profile-time",
        "--save-baseline",
        "--baseline",
        "--baseline-lenient",
        "--load-baseline",
        "--color",
        "-c",
        "--output-format",
        "--plotting-backend",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
    ];
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if TAKES_VALUE.contains(&arg.as_str()) {
            args.next();
        } else if !arg.starts_with('-') {
            return Some(arg);
        }
    }
    None
}

fn main() {
    benches();
    // Only under `cargo bench` (criterion's own check), and when the
    // filter, if any, names it.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let benching = args.iter().any(|a| a == "--bench");
    let filter = criterion_filter(&args);
    let events = open_events();
    if benching
        && events > 0
        && filter.is_none_or(|f| open_rows(events).iter().any(|row| row.contains(f.as_str())))
    {
        open_large(events);
    }
    Criterion::default().configure_from_args().final_summary();
}
