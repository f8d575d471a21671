//! [`SqliteEventStore`]: the [`EventStore`] on SQLite.
//!
//! An append is validated on the caller's task, then queued to the writer,
//! which checks the expected version (and recognises retries) inside the
//! group's `BEGIN IMMEDIATE` transaction, right before inserting: the check
//! and the write are one step, also against another process writing the
//! same file. Reads run on the reader pool.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use logbook_domain::{EventId, NewEvent, Position, RecordedEvent, StreamId, Version};
use logbook_ports::append::{self, AppendDecision, IdCheck, RecordedAt, StreamState, WritePlan};
use logbook_ports::event_store::timestamp_now_micros;
use logbook_ports::metadata;
use logbook_ports::retention::{RetentionState, ScavengeReport, StreamRetention};
use logbook_ports::{
    AppendOutcome, CommitSignal, EventFilter, EventStore, ExpectedVersion, ReadDirection,
    StoreError, StoredTimes, StreamVisitor,
};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params};

use crate::Shared;
use crate::error::{corrupt, store_error};
use crate::retention;
use crate::rows::{
    Decoder, EVENT_COLUMNS, IdText, LentPage, STREAM_EVENT_COLUMNS, json_text, sql_int, unsigned,
};

/// Most event types a filter reads with one index search per type, merged;
/// a longer list scans the log in position order instead.
const MAX_MERGED_TYPES: usize = 32;

/// The event store of one SQLite database. Cheap to clone; every clone and
/// the store's snapshot and checkpoint stores share one writer and one
/// reader pool.
#[derive(Clone)]
pub struct SqliteEventStore {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SqliteEventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteEventStore")
            .field("path", &self.shared.path)
            .finish_non_exhaustive()
    }
}

impl SqliteEventStore {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

/// The stream's version and whether it is deleted (its last event is a
/// tombstone): one lookup in `streams`, one in the (stream, version) index.
///
/// A correlated subquery, not a `LEFT JOIN`: SQLite propagates the bound
/// stream into the join's `ON` clause and then re-prepares the join on
/// every execution (it took 6% of the writer's time), which the subquery
/// does not.
fn stream_state(
    conn: &Connection,
    path: &Path,
    stream: &StreamId,
) -> Result<StreamState, StoreError> {
    conn.prepare_cached(
        "SELECT s.version, (SELECT e.event_type FROM events e \
         WHERE e.stream = s.stream AND e.version = s.version) \
         FROM streams s WHERE s.stream = ?1",
    )
    .and_then(|mut s| {
        s.query_row([stream.as_str()], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, Option<String>>(1)?))
        })
        .optional()
    })
    .map(|found| match found {
        Some((version, last_type)) => StreamState {
            version: unsigned(version).filter(|v| *v > 0),
            deleted: last_type.as_deref().is_some_and(append::is_tombstone),
        },
        None => StreamState::default(),
    })
    .map_err(|e| store_error(path, &format!("reading the version of stream {stream}"), e))
}

/// A deletion, on the write connection inside a transaction: decided,
/// then the tombstone written like any event.
fn delete_in(
    conn: &Connection,
    path: &Path,
    stream: &StreamId,
    expected: ExpectedVersion,
) -> Result<AppendOutcome, StoreError> {
    let plan = append::decide_delete(stream, expected, stream_state(conn, path, stream)?)?;
    write_in(
        conn,
        path,
        stream,
        plan,
        &[append::tombstone()],
        &[Vec::new()],
    )
}

/// An append, on the write connection inside a transaction: decided from
/// the stream's state and the first id's row; the `events_by_id` unique
/// index refuses any other recorded id while writing.
fn append_in(
    conn: &Connection,
    path: &Path,
    stream: &StreamId,
    expected: ExpectedVersion,
    events: &[NewEvent],
    metadata: &[Vec<u8>],
) -> Result<AppendOutcome, StoreError> {
    let state = stream_state(conn, path, stream)?;
    let decision =
        append::decide_append(stream, expected, events, state, IdCheck::ByWrite, |id| {
            locate(conn, path, stream, id)
        })?;
    match decision {
        AppendDecision::Write(plan) => write_in(conn, path, stream, plan, events, metadata),
        AppendDecision::Done(outcome) => Ok(outcome),
    }
}

