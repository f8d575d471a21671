//! The [`EventStore`] port: append with optimistic concurrency, read a
//! stream, read the global log.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, NaiveTime, SubsecRound, Utc};
use logbook_domain::{NewEvent, Position, RecordedEvent, RecordedEventRef, StreamId, Version};

use crate::error::StoreError;
use crate::retention::{RetentionState, ScavengeReport, StreamRetention};

/// What the caller believes about a stream's version when appending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpectedVersion {
    /// No check.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must have at least one event.
    StreamExists,
    /// The stream must be exactly at this version. `Exact(0)` means the
    /// stream has no events, as [`ExpectedVersion::NoStream`].
    Exact(Version),
}

impl ExpectedVersion {
    /// The expectation that holds for a stream at `current` (`None`: no
    /// stream): what an aggregate loaded at that version appends with.
    pub fn from_current(current: Option<Version>) -> Self {
        match current {
            None | Some(0) => Self::NoStream,
            Some(v) => Self::Exact(v),
        }
    }

    /// True when a stream at `current` satisfies this expectation.
    pub fn is_satisfied_by(self, current: Option<Version>) -> bool {
        let current = current.filter(|v| *v > 0);
        match self {
            Self::Any => true,
            Self::NoStream | Self::Exact(0) => current.is_none(),
            Self::StreamExists => current.is_some(),
            Self::Exact(v) => current == Some(v),
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any version"),
            Self::NoStream => f.write_str("no stream"),
            Self::StreamExists => f.write_str("an existing stream"),
            Self::Exact(v) => write!(f, "version {v}"),
        }
    }
}

/// Which way to read a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadDirection {
    /// Versions from `from` upwards, oldest first.
    Forward,
    /// Versions from `from` downwards, newest first. `from = u64::MAX` starts
    /// at the end.
    Backward,
}

impl ReadDirection {
    /// The entries a stream read returns, for a stream held as a slice in
    /// version order (entry `i` is version `i + 1`): from version `from` in
    /// this direction, at most `limit` of them.
    pub fn select<T>(self, versions: &[T], from: Version, limit: usize) -> Vec<&T> {
        let selected = versions[self.indexes(versions.len() as u64, from, limit)].iter();
        match self {
            Self::Forward => selected.collect(),
            Self::Backward => selected.rev().collect(),
        }
    }

    /// The same selection for a stream of `len` events, as indexes into it
    /// (index `i` is version `i + 1`): a forward read returns them in
    /// ascending order, a backward read in descending order.
    pub fn indexes(self, len: u64, from: Version, limit: usize) -> std::ops::Range<usize> {
        let limit = u64::try_from(limit).unwrap_or(u64::MAX);
        match self {
            Self::Forward => {
                let start = from.max(1).min(len + 1) - 1;
                start as usize..start.saturating_add(limit).min(len) as usize
            }
            Self::Backward => {
                let end = from.min(len);
                end.saturating_sub(limit) as usize..end as usize
            }
        }
    }
}

/// The result of a successful append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    /// The stream's version after the batch: the version of its last event
    /// (for an empty batch, the stream's current version).
    pub stream_version: Option<Version>,
    /// Global position of the batch's first event (`None` for an empty batch).
    pub first_position: Option<Position>,
    /// Global position of the batch's last event (`None` for an empty batch).
    pub last_position: Option<Position>,
    /// True when the batch had been recorded before (an idempotent retry)
    /// and nothing was written this time.
    pub already_recorded: bool,
}

/// Which events a global-log read returns. The default matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only these event types (empty: every type).
    pub event_types: Vec<String>,
    /// Only streams whose id starts with this prefix (a category such as
    /// `BankAccount-`).
    pub stream_prefix: Option<String>,
}

impl EventFilter {
    /// Matches every event.
    pub fn all() -> Self {
        Self::default()
    }

