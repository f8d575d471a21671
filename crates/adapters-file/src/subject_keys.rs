//! [`FileSubjectKeyStore`]: every data subject's wrapped key, or its
//! tombstone, in one small file of its own, `subject-keys`, replaced
//! atomically (temporary file, fsync, rename, directory fsync) on each
//! change. A shred rewrites the file without the key, so the wrapped bytes
//! are in no file of the store once it returns. The map is kept in memory
//! by a store that writes (it is the only writer, by the directory lock);
//! a read-only store reads the file again on every call, so it sees what
//! the writing process stored.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use logbook_domain::SubjectId;
use logbook_ports::{StoreError, SubjectKey, SubjectKeyStore, WrappedKey};

use crate::blocking::{blocking, read_if_present};
use crate::format::{self, SUBJECT_KEYS_FILE, SUBJECT_KEYS_MAGIC};
use crate::segment;
use crate::store::Core;

/// Subject to key or tombstone, in subject-id order.
pub type SubjectKeys = BTreeMap<SubjectId, SubjectKey>;

/// Record tag of a live key.
const ACTIVE: u8 = 1;
/// Record tag of a tombstone.
const SHREDDED: u8 = 2;

/// The subject-key store of a [`crate::FileStore`].
#[derive(Clone)]
pub struct FileSubjectKeyStore {
    core: Arc<Core>,
}

impl std::fmt::Debug for FileSubjectKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSubjectKeyStore")
            .finish_non_exhaustive()
    }
}

impl FileSubjectKeyStore {
    pub(crate) fn new(core: Arc<Core>) -> Self {
        Self { core }
    }

    /// Runs `read` on the current keys: the writer's map, or the file as
    /// it is now for a read-only store.
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&SubjectKeys) -> T + Send + 'static,
    ) -> Result<T, StoreError> {
        let core = Arc::clone(&self.core);
        blocking(move || {
            if core.is_following() {
                return Ok(read(&load(&core.shared.dir)?));
            }
            let keys = core
                .subject_keys
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            Ok(read(&keys))
        })
        .await
    }

    /// Applies `change` to the keys; when it changed them, replaces the
    /// file before the new map is kept, so nothing is answered that is not
    /// durable. Returns what `change` returned.
    async fn change<T: Send + 'static>(
        &self,
        change: impl FnOnce(&mut SubjectKeys) -> T + Send + 'static,
    ) -> Result<T, StoreError> {
        self.core.check_writable()?;
        let core = Arc::clone(&self.core);
        blocking(move || {
            let mut keys = core
                .subject_keys
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let mut next = keys.clone();
            let answer = change(&mut next);
            if next != *keys {
                let path = core.shared.dir.join(SUBJECT_KEYS_FILE);
                segment::write_atomically(&path, &encode(&next))?;
                *keys = next;
            }
            Ok(answer)
        })
        .await
    }
}

fn micros(time: DateTime<Utc>) -> i64 {
    time.timestamp_micros()
}

/// Encodes the subject-keys file: a count, then per subject its id, a tag,
/// a time and (for a live key) the wrapped bytes, all sealed in the
/// checksummed small-file envelope.
pub fn encode(keys: &SubjectKeys) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(keys.len() as u32).to_le_bytes());
    for (subject, key) in keys {
        body.extend_from_slice(&(subject.as_str().len() as u32).to_le_bytes());
        body.extend_from_slice(subject.as_str().as_bytes());
        match key {
            SubjectKey::Active {
                wrapped,
                created_at,
            } => {
                body.push(ACTIVE);
                body.extend_from_slice(&micros(*created_at).to_le_bytes());
                body.extend_from_slice(&(wrapped.as_bytes().len() as u32).to_le_bytes());
                body.extend_from_slice(wrapped.as_bytes());
            }
            SubjectKey::Shredded { shredded_at } => {
                body.push(SHREDDED);
                body.extend_from_slice(&micros(*shredded_at).to_le_bytes());
            }
        }
    }
    format::seal(SUBJECT_KEYS_MAGIC, &body)
}