/// Inserts `events` as `plan` says and records the stream's new version.
fn write_in(
    conn: &Connection,
    path: &Path,
    stream: &StreamId,
    plan: WritePlan,
    events: &[NewEvent],
    metadata: &[Vec<u8>],
) -> Result<AppendOutcome, StoreError> {
    let doing = |what: &str| format!("{what} stream {stream}");
    let sql_error = |what: &str| {
        let context = doing(what);
        move |e| store_error(path, &context, e)
    };
    let now = timestamp_now_micros();
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO events (stream, version, event_id, event_type, schema_version, \
             payload, metadata, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .map_err(sql_error("preparing to append to"))?;
    let mut first_position = 0;
    let rows = events.iter().zip(metadata).zip(plan.first_version..);
    for (index, ((event, metadata), version)) in rows.enumerate() {
        let id = IdText::new(&event.id);
        let inserted = insert.execute(params![
            stream.as_str(),
            sql_int(version),
            id.as_sql(),
            event.event_type,
            event.schema_version,
            json_text(event.payload.as_bytes()),
            // Metadata is JSON text, or NULL when empty.
            (!metadata.is_empty()).then(|| json_text(metadata)),
            event.recorded_at.map_or(now, |at| at.timestamp_micros()),
        ]);
        if let Err(error) = inserted {
            // The only unique key a new event can hit is its id (the
            // stream's next versions are free: we hold the write lock).
            if let Some(recorded) = locate(conn, path, stream, &event.id)? {
                return Err(append::duplicate_event_id(stream, event.id, recorded));
            }
            return Err(store_error(path, &doing("appending to"), error));
        }
        if index == 0 {
            first_position = conn.last_insert_rowid();
        }
    }
    conn.prepare_cached(
        "INSERT INTO streams (stream, version) VALUES (?1, ?2) \
         ON CONFLICT (stream) DO UPDATE SET version = excluded.version",
    )
    .and_then(|mut s| s.execute(params![stream.as_str(), sql_int(plan.last_version())]))
    .map_err(sql_error("recording the version of"))?;
    let first_position = unsigned(first_position)
        .ok_or_else(|| corrupt(path, "events", "the appended rows", "negative position"))?;
    Ok(plan.outcome(first_position))
}

/// Where event `id` is recorded, if it is, seen from an append to `stream`.
fn locate(
    conn: &Connection,
    path: &Path,
    stream: &StreamId,
    id: &EventId,
) -> Result<Option<RecordedAt>, StoreError> {
    let text = IdText::new(id);
    let found = conn
        .prepare_cached("SELECT stream, version, position FROM events WHERE event_id = +?1")
        .and_then(|mut s| {
            s.query_row([text.as_sql()], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            })
            .optional()
        })
        .map_err(|e| store_error(path, &format!("looking up event id {id}"), e))?;
    let Some((owner, version, position)) = found else {
        return Ok(None);
    };
    let bad = |detail: String| corrupt(path, "events", &format!("event id {id}"), detail);
    if owner == stream.as_str() {
        return Ok(Some(RecordedAt::ThisStream {
            version: unsigned(version).ok_or_else(|| bad("negative version".into()))?,
            position: unsigned(position).ok_or_else(|| bad("negative position".into()))?,
        }));
    }
    match StreamId::new(&owner) {
        Ok(owner) => Ok(Some(RecordedAt::OtherStream(owner))),
        Err(e) => Err(bad(format!("stream {owner:?}: {e}"))),
    }
}

/// The SQL of a stream read: `?1` stream, `?2` from, `?3` limit.
///
/// Every bound value the planner could look at is written `+?n` (the
/// limit, and values compared with an indexed column): SQLite plans a bare
/// `LIMIT ?n` or `stream = ?n` with the bound value and so re-prepares the
/// statement each time it is bound again, which cost more than reading a
/// small page; the unary plus hides the value from the planner and changes
/// neither the result nor the index used.
fn read_stream_sql(direction: ReadDirection) -> String {
    match direction {
        ReadDirection::Forward => format!(
            "SELECT {STREAM_EVENT_COLUMNS} FROM events \
             WHERE stream = +?1 AND version >= +?2 ORDER BY version LIMIT +?3"
        ),
        ReadDirection::Backward => format!(
            "SELECT {STREAM_EVENT_COLUMNS} FROM events \
             WHERE stream = +?1 AND version <= +?2 ORDER BY version DESC LIMIT +?3"
        ),
    }
}

