//! The global log is never skipped: 16 concurrent writers on two stores
//! (two pools, two writer connections) pause at random between taking
//! their positions and committing, about 5% of appends are rolled back,
//! and four subscribers read at once — live, restarting from checkpoints at
//! random, poll-only, and one starting late. Each must see exactly the
//! committed events, every position once, in order.
//!
//! The negative control runs the same writers and a live subscriber against
//! a deliberately naive log (a plain sequence, no protection), and must
//! catch a skip: the check is shown able to fail.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use logbook_adapters_postgres::{PostgresOptions, PostgresStore};
use logbook_domain::{EventId, NewEvent, Payload, StreamId};
use logbook_ports::{CheckpointStore, EventFilter, EventStore, ExpectedVersion, StoreError};
use logbook_test_postgres::TestDatabase;
use tokio_postgres::NoTls;
use uuid::Uuid;

const WRITERS: usize = 16;
const APPENDS_PER_WRITER: usize = 25;
const PAGE: usize = 40;

/// A committed event: its global position and id.
type Entry = (u64, Uuid);

/// A small xorshift generator; the tests need spread, not quality.
struct Random(u64);

impl Random {
    fn new(salt: u64) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Self((seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// What a subscriber missed, repeated or put out of order, against the
/// committed log; `None` when it saw exactly the committed events in order.
fn discrepancy(seen: &[Entry], committed: &[Entry]) -> Option<String> {
    if seen == committed {
        return None;
    }
    let seen_set: HashSet<&Entry> = seen.iter().collect();
    let missed: Vec<u64> = committed
        .iter()
        .filter(|e| !seen_set.contains(e))
        .map(|e| e.0)
        .collect();
    let unique: HashSet<&Entry> = seen.iter().collect();
    let in_order = seen.windows(2).all(|w| w[0].0 < w[1].0);
    Some(format!(
        "saw {} events, {} committed; missed positions {:?}; {} repeated; in order: {in_order}",
        seen.len(),
        committed.len(),
        &missed[..missed.len().min(20)],
        seen.len() - unique.len()
    ))
}

async fn open(url: &str, options: PostgresOptions) -> PostgresStore {
    PostgresStore::connect(url, options)
        .await
        .expect("the store opens")
}

fn event(n: usize) -> NewEvent {
    NewEvent::new(
        "Happened",
        Payload::from_json(format!("{{\"n\":{n}}}").into_bytes()).expect("valid JSON"),
    )
}

/// One writer: appends to its own stream, each append with the version it
/// expects; about 5% expect a wrong version and are rolled back inside the
/// writer's group. Returns what it committed.
async fn write(store: Arc<dyn EventStore>, writer: usize) -> Vec<Entry> {
    let stream = StreamId::new(format!("Writer-{writer}")).expect("valid stream id");
    let mut random = Random::new(writer as u64);
    let mut version = 0;
    let mut committed = Vec::new();
    for n in 0..APPENDS_PER_WRITER {
        let rolled_back = random.below(100) < 5;
        let expected = if rolled_back {
            ExpectedVersion::Exact(version + 1_000)
        } else {
            ExpectedVersion::Exact(version)
        };
        let batch: Vec<NewEvent> = (0..=random.below(2) as usize).map(|_| event(n)).collect();
        let ids: Vec<Uuid> = batch.iter().map(|e| e.id.0).collect();
        match store.append(&stream, expected, batch).await {
            Ok(outcome) => {
                assert!(!rolled_back, "a wrong expectation was accepted");
                let first = outcome.first_position.expect("events were written");
                committed.extend(ids.into_iter().zip(first..).map(|(id, p)| (p, id)));
                version = outcome.stream_version.expect("the stream exists");
            }
            Err(StoreError::WrongExpectedVersion { .. }) if rolled_back => {}
            Err(error) => panic!("writer {writer}: {error}"),
        }
    }
    committed
}

/// Reads the log from `next` on until it holds `until` events, waiting on
/// the commit signal (or polling, when `poll_only`) when caught up.
async fn follow(
    store: &dyn EventStore,
    seen: &mut Vec<Entry>,
    until: &Mutex<Option<u64>>,
    poll_only: bool,
    mut restart: impl FnMut(&mut Vec<Entry>) -> bool,
) {
    let mut signal = store.commits().filter(|_| !poll_only);
    loop {
        let next = seen.last().map_or(1, |e| e.0 + 1);
        let page = store
            .read_all(next, PAGE, &EventFilter::all())
            .await
            .expect("reading the log");
        seen.extend(page.iter().map(|e| (e.position, e.id.0)));
        if restart(seen) {
            continue;
        }
        if page.is_empty() {
            if let Some(head) = *until.lock().unwrap()
                && seen.last().map_or(0, |e| e.0) >= head
            {
                return;
            }
            match &mut signal {
                Some(signal) => {
                    let _ =
                        tokio::time::timeout(Duration::from_millis(200), signal.changed()).await;
                }
                None => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_subscriber_ever_skips_a_committed_event() {
    // Given two stores on one schema, whose writers pause before COMMIT
    let database = logbook_test_postgres::database();
    let url = database.fresh_schema_url("ordering");
    let pausing = PostgresOptions::default()
        .with_pause_before_commit(Duration::ZERO, Duration::from_millis(8));
    let stores: Vec<Arc<dyn EventStore>> = vec![
        open(&url, pausing.clone()).await.stores().events,
        open(&url, pausing).await.stores().events,
    ];
    let until = Arc::new(Mutex::new(None::<u64>));

    // And four subscribers reading at once
    let mut subscribers = Vec::new();
    {
        // live
        let store = open(&url, PostgresOptions::default()).await.stores().events;
        let until = Arc::clone(&until);
        subscribers.push((
            "live",
            tokio::spawn(async move {
                let mut seen = Vec::new();
                follow(&*store, &mut seen, &until, false, |_| false).await;
                seen
            }),
        ));
    }
    {
        // restarting from its checkpoint at random
        let store = open(&url, PostgresOptions::default()).await.stores();
        let until = Arc::clone(&until);
        subscribers.push((
            "restarting",
            tokio::spawn(async move {
                let checkpoints: Arc<dyn CheckpointStore> = store.checkpoints;
                let mut random = Random::new(99);
                let mut seen = Vec::new();
                let mut restarts = 0;
                follow(&*store.events, &mut seen, &until, false, |seen| {
                    match random.below(6) {
                        // Save the checkpoint (the last position applied).
                        0 | 1 => {
                            let last = seen.last().map_or(0, |e| e.0);
                            let checkpoints = Arc::clone(&checkpoints);
                            tokio::task::block_in_place(|| {
                                tokio::runtime::Handle::current().block_on(async move {
                                    checkpoints.save("restarting", last).await.unwrap();
                                });
                            });
                            false
                        }
                        // Restart: forget what came after the checkpoint.
                        2 => {
                            let checkpoints = Arc::clone(&checkpoints);
                            let saved = tokio::task::block_in_place(|| {
                                tokio::runtime::Handle::current()
                                    .block_on(async move { checkpoints.load("restarting").await })
                            })
                            .unwrap()
                            .unwrap_or(0);
                            seen.retain(|e| e.0 <= saved);
                            restarts += 1;
                            true
                        }
                        _ => false,
                    }
                })
                .await;
                assert!(restarts > 0, "the subscriber never restarted");
                seen
            }),
        ));
    }
    {
        // poll-only, on a store that listens for no notifications
        let store = open(&url, PostgresOptions::default().with_listen(false))
            .await
            .stores()
            .events;
        let until = Arc::clone(&until);
        subscribers.push((
            "poll-only",
            tokio::spawn(async move {
                let mut seen = Vec::new();
                follow(&*store, &mut seen, &until, true, |_| false).await;
                seen
            }),
        ));
    }

    // When 16 writers append at once, 8 on each store
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(write(Arc::clone(&stores[w % 2]), w)))
        .collect();
    // And a fourth subscriber starts late, from the beginning
    tokio::time::sleep(Duration::from_millis(150)).await;
    {
        let store = open(&url, PostgresOptions::default()).await.stores().events;
        let until = Arc::clone(&until);
        subscribers.push((
            "late",
            tokio::spawn(async move {
                let mut seen = Vec::new();
                follow(&*store, &mut seen, &until, false, |_| false).await;
                seen
            }),
        ));
    }
    let mut committed = Vec::new();
    for writer in writers {
        committed.extend(writer.await.expect("the writer ran"));
    }
    committed.sort_unstable();
    let head = committed.last().map_or(0, |e| e.0);
    *until.lock().unwrap() = Some(head);

    // Then the committed positions are 1..=head, without gaps
    let positions: Vec<u64> = committed.iter().map(|e| e.0).collect();
    assert_eq!(
        positions,
        (1..=head).collect::<Vec<_>>(),
        "positions have gaps"
    );
    assert!(head as usize >= WRITERS * APPENDS_PER_WRITER * 8 / 10);
    // And every subscriber saw exactly the committed events, in order
    for (name, subscriber) in subscribers {
        let seen = tokio::time::timeout(Duration::from_secs(60), subscriber)
            .await
            .unwrap_or_else(|_| panic!("{name} did not catch up"))
            .expect("the subscriber ran");
        assert_eq!(discrepancy(&seen, &committed), None, "subscriber {name}");
    }
    // And the log the store reads back is the committed one
    let log = stores[0]
        .read_all(1, usize::MAX, &EventFilter::all())
        .await
        .unwrap();
    let log: Vec<Entry> = log.iter().map(|e| (e.position, e.id.0)).collect();
    assert_eq!(log, committed);
    let _: &TestDatabase = &database;
}

/// The naive design: a plain sequence taken at INSERT, visible at COMMIT.
async fn naive_client(url: &str) -> tokio_postgres::Client {
    let config: tokio_postgres::Config = url.parse().expect("a client URL");
    let (client, connection) = config.connect(NoTls).await.expect("connects");
    tokio::spawn(connection);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_check_catches_the_skips_of_a_naive_sequence() {
    // Given a naive log: a plain sequence, no protection
    let database = logbook_test_postgres::database();
    let url = database.url();
    let table = format!("naive_{}", logbook_test_postgres::unique_schema("log"));
    naive_client(&url)
        .await
        .batch_execute(&format!(
            "CREATE TABLE {table} (position bigserial PRIMARY KEY, id uuid NOT NULL)"
        ))
        .await
        .unwrap();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));

    // And a live subscriber following it page by page
    let reader = {
        let client = naive_client(&url).await;
        let table = table.clone();
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            let mut seen: Vec<Entry> = Vec::new();
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                let next = seen.last().map_or(1, |e| e.0 + 1) as i64;
                let rows = client
                    .query(
                        &format!(
                            "SELECT position, id FROM {table} WHERE position >= $1 \
                             ORDER BY position LIMIT {PAGE}"
                        ),
                        &[&next],
                    )
                    .await
                    .unwrap();
                seen.extend(rows.iter().map(|r| (r.get::<_, i64>(0) as u64, r.get(1))));
                if rows.is_empty() {
                    if finished {
                        return seen;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        })
    };

    // When the same 16 writers append, pausing between INSERT and COMMIT and
    // rolling back about 5%
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let url = url.clone();
            let table = table.clone();
            tokio::spawn(async move {
                let mut client = naive_client(&url).await;
                let mut random = Random::new(w as u64 + 1_000);
                let mut committed = Vec::new();
                for _ in 0..APPENDS_PER_WRITER {
                    let tx = client.transaction().await.unwrap();
                    let id = EventId::new().0;
                    let position: i64 = tx
                        .query_one(
                            &format!("INSERT INTO {table} (id) VALUES ($1) RETURNING position"),
                            &[&id],
                        )
                        .await
                        .unwrap()
                        .get(0);
                    tokio::time::sleep(Duration::from_micros(random.below(8_000))).await;
                    if random.below(100) < 5 {
                        tx.rollback().await.unwrap();
                    } else {
                        tx.commit().await.unwrap();
                        committed.push((position as u64, id));
                    }
                }
                committed
            })
        })
        .collect();
    let mut committed = Vec::new();
    for writer in writers {
        committed.extend(writer.await.unwrap());
    }
    committed.sort_unstable();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = reader.await.unwrap();

    // Then the check reports committed events the subscriber never saw
    let found = discrepancy(&seen, &committed).expect("the naive log was read without a skip");
    assert!(found.contains("missed positions ["), "{found}");
    assert!(!found.contains("missed positions []"), "{found}");
}
