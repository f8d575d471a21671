//! The [`EventBus`] port: deliver recorded events to handlers registered per
//! event type, as the seeds' dispatcher does.

use std::sync::Arc;

use async_trait::async_trait;
use logbook_domain::{EventId, Position, RecordedEvent};

/// Any error a handler returns.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Something that reacts to recorded events.
#[async_trait]
pub trait EventHandler: Send + Sync {
    /// A name for reports and logs.
    fn name(&self) -> &str;

    /// Reacts to one event.
    ///
    /// # Errors
    /// Whatever went wrong; the bus reports it and goes on delivering the
    /// event to the other handlers.
    async fn handle(&self, event: &RecordedEvent) -> Result<(), BoxError>;
}

/// One event a handler failed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryFailure {
    /// The handler's name.
    pub handler: String,
    /// The event's global position.
    pub position: Position,
    /// The event's id.
    pub event_id: EventId,
    /// What the handler said.
    pub error: String,
}

/// What one `publish` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishReport {
    /// Successful handler calls.
    pub delivered: usize,
    /// Failed handler calls, in order.
    pub failures: Vec<DeliveryFailure>,
}

/// Delivers recorded events to registered handlers.
#[async_trait]
pub trait EventBus: Send + Sync {
    /// Registers `handler` for events of `event_type`, or for every event
    /// when `event_type` is `None`.
    fn register(&self, event_type: Option<&str>, handler: Arc<dyn EventHandler>);

    /// Delivers each event, in order, to every handler registered for its
    /// type and to every catch-all handler, in registration order. A failing
    /// handler does not stop delivery to the others; its failure is in the
    /// report.
    async fn publish(&self, events: &[RecordedEvent]) -> PublishReport;
}
