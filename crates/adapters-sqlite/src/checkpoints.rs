//! [`SqliteCheckpointStore`]: each subscriber's position in the
//! `checkpoints` table.

use std::sync::Arc;

use async_trait::async_trait;
use logbook_domain::Position;
use logbook_ports::{CheckpointStore, StoreError};
use rusqlite::{OptionalExtension, params};

use crate::Shared;
use crate::error::{corrupt, store_error};
use crate::rows::{sql_int, unsigned};

/// The checkpoint store of one SQLite database; shares the event store's
/// writer and readers.
#[derive(Clone)]
pub struct SqliteCheckpointStore {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SqliteCheckpointStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteCheckpointStore")
            .field("path", &self.shared.path)
            .finish_non_exhaustive()
    }
}

impl SqliteCheckpointStore {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    async fn write(&self, projection: &str, position: Option<Position>) -> Result<(), StoreError> {
        let projection = projection.to_owned();
        let path = self.shared.path.clone();
        self.shared
            .writer
            .run(
                0,
                move |conn| {
                    let done = match position {
                        Some(position) => conn
                            .prepare_cached(
                                "INSERT INTO checkpoints (projection, position) VALUES (?1, ?2) \
                                 ON CONFLICT (projection) DO UPDATE SET position = excluded.position",
                            )
                            .and_then(|mut s| s.execute(params![projection, sql_int(position)])),
                        None => conn
                            .prepare_cached("DELETE FROM checkpoints WHERE projection = ?1")
                            .and_then(|mut s| s.execute([&projection])),
                    };
                    done.map(drop).map_err(|e| {
                        store_error(
                            &path,
                            &format!("saving the checkpoint of projection {projection}"),
                            e,
                        )
                    })
                },
                |()| None,
            )
            .await
    }
}

#[async_trait]
impl CheckpointStore for SqliteCheckpointStore {
    async fn load(&self, projection: &str) -> Result<Option<Position>, StoreError> {
        let projection = projection.to_owned();
        self.shared
            .readers
            .read(move |conn, path| {
                let position = conn
                    .prepare_cached("SELECT position FROM checkpoints WHERE projection = ?1")
                    .and_then(|mut s| {
                        s.query_row([&projection], |row| row.get::<_, i64>(0))
                            .optional()
                    })
                    .map_err(|e| {
                        store_error(
                            path,
                            &format!("loading the checkpoint of projection {projection}"),
                            e,
                        )
                    })?;
                position
                    .map(|p| {
                        unsigned(p).ok_or_else(|| {
                            corrupt(
                                path,
                                "checkpoints",
                                &format!("projection {projection}"),
                                "negative position",
                            )
                        })
                    })
                    .transpose()
            })
            .await
    }

    async fn save(&self, projection: &str, position: Position) -> Result<(), StoreError> {
        self.write(projection, Some(position)).await
    }

    async fn reset(&self, projection: &str) -> Result<(), StoreError> {
        self.write(projection, None).await
    }
}
