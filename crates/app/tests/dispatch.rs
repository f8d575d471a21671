//! The dispatcher on every store: resumes from its checkpoint, reports
//! failures without losing events for other handlers.

mod support;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use logbook::dispatch::Dispatcher;
use logbook_adapters_memory::MemoryEventBus;
use logbook_domain::{NewEvent, Payload, RecordedEvent, StreamId};
use logbook_ports::{BoxError, EventBus, EventHandler, ExpectedVersion, Stores};

struct Seen(Mutex<Vec<u64>>, bool);

#[async_trait]
impl EventHandler for Seen {
    fn name(&self) -> &str {
        if self.1 { "always-fails" } else { "seen" }
    }

    async fn handle(&self, event: &RecordedEvent) -> Result<(), BoxError> {
        if self.1 {
            return Err("down".into());
        }
        self.0.lock().unwrap().push(event.position);
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
async fn a_restarted_dispatcher_delivers_only_what_it_had_not() {
    for (url, stores, _dir) in support::every_store() {
        let seen = Arc::new(Seen(Mutex::new(Vec::new()), false));
        let bus = Arc::new(MemoryEventBus::new());
        bus.register(None, seen.clone());
        bus.register(
            Some("Happened"),
            Arc::new(Seen(Mutex::new(Vec::new()), true)),
        );
        append(&stores, 3).await;
        let first = Dispatcher::new("mailer", &stores, bus.clone())
            .catch_up()
            .await
            .unwrap();
        assert_eq!(
            (first.events, first.checkpoint, first.failures.len()),
            (3, Some(3), 3),
            "{url}"
        );
        append(&stores, 2).await;
        let second = Dispatcher::new("mailer", &stores, bus)
            .catch_up()
            .await
            .unwrap();
        assert_eq!((second.events, second.checkpoint), (2, Some(5)), "{url}");
        assert_eq!(
            *seen.0.lock().unwrap(),
            [1, 2, 3, 4, 5],
            "{url}: each event once, the failing handler notwithstanding"
        );
        assert_eq!(
            stores.checkpoints.load("mailer").await.unwrap(),
            Some(5),
            "{url}"
        );
    }
}
