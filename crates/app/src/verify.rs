//! Walking a store through the event-store port and checking what every
//! store promises: global positions gap-free from 1, each stream's versions
//! contiguous from 1, nothing after a stream's tombstone, every payload JSON.
//! Adapters with their own byte-level checks (the file store's checksums)
//! add those on top.

use std::collections::HashMap;
use std::fmt;

use logbook_domain::{StreamId, Version};
use logbook_ports::append::is_tombstone;
use logbook_ports::{EventFilter, EventStore, StoreError};

/// Events read per page.
const PAGE: usize = 10_000;

/// What a walk found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalkReport {
    /// Events read.
    pub events: u64,
    /// Streams among them.
    pub streams: usize,
    /// Streams ending in a tombstone.
    pub deleted_streams: usize,
    /// The first broken promise, with where it is.
    pub problem: Option<String>,
}

impl WalkReport {
    /// True when nothing was wrong.
    pub fn is_ok(&self) -> bool {
        self.problem.is_none()
    }
}

impl fmt::Display for WalkReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "events:          {}", self.events)?;
        writeln!(f, "streams:         {}", self.streams)?;
        writeln!(f, "deleted streams: {}", self.deleted_streams)?;
        match &self.problem {
            Some(problem) => write!(f, "problem:         {problem}"),
            None => write!(f, "problem:         none"),
        }
    }
}

/// Reads the whole global log, checking it as it goes; stops at the first
/// problem.
///
/// # Errors
/// Store failures (a store that cannot read its own data reports
/// [`StoreError::Corrupt`] with the location).
pub async fn walk(store: &dyn EventStore) -> Result<WalkReport, StoreError> {
    let mut report = WalkReport::default();
    let mut versions: HashMap<StreamId, (Version, bool)> = HashMap::new();
    let mut expected_position = 1;
    loop {
        let page = store
            .read_all(expected_position, PAGE, &EventFilter::all())
            .await?;
        if page.is_empty() {
            break;
        }
        for event in page {
            let at = format!(
                "global position {} ({} version {})",
                event.position, event.stream, event.version
            );
            let problem = if event.position != expected_position {
                Some(format!(
                    "global position {expected_position} is missing; the log goes on at {}",
                    event.position
                ))
            } else {
                let (last, deleted) = versions.entry(event.stream.clone()).or_insert((0, false));
                if *deleted {
                    Some(format!("{at}: an event after the stream's tombstone"))
                } else if event.version != *last + 1 {
                    Some(format!("{at}: version {} was expected", *last + 1))
                } else if serde_json::from_slice::<serde::de::IgnoredAny>(event.payload.as_bytes())
                    .is_err()
                {
                    Some(format!("{at}: the payload is not JSON"))
                } else {
                    *last = event.version;
                    *deleted = is_tombstone(&event.event_type);
                    None
                }
            };
            if problem.is_some() {
                report.problem = problem;
                report.streams = versions.len();
                report.deleted_streams = versions.values().filter(|(_, d)| *d).count();
                return Ok(report);
            }
            report.events += 1;
            expected_position += 1;
        }
    }
    report.streams = versions.len();
    report.deleted_streams = versions.values().filter(|(_, d)| *d).count();
    Ok(report)
}
