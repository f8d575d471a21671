//! The dispatcher on every store: resumes from its checkpoint, reports
//! failures without losing events for other handlers.

mod support;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use logbook::dispatch::Dispatcher;
use logbook_adapters_memory::MemoryEventBus;
use logbook_domain::{NewEvent, Payload, RecordedEvent, StreamId};
use logbook_ports::{BoxError, EventBus, EventHandler, ExpectedVersion, Stores};

struct Seen {
    name: &'static str,
    seen: Mutex<Vec<u64>>,
    /// Fails on this position while set.
    fail_on: Mutex<Option<u64>>,
}

impl Seen {
    fn new(name: &'static str, fail_on: Option<u64>) -> Arc<Self> {
        Arc::new(Self {
            name,
            seen: Mutex::new(Vec::new()),
            fail_on: Mutex::new(fail_on),
        })
    }
}

#[async_trait]
impl EventHandler for Seen {
    fn name(&self) -> &str {
        self.name
    }

    async fn handle(&self, event: &RecordedEvent) -> Result<(), BoxError> {
        if *self.fail_on.lock().unwrap() == Some(event.position) {
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
