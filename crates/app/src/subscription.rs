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
//!
//! A catch-up over a long history may ask for [`Subscription::with_read_ahead`]:
//! after a full page, the next one is read by a task of its own while the
//! consumer works through the current one, so reading and folding overlap
//! (two pages held at most). The pages and their order are the same either
//! way: the read ahead starts where the page before it ended, and its
//! result is taken only when the consumer asks for the next page.

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
    read_ahead: bool,
    ahead: Option<ReadAhead>,
}

/// A page read started before the consumer asked for it; the read stops if
/// the subscription is dropped first.
struct ReadAhead {
    from: Position,
    task: tokio::task::JoinHandle<Result<Page, StoreError>>,
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One page of the global log, and the position the read after it starts at.
struct Page {
    events: Vec<RecordedEvent>,
    next: Position,
}

/// Reads the page of `size` events from `from`, and where the next read
/// starts. A filtered page that came back short scanned everything up to the
/// head read before it, so the next read skips those non-matching events.
async fn read_page(
    events: &dyn EventStore,
    from: Position,
    size: usize,
    filter: &EventFilter,
) -> Result<Page, StoreError> {
    let head = if filter.is_all() {
        None
    } else {
        events.head_position().await?
    };
    let page = events.read_all(from, size, filter).await?;
    let mut next = page.last().map_or(from, |last| last.position + 1);
    if page.len() < size
        && let Some(head) = head
    {
        next = next.max(head + 1);
    }
    Ok(Page { events: page, next })
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
            read_ahead: false,
            ahead: None,
        }
    }

    /// Reads the next page ahead while the current one is consumed (for
    /// catch-ups over long histories; a live tail is read as before).
    pub fn with_read_ahead(mut self) -> Self {
        self.read_ahead = true;
        self
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
        let ahead = self.ahead.take().filter(|ahead| ahead.from == self.next);
        let page = match ahead {
            Some(mut ahead) => {
                let joined = (&mut ahead.task).await;
                match joined {
                    Ok(page) => page?,
                    // The read's task panicked or was cancelled: read again.
                    Err(_) => self.read_here().await?,
                }
            }
            None => self.read_here().await?,
        };
        let full = page.events.len() == self.page;
        self.next = page.next;
        let found = !page.events.is_empty();
        self.buffer.extend(page.events);
        if full && self.read_ahead {
            if let Some(signal) = &mut self.commits {
                // As in `read_here`: seen before the read starts.
                signal.borrow_and_update();
            }
            let (events, filter, size, from) = (
                Arc::clone(&self.events),
                self.filter.clone(),
                self.page,
                self.next,
            );
            self.ahead = Some(ReadAhead {
                from,
                task: tokio::spawn(async move { read_page(&*events, from, size, &filter).await }),
            });
        }
        Ok(found)
    }

    /// Reads the next page on this task.
    async fn read_here(&mut self) -> Result<Page, StoreError> {
        if let Some(signal) = &mut self.commits {
            // Mark the current head as seen *before* reading, so a commit
            // that lands during the read still wakes the next wait.
            signal.borrow_and_update();
        }
        read_page(&*self.events, self.next, self.page, &self.filter).await
    }
}