    /// Matches events of the given types.
    pub fn event_types<I, S>(types: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            event_types: types.into_iter().map(Into::into).collect(),
            stream_prefix: None,
        }
    }

    /// Matches events of streams whose id starts with `prefix`.
    pub fn stream_prefix(prefix: impl Into<String>) -> Self {
        Self {
            event_types: Vec::new(),
            stream_prefix: Some(prefix.into()),
        }
    }

    /// True when the filter lets everything through.
    pub fn is_all(&self) -> bool {
        self.event_types.is_empty() && self.stream_prefix.is_none()
    }

    /// True when an event of `stream` and `event_type` passes.
    pub fn matches(&self, stream: &str, event_type: &str) -> bool {
        (self.event_types.is_empty() || self.event_types.iter().any(|t| t == event_type))
            && self
                .stream_prefix
                .as_deref()
                .is_none_or(|prefix| stream.starts_with(prefix))
    }
}

/// What [`EventStore::visit_stream`] lends each event to, in order.
pub type StreamVisitor<'v> = dyn for<'e> FnMut(RecordedEventRef<'e>) + Send + 'v;

/// Wakes subscribers when events are committed: the value is the head
/// position after the latest commit. Await `changed()`, then read the
/// global log from where you were.
pub type CommitSignal = tokio::sync::watch::Receiver<Position>;

/// The time a store records for an append: now, in UTC, truncated to
/// microseconds so that every store round-trips it exactly.
pub fn timestamp_now() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(timestamp_now_micros())
        .unwrap_or_else(|| Utc::now().trunc_subsecs(6))
}

/// [`timestamp_now`] as stores keep it, microseconds since the Unix epoch
/// (rounded down), read from the clock without making a `DateTime`.
pub fn timestamp_now_micros() -> i64 {
    let micros = |d: std::time::Duration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(after) => micros(after),
        // Before the epoch: down is further back.
        Err(before) => {
            let nanos = before.duration().as_nanos();
            -i64::try_from(nanos.div_ceil(1_000)).unwrap_or(i64::MAX)
        }
    }
}

/// Turns times as stores keep them (microseconds since the Unix epoch) back
/// into times, exactly as `DateTime::from_timestamp_micros` does, but
/// remembering the last day it met: the events of one read mostly share a
/// day, and finding a day's date is most of the cost.
#[derive(Debug, Default)]
pub struct StoredTimes {
    /// The last day met: its first microsecond and its date.
    last_day: Option<(i64, NaiveDate)>,
}

impl StoredTimes {
    /// The time `micros` microseconds after the Unix epoch, or `None`
    /// outside the range a `DateTime` holds.
    #[inline]
    pub fn time(&mut self, micros: i64) -> Option<DateTime<Utc>> {
        const MICROS_PER_SECOND: i64 = 1_000_000;
        const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;
        let (start, date) = match self.last_day {
            Some((start, date)) if (0..MICROS_PER_DAY).contains(&(micros.wrapping_sub(start))) => {
                (start, date)
            }
            _ => {
                // Past i64 only far outside the years a `DateTime` holds.
                let start = micros
                    .div_euclid(MICROS_PER_DAY)
                    .checked_mul(MICROS_PER_DAY)?;
                let date = DateTime::from_timestamp(start / MICROS_PER_SECOND, 0)?.date_naive();
                self.last_day = Some((start, date));
                (start, date)
            }
        };
        let of_day = micros - start;
        let second = u32::try_from(of_day / MICROS_PER_SECOND).ok()?;
        let nano = u32::try_from(of_day % MICROS_PER_SECOND * 1_000).ok()?;
        let time = NaiveTime::from_num_seconds_from_midnight_opt(second, nano)?;
        Some(date.and_time(time).and_utc())
    }
}