/// The SQL of a stream read under a retention cutoff: `?1` stream, `?2`
/// lowest version, `?3` limit, `?4` highest version, `?5` earliest
/// `recorded_at`.
fn read_retained_stream_sql(direction: ReadDirection) -> String {
    let order = match direction {
        ReadDirection::Forward => "version",
        ReadDirection::Backward => "version DESC",
    };
    format!(
        "SELECT {STREAM_EVENT_COLUMNS} FROM events \
         WHERE stream = +?1 AND version >= +?2 AND version <= +?4 AND recorded_at >= +?5 \
         ORDER BY {order} LIMIT +?3"
    )
}

fn read_stream_in(
    conn: &Connection,
    path: &Path,
    stream: StreamId,
    direction: ReadDirection,
    from: Version,
    limit: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut events = Vec::with_capacity(limit.min(1024));
    let mut times = StoredTimes::default();
    read_stream_rows(
        conn,
        path,
        &stream,
        direction,
        from,
        limit,
        |decoder, row| {
            events.push(decoder.decode(row, &mut times)?);
            Ok(())
        },
    )?;
    Ok(events)
}

/// A stream read as a page to lend ([`EventStore::visit_stream`]).
fn read_stream_page(
    conn: &Connection,
    path: &Path,
    stream: StreamId,
    direction: ReadDirection,
    from: Version,
    limit: usize,
) -> Result<LentPage, StoreError> {
    let mut page = LentPage::new(stream.clone(), limit.min(1024));
    read_stream_rows(
        conn,
        path,
        &stream,
        direction,
        from,
        limit,
        |decoder, row| {
            page.push(decoder.fields(row)?);
            Ok(())
        },
    )?;
    Ok(page)
}

/// The rows a read of `stream` returns, each given to `each` with the
/// decoder of the read; the deletion check and the retention cutoff
/// first.
fn read_stream_rows(
    conn: &Connection,
    path: &Path,
    stream: &StreamId,
    direction: ReadDirection,
    from: Version,
    limit: usize,
    mut each: impl FnMut(&mut Decoder<'_, true>, &rusqlite::Row<'_>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let state = stream_state(conn, path, stream)?;
    append::check_not_deleted(stream, state.deleted)?;
    if limit == 0 {
        return Ok(());
    }
    let cutoff = retention::cutoff_of(conn, path, stream, state.version.unwrap_or(0))?;
    let error = |e| store_error(path, &format!("reading stream {stream}"), e);
    let (mut statement, bounds) = match cutoff {
        None => (
            conn.prepare_cached(&read_stream_sql(direction))
                .map_err(error)?,
            None,
        ),
        Some(cut) => {
            let (low, high) = match direction {
                ReadDirection::Forward => (from.max(cut.min_version), u64::MAX),
                ReadDirection::Backward => (cut.min_version, from),
            };
            let earliest = cut
                .min_recorded_at
                .map_or(i64::MIN, |t| t.timestamp_micros());
            (
                conn.prepare_cached(&read_retained_stream_sql(direction))
                    .map_err(error)?,
                Some((low, high, earliest)),
            )
        }
    };
    let mut rows = match bounds {
        None => statement.query(params![
            stream.as_str(),
            sql_int(from),
            sql_int(limit as u64)
        ]),
        Some((low, high, earliest)) => statement.query(params![
            stream.as_str(),
            sql_int(low),
            sql_int(limit as u64),
            sql_int(high),
            earliest
        ]),
    }
    .map_err(error)?;
    let mut decoder = Decoder::for_stream(path, stream.clone());
    while let Some(row) = rows.next().map_err(error)? {
        each(&mut decoder, row)?;
    }
    Ok(())
}

/// The SQL of a global-log read with `filter`, and its parameters after
/// `?1` (from) and `?2` (limit).
fn read_all_sql(filter: &EventFilter) -> (String, Vec<Value>) {
    let mut params = Vec::new();
    // `substr` compares the literal prefix: `%` and `_` are plain text.
    let prefix = filter.stream_prefix.as_ref().map(|prefix| {
        params.push(Value::Integer(prefix.chars().count() as i64));
        params.push(Value::Text(prefix.clone()));
        " AND substr(stream, 1, ?3) = ?4"
    });
    let prefix = prefix.unwrap_or("");
    let mut types: Vec<&str> = filter.event_types.iter().map(String::as_str).collect();
    types.sort_unstable();
    types.dedup();
    let sql = match types.len() {
        0 => format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE position >= ?1{prefix} \
             ORDER BY position LIMIT +?2"
        ),
        n if n <= MAX_MERGED_TYPES => {
            // One index search per type, merged in position order by SQLite
            // (MERGE (UNION ALL)): no sort, no scan of other types.
            let first = params.len() + 3;
            let arms: Vec<String> = (0..n)
                .map(|i| {
                    format!(
                        "SELECT {EVENT_COLUMNS} FROM events \
                         WHERE event_type = +?{} AND position >= +?1{prefix}",
                        first + i
                    )
                })
                .collect();
            params.extend(types.iter().map(|t| Value::Text((*t).to_owned())));
            format!("{} ORDER BY position LIMIT +?2", arms.join(" UNION ALL "))
        }
        n => {
            let first = params.len() + 3;
            let list: Vec<String> = (0..n).map(|i| format!("?{}", first + i)).collect();
            params.extend(types.iter().map(|t| Value::Text((*t).to_owned())));
            // `+event_type`: scan in position order, filtering, rather than
            // sorting every event of so many types.
            format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE position >= ?1{prefix} \
                 AND +event_type IN ({}) ORDER BY position LIMIT +?2",
                list.join(", ")
            )
        }
    };
    (sql, params)
}

