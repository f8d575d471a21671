//! [`MemorySubjectKeyStore`]: each subject's wrapped key or tombstone in a
//! sorted map. A shred drops the wrapped bytes with the entry they were in.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::Utc;
use logbook_domain::SubjectId;
use logbook_ports::{StoreError, SubjectKey, SubjectKeyStore, WrappedKey};

/// Keeps subjects' keys in memory, ordered by subject id.
#[derive(Default)]
pub struct MemorySubjectKeyStore {
    keys: Mutex<BTreeMap<SubjectId, SubjectKey>>,
}

impl MemorySubjectKeyStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<SubjectId, SubjectKey>> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl SubjectKeyStore for MemorySubjectKeyStore {
    async fn get(&self, subject: &SubjectId) -> Result<Option<SubjectKey>, StoreError> {
        Ok(self.lock().get(subject).cloned())
    }

    async fn get_or_create(
        &self,
        subject: &SubjectId,
        candidate: WrappedKey,
    ) -> Result<SubjectKey, StoreError> {
        Ok(self
            .lock()
            .entry(subject.clone())
            .or_insert_with(|| SubjectKey::Active {
                wrapped: candidate,
                created_at: Utc::now(),
            })
            .clone())
    }

    async fn shred(&self, subject: &SubjectId) -> Result<SubjectKey, StoreError> {
        let mut keys = self.lock();
        let entry = keys.entry(subject.clone()).or_insert(SubjectKey::Shredded {
            shredded_at: Utc::now(),
        });
        if matches!(entry, SubjectKey::Active { .. }) {
            *entry = SubjectKey::Shredded {
                shredded_at: Utc::now(),
            };
        }
        Ok(entry.clone())
    }

    async fn list(
        &self,
        after: Option<&SubjectId>,
        limit: usize,
    ) -> Result<Vec<(SubjectId, SubjectKey)>, StoreError> {
        let start = after.map_or(Bound::Unbounded, |id| Bound::Excluded(id.clone()));
        Ok(self
            .lock()
            .range((start, Bound::Unbounded))
            .take(limit)
            .map(|(id, key)| (id.clone(), key.clone()))
            .collect())
    }

    async fn rewrap(
        &self,
        subject: &SubjectId,
        current: &WrappedKey,
        replacement: WrappedKey,
    ) -> Result<bool, StoreError> {
        let mut keys = self.lock();
        match keys.get_mut(subject) {
            Some(SubjectKey::Active { wrapped, .. }) if wrapped == current => {
                *wrapped = replacement;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