/// An append-only store of streams of events with one global order.
///
/// Every implementation passes the conformance suite
/// (`logbook_ports::conformance`, feature `conformance`).
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Appends `events` to `stream`, all or nothing, if the stream is at the
    /// `expected` version. The store assigns contiguous stream versions
    /// (continuing the stream), strictly increasing global positions and,
    /// for events without `recorded_at`, the current time.
    ///
    /// Re-appending a batch that is already recorded (same event ids, same
    /// order, at the place `expected` names, or anywhere in the stream for
    /// [`ExpectedVersion::Any`]) is an idempotent retry: it succeeds with the
    /// original outcome and `already_recorded = true`, and writes nothing.
    ///
    /// An empty batch writes nothing and only checks `expected`.
    ///
    /// # Errors
    /// - MUST return [`StoreError::WrongExpectedVersion`], writing nothing,
    ///   when the stream is not at `expected` and the batch is not a retry
    ///   (including a *different* batch at a place that is already taken).
    /// - MUST return [`StoreError::DuplicateEventId`], writing nothing, when
    ///   an event id is already recorded elsewhere.
    /// - MUST return [`StoreError::InvalidEvent`], writing nothing, for an
    ///   empty or reserved (`$`-prefixed) event type or an id repeated within
    ///   the batch.
    /// - MUST return [`StoreError::StreamDeleted`], writing nothing, when the
    ///   stream was deleted.
    /// - Backend failures as [`StoreError::Io`] / [`StoreError::Backend`];
    ///   then nothing was acknowledged.
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError>;

    /// Soft-deletes `stream`: records a tombstone event (type
    /// [`STREAM_DELETED`](crate::append::STREAM_DELETED), empty payload) at
    /// its next version, after which the stream can be neither read nor
    /// appended to. Its events, tombstone included, stay in the global log
    /// for audit and projections.
    ///
    /// # Errors
    /// - MUST return [`StoreError::StreamDeleted`] when it is deleted already.
    /// - MUST return [`StoreError::WrongExpectedVersion`], deleting nothing,
    ///   when the stream is not at `expected`; `NoStream` never holds (there
    ///   is nothing to delete). `Any` on a stream that does not exist records
    ///   the tombstone, reserving the name.
    async fn delete_stream(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
    ) -> Result<AppendOutcome, StoreError>;

    /// Reads up to `limit` events of `stream` starting at version `from`
    /// (inclusive) in `direction`. A stream that does not exist reads as
    /// empty. Never touches other streams' events.
    ///
    /// Events hidden by the stream's retention ([`EventStore::set_retention`])
    /// are left out, as if they were not there.
    ///
    /// A page is short only at the end: it holds exactly `limit` events
    /// whenever the stream has that many visible from `from` on in `direction`, so
    /// a page of fewer than `limit` events (an empty one included) is the
    /// end. [`StreamPages`](crate::read::StreamPages) relies on this.
    ///
    /// # Errors
    /// MUST return [`StoreError::StreamDeleted`] for a deleted stream;
    /// backend failures and [`StoreError::Corrupt`] for unreadable data.
    async fn read_stream(
        &self,
        stream: &StreamId,
        direction: ReadDirection,
        from: Version,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Lends the events [`EventStore::read_stream`] returns for the same
    /// arguments to `visit`, one at a time and in the same order, instead of
    /// returning them, and returns how many it lent. What `visit` gets
    /// borrows from the store where it can (payload bytes as stored, the
    /// stream id, the type name), so a reader that only decodes each event
    /// builds no envelope. The same events are left out (retention), and a
    /// page is short only at the end, as with `read_stream`.
    ///
    /// `visit` may run while the store holds a lock or a connection: it
    /// must not call the store, and should do no more than fold the event.
    ///
    /// The default implementation reads the page with `read_stream` and
    /// lends its events; stores that can lend their own bytes override it.
    ///
    /// # Errors
    /// As [`EventStore::read_stream`]: MUST return
    /// [`StoreError::StreamDeleted`] for a deleted stream, lending nothing;
    /// backend failures and [`StoreError::Corrupt`] for unreadable data.
    /// On an error `visit` may have been lent events of the page before the
    /// failing one (never one after it): the caller discards what it made of
    /// them, as it would discard the page `read_stream` failed to return.
    async fn visit_stream(
        &self,
        stream: &StreamId,
        direction: ReadDirection,
        from: Version,
        limit: usize,
        visit: &mut StreamVisitor<'_>,
    ) -> Result<usize, StoreError> {
        let page = self.read_stream(stream, direction, from, limit).await?;
        for event in &page {
            visit(event.as_lent());
        }
        Ok(page.len())
    }

    /// Reads up to `limit` events of the global log that pass `filter`,
    /// starting at position `from` (inclusive), in position order.
    ///
    /// Events hidden by their stream's retention are left out at once,
    /// reclaimed or not; the positions of the others are unchanged, so the
    /// log may have holes, and a reader goes on at the next position it
    /// holds.
    ///
    /// A page is short only at the end: it holds exactly `limit` events
    /// whenever that many visible committed events from `from` on pass `filter`, so
    /// a page of fewer than `limit` (an empty one included) is the end of
    /// the log as it stood. [`GlobalPages`](crate::read::GlobalPages) relies
    /// on this.
    ///
    /// # Errors
    /// Backend failures and [`StoreError::Corrupt`] for unreadable data.
    async fn read_all(
        &self,
        from: Position,
        limit: usize,
        filter: &EventFilter,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The version of the stream's last event, or `None` if it has none.
    ///
    /// # Errors
    /// MUST return [`StoreError::StreamDeleted`] for a deleted stream;
    /// backend failures.
    async fn stream_version(&self, stream: &StreamId) -> Result<Option<Version>, StoreError>;

    /// The position of the last event in the global log, or `None` if the
    /// store is empty.
    ///
    /// # Errors
    /// Backend failures.
    async fn head_position(&self) -> Result<Option<Position>, StoreError>;

    /// Sets `stream`'s retention policy (see [`crate::retention`]), in force
    /// for every read from the moment this returns, and durable. What the
    /// replaced policy hid at this moment stays hidden (the returned state
    /// keeps it as floors), so loosening or clearing ([`StreamRetention::none`])
    /// a policy never brings events back. A stream that does not exist yet
    /// may be given a policy; the stream's version is not changed.
    ///
    /// # Errors
    /// - MUST return [`StoreError::StreamDeleted`], changing nothing, for a
    ///   deleted stream.
    /// - Backend failures; then the old policy is still in force.
    async fn set_retention(
        &self,
        stream: &StreamId,
        policy: StreamRetention,
    ) -> Result<RetentionState, StoreError>;

    /// `stream`'s retention state: its policy and floors
    /// ([`RetentionState::default`] when none was ever set).
    ///
    /// # Errors
    /// Backend failures and [`StoreError::Corrupt`] for an unreadable state.
    async fn retention(&self, stream: &StreamId) -> Result<RetentionState, StoreError>;

    /// Reclaims the storage of every event that retention hides, except
    /// each stream's last event, and reports what it reclaimed. Reads see
    /// the same events before and after (hidden events are never read);
    /// versions, positions and every other event's bytes are unchanged,
    /// and positions are never reused. Safe to run while others append and
    /// read; running it again reclaims nothing new.
    ///
    /// # Errors
    /// Backend failures and [`StoreError::Corrupt`]; then every event that
    /// was readable still is.
    async fn scavenge(&self) -> Result<ScavengeReport, StoreError>;

    /// A signal that changes after every commit made through this store
    /// (what other processes commit is not signalled: readers that share a
    /// store across processes re-check the log now and then as well).
    /// `None` when the store cannot signal; subscribers then poll.
    fn commits(&self) -> Option<CommitSignal> {
        None
    }

    /// Whether reading the next page of the global log while the caller
    /// works through the current one gains time: true when a read waits on
    /// a disk, a server or a thread of the store's own. A store whose reads
    /// are a copy out of its own memory says false (a read ahead would only
    /// move that copy to another core).
    fn reads_gain_from_read_ahead(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_version_rules() {
        use ExpectedVersion as E;
        assert!(E::Any.is_satisfied_by(None));
        assert!(E::Any.is_satisfied_by(Some(3)));
        assert!(E::NoStream.is_satisfied_by(None));
        assert!(!E::NoStream.is_satisfied_by(Some(1)));
        assert!(E::Exact(0).is_satisfied_by(None));
        assert!(!E::StreamExists.is_satisfied_by(None));
        assert!(E::StreamExists.is_satisfied_by(Some(1)));
        assert!(E::Exact(2).is_satisfied_by(Some(2)));
        assert!(!E::Exact(2).is_satisfied_by(Some(3)));
        assert_eq!(E::from_current(None), E::NoStream);
        assert_eq!(E::from_current(Some(4)), E::Exact(4));
    }

    #[test]
    fn a_read_selects_its_window_of_versions() {
        let versions = [1, 2, 3, 4, 5];
        assert_eq!(ReadDirection::Forward.select(&versions, 2, 2), [&2, &3]);
        assert_eq!(ReadDirection::Forward.select(&versions, 0, 9).len(), 5);
        assert!(ReadDirection::Forward.select(&versions, 6, 9).is_empty());
        assert_eq!(
            ReadDirection::Backward.select(&versions, u64::MAX, 2),
            [&5, &4]
        );
        assert_eq!(ReadDirection::Backward.select(&versions, 2, 9), [&2, &1]);
        assert!(ReadDirection::Backward.select(&versions, 0, 9).is_empty());
    }

    #[test]
    fn the_time_of_an_append_is_now_to_the_microsecond() {
        // Given the clock read around one stamp
        let before = Utc::now();
        let micros = timestamp_now_micros();
        let after = Utc::now();
        // Then the stamp lies between, as whole microseconds rounded down
        let stamp = DateTime::from_timestamp_micros(micros).unwrap();
        assert!(
            before.trunc_subsecs(6) <= stamp && stamp <= after,
            "{stamp}"
        );
        // And the time stamp is the same rule
        let time = timestamp_now();
        assert_eq!(time, time.trunc_subsecs(6));
        assert!(time >= stamp && time <= Utc::now());
    }

    #[test]
    fn stored_times_read_back_as_the_epoch_arithmetic_does() {
        // Given times all over the range, at its edges and beyond, and runs
        // within one day (so the remembered date is used)
        let min = DateTime::<Utc>::MIN_UTC.timestamp_micros();
        let max = DateTime::<Utc>::MAX_UTC.timestamp_micros();
        let day = 86_400_000_000i64;
        let mut micros = vec![
            0,
            -1,
            1,
            min,
            min - 1,
            max,
            max + 1,
            i64::MIN,
            i64::MAX,
            1_746_634_114_633_698,
            -62_135_596_800_000_000,
        ];
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20_000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let at = state as i64;
            micros.push(at);
            micros.push(at % (day * 365 * 600));
            let base = (at % (day * 365 * 60)).div_euclid(day) * day;
            micros.extend([base, base + 1, base + day - 1, base + day, base - 1]);
        }
        // When each is read back, in that order, by one reader
        let mut times = StoredTimes::default();
        for m in micros {
            // Then it is the time the epoch arithmetic gives, or none alike
            assert_eq!(times.time(m), DateTime::from_timestamp_micros(m), "{m}");
        }
    }

    #[test]
    fn filter_matches_types_and_prefixes() {
        let f = EventFilter::event_types(["A", "B"]);
        assert!(f.matches("x", "A") && !f.matches("x", "C"));
        let f = EventFilter::stream_prefix("Bank-");
        assert!(f.matches("Bank-1", "A") && !f.matches("Ship-1", "A"));
        assert!(EventFilter::all().is_all());
    }
}
