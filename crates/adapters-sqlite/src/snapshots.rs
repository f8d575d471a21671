//! [`SqliteSnapshotStore`]: the newest snapshot of each stream, one row per
//! stream in the `snapshots` table.

use std::sync::Arc;

use async_trait::async_trait;
use logbook_domain::{Payload, StreamId};
use logbook_ports::{Snapshot, SnapshotStore, StoreError};
use rusqlite::types::ValueRef;
use rusqlite::{OptionalExtension, params};

use crate::Shared;
use crate::error::{corrupt, store_error};
use crate::rows::{from_micros, json_text, sql_int, unsigned};

/// The snapshot store of one SQLite database; shares the event store's
/// writer and readers.
#[derive(Clone)]
pub struct SqliteSnapshotStore {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SqliteSnapshotStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteSnapshotStore")
            .field("path", &self.shared.path)
            .finish_non_exhaustive()
    }
}

impl SqliteSnapshotStore {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

#[async_trait]
impl SnapshotStore for SqliteSnapshotStore {
    async fn save(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        let path = self.shared.path.clone();
        self.shared
            .writer
            .run(
                0,
                move |conn| {
                    // A late, older snapshot never replaces a newer one; one
                    // at the same version does.
                    conn.prepare_cached(
                        "INSERT INTO snapshots (stream, version, schema_version, state, taken_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5) \
                         ON CONFLICT (stream) DO UPDATE SET version = excluded.version, \
                         schema_version = excluded.schema_version, state = excluded.state, \
                         taken_at = excluded.taken_at \
                         WHERE excluded.version >= snapshots.version",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            snapshot.stream.as_str(),
                            sql_int(snapshot.version),
                            snapshot.schema_version,
                            json_text(snapshot.state.as_bytes()),
                            snapshot.taken_at.timestamp_micros(),
                        ])
                    })
                    .map(drop)
                    .map_err(|e| {
                        store_error(
                            &path,
                            &format!("saving the snapshot of stream {}", snapshot.stream),
                            e,
                        )
                    })
                },
                |()| None,
            )
            .await
    }

    async fn load(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        let stream = stream.clone();
        self.shared
            .readers
            .read(move |conn, path| {
                let error =
                    |e| store_error(path, &format!("loading the snapshot of stream {stream}"), e);
                let mut statement = conn
                    .prepare_cached(
                        "SELECT version, schema_version, state, taken_at FROM snapshots \
                         WHERE stream = ?1",
                    )
                    .map_err(error)?;
                let row = statement
                    .query_row([stream.as_str()], |row| {
                        let state = match row.get_ref(2)? {
                            ValueRef::Text(bytes) | ValueRef::Blob(bytes) => Some(bytes.to_vec()),
                            _ => None,
                        };
                        Ok((
                            row.get::<_, i64>(0)?,
                            row.get::<_, i64>(1)?,
                            state,
                            row.get::<_, i64>(3)?,
                        ))
                    })
                    .optional()
                    .map_err(error)?;
                let Some((version, schema_version, state, taken_at)) = row else {
                    return Ok(None);
                };
                let bad =
                    |detail: &str| corrupt(path, "snapshots", &format!("stream {stream}"), detail);
                Ok(Some(Snapshot {
                    version: unsigned(version).ok_or_else(|| bad("negative version"))?,
                    schema_version: u32::try_from(schema_version)
                        .map_err(|_| bad("schema_version out of range"))?,
                    state: Payload::from_stored(state.ok_or_else(|| bad("state is not text"))?),
                    taken_at: from_micros(taken_at).ok_or_else(|| bad("taken_at out of range"))?,
                    stream,
                }))
            })
            .await
    }

    async fn delete(&self, stream: &StreamId) -> Result<(), StoreError> {
        let stream = stream.clone();
        let path = self.shared.path.clone();
        self.shared
            .writer
            .run(
                0,
                move |conn| {
                    conn.prepare_cached("DELETE FROM snapshots WHERE stream = ?1")
                        .and_then(|mut s| s.execute([stream.as_str()]))
                        .map(drop)
                        .map_err(|e| {
                            store_error(
                                &path,
                                &format!("deleting the snapshot of stream {stream}"),
                                e,
                            )
                        })
                },
                |()| None,
            )
            .await
    }
}
