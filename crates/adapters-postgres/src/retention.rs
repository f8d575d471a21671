//! Stream retention on PostgreSQL: policies in the `stream_retention`
//! table, the cutoffs the ports' rule computes from them, and the scavenge
//! that deletes what they hide.
//!
//! The rule itself is `logbook_ports::retention`; this module reads the
//! facts it needs (the stored state, the stream's version) and applies the
//! cutoff it answers. Setting a policy locks the head row, as the writer
//! does for every append and deletion, so the stream's version and
//! "deleted" it is decided on cannot change meanwhile; a scavenge takes an
//! advisory lock so two never run at once, and blocks no append.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use logbook_domain::StreamId;
use logbook_ports::retention::{Cutoff, RetentionState, ScavengeReport, StreamRetention};
use logbook_ports::{StoreError, append};

use crate::config::PostgresUrl;
use crate::error::store_error;
use crate::rows::{sql_int, unsigned};

fn decode(url: &PostgresUrl, stream: &str, text: &str) -> Result<RetentionState, StoreError> {
    RetentionState::decode(text, || {
        format!("{url}, table stream_retention, stream {stream}")
    })
}

/// The stored retention state of `stream` (the empty one when none).
pub(crate) async fn state_of(
    client: &impl GenericClient,
    url: &PostgresUrl,
    stream: &StreamId,
) -> Result<RetentionState, StoreError> {
    let doing = format!("reading the retention of stream {stream}");
    let row = client
        .query_opt(
            "SELECT state FROM stream_retention WHERE stream = $1",
            &[&stream.as_str()],
        )
        .await
        .map_err(|e| store_error(url, &doing, &e))?;
    match row {
        Some(row) => decode(url, stream.as_str(), row.get(0)),
        None => Ok(RetentionState::default()),
    }
}

/// The cutoff now of `stream` at version `last` (`None`: no policy).
pub(crate) async fn cutoff_of(
    client: &impl GenericClient,
    url: &PostgresUrl,
    stream: &StreamId,
    last: u64,
) -> Result<Option<Cutoff>, StoreError> {
    let state = state_of(client, url, stream).await?;
    Ok((!state.is_empty()).then(|| state.cutoff(Utc::now(), last)))
}

/// The cutoff now of every stream that has a policy, by stream id.
pub(crate) async fn all_cutoffs(
    client: &impl GenericClient,
    url: &PostgresUrl,
) -> Result<HashMap<String, Cutoff>, StoreError> {
    let error = |e: tokio_postgres::Error| store_error(url, "reading stream retention", &e);
    // Prepared once per connection: every global-log page runs it.
    let statement = client
        .prepare_cached(
            "SELECT r.stream, r.state, \
             coalesce((SELECT max(e.version) FROM events e WHERE e.stream = r.stream), 0) \
             FROM stream_retention r",
        )
        .await
        .map_err(error)?;
    let rows = client.query(&statement, &[]).await.map_err(error)?;
    let now = Utc::now();
    let mut cutoffs = HashMap::with_capacity(rows.len());
    for row in rows {
        let stream: String = row.get(0);
        let state = decode(url, &stream, row.get(1))?;
        let last: i64 = row.get(2);
        cutoffs.insert(stream, state.cutoff(now, unsigned(last).unwrap_or(0)));
    }
    Ok(cutoffs)
}

/// Sets `stream`'s policy in one transaction under the head row lock.
pub(crate) async fn set(
    client: &mut deadpool_postgres::Object,
    url: &PostgresUrl,
    stream: &StreamId,
    policy: StreamRetention,
) -> Result<RetentionState, StoreError> {
    let doing = format!("setting the retention of stream {stream}");
    let error = |e: tokio_postgres::Error| store_error(url, &doing, &e);
    let tx = client.transaction().await.map_err(error)?;
    tx.execute("SELECT position FROM head FOR UPDATE", &[])
        .await
        .map_err(error)?;
    let last = tx
        .query_opt(
            "SELECT version, event_type FROM events WHERE stream = $1 \
             ORDER BY version DESC LIMIT 1",
            &[&stream.as_str()],
        )
        .await
        .map_err(error)?;
    let (version, deleted) = last.map_or((0, false), |row| {
        let version: i64 = row.get(0);
        let last_type: &str = row.get(1);
        (
            unsigned(version).unwrap_or(0),
            append::is_tombstone(last_type),
        )
    });
    append::check_not_deleted(stream, deleted)?;
    let old = state_of(&tx, url, stream).await?;
    let new = old.replace(policy, Utc::now(), version);
    if new.is_empty() {
        tx.execute(
            "DELETE FROM stream_retention WHERE stream = $1",
            &[&stream.as_str()],
        )
        .await
        .map_err(error)?;
    } else {
        tx.execute(
            "INSERT INTO stream_retention (stream, state) VALUES ($1, $2) \
             ON CONFLICT (stream) DO UPDATE SET state = excluded.state",
            &[&stream.as_str(), &new.encode()],
        )
        .await
        .map_err(error)?;
    }
    tx.commit().await.map_err(error)?;
    Ok(new)
}

/// Deletes every event retention lets go, in one transaction, then runs a
/// plain `VACUUM` of the events table so their space is reusable at once.
pub(crate) async fn scavenge(
    client: &mut deadpool_postgres::Object,
    url: &PostgresUrl,
) -> Result<ScavengeReport, StoreError> {
    let error = |e: tokio_postgres::Error| store_error(url, "scavenging", &e);
    let tx = client.transaction().await.map_err(error)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('logbook scavenge'), hashtext(current_schema()))",
        &[],
    )
    .await
    .map_err(error)?;
    let mut streams: Vec<_> = all_cutoffs(&tx, url).await?.into_iter().collect();
    streams.sort_by(|a, b| a.0.cmp(&b.0));
    let mut report = ScavengeReport::default();
    for (stream, cut) in streams {
        let rows = tx
            .query(
                "SELECT position, version, recorded_at, \
                 octet_length(payload::text) + coalesce(octet_length(metadata::text), 0) \
                 FROM events WHERE stream = $1 AND version < $2",
                &[&stream, &sql_int(cut.last_version)],
            )
            .await
            .map_err(error)?;
        let mut doomed: Vec<i64> = Vec::new();
        let mut bytes = 0u64;
        for row in rows {
            let version: i64 = row.get(1);
            let recorded_at: DateTime<Utc> = row.get(2);
            let len: i32 = row.get(3);
            if cut.reclaims(unsigned(version).unwrap_or(0), recorded_at) {
                doomed.push(row.get(0));
                bytes += u64::try_from(len).unwrap_or(0);
            }
        }
        if !doomed.is_empty() {
            tx.execute("DELETE FROM events WHERE position = ANY($1)", &[&doomed])
                .await
                .map_err(error)?;
        }
        report.add_stream(doomed.len() as u64, bytes);
    }
    tx.commit().await.map_err(error)?;
    if report.events > 0 {
        client.batch_execute("VACUUM events").await.map_err(error)?;
    }
    Ok(report)
}
