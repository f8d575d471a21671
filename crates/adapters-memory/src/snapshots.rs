//! [`MemorySnapshotStore`].

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use logbook_domain::StreamId;
use logbook_ports::{Snapshot, SnapshotStore, StoreError};

/// Keeps the newest snapshot of each stream in memory.
#[derive(Default)]
pub struct MemorySnapshotStore {
    snapshots: Mutex<HashMap<StreamId, Snapshot>>,
}

impl MemorySnapshotStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<StreamId, Snapshot>> {
        self.snapshots.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl SnapshotStore for MemorySnapshotStore {
    async fn save(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        let mut snapshots = self.lock();
        let newer_kept = snapshots
            .get(&snapshot.stream)
            .is_some_and(|kept| kept.version > snapshot.version);
        if !newer_kept {
            snapshots.insert(snapshot.stream.clone(), snapshot);
        }
        Ok(())
    }

    async fn load(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        Ok(self.lock().get(stream).cloned())
    }

    async fn delete(&self, stream: &StreamId) -> Result<(), StoreError> {
        self.lock().remove(stream);
        Ok(())
    }
}
