//! [`MemorySubjectKeyStore`]: each subject's wrapped key or tombstone in a
//! sorted map. A shred drops the wrapped bytes with the entry they were in.

use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use logbook_domain::SubjectId;
use logbook_ports::subject_key::in_map::{self, SubjectKeys};
use logbook_ports::{StoreError, SubjectKey, SubjectKeyStore, WrappedKey};

/// Keeps subjects' keys in memory, ordered by subject id.
#[derive(Default)]
pub struct MemorySubjectKeyStore {
    keys: Mutex<SubjectKeys>,
}

impl MemorySubjectKeyStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, SubjectKeys> {
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
        Ok(in_map::get_or_create(&mut self.lock(), subject, candidate))
    }

    async fn shred(&self, subject: &SubjectId) -> Result<SubjectKey, StoreError> {
        Ok(in_map::shred(&mut self.lock(), subject))
    }

    async fn list(
        &self,
        after: Option<&SubjectId>,
        limit: usize,
    ) -> Result<Vec<(SubjectId, SubjectKey)>, StoreError> {
        Ok(in_map::page(&self.lock(), after, limit))
    }

    async fn rewrap(
        &self,
        subject: &SubjectId,
        current: &WrappedKey,
        replacement: WrappedKey,
    ) -> Result<bool, StoreError> {
        Ok(in_map::rewrap(
            &mut self.lock(),
            subject,
            current,
            replacement,
        ))
    }
}
