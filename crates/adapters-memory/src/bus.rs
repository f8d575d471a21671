//! [`MemoryEventBus`]: in-process delivery to handlers per event type.

use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use logbook_domain::RecordedEvent;
use logbook_ports::{DeliveryFailure, EventBus, EventHandler, PublishReport};

type Registration = (Option<String>, Arc<dyn EventHandler>);

/// Delivers events to the handlers registered in this process, in
/// registration order.
#[derive(Default)]
pub struct MemoryEventBus {
    handlers: RwLock<Vec<Registration>>,
}

impl MemoryEventBus {
    /// A bus with no handlers.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl EventBus for MemoryEventBus {
    fn register(&self, event_type: Option<&str>, handler: Arc<dyn EventHandler>) {
        self.handlers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push((event_type.map(str::to_owned), handler));
    }

    async fn publish(&self, events: &[RecordedEvent]) -> PublishReport {
        // Copy the list so no lock is held across a handler's await.
        let handlers = self
            .handlers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut report = PublishReport::default();
        for event in events {
            for (event_type, handler) in &handlers {
                if event_type
                    .as_deref()
                    .is_some_and(|t| t != &*event.event_type)
                {
                    continue;
                }
                match handler.handle(event).await {
                    Ok(()) => report.delivered += 1,
                    Err(error) => report.failures.push(DeliveryFailure {
                        handler: handler.name().to_owned(),
                        position: event.position,
                        event_id: event.id,
                        error: error.to_string(),
                    }),
                }
            }
        }
        report
    }
}
