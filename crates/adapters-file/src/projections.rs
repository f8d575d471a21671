//! [`FileProjectionStore`]: one file per read model under `projections/`,
//! replaced atomically (temporary file, fsync, rename, fsync of the
//! directory). A save reads the stored generation and writes under one
//! lock; the store directory's exclusive lock keeps other processes out,
//! so that lock orders every saver.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError};

use async_trait::async_trait;
use chrono::DateTime;
use logbook_domain::Payload;
use logbook_ports::projection::{decide_save, decode_parked, encode_parked};
use logbook_ports::{ProjectionDocument, ProjectionSave, ProjectionStore, StoreError};

use crate::blocking::{blocking, read_if_present};
use crate::format::{self, PROJECTION_MAGIC, PROJECTIONS_DIR};
use crate::segment;
use crate::store::Core;

/// Bytes of a document body before the name: generation (8), checkpoint
/// (8, 0 for none), saved-at micros (8), name length (4).
const FIXED_LEN: usize = 28;

/// The projection store of a [`crate::FileStore`].
#[derive(Clone)]
pub struct FileProjectionStore {
    core: Arc<Core>,
}

impl std::fmt::Debug for FileProjectionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileProjectionStore")
            .finish_non_exhaustive()
    }
}

impl FileProjectionStore {
    pub(crate) fn new(core: Arc<Core>) -> Self {
        Self { core }
    }
}

/// Where the document of the read model `name` lives.
pub fn projection_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(PROJECTIONS_DIR).join(format::file_name_for(name))
}

/// Encodes a document file, at `generation`.
///
/// # Errors
/// [`StoreError::InvalidEvent`] for a document larger than 4 GiB.
pub fn encode(
    name: &str,
    generation: u64,
    document: &ProjectionDocument,
) -> Result<Vec<u8>, StoreError> {
    let parked = encode_parked(&document.parked);
    let model = document.model.as_bytes();
    let mut body = Vec::with_capacity(FIXED_LEN + name.len() + 4 + parked.len() + model.len());
    body.extend_from_slice(&generation.to_le_bytes());
    body.extend_from_slice(&document.checkpoint.unwrap_or(0).to_le_bytes());
    body.extend_from_slice(&document.saved_at.timestamp_micros().to_le_bytes());
    let too_large = || StoreError::InvalidEvent {
        index: 0,
        reason: format!("projection {name}'s document is larger than 4 GiB"),
    };
    body.extend_from_slice(
        &u32::try_from(name.len())
            .map_err(|_| too_large())?
            .to_le_bytes(),
    );
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(
        &u32::try_from(parked.len())
            .map_err(|_| too_large())?
            .to_le_bytes(),
    );
    body.extend_from_slice(&parked);
    body.extend_from_slice(model);
    if body.len() > u32::MAX as usize {
        return Err(too_large());
    }
    Ok(format::seal(PROJECTION_MAGIC, &body))
}

/// Decodes a document file; `Ok(None)` when it holds another read model's
/// document (two names sharing a file name). `name: None` accepts any.
///
/// # Errors
/// [`StoreError::Corrupt`] naming the file.
pub fn decode(
    path: &Path,
    bytes: &[u8],
    name: Option<&str>,
) -> Result<Option<ProjectionDocument>, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        location: format::location(path, 0),
        detail,
    };
    let body = format::unseal(PROJECTION_MAGIC, path, bytes, "projection document")?;
    let mut rest = body;
    let mut take = |n: usize| -> Result<&[u8], StoreError> {
        let (head, tail) = rest
            .split_at_checked(n)
            .ok_or_else(|| corrupt("projection document ends early".into()))?;
        rest = tail;
        Ok(head)
    };
    let u64_at = |bytes: &[u8]| u64::from_le_bytes(bytes.try_into().expect("8 bytes"));
    let generation = u64_at(take(8)?);
    let checkpoint = Some(u64_at(take(8)?)).filter(|&p| p > 0);
    let micros = i64::from_le_bytes(take(8)?.try_into().expect("8 bytes"));
    let name_len = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
    let stored_name = std::str::from_utf8(take(name_len)?)
        .map_err(|_| corrupt("projection name is not UTF-8".into()))?;
    if name.is_some_and(|wanted| wanted != stored_name) {
        return Ok(None);
    }
    let parked_len = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
    let parked = decode_parked(take(parked_len)?)
        .map_err(|e| corrupt(format!("parked events do not decode: {e}")))?;
    Ok(Some(ProjectionDocument {
        generation,
        checkpoint,
        model: Payload::from_stored(rest.to_vec()),
        parked,
        saved_at: DateTime::from_timestamp_micros(micros)
            .ok_or_else(|| corrupt("timestamp out of range".into()))?,
    }))
}

#[async_trait]
impl ProjectionStore for FileProjectionStore {
    async fn load(&self, name: &str) -> Result<Option<ProjectionDocument>, StoreError> {
        let path = projection_path(&self.core.shared.dir, name);
        let name = name.to_owned();
        blocking(move || match read_if_present(&path)? {
            Some(bytes) => decode(&path, &bytes, Some(&name)),
            None => Ok(None),
        })
        .await
    }

    async fn save(
        &self,
        name: &str,
        document: &ProjectionDocument,
        save: ProjectionSave,
    ) -> Result<u64, StoreError> {
        self.core.check_writable()?;
        let core = Arc::clone(&self.core);
        let path = projection_path(&self.core.shared.dir, name);
        let name = name.to_owned();
        let document = document.clone();
        blocking(move || {
            let _serial = core
                .projection_lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            // A damaged stored document fails the save: its generation
            // cannot be checked, and overwriting it would hide the damage.
            let stored = match read_if_present(&path)? {
                Some(bytes) => decode(&path, &bytes, Some(&name))?,
                None => None,
            };
            let generation = decide_save(
                &name,
                stored.map(|d| (d.generation, d.checkpoint)),
                &document,
                save,
            )?;
            segment::write_atomically(&path, &encode(&name, generation, &document)?)?;
            Ok(generation)
        })
        .await
    }
}
