//! [`Subscription`]: the global log from a position, history first and then
//! live, as one ordered sequence with no gap and no duplicate at the
//! hand-over.
//!
//! Catch-up and live delivery are the same loop: read the next page after
//! the last position delivered; when there is nothing new, wait for the
//! store's commit signal. Because the position is the only state, the switch
//! from history to live cannot skip or repeat an event. Back-pressure is
//! natural: at most one page is buffered, and the next is read only when the
//! consumer asks for it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use logbook_domain::{Position, RecordedEvent};
use logbook_ports::{CommitSignal, EventFilter, EventStore, StoreError};

/// Events read per page.
pub const DEFAULT_PAGE: usize = 1_000;

/// How often to re-check the log when no commit was signalled: commits of
/// other processes (two `logbook` invocations on one SQLite file) are not
/// signalled in this one. Stores that cannot signal at all are polled at
/// this rate.
pub const DEFAULT_RECHECK: Duration = Duration::from_millis(250);

/// An ordered read of the global log that waits for new events at its end.
///
/// ```
/// use logbook::Subscription;
/// use logbook_domain::{NewEvent, Payload, StreamId};
/// use logbook_ports::{EventFilter, ExpectedVersion};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let stores = logbook_adapters_memory::stores();
/// let stream = StreamId::new("Sensor-1").unwrap();
/// let reading = || NewEvent::new("Measured", Payload::from_json(b"{}".to_vec()).unwrap());
/// stores.events.append(&stream, ExpectedVersion::Any, vec![reading()]).await.unwrap();
///
/// let mut subscription = Subscription::new(stores.events.clone(), 1, EventFilter::all());
/// // History first ...
/// assert_eq!(subscription.next().await.unwrap().position, 1);
/// // ... then live: the next call waits until another event is committed.
/// let events = stores.events.clone();
/// tokio::spawn(async move {
///     events.append(&stream, ExpectedVersion::Any, vec![reading()]).await.unwrap();
/// });
/// assert_eq!(subscription.next().await.unwrap().position, 2);
/// # });
/// ```
pub struct Subscription {
    events: Arc<dyn EventStore>,
    filter: EventFilter,
    next: Position,
    page: usize,
    recheck: Duration,
    buffer: VecDeque<RecordedEvent>,
    commits: Option<CommitSignal>,
}

impl Subscription {
    /// Events passing `filter` from position `from` (inclusive) on.
    pub fn new(events: Arc<dyn EventStore>, from: Position, filter: EventFilter) -> Self {
        let commits = events.commits();
        Self {
            events,
            filter,
            next: from.max(1),
            page: DEFAULT_PAGE,
            recheck: DEFAULT_RECHECK,
            buffer: VecDeque::new(),
            commits,
        }
    }

    /// Reads pages of `page` events.
    pub fn with_page_size(mut self, page: usize) -> Self {
        self.page = page.max(1);
        self
    }

    /// Re-checks the log at least this often while idle.
    pub fn with_recheck(mut self, recheck: Duration) -> Self {
        self.recheck = recheck;
        self
    }

    /// The position the next read starts from (one past the last event
    /// delivered or skipped by the filter).
    pub fn position(&self) -> Position {
        self.buffer.front().map_or(self.next, |e| e.position)
    }

    /// The next event, waiting for one to be committed if the log is
    /// exhausted.
    ///
    /// # Errors
    /// Store failures; the subscription can be asked again afterwards and
    /// resumes where it was.
    pub async fn next(&mut self) -> Result<RecordedEvent, StoreError> {
        loop {
            if let Some(event) = self.buffer.pop_front() {
                return Ok(event);
            }
            if !self.fill().await? {
                self.wait().await;
            }
        }
    }

    /// Up to `max` events that are already committed, without waiting
    /// (empty when the subscription has caught up).
    ///
    /// # Errors
    /// Store failures.
    pub async fn next_batch(&mut self, max: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        if self.buffer.is_empty() {
            self.fill().await?;
        }
        let take = max.min(self.buffer.len());
        Ok(self.buffer.drain(..take).collect())
    }

    /// Waits until something may have been committed after the last read.
    pub async fn wait(&mut self) {
        match &mut self.commits {
            Some(signal) => {
                // A signal that has not changed since the last read, or a
                // recheck for other processes' commits, whichever is first.
                let _ = tokio::time::timeout(self.recheck, signal.changed()).await;
            }
            None => tokio::time::sleep(self.recheck).await,
        }
    }

    /// Reads the next page into the buffer; false when nothing new.
    async fn fill(&mut self) -> Result<bool, StoreError> {
        if let Some(signal) = &mut self.commits {
            // Mark the current head as seen *before* reading, so a commit
            // that lands during the read still wakes the next wait.
            signal.borrow_and_update();
        }
        let head = if self.filter.is_all() {
            None
        } else {
            self.events.head_position().await?
        };
        let page = self
            .events
            .read_all(self.next, self.page, &self.filter)
            .await?;
        let full = page.len() == self.page;
        if let Some(last) = page.last() {
            self.next = last.position + 1;
        }
        // A filtered page that came back short scanned everything up to the
        // head read before it: skip those non-matching events next time.
        if !full && let Some(head) = head {
            self.next = self.next.max(head + 1);
        }
        let found = !page.is_empty();
        self.buffer.extend(page);
        Ok(found)
    }
}
