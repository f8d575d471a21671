//! [`PostgresSnapshotStore`]: the newest snapshot of each stream, one row
//! of `snapshots` each.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use logbook_domain::{Payload, StreamId};
use logbook_ports::{Snapshot, SnapshotStore, StoreError};

use crate::Shared;
use crate::error::{corrupt, store_error};
use crate::rows::{sql_int, unsigned};

/// The snapshot store of one PostgreSQL schema.
#[derive(Clone)]
pub struct PostgresSnapshotStore {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PostgresSnapshotStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSnapshotStore")
            .field("url", &self.shared.url)
            .finish_non_exhaustive()
    }
}

impl PostgresSnapshotStore {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

#[async_trait]
impl SnapshotStore for PostgresSnapshotStore {
    async fn save(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        let doing = format!("saving the snapshot of stream {}", snapshot.stream);
        let url = &self.shared.url;
        let state = std::str::from_utf8(snapshot.state.as_bytes()).map_err(|e| {
            StoreError::backend(
                crate::error::BACKEND,
                doing.clone(),
                format!("state is not UTF-8 JSON: {e}"),
            )
        })?;
        let client = self.shared.client(&doing).await?;
        // Only an older snapshot is replaced: one arriving late never
        // overwrites a newer one, and the check is part of the statement.
        let statement = client
            .prepare_cached(
                "INSERT INTO snapshots (stream, version, schema_version, state, taken_at) \
                 VALUES ($1, $2, $3, $4::text::json, $5) \
                 ON CONFLICT (stream) DO UPDATE SET version = excluded.version, \
                 schema_version = excluded.schema_version, state = excluded.state, \
                 taken_at = excluded.taken_at WHERE snapshots.version <= excluded.version",
            )
            .await
            .map_err(|e| store_error(url, &doing, &e))?;
        let taken_at: DateTime<Utc> = snapshot.taken_at.trunc_subsecs(6);
        client
            .execute(
                &statement,
                &[
                    &snapshot.stream.as_str(),
                    &sql_int(snapshot.version),
                    &i64::from(snapshot.schema_version),
                    &state,
                    &taken_at,
                ],
            )
            .await
            .map_err(|e| store_error(url, &doing, &e))?;
        Ok(())
    }

    async fn load(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        let doing = format!("loading the snapshot of stream {stream}");
        let url = &self.shared.url;
        let client = self.shared.client(&doing).await?;
        let statement = client
            .prepare_cached(
                "SELECT version, schema_version, state::text, taken_at FROM snapshots \
                 WHERE stream = $1",
            )
            .await
            .map_err(|e| store_error(url, &doing, &e))?;
        let Some(row) = client
            .query_opt(&statement, &[&stream.as_str()])
            .await
            .map_err(|e| store_error(url, &doing, &e))?
        else {
            return Ok(None);
        };
        let bad = |detail: String| corrupt(url, "snapshots", &format!("stream {stream}"), detail);
        let version: i64 = row.try_get(0).map_err(|e| bad(e.to_string()))?;
        let schema_version: i64 = row.try_get(1).map_err(|e| bad(e.to_string()))?;
        let state: &str = row.try_get(2).map_err(|e| bad(e.to_string()))?;
        let taken_at: DateTime<Utc> = row.try_get(3).map_err(|e| bad(e.to_string()))?;
        Ok(Some(Snapshot {
            stream: stream.clone(),
            version: unsigned(version).ok_or_else(|| bad("negative version".into()))?,
            schema_version: u32::try_from(schema_version).map_err(|e| bad(e.to_string()))?,
            state: Payload::from_stored(state.as_bytes().to_vec()),
            taken_at,
        }))
    }

    async fn delete(&self, stream: &StreamId) -> Result<(), StoreError> {
        let doing = format!("deleting the snapshot of stream {stream}");
        let url = &self.shared.url;
        let client = self.shared.client(&doing).await?;
        client
            .execute(
                "DELETE FROM snapshots WHERE stream = $1",
                &[&stream.as_str()],
            )
            .await
            .map_err(|e| store_error(url, &doing, &e))?;
        Ok(())
    }
}
