//! [`SqliteSubjectKeyStore`]: each data subject's wrapped key, or its
//! tombstone, as one row of `subject_keys`.
//!
//! Creating a key is an `INSERT ... ON CONFLICT DO NOTHING` and a read of
//! the row in the writer's `BEGIN IMMEDIATE` transaction, which SQLite
//! serializes across processes, so concurrent creators all read back the
//! first key. A shred overwrites the row with its tombstone under
//! `PRAGMA secure_delete` (SQLite zeroes the space the old row took in the
//! page) and then checkpoints the write-ahead log with `TRUNCATE`, so the
//! page that still held the key is neither in the database file nor in the
//! `-wal` file once the shred returns.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use logbook_domain::SubjectId;
use logbook_ports::{StoreError, SubjectKey, SubjectKeyStore, WrappedKey};
use rusqlite::{Connection, OpenFlags, Row, params};

use crate::Shared;
use crate::error::{corrupt, store_error};
use crate::rows::{from_micros, sql_int};

/// The columns a key read selects, in the order [`decode`] reads them.
const KEY_COLUMNS: &str = "subject, wrapped, created_at, shredded_at";

/// The subject-key store of one SQLite database; shares the event store's
/// writer and readers.
#[derive(Clone)]
pub struct SqliteSubjectKeyStore {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SqliteSubjectKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteSubjectKeyStore")
            .field("path", &self.shared.path)
            .finish_non_exhaustive()
    }
}

impl SqliteSubjectKeyStore {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Runs `work` on the writer with `PRAGMA secure_delete` on, so the
    /// bytes a row loses are zeroed in its page, then off again (other
    /// writes of the group need not pay for it).
    async fn write_erasing<T: Send + 'static>(
        &self,
        doing: String,
        work: impl FnOnce(&Connection, &Path) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let path = self.shared.path.clone();
        self.shared
            .writer
            .run(
                0,
                move |conn| {
                    let set = |on: bool| {
                        conn.pragma_update(None, "secure_delete", on)
                            .map_err(|e| store_error(&path, &doing, e))
                    };
                    set(true)?;
                    let result = work(conn, &path);
                    set(false)?;
                    result
                },
                |_| None,
            )
            .await
    }

    /// Copies the write-ahead log into the database and truncates it to
    /// nothing, so no old page image (a shredded key's) stays in `-wal`.
    /// Runs on a connection of its own: the writer's is inside its group
    /// transactions, where a checkpoint cannot run. Waits up to the busy
    /// timeout for readers of other processes that still hold old pages.
    async fn checkpoint(&self, subject: &SubjectId) -> Result<(), StoreError> {
        let path = self.shared.path.clone();
        let busy_timeout = self.shared.busy_timeout;
        let doing = format!("checkpointing the write-ahead log after shredding {subject}");
        tokio::task::spawn_blocking(move || {
            let error = |e| store_error(&path, &doing, e);
            let conn = Connection::open_with_flags(
                &path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(error)?;
            conn.busy_timeout(busy_timeout).map_err(error)?;
            let busy: i64 = conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))
                .map_err(error)?;
            if busy != 0 {
                // The tombstone is committed; the old page may still be in
                // the write-ahead log. Shredding again retries this.
                return Err(StoreError::Locked { path: path.clone() });
            }
            Ok(())
        })
        .await
        .map_err(|e| {
            StoreError::backend(
                crate::error::BACKEND,
                format!(
                    "checkpointing SQLite database {}",
                    self.shared.path.display()
                ),
                e,
            )
        })?
    }
}

/// One row selected with [`KEY_COLUMNS`].
fn decode(path: &Path, row: &Row<'_>) -> Result<(SubjectId, SubjectKey), StoreError> {
    let subject: String = row
        .get(0)
        .map_err(|e| corrupt(path, "subject_keys", "a row", e.to_string()))?;
    let bad = |detail: String| {
        corrupt(
            path,
            "subject_keys",
            &format!("subject {subject:?}"),
            detail,
        )
    };
    let id = SubjectId::new(&subject).map_err(|e| bad(e.to_string()))?;
    let columns = (|| {
        Ok::<_, rusqlite::Error>((
            row.get::<_, Option<Vec<u8>>>(1)?,
            row.get::<_, Option<i64>>(2)?,
            row.get::<_, Option<i64>>(3)?,
        ))
    })()
    .map_err(|e| bad(e.to_string()))?;
    let time =
        |micros: i64| from_micros(micros).ok_or_else(|| bad(format!("time {micros} out of range")));
    let key = match columns {
        (Some(wrapped), Some(created_at), None) => SubjectKey::Active {
            wrapped: WrappedKey::new(wrapped),
            created_at: time(created_at)?,
        },
        (None, _, Some(shredded_at)) => SubjectKey::Shredded {
            shredded_at: time(shredded_at)?,
        },
        _ => {
            return Err(bad(
                "neither a key with its creation time nor a tombstone".into()
            ));
        }
    };
    Ok((id, key))
}

