//! The server's costs against the library's in-process figures, measured in
//! the same run:
//!
//! - appends of one event per request from 16 concurrent HTTP clients on
//!   SQLite, against 16 in-process appenders on the same kind of store; the
//!   clients run in this process and, in a second row, in a child process
//!   of their own (this binary run as `child-http BASE COUNT`), so that the
//!   client's work does not share the server's cores' scheduler;
//! - SSE fan-out: the time from an append until each of 100 subscribers
//!   has the event (p50/p99 printed after the run);
//! - global-log reads over HTTP (pages of 1,000) against in-process
//!   `read_all` pages.
//!
//! Run with `cargo bench -p logbook-server --bench server`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};
use logbook_domain::{NewEvent, Payload, StreamId};
use logbook_ports::{EventFilter, ExpectedVersion, Stores};
use logbook_server::{Server, ServerOptions};
use tokio::runtime::Runtime;

const CLIENTS: usize = 16;

/// One append request's body.
const BODY: &str = r#"{"events":[{"type":"Benchmarked","payload":{"amount":"12.50","note":"one event per request"}}]}"#;

/// `iters` appends of one event, one request each, from [`CLIENTS`]
/// concurrent clients on `base`: the time they took.
async fn http_appends(client: &reqwest::Client, base: &str, iters: u64) -> Duration {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for n in 0..CLIENTS {
        let client = client.clone();
        let url = format!("{base}/api/v1/streams/Bench-{n}");
        let count = iters / CLIENTS as u64 + u64::from((n as u64) < iters % CLIENTS as u64);
        tasks.push(tokio::spawn(async move {
            for _ in 0..count {
                let response = client.post(&url).body(BODY).send().await.unwrap();
                assert_eq!(response.status().as_u16(), 201);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    started.elapsed()
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .build()
        .unwrap()
}

/// Child: waits for a line on stdin, sends `iters` appends to `base`, and
/// prints how long they took in nanoseconds.
fn child_http(base: &str, iters: u64) {
    let rt = runtime();
    let client = http_client();
    // Connections are opened before the timed part, as in the parent's row.
    rt.block_on(http_appends(&client, base, CLIENTS as u64));
    println!("ready");
    std::io::stdout().flush().unwrap();
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).unwrap();
    let took = rt.block_on(http_appends(&client, base, iters));
    println!("{}", took.as_nanos());
}

/// Runs [`child_http`] in a child process: the time its appends took.
fn http_appends_from_another_process(base: &str, iters: u64) -> Duration {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["child-http", base, &iters.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    writeln!(stdin, "go").unwrap();
    stdin.flush().unwrap();
    line.clear();
    stdout.read_line(&mut line).unwrap();
    let nanos: u64 = line.trim().parse().expect("the child prints its time");
    assert!(child.wait().unwrap().success());
    Duration::from_nanos(nanos)
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A server over `stores` on 127.0.0.1:0; its base URL.
async fn serve(stores: Stores) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let options = ServerOptions {
        subscriber_buffer: 100_000,
        ..ServerOptions::default()
    };
    tokio::spawn(Server::new(stores, options).serve(listener, std::future::pending()));
    base
}

fn sqlite(dir: &tempfile::TempDir, name: &str) -> Stores {
    logbook::open_stores(&format!("sqlite:{}", dir.path().join(name).display())).unwrap()
}

fn event() -> NewEvent {
    NewEvent::new(
        "Benchmarked",
        Payload::from_json(br#"{"amount":"12.50","note":"one event per request"}"#.to_vec())
            .unwrap(),
    )
}

fn appends(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let http_stores = sqlite(&dir, "http.db");
    let base = rt.block_on(serve(http_stores));
    let local = sqlite(&dir, "local.db");
    let client = http_client();

    let mut group = c.benchmark_group("appends_sqlite_16_concurrent");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("http_one_event_per_request", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let client = client.clone();
            let base = base.clone();
            async move { http_appends(&client, &base, iters).await }
        });
    });
    group.bench_function(
        "http_one_event_per_request_client_in_another_process",
        |b| {
            b.iter_custom(|iters| http_appends_from_another_process(&base, iters));
        },
    );
    group.bench_function("in_process_16_appenders", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let events = local.events.clone();
            async move {
                let started = Instant::now();
                let mut tasks = Vec::new();
                for n in 0..CLIENTS {
                    let events = events.clone();
                    let stream = StreamId::new(format!("Bench-{n}")).unwrap();
                    let count =
                        iters / CLIENTS as u64 + u64::from((n as u64) < iters % CLIENTS as u64);
                    tasks.push(tokio::spawn(async move {
                        for _ in 0..count {
                            events
                                .append(&stream, ExpectedVersion::Any, vec![event()])
                                .await
                                .unwrap();
                        }
                    }));
                }
                for task in tasks {
                    task.await.unwrap();
                }
                started.elapsed()
            }
        });
    });
    group.finish();
}

