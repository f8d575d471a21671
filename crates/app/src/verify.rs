//! Walking a store through the event-store port and checking what every
//! store promises: global positions increasing from 1 and gap-free except
//! where retention hides events, each stream's versions contiguous from 1
//! except where its retention hides them, nothing after a stream's
//! tombstone, every payload JSON.
//!
//! Holes that retention explains: a stream whose visible versions skip
//! some must have a retention policy (or the floors an earlier one left);
//! when the log has holes, every stream without retention must read to its
//! stored version, so an event lost from a stream without a policy is
//! still caught. What cannot be told apart from retention is a whole
//! stream lost whose every event a policy would have hidden.
//! Adapters with their own byte-level checks add those on top: the file
//! store's checksums, SQLite's own integrity check.

use std::collections::HashMap;
use std::fmt;

use logbook_domain::{StreamId, Version};
use logbook_ports::append::is_tombstone;
use logbook_ports::{EventFilter, EventStore, GlobalPages, StoreError};

use crate::store_url::{StoreUrl, StoreUrlError};
use crate::transfer::Progress;

/// Events read per page.
const PAGE: usize = 10_000;

/// What a walk found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
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
pub async fn walk(
    store: &dyn EventStore,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<WalkReport, StoreError> {
    let total = store.head_position().await?.unwrap_or(0);
    let mut report = WalkReport::default();
    let mut versions: HashMap<StreamId, (Version, bool)> = HashMap::new();
    let mut retained: HashMap<StreamId, bool> = HashMap::new();
    let mut holes = false;
    let mut expected_position = 1;
    let all = EventFilter::all();
    let mut pages = GlobalPages::new(store, 1, &all, PAGE);
    while let Some(page) = pages.next_page().await? {
        for event in page {
            let at = format!(
                "global position {} ({} version {})",
                event.position, event.stream, event.version
            );
            let has_retention = match retained.get(&event.stream) {
                Some(has) => *has,
                None => {
                    let has = !store.retention(&event.stream).await?.is_empty();
                    retained.insert(event.stream.clone(), has);
                    has
                }
            };
            holes |= event.position > expected_position;
            let problem = if event.position < expected_position {
                Some(format!(
                    "{at}: positions go back from {}",
                    expected_position - 1
                ))
            } else {
                let (last, deleted) = versions.entry(event.stream.clone()).or_insert((0, false));
                if *deleted {
                    Some(format!("{at}: an event after the stream's tombstone"))
                } else if event.version != *last + 1 && !(has_retention && event.version > *last) {
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
            expected_position = event.position + 1;
        }
        progress(Progress {
            done: expected_position - 1,
            total,
        });
    }
    if holes {
        report.problem = unexplained_hole(store, &versions, &retained).await?;
    }
    report.streams = versions.len();
    report.deleted_streams = versions.values().filter(|(_, d)| *d).count();
    Ok(report)
}

/// With holes in the log: the first stream without retention that does
/// not read to its stored version (an event lost, not hidden).
async fn unexplained_hole(
    store: &dyn EventStore,
    versions: &HashMap<StreamId, (Version, bool)>,
    retained: &HashMap<StreamId, bool>,
) -> Result<Option<String>, StoreError> {
    let mut streams: Vec<_> = versions.iter().collect();
    streams.sort_by(|a, b| a.0.cmp(b.0));
    for (stream, (last, deleted)) in streams {
        if *deleted || retained.get(stream).copied().unwrap_or(false) {
            continue;
        }
        let stored = store.stream_version(stream).await?.unwrap_or(0);
        if stored != *last {
            return Ok(Some(format!(
                "stream {stream} is at version {stored} but its events in the global log end at version {last}, and it has no retention to hide the rest: events are missing"
            )));
        }
    }
    Ok(None)
}

/// How thorough [`verify_store_with`] is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifyOptions {
    /// On SQLite, run `PRAGMA quick_check` (page structure only) instead of
    /// the full `PRAGMA integrity_check` (which also matches every index
    /// against its table). Other stores check the same either way.
    pub quick: bool,
}

/// What [`verify_store`] found: the adapter's own byte-level check where it
/// has one, then the walk through the port.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StoreVerification {
    /// The adapter's byte-level report (the file store's segments, batches
    /// and checksums; SQLite's integrity check), printed as the adapter
    /// words it.
    pub byte_level: Option<String>,
    /// The first corruption the byte-level check found, with its file and
    /// offset.
    pub corruption: Option<String>,
    /// The walk through the port; `None` when corruption stopped the check
    /// before it.
    pub walk: Option<WalkReport>,
}

impl StoreVerification {
    /// True when neither check found anything wrong.
    pub fn is_ok(&self) -> bool {
        self.corruption.is_none() && self.walk.as_ref().is_some_and(WalkReport::is_ok)
    }

    /// The first problem found, with where it is.
    pub fn problem(&self) -> Option<&str> {
        self.corruption
            .as_deref()
            .or_else(|| self.walk.as_ref().and_then(|w| w.problem.as_deref()))
    }
}

/// Why a store could not be verified at all (as opposed to being verified
/// and found wrong, which [`StoreVerification`] reports).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Nothing is stored at the URL's path.
    #[error("no {kind} at {path}")]
    NotFound {
        /// What was looked for: "file store", "SQLite database".
        kind: &'static str,
        /// Where.
        path: std::path::PathBuf,
    },
    /// The store could not be opened.
    #[error(transparent)]
    Open(#[from] StoreUrlError),
    /// Reading failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks the store `url` names without changing it, as
/// [`verify_store_with`] with the full check, telling `progress` how far
/// the walk got.
///
/// # Errors
/// As [`verify_store_with`].
pub async fn verify_store(
    url: &StoreUrl,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<StoreVerification, VerifyError> {
    verify_store_with(url, VerifyOptions::default(), progress).await
}

/// Checks the store `url` names without changing it: a file store is read
/// without its write lock and a torn tail is reported, not cut; a SQLite
/// database is opened read-only and gets SQLite's own integrity check
/// (quick with [`VerifyOptions::quick`]) before the walk; a store that does
/// not exist is an error, never created.
///
/// # Errors
/// [`VerifyError`] when the store is missing or cannot be read at all.
pub async fn verify_store_with(
    url: &StoreUrl,
    options: VerifyOptions,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<StoreVerification, VerifyError> {
    #[cfg(not(feature = "sqlite"))]
    let _ = options;
    let mut verification = StoreVerification::default();
    match url {
        StoreUrl::File(dir) if !dir.is_dir() => {
            return Err(VerifyError::NotFound {
                kind: "file store",
                path: dir.clone(),
            });
        }
        #[cfg(feature = "file")]
        StoreUrl::File(dir) => {
            let walked = dir.clone();
            let report =
                tokio::task::spawn_blocking(move || logbook_adapters_file::verify(&walked))
                    .await
                    .map_err(|error| StoreError::backend("file", "verifying the log", error))??;
            verification.byte_level = Some(report.to_string());
            if let Some(corruption) = &report.corruption {
                verification.corruption = Some(corruption.to_string());
                return Ok(verification);
            }
        }
        StoreUrl::Sqlite(path) if !path.is_file() => {
            return Err(VerifyError::NotFound {
                kind: "SQLite database",
                path: path.clone(),
            });
        }
        #[cfg(feature = "sqlite")]
        StoreUrl::Sqlite(path) => {
            use logbook_adapters_sqlite::IntegrityCheck;
            let checked = path.clone();
            let check = if options.quick {
                IntegrityCheck::Quick
            } else {
                IntegrityCheck::Full
            };
            let report = tokio::task::spawn_blocking(move || {
                logbook_adapters_sqlite::integrity_check(&checked, check)
            })
            .await
            .map_err(|error| StoreError::backend("sqlite", "checking integrity", error))??;
            verification.byte_level = Some(report.to_string());
            if !report.is_ok() {
                verification.corruption = Some(report.to_string());
                return Ok(verification);
            }
        }
        _ => {}
    }
    let stores = url.open_read_only()?;
    verification.walk = Some(walk(&*stores.events, progress).await?);
    Ok(verification)
}