fn select_one(
    conn: &Connection,
    path: &Path,
    subject: &str,
    doing: &str,
) -> Result<Option<SubjectKey>, StoreError> {
    let mut statement = conn
        .prepare_cached(&format!(
            "SELECT {KEY_COLUMNS} FROM subject_keys WHERE subject = ?1"
        ))
        .map_err(|e| store_error(path, doing, e))?;
    let mut rows = statement
        .query([subject])
        .map_err(|e| store_error(path, doing, e))?;
    rows.next()
        .map_err(|e| store_error(path, doing, e))?
        .map(|row| decode(path, row).map(|(_, key)| key))
        .transpose()
}

fn micros_now() -> i64 {
    Utc::now().timestamp_micros()
}

#[async_trait]
impl SubjectKeyStore for SqliteSubjectKeyStore {
    async fn get(&self, subject: &SubjectId) -> Result<Option<SubjectKey>, StoreError> {
        let subject = subject.clone();
        self.shared
            .readers
            .read(move |conn, path| {
                select_one(
                    conn,
                    path,
                    subject.as_str(),
                    &format!("reading the key of subject {subject}"),
                )
            })
            .await
    }

    async fn get_or_create(
        &self,
        subject: &SubjectId,
        candidate: WrappedKey,
    ) -> Result<SubjectKey, StoreError> {
        let subject = subject.clone();
        let path = self.shared.path.clone();
        self.shared
            .writer
            .run(
                0,
                move |conn| {
                    let doing = format!("creating the key of subject {subject}");
                    conn.prepare_cached(
                        "INSERT INTO subject_keys (subject, wrapped, created_at) VALUES (?1, ?2, ?3) \
                         ON CONFLICT (subject) DO NOTHING",
                    )
                    .and_then(|mut s| {
                        s.execute(params![subject.as_str(), candidate.as_bytes(), micros_now()])
                    })
                    .map_err(|e| store_error(&path, &doing, e))?;
                    select_one(conn, &path, subject.as_str(), &doing)?.ok_or_else(|| {
                        corrupt(
                            &path,
                            "subject_keys",
                            &format!("subject {subject:?}"),
                            "the row just stored is not there",
                        )
                    })
                },
                |_| None,
            )
            .await
    }

    async fn shred(&self, subject: &SubjectId) -> Result<SubjectKey, StoreError> {
        let id = subject.clone();
        let doing = format!("shredding the key of subject {subject}");
        let tombstone = self
            .write_erasing(doing.clone(), move |conn, path| {
                conn.prepare_cached(
                    "INSERT INTO subject_keys (subject, shredded_at) VALUES (?1, ?2) \
                     ON CONFLICT (subject) DO UPDATE \
                     SET wrapped = NULL, created_at = NULL, shredded_at = excluded.shredded_at \
                     WHERE shredded_at IS NULL",
                )
                .and_then(|mut s| s.execute(params![id.as_str(), micros_now()]))
                .map_err(|e| store_error(path, &doing, e))?;
                select_one(conn, path, id.as_str(), &doing)?.ok_or_else(|| {
                    corrupt(
                        path,
                        "subject_keys",
                        &format!("subject {id:?}"),
                        "the tombstone just stored is not there",
                    )
                })
            })
            .await?;
        self.checkpoint(subject).await?;
        Ok(tombstone)
    }

    async fn list(
        &self,
        after: Option<&SubjectId>,
        limit: usize,
    ) -> Result<Vec<(SubjectId, SubjectKey)>, StoreError> {
        let after = after.map(|id| id.as_str().to_owned());
        self.shared
            .readers
            .read(move |conn, path| {
                let doing = "listing subject keys";
                let mut statement = conn
                    .prepare_cached(&format!(
                        "SELECT {KEY_COLUMNS} FROM subject_keys \
                         WHERE ?1 IS NULL OR subject > ?1 ORDER BY subject LIMIT ?2"
                    ))
                    .map_err(|e| store_error(path, doing, e))?;
                let mut rows = statement
                    .query(params![after, sql_int(limit as u64)])
                    .map_err(|e| store_error(path, doing, e))?;
                let mut page = Vec::new();
                while let Some(row) = rows.next().map_err(|e| store_error(path, doing, e))? {
                    page.push(decode(path, row)?);
                }
                Ok(page)
            })
            .await
    }

    async fn rewrap(
        &self,
        subject: &SubjectId,
        current: &WrappedKey,
        replacement: WrappedKey,
    ) -> Result<bool, StoreError> {
        let id = subject.clone();
        let current = current.clone();
        let doing = format!("rewrapping the key of subject {subject}");
        self.write_erasing(doing.clone(), move |conn, path| {
            conn.prepare_cached(
                "UPDATE subject_keys SET wrapped = ?3 \
                 WHERE subject = ?1 AND wrapped = ?2 AND shredded_at IS NULL",
            )
            .and_then(|mut s| {
                s.execute(params![
                    id.as_str(),
                    current.as_bytes(),
                    replacement.as_bytes()
                ])
            })
            .map(|changed| changed == 1)
            .map_err(|e| store_error(path, &doing, e))
        })
        .await
    }
}
