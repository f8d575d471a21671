//! Stream retention on SQLite: policies in the `stream_retention` table,
//! the cutoffs the ports' rule computes from them, and the scavenge that
//! deletes what they hide.
//!
//! The rule itself is `logbook_ports::retention`; this module only reads
//! the facts it needs (the stored state, the stream's version) and applies
//! the cutoff it answers, as bound values in the reads' SQL.

use std::collections::HashMap;
use std::path::Path;

use chrono::Utc;
use logbook_domain::StreamId;
use logbook_ports::retention::{Cutoff, RetentionState, ScavengeReport, StreamRetention};
use logbook_ports::{StoreError, append};
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{corrupt, store_error};
use crate::rows::{from_micros, sql_int, unsigned};

fn decode(path: &Path, stream: &str, text: &str) -> Result<RetentionState, StoreError> {
    RetentionState::decode(text, || {
        format!(
            "SQLite database {}, table stream_retention, stream {stream}",
            path.display()
        )
    })
}

/// The stored retention state of `stream` (the empty one when none).
pub(crate) fn state_of(
    conn: &Connection,
    path: &Path,
    stream: &StreamId,
) -> Result<RetentionState, StoreError> {
    let text: Option<String> = conn
        .prepare_cached("SELECT state FROM stream_retention WHERE stream = ?1")
        .and_then(|mut s| s.query_row([stream.as_str()], |row| row.get(0)).optional())
        .map_err(|e| {
            store_error(
                path,
                &format!("reading the retention of stream {stream}"),
                e,
            )
        })?;
    text.map_or_else(
        || Ok(RetentionState::default()),
        |text| decode(path, stream.as_str(), &text),
    )
}

/// The cutoff of `stream` now, at version `last` (`None`: no policy).
pub(crate) fn cutoff_of(
    conn: &Connection,
    path: &Path,
    stream: &StreamId,
    last: u64,
) -> Result<Option<Cutoff>, StoreError> {
    let state = state_of(conn, path, stream)?;
    Ok((!state.is_empty()).then(|| state.cutoff(Utc::now(), last)))
}

/// The cutoff now of every stream that has a policy, by stream id.
pub(crate) fn all_cutoffs(
    conn: &Connection,
    path: &Path,
) -> Result<HashMap<String, Cutoff>, StoreError> {
    let error = |e| store_error(path, "reading stream retention", e);
    let mut statement = conn
        .prepare_cached(
            "SELECT r.stream, r.state, coalesce(s.version, 0) \
             FROM stream_retention r LEFT JOIN streams s ON s.stream = r.stream",
        )
        .map_err(error)?;
    let mut rows = statement.query([]).map_err(error)?;
    let now = Utc::now();
    let mut cutoffs = HashMap::new();
    while let Some(row) = rows.next().map_err(error)? {
        let stream: String = row.get(0).map_err(error)?;
        let text: String = row.get(1).map_err(error)?;
        let last: i64 = row.get(2).map_err(error)?;
        let state = decode(path, &stream, &text)?;
        cutoffs.insert(stream, state.cutoff(now, unsigned(last).unwrap_or(0)));
    }
    Ok(cutoffs)
}

/// Sets `stream`'s policy, on the write connection inside a transaction.
pub(crate) fn set_in(
    conn: &Connection,
    path: &Path,
    stream: &StreamId,
    policy: StreamRetention,
    state: append::StreamState,
) -> Result<RetentionState, StoreError> {
    append::check_not_deleted(stream, state.deleted)?;
    let old = state_of(conn, path, stream)?;
    let new = old.replace(policy, Utc::now(), state.version.unwrap_or(0));
    let error = |e| {
        store_error(
            path,
            &format!("setting the retention of stream {stream}"),
            e,
        )
    };
    if new.is_empty() {
        conn.prepare_cached("DELETE FROM stream_retention WHERE stream = ?1")
            .and_then(|mut s| s.execute([stream.as_str()]))
            .map_err(error)?;
    } else {
        conn.prepare_cached(
            "INSERT INTO stream_retention (stream, state) VALUES (?1, ?2) \
             ON CONFLICT (stream) DO UPDATE SET state = excluded.state",
        )
        .and_then(|mut s| s.execute(params![stream.as_str(), new.encode()]))
        .map_err(error)?;
    }
    Ok(new)
}

/// Deletes every event retention lets go, on the write connection inside a
/// transaction ([`vacuum_in`] then returns the pages).
pub(crate) fn scavenge_in(conn: &Connection, path: &Path) -> Result<ScavengeReport, StoreError> {
    let cutoffs = all_cutoffs(conn, path)?;
    let error = |e| store_error(path, "scavenging", e);
    let mut report = ScavengeReport::default();
    let mut streams: Vec<_> = cutoffs.into_iter().collect();
    streams.sort_by(|a, b| a.0.cmp(&b.0));
    for (stream, cut) in streams {
        let mut candidates = conn
            .prepare_cached(
                "SELECT position, version, recorded_at, \
                 length(CAST(payload AS BLOB)) + coalesce(length(CAST(metadata AS BLOB)), 0) \
                 FROM events WHERE stream = ?1 AND version < ?2",
            )
            .map_err(error)?;
        let mut rows = candidates
            .query(params![stream, sql_int(cut.last_version)])
            .map_err(error)?;
        let mut doomed = Vec::new();
        let mut bytes = 0u64;
        while let Some(row) = rows.next().map_err(error)? {
            let (position, version, micros, len): (i64, i64, i64, i64) = (
                row.get(0).map_err(error)?,
                row.get(1).map_err(error)?,
                row.get(2).map_err(error)?,
                row.get(3).map_err(error)?,
            );
            let recorded_at = from_micros(micros).ok_or_else(|| {
                corrupt(
                    path,
                    "events",
                    &format!("position {position}"),
                    "timestamp out of range",
                )
            })?;
            if cut.reclaims(unsigned(version).unwrap_or(0), recorded_at) {
                doomed.push(position);
                bytes += unsigned(len).unwrap_or(0);
            }
        }
        drop(rows);
        let mut delete = conn
            .prepare_cached("DELETE FROM events WHERE position = ?1")
            .map_err(error)?;
        for position in &doomed {
            delete.execute([position]).map_err(error)?;
        }
        report.add_stream(doomed.len() as u64, bytes);
    }
    conn.execute_batch("PRAGMA incremental_vacuum")
        .map_err(error)?;
    Ok(report)
}

/// Hands the free pages back to the file system when the database uses
/// incremental auto-vacuum (every database this adapter creates does; on
/// others it does nothing). Its own transaction, after the deletion's.
pub(crate) fn vacuum_in(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let error = |e| store_error(path, "returning free pages (PRAGMA incremental_vacuum)", e);
    let free: i64 = conn
        .pragma_query_value(None, "freelist_count", |row| row.get(0))
        .map_err(error)?;
    // One step of the pragma frees one page: step it to the end.
    let mut vacuum = conn
        .prepare(&format!("PRAGMA incremental_vacuum({free})"))
        .map_err(error)?;
    let mut steps = vacuum.raw_query();
    while steps.next().map_err(error)?.is_some() {}
    Ok(())
}
