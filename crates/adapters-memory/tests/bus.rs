//! The in-memory event bus: handlers per type and catch-all, in order, and a
//! failing handler never costs the others their delivery.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::Utc;
use logbook_adapters_memory::MemoryEventBus;
use logbook_domain::{EventId, Metadata, Payload, RecordedEvent, StreamId};
use logbook_ports::{BoxError, EventBus, EventHandler};

struct Recorder {
    name: &'static str,
    seen: Arc<Mutex<Vec<String>>>,
    fail_on: Option<&'static str>,
}

#[async_trait]
impl EventHandler for Recorder {
    fn name(&self) -> &str {
        self.name
    }

    async fn handle(&self, event: &RecordedEvent) -> Result<(), BoxError> {
        if self.fail_on == Some(&*event.event_type) {
            return Err(format!("{} refuses {}", self.name, event.event_type).into());
        }
        self.seen
            .lock()
            .unwrap()
            .push(format!("{}:{}", self.name, event.event_type));
        Ok(())
    }
}

fn recorded(position: u64, event_type: &str) -> RecordedEvent {
    RecordedEvent {
        id: EventId::new(),
        stream: StreamId::new("BankAccount-1").unwrap(),
        version: position,
        position,
        event_type: event_type.into(),
        schema_version: 1,
        payload: Payload::from_json(b"{}".to_vec()).unwrap(),
        metadata: Metadata::default(),
        recorded_at: Utc::now(),
    }
}

#[tokio::test]
async fn handlers_get_their_types_in_order_and_a_failure_is_reported_not_contagious() {
    // Given a handler for deposits that fails, one for deposits that works, and a catch-all
    let seen = Arc::new(Mutex::new(Vec::new()));
    let bus = MemoryEventBus::new();
    let handler = |name, fail_on| {
        Arc::new(Recorder {
            name,
            seen: Arc::clone(&seen),
            fail_on,
        })
    };
    bus.register(
        Some("MoneyDeposited"),
        handler("failing", Some("MoneyDeposited")),
    );
    bus.register(Some("MoneyDeposited"), handler("deposits", None));
    bus.register(None, handler("all", None));
    // When two events are published
    let report = bus
        .publish(&[recorded(1, "MoneyDeposited"), recorded(2, "MoneyWithdrawn")])
        .await;
    // Then each handler saw what it registered for, in order, despite the failure
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "deposits:MoneyDeposited",
            "all:MoneyDeposited",
            "all:MoneyWithdrawn"
        ]
    );
    assert_eq!(report.delivered, 3);
    assert_eq!(report.failures.len(), 1);
    let failure = &report.failures[0];
    assert_eq!((failure.handler.as_str(), failure.position), ("failing", 1));
    assert!(failure.error.contains("refuses MoneyDeposited"));
}
