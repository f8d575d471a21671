//! [`PostgresEventStore`]: the [`EventStore`] on PostgreSQL.
//!
//! Appends and deletions go to the writer task (see `writer.rs`), which
//! decides and writes them under the head row lock; reads run on pooled
//! connections, each one statement under READ COMMITTED, so each sees a
//! committed prefix of the global log.

use std::sync::Arc;

use async_trait::async_trait;
use logbook_domain::{NewEvent, Position, RecordedEvent, StreamId, Version};
use logbook_ports::append;
use logbook_ports::retention::{RetentionState, ScavengeReport, StreamRetention};
use logbook_ports::{
    AppendOutcome, CommitSignal, EventFilter, EventStore, ExpectedVersion, ReadDirection,
    StoreError,
};
use tokio_postgres::types::ToSql;

use crate::Shared;
use crate::error::store_error;
use crate::retention;
use crate::rows::{Decoder, EVENT_COLUMNS, sql_int, unsigned};
use crate::writer::Work;

/// The event store of one PostgreSQL schema. Cheap to clone; every clone
/// and the store's snapshot and checkpoint stores share one writer and one
/// pool.
#[derive(Clone)]
pub struct PostgresEventStore {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PostgresEventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresEventStore")
            .field("url", &self.shared.url)
            .finish_non_exhaustive()
    }
}

impl PostgresEventStore {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// The stream's version and whether it is deleted (its last event is a
    /// tombstone).
    async fn stream_state(
        &self,
        client: &deadpool_postgres::Object,
        stream: &StreamId,
    ) -> Result<(Option<Version>, bool), StoreError> {
        let statement = client
            .prepare_cached(
                "SELECT version, event_type FROM events WHERE stream = $1 \
                 ORDER BY version DESC LIMIT 1",
            )
            .await
            .map_err(|e| store_error(&self.shared.url, "preparing a read", &e))?;
        let row = client
            .query_opt(&statement, &[&stream.as_str()])
            .await
            .map_err(|e| {
                store_error(
                    &self.shared.url,
                    &format!("reading the version of stream {stream}"),
                    &e,
                )
            })?;
        Ok(match row {
            Some(row) => {
                let version: i64 = row.get(0);
                let last_type: &str = row.get(1);
                (
                    unsigned(version).filter(|v| *v > 0),
                    append::is_tombstone(last_type),
                )
            }
            None => (None, false),
        })
    }
}

/// The SQL of a global-log read with `filter`: `$1` from, `$2` limit, then
/// `$3` the types and/or the prefix.
fn read_all_sql(filter: &EventFilter) -> String {
    let mut conditions = String::new();
    let mut next = 3;
    if !filter.event_types.is_empty() {
        conditions.push_str(&format!(" AND event_type = ANY(${next}::text[])"));
        next += 1;
    }
    if filter.stream_prefix.is_some() {
        // starts_with compares literally: `%` and `_` are plain text.
        conditions.push_str(&format!(" AND starts_with(stream, ${next}::text)"));
    }
    format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE position >= $1{conditions} \
         ORDER BY position LIMIT $2"
    )
}

/// The SQL of a stream read under a retention cutoff: `$1` stream, `$2`
/// lowest version, `$3` limit, `$4` highest version, `$5` earliest
/// `recorded_at`.
fn read_retained_stream_sql(direction: ReadDirection) -> String {
    let order = match direction {
        ReadDirection::Forward => "version",
        ReadDirection::Backward => "version DESC",
    };
    format!(
        "SELECT {EVENT_COLUMNS} FROM events \
         WHERE stream = $1 AND version >= $2 AND version <= $4 AND recorded_at >= $5 \
         ORDER BY {order} LIMIT $3"
    )
}

/// The SQL of a stream read: `$1` stream, `$2` from, `$3` limit.
fn read_stream_sql(direction: ReadDirection) -> String {
    match direction {
        ReadDirection::Forward => format!(
            "SELECT {EVENT_COLUMNS} FROM events \
             WHERE stream = $1 AND version >= $2 ORDER BY version LIMIT $3"
        ),
        ReadDirection::Backward => format!(
            "SELECT {EVENT_COLUMNS} FROM events \
             WHERE stream = $1 AND version <= $2 ORDER BY version DESC LIMIT $3"
        ),
    }
}

