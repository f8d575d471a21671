//! [`MemoryCheckpointStore`].

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use logbook_domain::Position;
use logbook_ports::{CheckpointStore, StoreError};

/// Keeps subscribers' checkpoints (the dispatcher's) in memory.
#[derive(Default)]
pub struct MemoryCheckpointStore {
    positions: Mutex<HashMap<String, Position>>,
}

impl MemoryCheckpointStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Position>> {
        self.positions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl CheckpointStore for MemoryCheckpointStore {
    async fn load(&self, projection: &str) -> Result<Option<Position>, StoreError> {
        Ok(self.lock().get(projection).copied())
    }

    async fn save(&self, projection: &str, position: Position) -> Result<(), StoreError> {
        self.lock().insert(projection.to_owned(), position);
        Ok(())
    }

    async fn reset(&self, projection: &str) -> Result<(), StoreError> {
        self.lock().remove(projection);
        Ok(())
    }
}
