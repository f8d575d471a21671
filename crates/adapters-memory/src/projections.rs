//! [`MemoryProjectionStore`].

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use logbook_ports::projection::decide_save;
use logbook_ports::{ProjectionDocument, ProjectionSave, ProjectionStore, StoreError};

/// Keeps each read model's document in memory; a save decides and writes
/// under one lock, so racing savers are ordered.
#[derive(Default)]
pub struct MemoryProjectionStore {
    documents: Mutex<HashMap<String, ProjectionDocument>>,
}

impl MemoryProjectionStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, ProjectionDocument>> {
        self.documents.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl ProjectionStore for MemoryProjectionStore {
    async fn load(&self, name: &str) -> Result<Option<ProjectionDocument>, StoreError> {
        Ok(self.lock().get(name).cloned())
    }

    async fn save(
        &self,
        name: &str,
        document: &ProjectionDocument,
        save: ProjectionSave,
    ) -> Result<u64, StoreError> {
        let mut documents = self.lock();
        let stored = documents.get(name).map(|d| (d.generation, d.checkpoint));
        let generation = decide_save(name, stored, document, save)?;
        documents.insert(
            name.to_owned(),
            ProjectionDocument {
                generation,
                ..document.clone()
            },
        );
        Ok(generation)
    }
}