/// Decodes the subject-keys file.
///
/// # Errors
/// [`StoreError::Corrupt`] naming the file and the offset of the bad
/// record; [`StoreError::IncompatibleFormat`] for a newer format.
pub fn decode(path: &Path, bytes: &[u8]) -> Result<SubjectKeys, StoreError> {
    let body = format::unseal(SUBJECT_KEYS_MAGIC, path, bytes, "subject-keys file")?;
    let mut at = 0usize;
    let corrupt = |offset: usize, detail: String| StoreError::Corrupt {
        location: format::location(path, (format::ENVELOPE_LEN + offset) as u64),
        detail,
    };
    let mut take = |n: usize| -> Result<(usize, &[u8]), StoreError> {
        let start = at;
        let bytes = body
            .get(at..at + n)
            .ok_or_else(|| corrupt(start, "subject-keys body ends early".into()))?;
        at += n;
        Ok((start, bytes))
    };
    let u32_of = |b: &[u8]| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize;
    let i64_of = |b: &[u8]| i64::from_le_bytes(b.try_into().expect("8 bytes"));
    let count = u32_of(take(4)?.1);
    let mut keys = SubjectKeys::new();
    for _ in 0..count {
        let len = u32_of(take(4)?.1);
        let (offset, raw) = take(len)?;
        let subject = std::str::from_utf8(raw)
            .ok()
            .and_then(|s| SubjectId::new(s).ok())
            .ok_or_else(|| corrupt(offset, "subject id is not a valid id".into()))?;
        let (tag_offset, tag) = take(1)?;
        let (time_offset, time) = take(8)?;
        let time = DateTime::from_timestamp_micros(i64_of(time)).ok_or_else(|| {
            corrupt(
                time_offset,
                format!("time of subject {subject} out of range"),
            )
        })?;
        let key = match tag[0] {
            ACTIVE => {
                let len = u32_of(take(4)?.1);
                SubjectKey::Active {
                    wrapped: WrappedKey::new(take(len)?.1.to_vec()),
                    created_at: time,
                }
            }
            SHREDDED => SubjectKey::Shredded { shredded_at: time },
            other => {
                return Err(corrupt(
                    tag_offset,
                    format!("unknown record tag {other} for subject {subject}"),
                ));
            }
        };
        keys.insert(subject, key);
    }
    if at != body.len() {
        return Err(corrupt(at, "bytes after the last subject key".into()));
    }
    Ok(keys)
}

/// Reads the subject keys of the store in `dir` (none when it has no
/// `subject-keys` file: a store written before keys existed, or with none).
///
/// # Errors
/// [`StoreError::Corrupt`], [`StoreError::IncompatibleFormat`] or
/// [`StoreError::Io`] naming the file.
pub fn load(dir: &Path) -> Result<SubjectKeys, StoreError> {
    let path = dir.join(SUBJECT_KEYS_FILE);
    match read_if_present(&path)? {
        Some(bytes) => decode(&path, &bytes),
        None => Ok(SubjectKeys::new()),
    }
}

#[async_trait]
impl SubjectKeyStore for FileSubjectKeyStore {
    async fn get(&self, subject: &SubjectId) -> Result<Option<SubjectKey>, StoreError> {
        let subject = subject.clone();
        self.read(move |keys| keys.get(&subject).cloned()).await
    }

    async fn get_or_create(
        &self,
        subject: &SubjectId,
        candidate: WrappedKey,
    ) -> Result<SubjectKey, StoreError> {
        let subject = subject.clone();
        self.change(move |keys| {
            keys.entry(subject)
                .or_insert_with(|| SubjectKey::Active {
                    wrapped: candidate,
                    created_at: Utc::now(),
                })
                .clone()
        })
        .await
    }

    async fn shred(&self, subject: &SubjectId) -> Result<SubjectKey, StoreError> {
        let subject = subject.clone();
        self.change(move |keys| {
            let tombstone = SubjectKey::Shredded {
                shredded_at: Utc::now(),
            };
            let entry = keys.entry(subject).or_insert_with(|| tombstone.clone());
            if matches!(entry, SubjectKey::Active { .. }) {
                *entry = tombstone;
            }
            entry.clone()
        })
        .await
    }

    async fn list(
        &self,
        after: Option<&SubjectId>,
        limit: usize,
    ) -> Result<Vec<(SubjectId, SubjectKey)>, StoreError> {
        let start = after.map_or(Bound::Unbounded, |id| Bound::Excluded(id.clone()));
        self.read(move |keys| {
            keys.range((start, Bound::Unbounded))
                .take(limit)
                .map(|(id, key)| (id.clone(), key.clone()))
                .collect()
        })
        .await
    }

    async fn rewrap(
        &self,
        subject: &SubjectId,
        current: &WrappedKey,
        replacement: WrappedKey,
    ) -> Result<bool, StoreError> {
        let subject = subject.clone();
        let current = current.clone();
        self.change(move |keys| match keys.get_mut(&subject) {
            Some(SubjectKey::Active { wrapped, .. }) if *wrapped == current => {
                *wrapped = replacement;
                true
            }
            _ => false,
        })
        .await
    }
}
