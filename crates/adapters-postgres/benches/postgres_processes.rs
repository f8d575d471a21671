//! The PostgreSQL store used by several processes at once, as several hosts
//! would use it: each process has its own store (its own pool, writer
//! connection and listener).
//!
//! - `postgres/processes/*`: one event per append, 4 processes of 4
//!   appenders against 1 process of 16 appenders, both in child processes,
//!   timed from "go" to the last child's "done" (starting and connecting are
//!   left out);
//! - `postgres/append_to_subscriber_in_another_process`: an append here, and
//!   the time until a subscriber in a child process (woken by the commit
//!   signal, LISTEN/NOTIFY) has read it and said so on its stdout. Criterion
//!   reports the mean; the run also prints the median and p99 of every
//!   append it timed, of the append alone (until it returned here), and of
//!   the raw baseline measured right after it in the same run:
//!   `postgres/raw_insert_commit`, one autocommit single-row INSERT on a
//!   plain connection (the commit's own latency, fsync included).
//!
//! The benchmark binary is its own child: `child-append URL APPENDERS N`
//! appends, `child-subscribe URL` follows the log. The server is the one
//! `LOGBOOK_TEST_POSTGRES_URL` names, or a throwaway one with PostgreSQL's
//! default (durable) fsync settings. Run with `cargo xtask bench
//! postgres/` (or `cargo bench -p logbook-adapters-postgres --bench
//! postgres_processes`); figures are recorded in docs/benchmarks.md.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};
use logbook_adapters_postgres::{PostgresOptions, PostgresStore};
use logbook_domain::{EventId, NewEvent, Payload, StreamId};
use logbook_ports::{EventFilter, EventStore, ExpectedVersion};
use logbook_test_postgres::{TestDatabase, TestServer, unique_schema, with_schema};
use tokio::runtime::Runtime;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

fn database() -> TestDatabase {
    match std::env::var(logbook_test_postgres::URL_VARIABLE) {
        Ok(url) if !url.is_empty() => TestDatabase::External(url),
        _ => TestDatabase::Owned(TestServer::start_with(true).expect("a PostgreSQL server")),
    }
}

/// A payload of about 200 bytes, as in the other benchmarks.
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

async fn open(url: &str) -> Arc<dyn EventStore> {
    PostgresStore::connect(url, PostgresOptions::default())
        .await
        .expect("the store opens")
        .stores()
        .events
}

fn line(reader: &mut BufReader<ChildStdout>) -> String {
    let mut text = String::new();
    reader.read_line(&mut text).expect("the child answers");
    assert!(!text.is_empty(), "the child ended early");
    text.trim().to_owned()
}

/// A child process of this binary, with its stdin and stdout.
struct Spawned {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

fn spawn(args: &[&str]) -> Spawned {
    let mut child = Command::new(std::env::current_exe().expect("this binary"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the child starts");
    let stdin = child.stdin.take().expect("piped");
    let stdout = BufReader::new(child.stdout.take().expect("piped"));
    Spawned {
        child,
        stdin,
        stdout,
    }
}

/// Child: `appenders` tasks, each appending `n` single events to a stream
/// of its own, after "go" on stdin.
fn child_append(url: &str, appenders: u64, n: u64) {
    let rt = runtime();
    let store = rt.block_on(open(url));
    println!("ready");
    std::io::stdout().flush().unwrap();
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).unwrap();
    rt.block_on(async {
        let payload = payload();
        let tasks: Vec<_> = (0..appenders)
            .map(|_| {
                let (store, payload) = (Arc::clone(&store), payload.clone());
                tokio::spawn(async move {
                    let stream = StreamId::new(format!("BankAccount-{}", EventId::new())).unwrap();
                    for _ in 0..n {
                        let event = NewEvent::new("MoneyDeposited", payload.clone());
                        store
                            .append(&stream, ExpectedVersion::Any, vec![event])
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    println!("done");
}

/// Child: follows the global log from the head it finds, woken by the
/// commit signal, and prints each position it reads.
fn child_subscribe(url: &str) {
    let rt = runtime();
    rt.block_on(async {
        let store = open(url).await;
        let mut signal = store.commits().expect("the store signals commits");
        let mut next = store.head_position().await.unwrap().unwrap_or(0) + 1;
        println!("ready");
        std::io::stdout().flush().unwrap();
        loop {
            let page = store
                .read_all(next, 1_000, &EventFilter::all())
                .await
                .unwrap();
            if page.is_empty() {
                if signal.changed().await.is_err() {
                    return;
                }
                continue;
            }
            let mut out = std::io::stdout().lock();
            for event in &page {
                writeln!(out, "{}", event.position).unwrap();
            }
            out.flush().unwrap();
            next = page.last().map_or(next, |e| e.position + 1);
        }
    });
}

/// `processes` children of `appenders` appenders each, `iters` events in
/// all: the time from "go" to the last "done".
fn appends_in_processes(url: &str, processes: u64, appenders: u64, iters: u64) -> Duration {
    let n = iters.div_ceil(processes * appenders).max(1);
    let (appenders, n) = (appenders.to_string(), n.to_string());
    let mut children: Vec<Spawned> = (0..processes)
        .map(|_| spawn(&["child-append", url, &appenders, &n]))
        .collect();
    for child in &mut children {
        assert_eq!(line(&mut child.stdout), "ready");
    }
    let started = Instant::now();
    for child in &mut children {
        writeln!(child.stdin, "go").unwrap();
        child.stdin.flush().unwrap();
    }
    for child in &mut children {
        assert_eq!(line(&mut child.stdout), "done");
    }
    let elapsed = started.elapsed();
    for mut child in children {
        assert!(child.child.wait().unwrap().success());
    }
    elapsed
}

fn processes(c: &mut Criterion) {
    let database = database();
    let url = with_schema(&database.url(), &unique_schema("bench"));
    runtime().block_on(open(&url));
    let mut group = c.benchmark_group("postgres/processes");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(1));
    for (processes, appenders) in [(1, 16), (4, 4)] {
        group.bench_function(format!("{processes}_x_{appenders}_appenders"), |b| {
            b.iter_custom(|iters| appends_in_processes(&url, processes, appenders, iters));
        });
    }
    group.finish();
}

fn append_to_subscriber(c: &mut Criterion) {
    let rt = runtime();
    let database = database();
    let url = with_schema(&database.url(), &unique_schema("bench"));
    let store = rt.block_on(open(&url));
    let mut subscriber = spawn(&["child-subscribe", &url]);
    assert_eq!(line(&mut subscriber.stdout), "ready");
    let stream = StreamId::new("BankAccount-latency").unwrap();
    let payload = payload();
    let mut samples: Vec<Duration> = Vec::new();
    let mut appended: Vec<Duration> = Vec::new();
    let mut group = c.benchmark_group("postgres");
    group.sample_size(20);
    group.bench_function("append_to_subscriber_in_another_process", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let started = Instant::now();
                let event = NewEvent::new("MoneyDeposited", payload.clone());
                let outcome = rt
                    .block_on(store.append(&stream, ExpectedVersion::Any, vec![event]))
                    .unwrap();
                appended.push(started.elapsed());
                let position = outcome.last_position.unwrap().to_string();
                while line(&mut subscriber.stdout) != position {}
                let took = started.elapsed();
                samples.push(took);
                total += took;
            }
            total
        });
    });
    drop(subscriber.stdin);
    let _ = subscriber.child.kill();
    let _ = subscriber.child.wait();
    let mut raw = rt.block_on(raw_insert_table(&database.url()));
    let mut committed: Vec<Duration> = Vec::new();
    group.bench_function("raw_insert_commit", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let started = Instant::now();
                rt.block_on(raw.insert());
                let took = started.elapsed();
                committed.push(took);
                total += took;
            }
            total
        });
    });
    group.finish();
    for (what, samples) in [
        ("append_to_subscriber_in_another_process", &mut samples),
        (
            "append_to_subscriber_in_another_process, the append alone",
            &mut appended,
        ),
        ("raw_insert_commit (baseline, same run)", &mut committed),
    ] {
        print_quantiles(what, samples);
    }
}

