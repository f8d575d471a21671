//! [`PostgresProjectionStore`]: each read model's document, one row of
//! `projections` each, saved with compare-and-swap on its generation.
//!
//! A save reads the stored generation and checkpoint with `FOR UPDATE`,
//! decides with [`decide_save`] and writes in the same transaction; the
//! first save of a name inserts with `ON CONFLICT DO NOTHING`, so of two
//! first saves racing exactly one writes and the other is told the
//! generation it lost to.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use logbook_domain::Payload;
use logbook_ports::projection::{decide_save, decode_parked, encode_parked};
use logbook_ports::{ProjectionDocument, ProjectionSave, ProjectionStore, StoreError};

use crate::Shared;
use crate::error::{corrupt, store_error};
use crate::rows::{sql_int, unsigned};

/// The projection-document store of one PostgreSQL schema.
#[derive(Clone)]
pub struct PostgresProjectionStore {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PostgresProjectionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresProjectionStore")
            .field("url", &self.shared.url)
            .finish_non_exhaustive()
    }
}

impl PostgresProjectionStore {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

fn stored(row: &tokio_postgres::Row) -> Result<(i64, Option<i64>), tokio_postgres::Error> {
    Ok((row.try_get(0)?, row.try_get(1)?))
}

#[async_trait]
impl ProjectionStore for PostgresProjectionStore {
    async fn load(&self, name: &str) -> Result<Option<ProjectionDocument>, StoreError> {
        let doing = format!("loading the document of projection {name:?}");
        let url = &self.shared.url;
        let client = self.shared.client(&doing).await?;
        let Some(row) = client
            .query_opt(
                "SELECT generation, checkpoint, model::text, parked::text, saved_at \
                 FROM projections WHERE name = $1",
                &[&name],
            )
            .await
            .map_err(|e| store_error(url, &doing, &e))?
        else {
            return Ok(None);
        };
        let bad = |detail: String| corrupt(url, "projections", &format!("name {name:?}"), detail);
        let (generation, checkpoint) = stored(&row).map_err(|e| bad(e.to_string()))?;
        let model: &str = row.try_get(2).map_err(|e| bad(e.to_string()))?;
        let parked: &str = row.try_get(3).map_err(|e| bad(e.to_string()))?;
        let saved_at: DateTime<Utc> = row.try_get(4).map_err(|e| bad(e.to_string()))?;
        Ok(Some(ProjectionDocument {
            generation: unsigned(generation).ok_or_else(|| bad("negative generation".into()))?,
            checkpoint: checkpoint
                .map(|c| unsigned(c).ok_or_else(|| bad("negative checkpoint".into())))
                .transpose()?,
            model: Payload::from_stored(model.as_bytes().to_vec()),
            parked: decode_parked(parked.as_bytes()).map_err(|e| bad(format!("parked: {e}")))?,
            saved_at,
        }))
    }

    async fn save(
        &self,
        name: &str,
        document: &ProjectionDocument,
        save: ProjectionSave,
    ) -> Result<u64, StoreError> {
        let doing = format!("saving the document of projection {name:?}");
        let url = &self.shared.url;
        let error = |e: tokio_postgres::Error| store_error(url, &doing, &e);
        let model = std::str::from_utf8(document.model.as_bytes()).map_err(|e| {
            StoreError::InvalidEvent {
                index: 0,
                reason: format!("the model is not UTF-8 JSON: {e}"),
            }
        })?;
        let parked =
            String::from_utf8(encode_parked(&document.parked)).expect("serde_json writes UTF-8");
        let saved_at = document.saved_at.trunc_subsecs(6);
        let checkpoint = document.checkpoint.map(sql_int);
        let mut client = self.shared.client(&doing).await?;
        let tx = client.transaction().await.map_err(error)?;
        let found = tx
            .query_opt(
                "SELECT generation, checkpoint FROM projections WHERE name = $1 FOR UPDATE",
                &[&name],
            )
            .await
            .map_err(error)?
            .map(|row| stored(&row))
            .transpose()
            .map_err(error)?;
        let current = found.map(|(g, c)| (unsigned(g).unwrap_or(0), c.and_then(unsigned)));
        // On a refusal the transaction is dropped, rolling back.
        let generation = decide_save(name, current, document, save)?;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] = [
            &name,
            &sql_int(generation),
            &checkpoint,
            &model,
            &parked,
            &saved_at,
        ];
        if current.is_some() {
            tx.execute(
                "UPDATE projections SET generation = $2, checkpoint = $3, \
                 model = $4::text::json, parked = $5::text::json, saved_at = $6 \
                 WHERE name = $1",
                &params,
            )
            .await
            .map_err(error)?;
        } else {
            let inserted = tx
                .execute(
                    "INSERT INTO projections (name, generation, checkpoint, model, parked, saved_at) \
                     VALUES ($1, $2, $3, $4::text::json, $5::text::json, $6) \
                     ON CONFLICT (name) DO NOTHING",
                    &params,
                )
                .await
                .map_err(error)?;
            if inserted == 0 {
                // Another first save committed meanwhile: it won.
                let actual: i64 = tx
                    .query_one(
                        "SELECT generation FROM projections WHERE name = $1",
                        &[&name],
                    )
                    .await
                    .map_err(error)?
                    .get(0);
                return Err(StoreError::ProjectionConflict {
                    name: name.to_owned(),
                    expected: document.generation,
                    actual: unsigned(actual).unwrap_or(0),
                });
            }
        }
        tx.commit().await.map_err(error)?;
        Ok(generation)
    }
}