/// Counts, per position, how many subscribers have received it, and wakes
/// the benchmark when the last one has.
async fn subscriber(
    client: reqwest::Client,
    url: String,
    seen: Arc<Vec<AtomicU64>>,
    everyone: Arc<tokio::sync::Notify>,
    subscribers: u64,
) {
    let mut response = client.get(url).send().await.unwrap();
    let mut buffer = String::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            if let Some(id) = block.lines().find_map(|l| l.strip_prefix("id: ")) {
                let position: usize = id.trim().parse().unwrap();
                if let Some(slot) = seen.get(position)
                    && slot.fetch_add(1, Ordering::AcqRel) + 1 == subscribers
                {
                    everyone.notify_one();
                }
            }
        }
    }
}

fn fan_out(c: &mut Criterion) {
    const SUBSCRIBERS: u64 = 100;
    const MAX_EVENTS: usize = 100_000;
    let rt = runtime();
    let stores = logbook_adapters_memory_stores();
    let base = rt.block_on(serve(stores.clone()));
    let seen: Arc<Vec<AtomicU64>> = Arc::new((0..=MAX_EVENTS).map(|_| AtomicU64::new(0)).collect());
    let client = reqwest::Client::new();
    let everyone = Arc::new(tokio::sync::Notify::new());
    rt.block_on(async {
        for _ in 0..SUBSCRIBERS {
            tokio::spawn(subscriber(
                client.clone(),
                format!("{base}/api/v1/log/subscribe"),
                seen.clone(),
                everyone.clone(),
                SUBSCRIBERS,
            ));
        }
        // Wait until every subscriber is connected.
        while stores.events.head_position().await.unwrap().is_none() {
            stores
                .events
                .append(
                    &StreamId::new("Fan-0").unwrap(),
                    ExpectedVersion::Any,
                    vec![event()],
                )
                .await
                .unwrap();
        }
        while seen[1].load(Ordering::Acquire) < SUBSCRIBERS {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let latencies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut group = c.benchmark_group("sse_fan_out_100_subscribers");
    group.sample_size(20);
    group.bench_function("append_to_every_subscriber", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let stores = stores.clone();
            let seen = seen.clone();
            let latencies = latencies.clone();
            let everyone = everyone.clone();
            async move {
                let stream = StreamId::new("Fan-1").unwrap();
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let started = Instant::now();
                    let outcome = stores
                        .events
                        .append(&stream, ExpectedVersion::Any, vec![event()])
                        .await
                        .unwrap();
                    let position = outcome.last_position.unwrap() as usize;
                    assert!(position < MAX_EVENTS, "raise MAX_EVENTS");
                    // Each append is awaited by every subscriber before the
                    // next, so one wake-up is for this position.
                    while seen[position].load(Ordering::Acquire) < SUBSCRIBERS {
                        everyone.notified().await;
                    }
                    let took = started.elapsed();
                    latencies.lock().unwrap().push(took);
                    total += took;
                }
                total
            }
        });
    });
    group.finish();
    let mut all = latencies.lock().unwrap().clone();
    all.sort();
    if !all.is_empty() {
        let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
        println!(
            "sse fan-out to {SUBSCRIBERS} subscribers over {} appends: p50 {:?}, p99 {:?}, max {:?}",
            all.len(),
            at(0.50),
            at(0.99),
            all[all.len() - 1]
        );
    }
}

fn logbook_adapters_memory_stores() -> Stores {
    logbook::open_stores("memory:").unwrap()
}

fn reads(c: &mut Criterion) {
    const EVENTS: u64 = 100_000;
    const PAGE: usize = 1_000;
    let rt = runtime();
    let stores = logbook_adapters_memory_stores();
    rt.block_on(async {
        for batch in 0..EVENTS / 1_000 {
            let events = (0..1_000).map(|_| event()).collect();
            stores
                .events
                .append(
                    &StreamId::new(format!("Read-{}", batch % 50)).unwrap(),
                    ExpectedVersion::Any,
                    events,
                )
                .await
                .unwrap();
        }
    });
    let base = rt.block_on(serve(stores.clone()));
    let client = reqwest::Client::new();
    let mut group = c.benchmark_group("global_log_reads_100k_pages_of_1000");
    group.throughput(Throughput::Elements(EVENTS));
    group.sample_size(10);
    group.bench_function("http", |b| {
        b.to_async(&rt).iter(|| {
            let client = client.clone();
            let base = base.clone();
            async move {
                let mut from = 1;
                let mut read = 0;
                while read < EVENTS {
                    let bytes = client
                        .get(format!("{base}/api/v1/log?from={from}&limit={PAGE}"))
                        .send()
                        .await
                        .unwrap()
                        .bytes()
                        .await
                        .unwrap();
                    let page: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                    read += page["events"].as_array().unwrap().len() as u64;
                    from = page["next_from"].as_u64().unwrap();
                }
            }
        });
    });
    group.bench_function("in_process", |b| {
        b.to_async(&rt).iter(|| {
            let events = stores.events.clone();
            async move {
                let mut from = 1;
                let mut read = 0;
                let all = EventFilter::all();
                while read < EVENTS {
                    let page = events.read_all(from, PAGE, &all).await.unwrap();
                    read += page.len() as u64;
                    from = page.last().unwrap().position + 1;
                }
            }
        });
    });
    group.finish();
}

criterion_group!(benches, appends, fan_out, reads);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child-http") {
        child_http(&args[2], args[3].parse().expect("a count"));
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