/// Prints how many samples, their median, p99 and maximum (nothing when a
/// filter left the benchmark out).
fn print_quantiles(what: &str, samples: &mut [Duration]) {
    if samples.is_empty() {
        return;
    }
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    println!(
        "postgres/{what}: {} samples, median {:?}, p99 {:?}, max {:?}",
        samples.len(),
        at(0.5),
        at(0.99),
        samples[samples.len() - 1]
    );
}

/// The raw baseline: a plain connection and a table of the events table's
/// shape with a free sequence, in a schema of its own.
struct RawInsert {
    client: tokio_postgres::Client,
    insert: tokio_postgres::Statement,
    payload: String,
    stream: String,
    version: i64,
}

async fn raw_insert_table(url: &str) -> RawInsert {
    let (client, connection) = url
        .parse::<tokio_postgres::Config>()
        .expect("a PostgreSQL URL")
        .connect(tokio_postgres::NoTls)
        .await
        .expect("a raw connection");
    tokio::spawn(connection);
    let schema = unique_schema("raw");
    client
        .batch_execute(&format!(
            "CREATE SCHEMA {schema};
             CREATE TABLE {schema}.free (position bigserial PRIMARY KEY, stream text NOT NULL,
                 version bigint NOT NULL, event_id uuid NOT NULL UNIQUE, event_type text NOT NULL,
                 payload json NOT NULL, recorded_at timestamptz NOT NULL DEFAULT now());"
        ))
        .await
        .expect("the raw table");
    let insert = client
        .prepare(&format!(
            "INSERT INTO {schema}.free (stream, version, event_id, event_type, payload) \
             VALUES ($1, $2, $3, 'MoneyDeposited', $4::text::json)"
        ))
        .await
        .expect("the raw insert");
    let payload = payload().as_str().into_owned();
    RawInsert {
        client,
        insert,
        payload,
        stream: format!("BankAccount-raw-{}", EventId::new()),
        version: 0,
    }
}

impl RawInsert {
    async fn insert(&mut self) {
        self.version += 1;
        self.client
            .execute(
                &self.insert,
                &[
                    &self.stream,
                    &self.version,
                    &EventId::new().0,
                    &self.payload,
                ],
            )
            .await
            .expect("the raw insert commits");
    }
}

criterion_group!(benches, processes, append_to_subscriber);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("child-append") => {
            child_append(
                &args[2],
                args[3].parse().expect("appenders"),
                args[4].parse().expect("events per appender"),
            );
        }
        Some("child-subscribe") => child_subscribe(&args[2]),
        _ => {
            benches();
            Criterion::default().configure_from_args().final_summary();
        }
    }
}
