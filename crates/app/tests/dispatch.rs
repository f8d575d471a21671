//! The dispatcher on every store: resumes from its checkpoint, reports
//! failures without losing events for other handlers, and in follow mode
//! delivers a failed event again without the checkpoint passing it.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use logbook::dispatch::Dispatcher;
use logbook_adapters_memory::MemoryEventBus;
use logbook_domain::{NewEvent, Payload, RecordedEvent, StreamId};
use logbook_ports::{
    BoxError, CheckpointStore, EventBus, EventHandler, ExpectedVersion, Position, StoreError,
    Stores,
};

struct Seen {
    name: &'static str,
    seen: Mutex<Vec<u64>>,
    /// Fails on this position while set.
    fail_on: Mutex<Option<u64>>,
    /// Clears `fail_on` after failing once.
    once: bool,
}

impl Seen {
    fn new(name: &'static str, fail_on: Option<u64>) -> Arc<Self> {
        Arc::new(Self {
            name,
            seen: Mutex::new(Vec::new()),
            fail_on: Mutex::new(fail_on),
            once: false,
        })
    }

    fn failing_once_on(name: &'static str, position: u64) -> Arc<Self> {
        Arc::new(Self {
            name,
            seen: Mutex::new(Vec::new()),
            fail_on: Mutex::new(Some(position)),
            once: true,
        })
    }

    fn seen(&self) -> Vec<u64> {
        self.seen.lock().unwrap().clone()
    }
}

#[async_trait]
impl EventHandler for Seen {
    fn name(&self) -> &str {
        self.name
    }

    async fn handle(&self, event: &RecordedEvent) -> Result<(), BoxError> {
        let mut fail_on = self.fail_on.lock().unwrap();
        if *fail_on == Some(event.position) {
            if self.once {
                *fail_on = None;
            }
            return Err("down".into());
        }
        self.seen.lock().unwrap().push(event.position);
        Ok(())
    }
}

async fn append(stores: &Stores, n: usize) {
    let events = (0..n)
        .map(|_| NewEvent::new("Happened", Payload::from_json(b"{}".to_vec()).unwrap()))
        .collect();
    stores
        .events
        .append(&StreamId::new("A-1").unwrap(), ExpectedVersion::Any, events)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_restarted_dispatcher_delivers_what_it_had_not_and_never_skips_a_failure() {
    for (url, stores, _dir) in support::every_store() {
        let healthy = Seen::new("healthy", None);
        let flaky = Seen::new("flaky", Some(2));
        let bus = Arc::new(MemoryEventBus::new());
        bus.register(None, healthy.clone());
        bus.register(Some("Happened"), flaky.clone());
        append(&stores, 3).await;
        // The flaky handler fails on position 2: the run stops before it.
        let first = Dispatcher::new("mailer", &stores, bus.clone())
            .catch_up()
            .await
            .unwrap();
        assert_eq!(
            (first.checkpoint, first.failures.len()),
            (Some(1), 1),
            "{url}"
        );
        assert_eq!(first.failures[0].position, 2, "{url}");
        assert_eq!(
            stores.checkpoints.load("mailer").await.unwrap(),
            Some(1),
            "{url}"
        );
        // Once it recovers, the next run starts at the failed event.
        *flaky.fail_on.lock().unwrap() = None;
        append(&stores, 2).await;
        let second = Dispatcher::new("mailer", &stores, bus)
            .catch_up()
            .await
            .unwrap();
        assert_eq!(
            (second.events, second.checkpoint, second.failures.len()),
            (4, Some(5), 0),
            "{url}"
        );
        // It got 3 in the first batch already: at least once, nothing missed.
        assert_eq!(
            *flaky.seen.lock().unwrap(),
            [1, 3, 2, 3, 4, 5],
            "{url}: the flaky handler missed nothing"
        );
        assert_eq!(
            *healthy.seen.lock().unwrap(),
            [1, 2, 3, 2, 3, 4, 5],
            "{url}: at least once for the others"
        );
        assert_eq!(
            stores.checkpoints.load("mailer").await.unwrap(),
            Some(5),
            "{url}"
        );
    }
}

/// Records every checkpoint saved, with what a handler had seen by then.
struct Recorded {
    inner: Arc<dyn CheckpointStore>,
    watched: Arc<Seen>,
    saves: Mutex<Vec<(Position, Vec<u64>)>>,
}

#[async_trait]
impl CheckpointStore for Recorded {
    async fn load(&self, subscriber: &str) -> Result<Option<Position>, StoreError> {
        self.inner.load(subscriber).await
    }

    async fn save(&self, subscriber: &str, position: Position) -> Result<(), StoreError> {
        self.saves
            .lock()
            .unwrap()
            .push((position, self.watched.seen()));
        self.inner.save(subscriber, position).await
    }

    async fn reset(&self, subscriber: &str) -> Result<(), StoreError> {
        self.inner.reset(subscriber).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_delivers_a_failed_event_again_and_never_checkpoints_past_it() {
    for (url, inner, _dir) in support::every_store() {
        // Given a handler that fails once, on position 2, and a follower
        // that records every checkpoint it saves
        let flaky = Seen::failing_once_on("flaky", 2);
        let bus = Arc::new(MemoryEventBus::new());
        bus.register(None, flaky.clone());
        let recorded = Arc::new(Recorded {
            inner: inner.checkpoints.clone(),
            watched: flaky.clone(),
            saves: Mutex::new(Vec::new()),
        });
        let stores = Stores {
            checkpoints: recorded.clone(),
            ..inner.clone()
        };
        append(&stores, 3).await;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let follower = {
            let stores = stores.clone();
            let bus = bus.clone();
            tokio::spawn(async move {
                Dispatcher::new("mailer", &stores, bus)
                    .with_backoff(Duration::from_millis(20))
                    .follow(async {
                        let _ = stopped.await;
                    })
                    .await
            })
        };
        // When it delivers, fails, backs off, and more events arrive later
        wait_for_checkpoint(&stores, 3).await;
        append(&stores, 2).await;
        wait_for_checkpoint(&stores, 5).await;
        stop.send(()).unwrap();
        let report = follower.await.unwrap().unwrap();
        // Then the failed event was delivered again in the same run, after
        // the one failure, and nothing was skipped
        assert_eq!(report.failures.len(), 1, "{url}");
        assert_eq!(report.failures[0].position, 2, "{url}");
        assert_eq!(flaky.seen(), [1, 3, 2, 3, 4, 5], "{url}: delivered again");
        assert_eq!(report.checkpoint, Some(5), "{url}");
        // And no checkpoint at or past 2 was saved before 2 was delivered
        let saves = recorded.saves.lock().unwrap().clone();
        assert_eq!(saves.first().map(|s| s.0), Some(1), "{url}: {saves:?}");
        for (position, seen) in &saves {
            assert!(
                *position < 2 || seen.contains(&2),
                "{url}: checkpoint {position} saved before event 2 was delivered: {saves:?}"
            );
        }
        assert!(
            saves.windows(2).all(|w| w[0].0 <= w[1].0),
            "{url}: the checkpoint never goes back: {saves:?}"
        );
    }
}

async fn wait_for_checkpoint(stores: &Stores, position: Position) {
    for _ in 0..500 {
        if stores.checkpoints.load("mailer").await.unwrap() == Some(position) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the dispatcher never reached position {position}");
}
