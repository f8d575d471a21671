//! [`PostgresCheckpointStore`]: each projection's position, one row of
//! `checkpoints` each.

use std::sync::Arc;

use async_trait::async_trait;
use logbook_domain::Position;
use logbook_ports::{CheckpointStore, StoreError};

use crate::Shared;
use crate::error::{corrupt, store_error};
use crate::rows::{sql_int, unsigned};

/// The checkpoint store of one PostgreSQL schema.
#[derive(Clone)]
pub struct PostgresCheckpointStore {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PostgresCheckpointStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresCheckpointStore")
            .field("url", &self.shared.url)
            .finish_non_exhaustive()
    }
}

impl PostgresCheckpointStore {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

#[async_trait]
impl CheckpointStore for PostgresCheckpointStore {
    async fn load(&self, projection: &str) -> Result<Option<Position>, StoreError> {
        let doing = format!("loading the checkpoint of projection {projection:?}");
        let url = &self.shared.url;
        let client = self.shared.client(&doing).await?;
        let row = client
            .query_opt(
                "SELECT position FROM checkpoints WHERE projection = $1",
                &[&projection],
            )
            .await
            .map_err(|e| store_error(url, &doing, &e))?;
        row.map(|row| {
            let position: i64 = row.get(0);
            unsigned(position).ok_or_else(|| {
                corrupt(
                    url,
                    "checkpoints",
                    &format!("projection {projection:?}"),
                    "negative position",
                )
            })
        })
        .transpose()
    }

    async fn save(&self, projection: &str, position: Position) -> Result<(), StoreError> {
        let doing = format!("saving the checkpoint of projection {projection:?}");
        let url = &self.shared.url;
        let client = self.shared.client(&doing).await?;
        client
            .execute(
                "INSERT INTO checkpoints (projection, position) VALUES ($1, $2) \
                 ON CONFLICT (projection) DO UPDATE SET position = excluded.position",
                &[&projection, &sql_int(position)],
            )
            .await
            .map_err(|e| store_error(url, &doing, &e))?;
        Ok(())
    }

    async fn reset(&self, projection: &str) -> Result<(), StoreError> {
        let doing = format!("resetting the checkpoint of projection {projection:?}");
        let url = &self.shared.url;
        let client = self.shared.client(&doing).await?;
        client
            .execute(
                "DELETE FROM checkpoints WHERE projection = $1",
                &[&projection],
            )
            .await
            .map_err(|e| store_error(url, &doing, &e))?;
        Ok(())
    }
}