/// A global-log read: the events passing `filter` and not hidden by their
/// stream's retention. Pages hidden events leave short are filled by
/// reading on, so a page is short only at the end.
fn read_all_in(
    conn: &Connection,
    path: &Path,
    from: Position,
    limit: usize,
    filter: &EventFilter,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let cutoffs = retention::all_cutoffs(conn, path)?;
    if cutoffs.is_empty() {
        return read_all_rows(conn, path, from, limit, filter);
    }
    let mut out = Vec::new();
    let mut next = from;
    while out.len() < limit {
        let want = limit - out.len();
        let page = read_all_rows(conn, path, next, want, filter)?;
        match logbook_ports::retention::keep_visible(&mut out, page, want, &cutoffs) {
            Some(after) => next = after,
            None => break,
        }
    }
    Ok(out)
}

fn read_all_rows(
    conn: &Connection,
    path: &Path,
    from: Position,
    limit: usize,
    filter: &EventFilter,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let (sql, extra) = read_all_sql(filter);
    let error = |e| store_error(path, "reading the global log", e);
    let mut statement = conn.prepare_cached(&sql).map_err(error)?;
    let mut values: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(2 + extra.len());
    let from = sql_int(from);
    let limit_sql = sql_int(limit as u64);
    values.push(&from);
    values.push(&limit_sql);
    values.extend(extra.iter().map(|v| v as &dyn rusqlite::ToSql));
    let mut rows = statement.query(values.as_slice()).map_err(error)?;
    let mut events = Vec::with_capacity(limit.min(4096));
    let mut decoder = Decoder::for_log(path);
    let mut times = StoredTimes::default();
    while let Some(row) = rows.next().map_err(error)? {
        events.push(decoder.decode(row, &mut times)?);
    }
    Ok(events)
}

