//! Reading whole ranges: a stream or the global log to its end, page by
//! page, as an async sequence of pages. Every caller that needs more than
//! one page uses these, so there is one stop rule, the port's own: a page
//! shorter than asked for (an empty one included) is the end (see
//! [`EventStore::read_stream`] and [`EventStore::read_all`]).

use logbook_domain::{Position, RecordedEvent, StreamId, Version};

use crate::error::StoreError;
use crate::event_store::{EventFilter, EventStore, ReadDirection, StreamVisitor};

/// Events per page when the caller does not say.
pub const DEFAULT_PAGE: usize = 1_000;

/// The pages of one stream from a version on, in one direction, to its end.
pub struct StreamPages<'a> {
    store: &'a dyn EventStore,
    stream: &'a StreamId,
    direction: ReadDirection,
    next: Option<Version>,
    page: usize,
}

impl<'a> StreamPages<'a> {
    /// Pages of `stream` starting at version `from` (inclusive) in
    /// `direction`, `page` events at most each (at least 1).
    pub fn new(
        store: &'a dyn EventStore,
        stream: &'a StreamId,
        direction: ReadDirection,
        from: Version,
        page: usize,
    ) -> Self {
        Self {
            store,
            stream,
            direction,
            next: Some(from),
            page: page.max(1),
        }
    }

    /// The next page, or `None` once the stream's end was reached.
    ///
    /// # Errors
    /// As [`EventStore::read_stream`].
    pub async fn next_page(&mut self) -> Result<Option<Vec<RecordedEvent>>, StoreError> {
        let Some(from) = self.next else {
            return Ok(None);
        };
        let page = self
            .store
            .read_stream(self.stream, self.direction, from, self.page)
            .await?;
        self.advance(page.last().map(|e| e.version), page.len());
        Ok((!page.is_empty()).then_some(page))
    }

    /// Lends the next page's events to `visit` (see
    /// [`EventStore::visit_stream`]) and returns how many it lent, or `None`
    /// once the stream's end was reached (nothing lent).
    ///
    /// # Errors
    /// As [`EventStore::visit_stream`]; `visit` may have been lent events of
    /// the failing page.
    pub async fn visit_next_page(
        &mut self,
        visit: &mut StreamVisitor<'_>,
    ) -> Result<Option<usize>, StoreError> {
        let Some(from) = self.next else {
            return Ok(None);
        };
        let mut last = None;
        let lent = self
            .store
            .visit_stream(self.stream, self.direction, from, self.page, &mut |event| {
                last = Some(event.version);
                visit(event);
            })
            .await?;
        self.advance(last, lent);
        Ok((lent > 0).then_some(lent))
    }

    /// Where the next page starts after one of `len` events whose last has
    /// version `last`: nowhere after a short page (the port's stop rule).
    fn advance(&mut self, last: Option<Version>, len: usize) {
        self.next = match (last, len < self.page) {
            (Some(last), false) => match self.direction {
                ReadDirection::Forward => last.checked_add(1),
                ReadDirection::Backward => last.checked_sub(1).filter(|v| *v > 0),
            },
            _ => None,
        };
    }

    /// Every remaining event, in order.
    ///
    /// # Errors
    /// As [`EventStore::read_stream`].
    pub async fn collect(mut self) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut events = Vec::new();
        while let Some(page) = self.next_page().await? {
            events.extend(page);
        }
        Ok(events)
    }
}

/// The pages of the global log from a position on, through a filter, to its
/// current end.
pub struct GlobalPages<'a> {
    store: &'a dyn EventStore,
    filter: &'a EventFilter,
    next: Option<Position>,
    page: usize,
}

impl<'a> GlobalPages<'a> {
    /// Pages of the events passing `filter` from position `from`
    /// (inclusive), `page` events at most each (at least 1).
    pub fn new(
        store: &'a dyn EventStore,
        from: Position,
        filter: &'a EventFilter,
        page: usize,
    ) -> Self {
        Self {
            store,
            filter,
            next: Some(from),
            page: page.max(1),
        }
    }

    /// The next page, or `None` once the end of the log was reached.
    ///
    /// # Errors
    /// As [`EventStore::read_all`].
    pub async fn next_page(&mut self) -> Result<Option<Vec<RecordedEvent>>, StoreError> {
        let Some(from) = self.next else {
            return Ok(None);
        };
        let page = self.store.read_all(from, self.page, self.filter).await?;
        self.next = match (page.last(), page.len() < self.page) {
            (Some(last), false) => last.position.checked_add(1),
            _ => None,
        };
        Ok((!page.is_empty()).then_some(page))
    }

    /// The position the next page starts at (`None` at the end).
    pub fn position(&self) -> Option<Position> {
        self.next
    }

    /// Every remaining event, in order.
    ///
    /// # Errors
    /// As [`EventStore::read_all`].
    pub async fn collect(mut self) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut events = Vec::new();
        while let Some(page) = self.next_page().await? {
            events.extend(page);
        }
        Ok(events)
    }
}

/// Every event of `stream` from version `from` on, oldest first.
///
/// # Errors
/// As [`EventStore::read_stream`].
pub async fn read_stream_to_end(
    store: &dyn EventStore,
    stream: &StreamId,
    from: Version,
) -> Result<Vec<RecordedEvent>, StoreError> {
    StreamPages::new(store, stream, ReadDirection::Forward, from, DEFAULT_PAGE)
        .collect()
        .await
}
