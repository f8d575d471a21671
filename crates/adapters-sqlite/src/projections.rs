//! [`SqliteProjectionStore`]: each read model's document, one row per read
//! model in the `projections` table. A save reads the stored generation
//! and writes inside one writer transaction (`BEGIN IMMEDIATE`), so two
//! savers, even in two processes, are ordered and the second sees the
//! first's generation.

use std::sync::Arc;

use async_trait::async_trait;
use logbook_domain::Payload;
use logbook_ports::projection::{decide_save, decode_parked, encode_parked};
use logbook_ports::{ProjectionDocument, ProjectionSave, ProjectionStore, StoreError};
use rusqlite::types::ValueRef;
use rusqlite::{OptionalExtension, params};

use crate::Shared;
use crate::error::{corrupt, store_error};
use crate::rows::{from_micros, json_text, sql_int, unsigned};

/// The projection store of one SQLite database; shares the event store's
/// writer and readers.
#[derive(Clone)]
pub struct SqliteProjectionStore {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SqliteProjectionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteProjectionStore")
            .field("path", &self.shared.path)
            .finish_non_exhaustive()
    }
}

impl SqliteProjectionStore {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

fn text(value: ValueRef<'_>) -> Option<Vec<u8>> {
    match value {
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => Some(bytes.to_vec()),
        _ => None,
    }
}

#[async_trait]
impl ProjectionStore for SqliteProjectionStore {
    async fn load(&self, name: &str) -> Result<Option<ProjectionDocument>, StoreError> {
        let name = name.to_owned();
        self.shared
            .readers
            .read(move |conn, path| {
                let error = |e| store_error(path, &format!("loading projection {name}"), e);
                let mut statement = conn
                    .prepare_cached(
                        "SELECT generation, checkpoint, model, parked, saved_at FROM projections \
                         WHERE name = ?1",
                    )
                    .map_err(error)?;
                let row = statement
                    .query_row([&name], |row| {
                        Ok((
                            row.get::<_, i64>(0)?,
                            row.get::<_, Option<i64>>(1)?,
                            text(row.get_ref(2)?),
                            text(row.get_ref(3)?),
                            row.get::<_, i64>(4)?,
                        ))
                    })
                    .optional()
                    .map_err(error)?;
                let Some((generation, checkpoint, model, parked, saved_at)) = row else {
                    return Ok(None);
                };
                let bad = |detail: &str| {
                    corrupt(path, "projections", &format!("projection {name}"), detail)
                };
                let parked = parked.ok_or_else(|| bad("parked is not text"))?;
                Ok(Some(ProjectionDocument {
                    generation: unsigned(generation).ok_or_else(|| bad("negative generation"))?,
                    checkpoint: checkpoint
                        .map(|c| unsigned(c).ok_or_else(|| bad("negative checkpoint")))
                        .transpose()?,
                    model: Payload::from_stored(model.ok_or_else(|| bad("model is not text"))?),
                    parked: decode_parked(&parked)
                        .map_err(|e| bad(&format!("parked events do not decode: {e}")))?,
                    saved_at: from_micros(saved_at).ok_or_else(|| bad("saved_at out of range"))?,
                }))
            })
            .await
    }

    async fn save(
        &self,
        name: &str,
        document: &ProjectionDocument,
        save: ProjectionSave,
    ) -> Result<u64, StoreError> {
        let name = name.to_owned();
        let path = self.shared.path.clone();
        let parked = encode_parked(&document.parked);
        let document = document.clone();
        self.shared
            .writer
            .run(
                0,
                move |conn| {
                    let error = |e| store_error(&path, &format!("saving projection {name}"), e);
                    let stored = conn
                        .prepare_cached(
                            "SELECT generation, checkpoint FROM projections WHERE name = ?1",
                        )
                        .and_then(|mut s| {
                            s.query_row([&name], |row| {
                                Ok((row.get::<_, i64>(0)?, row.get::<_, Option<i64>>(1)?))
                            })
                            .optional()
                        })
                        .map_err(error)?
                        .map(|(generation, checkpoint)| {
                            let bad = |detail: &str| {
                                corrupt(&path, "projections", &format!("projection {name}"), detail)
                            };
                            Ok::<_, StoreError>((
                                unsigned(generation).ok_or_else(|| bad("negative generation"))?,
                                checkpoint
                                    .map(|c| unsigned(c).ok_or_else(|| bad("negative checkpoint")))
                                    .transpose()?,
                            ))
                        })
                        .transpose()?;
                    let generation = decide_save(&name, stored, &document, save)?;
                    conn.prepare_cached(
                        "INSERT INTO projections (name, generation, checkpoint, model, parked, saved_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                         ON CONFLICT (name) DO UPDATE SET generation = excluded.generation, \
                         checkpoint = excluded.checkpoint, model = excluded.model, \
                         parked = excluded.parked, saved_at = excluded.saved_at",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            name,
                            sql_int(generation),
                            document.checkpoint.map(sql_int),
                            json_text(document.model.as_bytes()),
                            json_text(&parked),
                            document.saved_at.timestamp_micros(),
                        ])
                    })
                    .map_err(error)?;
                    Ok(generation)
                },
                |_| None,
            )
            .await
    }
}
