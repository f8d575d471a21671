//! [`FileSnapshotStore`]: one file per stream under `snapshots/`, replaced
//! atomically (temporary file, fsync, rename, fsync of the directory).

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError};

use async_trait::async_trait;
use chrono::DateTime;
use logbook_domain::{Payload, StreamId};
use logbook_ports::{Snapshot, SnapshotStore, StoreError};

use crate::blocking::{blocking, read_if_present};
use crate::format::{self, SNAPSHOT_MAGIC, SNAPSHOTS_DIR};
use crate::segment;
use crate::store::Core;

/// Bytes of a snapshot body before the stream id: version (8), schema
/// version (4), taken-at micros (8), stream id length (2).
const SNAPSHOT_FIXED_LEN: usize = 22;

/// The snapshot store of a [`crate::FileStore`].
#[derive(Clone)]
pub struct FileSnapshotStore {
    core: Arc<Core>,
}

impl std::fmt::Debug for FileSnapshotStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSnapshotStore").finish_non_exhaustive()
    }
}

impl FileSnapshotStore {
    pub(crate) fn new(core: Arc<Core>) -> Self {
        Self { core }
    }

    fn path(&self, stream: &StreamId) -> PathBuf {
        snapshot_path(&self.core.shared.dir, stream.as_str())
    }
}

/// Where the snapshot of `stream` lives.
pub fn snapshot_path(dir: &Path, stream: &str) -> PathBuf {
    dir.join(SNAPSHOTS_DIR).join(format::file_name_for(stream))
}

/// Encodes a snapshot file.
pub fn encode(snapshot: &Snapshot) -> Result<Vec<u8>, StoreError> {
    let stream = snapshot.stream.as_str().as_bytes();
    let mut body = Vec::with_capacity(SNAPSHOT_FIXED_LEN + stream.len() + snapshot.state.len());
    body.extend_from_slice(&snapshot.version.to_le_bytes());
    body.extend_from_slice(&snapshot.schema_version.to_le_bytes());
    body.extend_from_slice(&snapshot.taken_at.timestamp_micros().to_le_bytes());
    let stream_len = u16::try_from(stream.len()).expect("stream ids are at most 256 bytes");
    body.extend_from_slice(&stream_len.to_le_bytes());
    body.extend_from_slice(stream);
    body.extend_from_slice(snapshot.state.as_bytes());
    if body.len() > u32::MAX as usize {
        return Err(StoreError::InvalidEvent {
            index: 0,
            reason: "snapshot state is larger than 4 GiB".into(),
        });
    }
    Ok(format::seal(SNAPSHOT_MAGIC, &body))
}

/// Decodes a snapshot file; `Ok(None)` when it holds another stream's
/// snapshot (two ids sharing a file name).
///
/// # Errors
/// [`StoreError::Corrupt`] naming the file.
pub fn decode(
    path: &Path,
    bytes: &[u8],
    stream: Option<&str>,
) -> Result<Option<Snapshot>, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        location: format::location(path, 0),
        detail,
    };
    let body = format::unseal(SNAPSHOT_MAGIC, path, bytes, "snapshot file")?;
    let fixed = body
        .get(..SNAPSHOT_FIXED_LEN)
        .ok_or_else(|| corrupt("snapshot body is too short".into()))?;
    let version = u64::from_le_bytes(fixed[..8].try_into().expect("8 bytes"));
    let schema_version = u32::from_le_bytes(fixed[8..12].try_into().expect("4 bytes"));
    let micros = i64::from_le_bytes(fixed[12..20].try_into().expect("8 bytes"));
    let stream_len = usize::from(u16::from_le_bytes([fixed[20], fixed[21]]));
    let rest = &body[SNAPSHOT_FIXED_LEN..];
    let (name, state) = rest
        .split_at_checked(stream_len)
        .ok_or_else(|| corrupt("stream id runs past the end".into()))?;
    let name = std::str::from_utf8(name).map_err(|_| corrupt("stream id is not UTF-8".into()))?;
    if stream.is_some_and(|wanted| wanted != name) {
        return Ok(None);
    }
    let stream = StreamId::new(name).map_err(|e| corrupt(e.to_string()))?;
    Ok(Some(Snapshot {
        stream,
        version,
        schema_version,
        state: Payload::from_stored(state.to_vec()),
        taken_at: DateTime::from_timestamp_micros(micros)
            .ok_or_else(|| corrupt("timestamp out of range".into()))?,
    }))
}

#[async_trait]
impl SnapshotStore for FileSnapshotStore {
    async fn save(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        self.core.check_writable()?;
        let core = Arc::clone(&self.core);
        let path = self.path(&snapshot.stream);
        blocking(move || {
            let bytes = encode(&snapshot)?;
            let _serial = core
                .snapshot_lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(old) = read_if_present(&path)?
                // An unreadable old snapshot is simply replaced.
                && let Ok(Some(kept)) = decode(&path, &old, Some(snapshot.stream.as_str()))
                && kept.version > snapshot.version
            {
                return Ok(());
            }
            segment::write_atomically(&path, &bytes)
        })
        .await
    }

    async fn load(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        let path = self.path(stream);
        let stream = stream.clone();
        blocking(move || match read_if_present(&path)? {
            Some(bytes) => decode(&path, &bytes, Some(stream.as_str())),
            None => Ok(None),
        })
        .await
    }

    async fn delete(&self, stream: &StreamId) -> Result<(), StoreError> {
        self.core.check_writable()?;
        let core = Arc::clone(&self.core);
        let path = self.path(stream);
        let stream = stream.clone();
        blocking(move || {
            let _serial = core
                .snapshot_lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match read_if_present(&path)? {
                Some(bytes) if matches!(decode(&path, &bytes, Some(stream.as_str())), Ok(None)) => {
                    Ok(()) // another stream's snapshot
                }
                Some(_) => segment::remove_durably(&path),
                None => Ok(()),
            }
        })
        .await
    }
}