/// One page of the global log as stored, retention not applied.
async fn read_all_rows(
    client: &deadpool_postgres::Object,
    url: &crate::config::PostgresUrl,
    from: Position,
    limit: usize,
    filter: &EventFilter,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let doing = "reading the global log";
    let statement = client
        .prepare_cached(&read_all_sql(filter))
        .await
        .map_err(|e| store_error(url, doing, &e))?;
    let from = sql_int(from);
    let limit = sql_int(limit as u64);
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&from, &limit];
    if !filter.event_types.is_empty() {
        params.push(&filter.event_types);
    }
    if let Some(prefix) = &filter.stream_prefix {
        params.push(prefix);
    }
    let rows = client
        .query(&statement, &params)
        .await
        .map_err(|e| store_error(url, doing, &e))?;
    let mut decoder = Decoder::new(url, None);
    rows.iter().map(|row| decoder.decode(row)).collect()
}

#[async_trait]
impl EventStore for PostgresEventStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        append::validate_batch(&events)?;
        self.shared
            .writer
            .run(Work::Append {
                stream: stream.clone(),
                expected,
                events,
            })
            .await
    }

    async fn delete_stream(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
    ) -> Result<AppendOutcome, StoreError> {
        self.shared
            .writer
            .run(Work::Delete {
                stream: stream.clone(),
                expected,
            })
            .await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        direction: ReadDirection,
        from: Version,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let doing = format!("reading stream {stream}");
        let client = self.shared.client(&doing).await?;
        let (current, deleted) = self.stream_state(&client, stream).await?;
        append::check_not_deleted(stream, deleted)?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let url = &self.shared.url;
        let cutoff = retention::cutoff_of(&client, url, stream, current.unwrap_or(0)).await?;
        let rows = match cutoff {
            None => {
                let statement = client
                    .prepare_cached(&read_stream_sql(direction))
                    .await
                    .map_err(|e| store_error(url, &doing, &e))?;
                client
                    .query(
                        &statement,
                        &[&stream.as_str(), &sql_int(from), &sql_int(limit as u64)],
                    )
                    .await
            }
            Some(cut) => {
                let (low, high) = match direction {
                    ReadDirection::Forward => (from.max(cut.min_version), u64::MAX),
                    ReadDirection::Backward => (cut.min_version, from),
                };
                // No age limit: the year 1, before any time logbook records
                // and within PostgreSQL's range (chrono's minimum is not).
                let earliest = cut.min_recorded_at.unwrap_or_else(|| {
                    chrono::DateTime::from_timestamp(-62_135_596_800, 0)
                        .expect("0001-01-01 is a valid time")
                });
                let statement = client
                    .prepare_cached(&read_retained_stream_sql(direction))
                    .await
                    .map_err(|e| store_error(url, &doing, &e))?;
                client
                    .query(
                        &statement,
                        &[
                            &stream.as_str(),
                            &sql_int(low),
                            &sql_int(limit as u64),
                            &sql_int(high),
                            &earliest,
                        ],
                    )
                    .await
            }
        }
        .map_err(|e| store_error(url, &doing, &e))?;
        let mut decoder = Decoder::new(url, Some(stream.clone()));
        rows.iter().map(|row| decoder.decode(row)).collect()
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
        let doing = "reading the global log";
        let url = &self.shared.url;
        let client = self.shared.client(doing).await?;
        // The policies and the first page are sent together (one round
        // trip; the server runs them in that order, each on its own
        // snapshot, as when they were sent one after the other).
        let (cutoffs, first_page) = tokio::join!(
            retention::all_cutoffs(&client, url),
            read_all_rows(&client, url, from, limit, filter),
        );
        let cutoffs = cutoffs?;
        if cutoffs.is_empty() {
            return first_page;
        }
        // Hidden events leave a page short: read on until it is full or
        // the log ends, so a page is short only at the end.
        let mut out = Vec::new();
        let mut next = from;
        let mut first_page = Some(first_page?);
        while out.len() < limit {
            let want = limit - out.len();
            let page = match first_page.take() {
                Some(page) => page,
                None => read_all_rows(&client, url, next, want, filter).await?,
            };
            match logbook_ports::retention::keep_visible(&mut out, page, want, &cutoffs) {
                Some(after) => next = after,
                None => break,
            }
        }
        Ok(out)
    }

    async fn set_retention(
        &self,
        stream: &StreamId,
        policy: StreamRetention,
    ) -> Result<RetentionState, StoreError> {
        let mut client = self
            .shared
            .client(&format!("setting the retention of stream {stream}"))
            .await?;
        retention::set(&mut client, &self.shared.url, stream, policy).await
    }

    async fn retention(&self, stream: &StreamId) -> Result<RetentionState, StoreError> {
        let client = self
            .shared
            .client(&format!("reading the retention of stream {stream}"))
            .await?;
        retention::state_of(&client, &self.shared.url, stream).await
    }

    async fn scavenge(&self) -> Result<ScavengeReport, StoreError> {
        let mut client = self.shared.client("scavenging").await?;
        retention::scavenge(&mut client, &self.shared.url).await
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<Option<Version>, StoreError> {
        let client = self
            .shared
            .client(&format!("reading the version of stream {stream}"))
            .await?;
        let (current, deleted) = self.stream_state(&client, stream).await?;
        append::check_not_deleted(stream, deleted)?;
        Ok(current)
    }

    async fn head_position(&self) -> Result<Option<Position>, StoreError> {
        let client = self.shared.client("reading the head position").await?;
        let head = crate::schema::head(&client, &self.shared.url).await?;
        Ok(Some(head).filter(|h| *h > 0))
    }

    fn commits(&self) -> Option<CommitSignal> {
        Some(self.shared.commits.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PostgresUrl;

    #[test]
    fn a_filter_adds_one_condition_per_part() {
        assert!(!read_all_sql(&EventFilter::all()).contains("$3"));
        let both = EventFilter {
            event_types: vec!["A".into()],
            stream_prefix: Some("Bank-".into()),
        };
        let sql = read_all_sql(&both);
        assert!(sql.contains("event_type = ANY($3::text[])"), "{sql}");
        assert!(sql.contains("starts_with(stream, $4::text)"), "{sql}");
        let sql = read_all_sql(&EventFilter::stream_prefix("Bank-"));
        assert!(sql.contains("starts_with(stream, $3::text)"), "{sql}");
    }

    /// The plan PostgreSQL chooses for `sql` run with `params` (SQL
    /// literals), one line per node.
    async fn plan(client: &tokio_postgres::Client, sql: &str, params: &str) -> String {
        client
            .batch_execute(&format!("DEALLOCATE ALL; PREPARE q AS {sql}"))
            .await
            .unwrap();
        let rows = client
            .query(&format!("EXPLAIN EXECUTE q({params})"), &[])
            .await
            .unwrap();
        rows.iter()
            .map(|row| row.get::<_, String>(0))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_and_the_writers_lookups_use_the_intended_indexes() {
        // Given a schema holding 200,000 events in 2,000 streams, one
        // event in 1,000 of a rare type, with fresh statistics
        let database = logbook_test_postgres::database();
        let url = database.fresh_schema_url("plans");
        let store = crate::PostgresStore::connect(&url, crate::PostgresOptions::default())
            .await
            .unwrap();
        drop(store);
        let (client, connection) = url
            .parse::<PostgresUrl>()
            .unwrap()
            .client_config(&crate::PostgresOptions::default())
            .connect(tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
            .batch_execute(
                "INSERT INTO events SELECT g, 'Bank-' || (g % 2000), g / 2000 + 1, \
                     gen_random_uuid(), CASE WHEN g % 1000 = 0 THEN 'Rare' ELSE 'Common' END, \
                     1, '{\"n\": 1}', NULL, now() \
                 FROM generate_series(1, 200000) AS g; \
                 UPDATE head SET position = 200000; ANALYZE events",
            )
            .await
            .unwrap();
        let all = |filter: EventFilter| read_all_sql(&filter);
        let id = "'00000000-0000-0000-0000-000000000001'";
        let cases = [
            (
                "stream read, forward",
                read_stream_sql(ReadDirection::Forward),
                "'Bank-7', 1, 1000".to_owned(),
                "events_stream_version_key",
            ),
            (
                "stream read, backward",
                read_stream_sql(ReadDirection::Backward),
                "'Bank-7', 100, 1000".to_owned(),
                "events_stream_version_key",
            ),
            (
                "global log",
                all(EventFilter::all()),
                "1, 1000".to_owned(),
                "using events_pkey",
            ),
            (
                "a rare event type",
                all(EventFilter::event_types(["Rare"])),
                "1, 1000, ARRAY['Rare']".to_owned(),
                "events_by_type",
            ),
            (
                "a common event type",
                all(EventFilter::event_types(["Common"])),
                "1, 1000, ARRAY['Common']".to_owned(),
                "using events_pkey",
            ),
            (
                "a stream prefix (category)",
                all(EventFilter::stream_prefix("Bank-")),
                "1, 1000, 'Bank-'".to_owned(),
                "using events_pkey",
            ),
            (
                "the writer's stream states",
                crate::writer::STATES_SQL.to_owned(),
                "ARRAY['Bank-7', 'Bank-8']".to_owned(),
                "events_stream_version_key",
            ),
            (
                "the writer's event id lookup",
                crate::writer::RECORDED_IDS_SQL.to_owned(),
                format!("ARRAY[{id}::uuid]"),
                "events_event_id_key",
            ),
        ];
        for (name, sql, params, index) in &cases {
            // When PostgreSQL plans each read with real values
            let plan = plan(&client, sql, params).await;
            println!("-- {name}\n{sql}\n{plan}\n");
            // Then it searches the intended index and never scans the table
            assert!(
                !plan.contains("Seq Scan"),
                "{name} scans the table:\n{plan}"
            );
            assert!(plan.contains(index), "{name} does not use {index}:\n{plan}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn prepared_lookups_keep_their_index_after_many_executions() {
        // Given a fresh store's schema and a connection made with the
        // configuration every
        // connection of the store uses (the pool's readers, the writer and
        // the listener all connect with `client_config`)
        let database = logbook_test_postgres::database();
        let url = database.fresh_schema_url("generic_plans");
        let options = crate::PostgresOptions::default();
        let store = crate::PostgresStore::connect(&url, options.clone())
            .await
            .unwrap();
        let reader = store.event_store().shared.client("a test").await.unwrap();
        let mode: String = reader
            .query_one("SHOW plan_cache_mode", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(mode, "force_custom_plan", "a pool reader's plan_cache_mode");
        drop(reader);
        drop(store);
        let (client, connection) = url
            .parse::<PostgresUrl>()
            .unwrap()
            .client_config(&options)
            .connect(tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let id = "'00000000-0000-0000-0000-000000000001'";
        let cases = [
            (
                "the writer's stream states",
                crate::writer::STATES_SQL.to_owned(),
                "ARRAY['Bank-7', 'Bank-8']".to_owned(),
            ),
            (
                "the writer's event id lookup",
                crate::writer::RECORDED_IDS_SQL.to_owned(),
                format!("ARRAY[{id}::uuid]"),
            ),
            (
                "a global-log page",
                read_all_sql(&EventFilter::all()),
                "99000, 1000".to_owned(),
            ),
        ];
        client
            .batch_execute(
                "INSERT INTO events SELECT g, 'Bank-' || (g % 1000), g / 1000 + 1, \
                     gen_random_uuid(), 'Common', 1, '{\"n\": 1}', NULL, now() \
                 FROM generate_series(1, 20) AS g; ANALYZE events",
            )
            .await
            .unwrap();
        // When each statement, prepared while the log is young, has run
        // more than the five times after which PostgreSQL may switch to a
        // generic plan (which it would then keep), and the log grows to
        // 100,000 events
        for (i, (_, sql, params)) in cases.iter().enumerate() {
            client
                .batch_execute(&format!("PREPARE q{i} AS {sql}"))
                .await
                .unwrap();
            for _ in 0..8 {
                client
                    .batch_execute(&format!("EXECUTE q{i}({params})"))
                    .await
                    .unwrap();
            }
        }
        client
            .batch_execute(
                "INSERT INTO events SELECT g, 'Bank-' || (g % 1000), g / 1000 + 1, \
                     gen_random_uuid(), 'Common', 1, '{\"n\": 1}', NULL, now() \
                 FROM generate_series(21, 100000) AS g; \
                 UPDATE head SET position = 100000",
            )
            .await
            .unwrap();
        for (i, (name, _, params)) in cases.iter().enumerate() {
            let plan = client
                .query(&format!("EXPLAIN EXECUTE q{i}({params})"), &[])
                .await
                .unwrap()
                .iter()
                .map(|row| row.get::<_, String>(0))
                .collect::<Vec<_>>()
                .join("\n");
            // Then each is still planned for its values and the table as it
            // is now: an index search, no scan of the table
            assert!(
                !plan.contains("Seq Scan"),
                "{name} scans the table after repeated executions:\n{plan}"
            );
            println!("-- {name}\n{plan}\n");
            assert!(plan.contains("Index"), "{name} uses no index:\n{plan}");
        }
    }
}
