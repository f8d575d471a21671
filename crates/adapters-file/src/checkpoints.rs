//! [`FileCheckpointStore`]: every subscriber's checkpoint in one small
//! file, `checkpoints`, replaced atomically on each save. The map is kept
//! in memory; the file is read once, on open.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::Path;
use std::sync::{Arc, PoisonError};

use async_trait::async_trait;
use logbook_domain::Position;
use logbook_ports::{CheckpointStore, StoreError};

use crate::format::{self, CHECKPOINTS_FILE, CHECKPOINTS_MAGIC};
use crate::segment;
use crate::store::Core;

/// Subscriber name to position.
pub type Checkpoints = BTreeMap<String, Position>;

/// The checkpoint store of a [`crate::FileStore`].
#[derive(Clone)]
pub struct FileCheckpointStore {
    core: Arc<Core>,
}

impl std::fmt::Debug for FileCheckpointStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileCheckpointStore")
            .finish_non_exhaustive()
    }
}

impl FileCheckpointStore {
    pub(crate) fn new(core: Arc<Core>) -> Self {
        Self { core }
    }

    async fn change(
        &self,
        change: impl FnOnce(&mut Checkpoints) + Send + 'static,
    ) -> Result<(), StoreError> {
        self.core.check_writable()?;
        let core = Arc::clone(&self.core);
        tokio::task::spawn_blocking(move || {
            let mut map = core
                .checkpoints
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let mut next = map.clone();
            change(&mut next);
            if next != *map {
                let path = core.shared.dir.join(CHECKPOINTS_FILE);
                segment::write_atomically(&path, &encode(&next))?;
                *map = next;
            }
            Ok(())
        })
        .await
        .map_err(|e| StoreError::backend("file", "saving checkpoints", e))?
    }
}

/// Encodes the checkpoints file.
pub fn encode(checkpoints: &Checkpoints) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(checkpoints.len() as u32).to_le_bytes());
    for (name, position) in checkpoints {
        body.extend_from_slice(&(name.len() as u32).to_le_bytes());
        body.extend_from_slice(name.as_bytes());
        body.extend_from_slice(&position.to_le_bytes());
    }
    format::seal(CHECKPOINTS_MAGIC, &body)
}

/// Decodes the checkpoints file.
///
/// # Errors
/// [`StoreError::Corrupt`] naming the file.
pub fn decode(path: &Path, bytes: &[u8]) -> Result<Checkpoints, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        location: format::location(path, 0),
        detail,
    };
    let body = format::unseal(CHECKPOINTS_MAGIC, path, bytes, "checkpoints file")?;
    let mut rest = body;
    let mut take = |n: usize| -> Result<&[u8], StoreError> {
        let (head, tail) = rest
            .split_at_checked(n)
            .ok_or_else(|| corrupt("checkpoints body ends early".into()))?;
        rest = tail;
        Ok(head)
    };
    let count = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes"));
    let mut map = Checkpoints::new();
    for _ in 0..count {
        let len = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
        let name = std::str::from_utf8(take(len)?)
            .map_err(|_| corrupt("projection name is not UTF-8".into()))?
            .to_owned();
        let position = u64::from_le_bytes(take(8)?.try_into().expect("8 bytes"));
        map.insert(name, position);
    }
    if !rest.is_empty() {
        return Err(corrupt("bytes after the last checkpoint".into()));
    }
    Ok(map)
}

/// Reads the checkpoints of the store in `dir` (empty when it has none).
///
/// # Errors
/// [`StoreError::Corrupt`] or [`StoreError::Io`] naming the file.
pub fn load(dir: &Path) -> Result<Checkpoints, StoreError> {
    let path = dir.join(CHECKPOINTS_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => decode(&path, &bytes),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Checkpoints::new()),
        Err(e) => Err(StoreError::io(format!("read {}", path.display()), e)),
    }
}

#[async_trait]
impl CheckpointStore for FileCheckpointStore {
    async fn load(&self, projection: &str) -> Result<Option<Position>, StoreError> {
        Ok(self
            .core
            .checkpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(projection)
            .copied())
    }

    async fn save(&self, projection: &str, position: Position) -> Result<(), StoreError> {
        let projection = projection.to_owned();
        self.change(move |map| {
            map.insert(projection, position);
        })
        .await
    }

    async fn reset(&self, projection: &str) -> Result<(), StoreError> {
        let projection = projection.to_owned();
        self.change(move |map| {
            map.remove(&projection);
        })
        .await
    }
}