#[async_trait]
impl EventStore for SqliteEventStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        append::validate_batch(&events)?;
        let metadata = metadata::encode(&events)?;
        let stream = stream.clone();
        let path = self.shared.path.clone();
        self.shared
            .writer
            .run(
                events.len(),
                move |conn| append_in(conn, &path, &stream, expected, &events, &metadata),
                |outcome: &AppendOutcome| {
                    outcome.last_position.filter(|_| !outcome.already_recorded)
                },
            )
            .await
    }

    async fn delete_stream(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
    ) -> Result<AppendOutcome, StoreError> {
        let stream = stream.clone();
        let path = self.shared.path.clone();
        self.shared
            .writer
            .run(
                1,
                move |conn| delete_in(conn, &path, &stream, expected),
                |outcome: &AppendOutcome| outcome.last_position,
            )
            .await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        direction: ReadDirection,
        from: Version,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let stream = stream.clone();
        self.shared
            .readers
            .read(move |conn, path| read_stream_in(conn, path, stream, direction, from, limit))
            .await
    }

    /// Reads the page on the reader pool into one buffer, then lends its
    /// events here: no envelope, no allocation per event.
    async fn visit_stream(
        &self,
        stream: &StreamId,
        direction: ReadDirection,
        from: Version,
        limit: usize,
        visit: &mut StreamVisitor<'_>,
    ) -> Result<usize, StoreError> {
        let stream = stream.clone();
        let page = self
            .shared
            .readers
            .read(move |conn, path| read_stream_page(conn, path, stream, direction, from, limit))
            .await?;
        Ok(page.lend(visit))
    }

    async fn read_all(
        &self,
        from: Position,
        limit: usize,
        filter: &EventFilter,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let filter = filter.clone();
        self.shared
            .readers
            .read(move |conn, path| read_all_in(conn, path, from, limit, &filter))
            .await
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<Option<Version>, StoreError> {
        let stream = stream.clone();
        self.shared
            .readers
            .read(move |conn, path| {
                let state = stream_state(conn, path, &stream)?;
                append::check_not_deleted(&stream, state.deleted)?;
                Ok(state.version)
            })
            .await
    }

    async fn head_position(&self) -> Result<Option<Position>, StoreError> {
        self.shared
            .readers
            .read(|conn, path| {
                conn.prepare_cached("SELECT max(position) FROM events")
                    .and_then(|mut s| s.query_row([], |row| row.get::<_, Option<i64>>(0)))
                    .map(|head| head.and_then(unsigned))
                    .map_err(|e| store_error(path, "reading the head position", e))
            })
            .await
    }

    async fn set_retention(
        &self,
        stream: &StreamId,
        policy: StreamRetention,
    ) -> Result<RetentionState, StoreError> {
        let stream = stream.clone();
        let path = self.shared.path.clone();
        self.shared
            .writer
            .run(
                0,
                move |conn| {
                    let state = stream_state(conn, &path, &stream)?;
                    retention::set_in(conn, &path, &stream, policy, state)
                },
                |_| None,
            )
            .await
    }

    async fn retention(&self, stream: &StreamId) -> Result<RetentionState, StoreError> {
        let stream = stream.clone();
        self.shared
            .readers
            .read(move |conn, path| retention::state_of(conn, path, &stream))
            .await
    }

    async fn scavenge(&self) -> Result<ScavengeReport, StoreError> {
        let path = self.shared.path.clone();
        let report = {
            let path = path.clone();
            self.shared
                .writer
                .run(1, move |conn| retention::scavenge_in(conn, &path), |_| None)
                .await?
        };
        if report.events > 0 {
            self.shared
                .writer
                .run(1, move |conn| retention::vacuum_in(conn, &path), |_| None)
                .await?;
        }
        Ok(report)
    }

    fn commits(&self) -> Option<CommitSignal> {
        Some(self.shared.commits.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan SQLite chooses for `sql`, one line per step.
    fn plan(conn: &Connection, sql: &str) -> String {
        let mut statement = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        // Parameters left unbound: the plan does not depend on their values.
        let mut rows = statement.raw_query();
        let mut steps = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            steps.push(row.get::<_, String>(3).unwrap());
        }
        steps.join("\n")
    }

    #[test]
    fn reads_search_the_indexes_and_never_scan_or_sort() {
        // Given a fresh database
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plans.db");
        let conn = crate::connection::open_writer(&path, &crate::SqliteOptions::default()).unwrap();
        let all_sql = |filter: &EventFilter| read_all_sql(filter).0;
        let cases = [
            (
                "stream read, forward",
                read_stream_sql(ReadDirection::Forward),
            ),
            (
                "stream read, backward",
                read_stream_sql(ReadDirection::Backward),
            ),
            ("global log", all_sql(&EventFilter::all())),
            ("one event type", all_sql(&EventFilter::event_types(["A"]))),
            (
                "two event types",
                all_sql(&EventFilter::event_types(["A", "B"])),
            ),
            (
                "stream prefix",
                all_sql(&EventFilter::stream_prefix("Bank-")),
            ),
            (
                "stream version",
                "SELECT version FROM streams WHERE stream = ?1".to_owned(),
            ),
            (
                "head position",
                "SELECT max(position) FROM events".to_owned(),
            ),
            (
                "event id lookup",
                "SELECT stream, version, position FROM events WHERE event_id = +?1".to_owned(),
            ),
        ];
        for (name, sql) in &cases {
            // When SQLite plans each read
            let plan = plan(&conn, sql);
            println!("-- {name}\n{sql}\n{plan}\n");
            // Then no read scans the whole table or sorts
            assert!(!plan.contains("SCAN events"), "{name} scans:\n{plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{name} sorts:\n{plan}");
        }
        let plans: Vec<String> = cases.iter().map(|(_, sql)| plan(&conn, sql)).collect();
        assert!(plans[0].contains("USING INDEX events_by_stream (stream=? AND version>?)"));
        assert!(plans[1].contains("USING INDEX events_by_stream (stream=? AND version<?)"));
        assert!(plans[2].contains("USING INTEGER PRIMARY KEY (rowid>?)"));
        assert!(plans[3].contains("USING INDEX events_by_type (event_type=? AND rowid>?)"));
        assert!(plans[4].contains("MERGE (UNION ALL)"));
        assert_eq!(plans[4].matches("USING INDEX events_by_type").count(), 2);
        // A prefix reads the log in position order from `from`, filtering.
        assert!(plans[5].contains("USING INTEGER PRIMARY KEY (rowid>?)"));
        assert!(plans[6].contains("USING PRIMARY KEY (stream=?)"));
        assert!(plans[8].contains("USING INDEX events_by_id (event_id=?)"));
    }

    #[test]
    fn statements_run_again_are_not_prepared_again() {
        // Given a store with two streams
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reprepare.db");
        let conn = crate::connection::open_writer(&path, &crate::SqliteOptions::default()).unwrap();
        let events = |n: usize| -> Vec<NewEvent> {
            (0..n)
                .map(|_| {
                    NewEvent::new(
                        "Deposited",
                        logbook_domain::Payload::from_stored(b"{}".to_vec()),
                    )
                })
                .collect()
        };
        let streams = [
            StreamId::new("Account-1").unwrap(),
            StreamId::new("Account-2").unwrap(),
        ];
        // When appends and reads run several times with other parameters
        for round in 0..3u64 {
            for stream in &streams {
                let batch = events(2);
                let metadata = metadata::encode(&batch).unwrap();
                append_in(
                    &conn,
                    &path,
                    stream,
                    ExpectedVersion::Any,
                    &batch,
                    &metadata,
                )
                .unwrap();
                for direction in [ReadDirection::Forward, ReadDirection::Backward] {
                    read_stream_in(&conn, &path, stream.clone(), direction, round + 1, 2).unwrap();
                }
            }
            for filter in [EventFilter::all(), EventFilter::event_types(["A", "B"])] {
                read_all_in(&conn, &path, round + 1, 3 + round as usize, &filter).unwrap();
            }
        }
        // Then SQLite never had to prepare a cached statement again
        let mut sqls = vec![
            read_stream_sql(ReadDirection::Forward),
            read_stream_sql(ReadDirection::Backward),
            read_all_sql(&EventFilter::all()).0,
            read_all_sql(&EventFilter::event_types(["A", "B"])).0,
        ];
        sqls.push("SELECT stream, version, position FROM events WHERE event_id = +?1".to_owned());
        sqls.push(
            "SELECT s.version, (SELECT e.event_type FROM events e \
             WHERE e.stream = s.stream AND e.version = s.version) \
             FROM streams s WHERE s.stream = ?1"
                .to_owned(),
        );
        for sql in &sqls {
            let statement = conn.prepare_cached(sql).unwrap();
            let again = statement.get_status(rusqlite::StatementStatus::RePrepare);
            assert_eq!(again, 0, "prepared again {again} times: {sql}");
        }
    }

    #[test]
    fn the_type_filter_merges_one_search_per_type() {
        let (sql, params) = read_all_sql(&EventFilter::event_types(["B", "A", "B"]));
        assert_eq!(sql.matches("UNION ALL").count(), 1, "{sql}");
        assert_eq!(params, [Value::Text("A".into()), Value::Text("B".into())]);
    }

    #[test]
    fn a_prefix_is_compared_literally_by_character_count() {
        let (sql, params) = read_all_sql(&EventFilter::stream_prefix("Ünï-"));
        assert!(sql.contains("substr(stream, 1, ?3) = ?4"), "{sql}");
        assert_eq!(params, [Value::Integer(4), Value::Text("Ünï-".into())]);
    }
}
