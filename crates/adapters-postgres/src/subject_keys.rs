//! [`PostgresSubjectKeyStore`]: each data subject's wrapped key, or its
//! tombstone, as one row of `subject_keys`.
//!
//! Creating a key is an `INSERT ... ON CONFLICT DO NOTHING` followed by a
//! read of the row: a second creator's insert waits on the first one's
//! uncommitted row, then does nothing, and its read (a new statement, so a
//! new snapshot) finds the first key, whatever host it runs on. A shred
//! turns the row into its tombstone with an `UPDATE` and then runs `VACUUM`
//! on the table, so the dead row version holding the key is pruned at once
//! rather than at the next autovacuum; what PostgreSQL keeps beyond that
//! (write-ahead log, free space in pages, backups) is in `docs/postgres.md`.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use logbook_domain::SubjectId;
use logbook_ports::{StoreError, SubjectKey, SubjectKeyStore, WrappedKey};
use tokio_postgres::Row;

use crate::Shared;
use crate::config::PostgresUrl;
use crate::error::{corrupt, store_error};
use crate::rows::sql_int;

/// The columns a key read selects, in the order [`decode`] reads them.
const KEY_COLUMNS: &str = "subject, wrapped, created_at, shredded_at";

/// The subject-key store of one PostgreSQL schema.
#[derive(Clone)]
pub struct PostgresSubjectKeyStore {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PostgresSubjectKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSubjectKeyStore")
            .field("url", &self.shared.url)
            .finish_non_exhaustive()
    }
}

impl PostgresSubjectKeyStore {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    async fn select_one(
        &self,
        client: &tokio_postgres::Client,
        subject: &SubjectId,
        doing: &str,
    ) -> Result<Option<SubjectKey>, StoreError> {
        let url = &self.shared.url;
        client
            .query_opt(
                &format!("SELECT {KEY_COLUMNS} FROM subject_keys WHERE subject = $1"),
                &[&subject.as_str()],
            )
            .await
            .map_err(|e| store_error(url, doing, &e))?
            .map(|row| decode(url, &row).map(|(_, key)| key))
            .transpose()
    }
}

/// One row selected with [`KEY_COLUMNS`].
fn decode(url: &PostgresUrl, row: &Row) -> Result<(SubjectId, SubjectKey), StoreError> {
    let subject: String = row.get(0);
    let bad =
        |detail: String| corrupt(url, "subject_keys", &format!("subject {subject:?}"), detail);
    let id = SubjectId::new(&subject).map_err(|e| bad(e.to_string()))?;
    let wrapped: Option<Vec<u8>> = row.get(1);
    let created_at: Option<DateTime<Utc>> = row.get(2);
    let shredded_at: Option<DateTime<Utc>> = row.get(3);
    let key = match (wrapped, created_at, shredded_at) {
        (Some(wrapped), Some(created_at), None) => SubjectKey::Active {
            wrapped: WrappedKey::new(wrapped),
            created_at,
        },
        (None, _, Some(shredded_at)) => SubjectKey::Shredded { shredded_at },
        _ => {
            return Err(bad(
                "neither a key with its creation time nor a tombstone".into()
            ));
        }
    };
    Ok((id, key))
}

#[async_trait]
impl SubjectKeyStore for PostgresSubjectKeyStore {
    async fn get(&self, subject: &SubjectId) -> Result<Option<SubjectKey>, StoreError> {
        let doing = format!("reading the key of subject {subject}");
        let client = self.shared.client(&doing).await?;
        self.select_one(&client, subject, &doing).await
    }

    async fn get_or_create(
        &self,
        subject: &SubjectId,
        candidate: WrappedKey,
    ) -> Result<SubjectKey, StoreError> {
        let doing = format!("creating the key of subject {subject}");
        let url = &self.shared.url;
        let client = self.shared.client(&doing).await?;
        client
            .execute(
                "INSERT INTO subject_keys (subject, wrapped, created_at) VALUES ($1, $2, now()) \
                 ON CONFLICT (subject) DO NOTHING",
                &[&subject.as_str(), &candidate.as_bytes()],
            )
            .await
            .map_err(|e| store_error(url, &doing, &e))?;
        self.select_one(&client, subject, &doing)
            .await?
            .ok_or_else(|| {
                corrupt(
                    url,
                    "subject_keys",
                    &format!("subject {subject:?}"),
                    "the row just stored is not there",
                )
            })
    }

    async fn shred(&self, subject: &SubjectId) -> Result<SubjectKey, StoreError> {
        let doing = format!("shredding the key of subject {subject}");
        let url = &self.shared.url;
        let client = self.shared.client(&doing).await?;
        client
            .execute(
                "INSERT INTO subject_keys (subject, shredded_at) VALUES ($1, now()) \
                 ON CONFLICT (subject) DO UPDATE \
                 SET wrapped = NULL, created_at = NULL, shredded_at = excluded.shredded_at \
                 WHERE subject_keys.shredded_at IS NULL",
                &[&subject.as_str()],
            )
            .await
            .map_err(|e| store_error(url, &doing, &e))?;
        // Prunes the dead row version that held the key now rather than at
        // the next autovacuum. Outside any transaction (VACUUM refuses one).
        client
            .batch_execute("VACUUM subject_keys")
            .await
            .map_err(|e| store_error(url, &format!("vacuuming subject_keys after {doing}"), &e))?;
        self.select_one(&client, subject, &doing)
            .await?
            .ok_or_else(|| {
                corrupt(
                    url,
                    "subject_keys",
                    &format!("subject {subject:?}"),
                    "the tombstone just stored is not there",
                )
            })
    }

    async fn list(
        &self,
        after: Option<&SubjectId>,
        limit: usize,
    ) -> Result<Vec<(SubjectId, SubjectKey)>, StoreError> {
        let doing = "listing subject keys";
        let url = &self.shared.url;
        let client = self.shared.client(doing).await?;
        let after = after.map(SubjectId::as_str);
        let rows = client
            .query(
                &format!(
                    "SELECT {KEY_COLUMNS} FROM subject_keys \
                     WHERE $1::text IS NULL OR subject > $1 ORDER BY subject LIMIT $2"
                ),
                &[&after, &sql_int(limit as u64)],
            )
            .await
            .map_err(|e| store_error(url, doing, &e))?;
        rows.iter().map(|row| decode(url, row)).collect()
    }

    async fn rewrap(
        &self,
        subject: &SubjectId,
        current: &WrappedKey,
        replacement: WrappedKey,
    ) -> Result<bool, StoreError> {
        let doing = format!("rewrapping the key of subject {subject}");
        let url = &self.shared.url;
        let client = self.shared.client(&doing).await?;
        let changed = client
            .execute(
                "UPDATE subject_keys SET wrapped = $3 \
                 WHERE subject = $1 AND wrapped = $2 AND shredded_at IS NULL",
                &[
                    &subject.as_str(),
                    &current.as_bytes(),
                    &replacement.as_bytes(),
                ],
            )
            .await
            .map_err(|e| store_error(url, &doing, &e))?;
        Ok(changed == 1)
    }
}
