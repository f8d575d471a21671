//! [`Dispatcher`]: the seeds' event dispatcher made resumable. It delivers
//! the global log to an [`EventBus`] from the position it remembers in the
//! [`CheckpointStore`], so handlers with side effects (mail, webhooks, other
//! systems) see every event after a restart without replaying history.
//!
//! Delivery is at least once: a batch is published, then its checkpoint is
//! saved; a crash in between delivers that batch again. A handler that fails
//! holds the checkpoint just before that event: [`Dispatcher::catch_up`]
//! returns, and the next run starts there; [`Dispatcher::follow`] waits a
//! back-off (doubling while failures repeat) and starts there again in the
//! same run. Either way the failed event (and what followed it) reaches
//! every handler again, so handlers must be idempotent by position (as the
//! seeds' version-guarded projection was).

use std::sync::Arc;
use std::time::Duration;

use logbook_domain::Position;
use logbook_ports::{CheckpointStore, DeliveryFailure, EventBus, EventFilter, StoreError, Stores};

use crate::subscription::Subscription;

/// What one run delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DispatchReport {
    /// Events published.
    pub events: u64,
    /// Failed handler calls (other handlers still got those events; the
    /// checkpoint stops before the first of them).
    pub failures: Vec<DeliveryFailure>,
    /// The checkpoint afterwards.
    pub checkpoint: Option<Position>,
}

/// The first wait of [`Dispatcher::follow`] after a failed delivery.
pub const DEFAULT_BACKOFF: Duration = Duration::from_secs(1);

/// The longest wait after failed deliveries: the back-off doubles at most
/// this many times.
const MAX_DOUBLINGS: u32 = 5;

/// Publishes the global log to a bus, resumably: at least once, in order,
/// from a checkpoint kept in the [`CheckpointStore`]
/// that never passes an event a handler failed.
///
/// ```
/// use std::sync::Arc;
/// use logbook::dispatch::Dispatcher;
/// use logbook_adapters_memory::MemoryEventBus;
/// use logbook_domain::{NewEvent, Payload, RecordedEvent, StreamId};
/// use logbook_ports::{BoxError, EventBus, EventHandler, ExpectedVersion};
///
/// struct Mailer;
///
/// #[async_trait::async_trait]
/// impl EventHandler for Mailer {
///     fn name(&self) -> &str {
///         "mailer"
///     }
///     async fn handle(&self, event: &RecordedEvent) -> Result<(), BoxError> {
///         println!("mail about {}", event.stream);
///         Ok(())
///     }
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let stores = logbook_adapters_memory::stores();
/// let signed_up = NewEvent::new("SignedUp", Payload::from_json(b"{}".to_vec()).unwrap());
/// let stream = StreamId::new("User-1").unwrap();
/// stores.events.append(&stream, ExpectedVersion::Any, vec![signed_up]).await.unwrap();
///
/// let bus = Arc::new(MemoryEventBus::new());
/// bus.register(Some("SignedUp"), Arc::new(Mailer));
/// let dispatcher = Dispatcher::new("mailer", &stores, bus);
/// let report = dispatcher.catch_up().await.unwrap();
/// assert_eq!((report.events, report.checkpoint), (1, Some(1)));
/// // Resumable: a second run starts after the checkpoint.
/// assert_eq!(dispatcher.catch_up().await.unwrap().events, 0);
/// # });
/// ```
pub struct Dispatcher {
    name: String,
    stores: Stores,
    bus: Arc<dyn EventBus>,
    batch: usize,
    backoff: Duration,
}

impl Dispatcher {
    /// A dispatcher whose checkpoint is kept under `name`.
    pub fn new(name: impl Into<String>, stores: &Stores, bus: Arc<dyn EventBus>) -> Self {
        Self {
            name: name.into(),
            stores: stores.clone(),
            bus,
            batch: 1_000,
            backoff: DEFAULT_BACKOFF,
        }
    }

    /// Waits `backoff` (then twice as long, up to 32 times, while failures
    /// repeat) before [`Dispatcher::follow`] delivers a failed event again.
    pub fn with_backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff;
        self
    }

    /// Publishes everything after the checkpoint, a batch at a time, saving
    /// the checkpoint after each batch.
    ///
    /// # Errors
    /// Store failures (reading the log, saving the checkpoint).
    pub async fn catch_up(&self) -> Result<DispatchReport, StoreError> {
        let mut subscription = self.subscription().await?;
        self.drain(&mut subscription).await
    }

    /// Catches up, then publishes new events as they are committed, until
    /// `stop` resolves. After a failed delivery it waits its back-off and
    /// publishes again from the first event that failed.
    ///
    /// # Errors
    /// As [`Dispatcher::catch_up`].
    pub async fn follow(
        &self,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<DispatchReport, StoreError> {
        let mut subscription = self.subscription().await?;
        let mut total = DispatchReport::default();
        let mut failed_in_a_row = 0;
        tokio::pin!(stop);
        loop {
            let done = self.drain(&mut subscription).await?;
            let failed = !done.failures.is_empty();
            total.events += done.events;
            total.failures.extend(done.failures);
            total.checkpoint = done.checkpoint.or(total.checkpoint);
            if failed {
                let wait = self.backoff * 2u32.pow(failed_in_a_row.min(MAX_DOUBLINGS));
                failed_in_a_row += 1;
                tokio::select! {
                    () = &mut stop => return Ok(total),
                    () = tokio::time::sleep(wait) => {}
                }
                // The subscription has read past the failed event; start
                // again from the checkpoint, which stopped just before it.
                subscription = self.subscription().await?;
                continue;
            }
            failed_in_a_row = 0;
            tokio::select! {
                () = &mut stop => return Ok(total),
                () = subscription.wait() => {}
            }
        }
    }

    async fn subscription(&self) -> Result<Subscription, StoreError> {
        let from = self.checkpoints().load(&self.name).await?.unwrap_or(0) + 1;
        Ok(
            Subscription::new(Arc::clone(&self.stores.events), from, EventFilter::all())
                .with_page_size(self.batch),
        )
    }

    fn checkpoints(&self) -> &dyn CheckpointStore {
        &*self.stores.checkpoints
    }

    async fn drain(&self, subscription: &mut Subscription) -> Result<DispatchReport, StoreError> {
        let mut report = DispatchReport::default();
        loop {
            let batch = subscription.next_batch(self.batch).await?;
            let Some(last) = batch.last() else {
                return Ok(report);
            };
            let published = self.bus.publish(&batch).await;
            for failure in &published.failures {
                tracing::warn!(dispatcher = %self.name, handler = %failure.handler, position = failure.position, error = %failure.error, "handler failed");
            }
            report.events += batch.len() as u64;
            // Never past a failed delivery: the next run starts again at the
            // first event a handler failed on (the others see it again too:
            // delivery is at least once).
            let failed = published.failures.iter().map(|f| f.position).min();
            report.failures.extend(published.failures);
            let through = failed.map_or(last.position, |p| p - 1);
            if through >= batch[0].position {
                self.checkpoints().save(&self.name, through).await?;
                report.checkpoint = Some(through);
            }
            if failed.is_some() {
                return Ok(report);
            }
        }
    }
}
