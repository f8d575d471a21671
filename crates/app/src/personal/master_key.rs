//! The operator's master key: it seals every subject key before the key
//! reaches a store. Read from `LOGBOOK_MASTER_KEY` (64 hex digits or the
//! base64 of 32 bytes) or from the file `LOGBOOK_MASTER_KEY_FILE` names (the
//! same text, surrounding whitespace ignored).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::cipher::{KEY_LEN, SecretKey};

/// The environment variable holding the master key itself.
pub const MASTER_KEY_VAR: &str = "LOGBOOK_MASTER_KEY";
/// The environment variable naming a file that holds the master key.
pub const MASTER_KEY_FILE_VAR: &str = "LOGBOOK_MASTER_KEY_FILE";

/// Why no master key could be read.
#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    /// The text is neither 64 hex digits nor base64 of 32 bytes.
    #[error(
        "the master key from {source_name} is not 64 hex digits or the base64 of 32 bytes (generate one with `logbook subject new-master-key`)"
    )]
    Malformed {
        /// Where the text came from (a variable or a file).
        source_name: String,
    },
    /// The key file could not be read.
    #[error("cannot read the master key file {}: {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Both variables are set, so which one is meant is unclear.
    #[error("both {MASTER_KEY_VAR} and {MASTER_KEY_FILE_VAR} are set; set only one")]
    Ambiguous,
}

/// The master key. `Debug` never shows it.
#[derive(Debug, Clone)]
pub struct MasterKey(SecretKey);

impl MasterKey {
    /// A fresh random master key.
    #[must_use]
    pub fn generate() -> Self {
        Self(SecretKey::generate())
    }

    /// Reads a key from its text form (hex or base64, whitespace around it
    /// ignored); `source_name` says where it came from in the error.
    ///
    /// # Errors
    /// [`MasterKeyError::Malformed`].
    pub fn parse(text: &str, source_name: &str) -> Result<Self, MasterKeyError> {
        let text = text.trim();
        let malformed = || MasterKeyError::Malformed {
            source_name: source_name.to_owned(),
        };
        let bytes = if text.len() == 2 * KEY_LEN && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            (0..KEY_LEN)
                .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .map_err(|_| malformed())?
        } else {
            STANDARD.decode(text).map_err(|_| malformed())?
        };
        let bytes: [u8; KEY_LEN] = bytes.try_into().map_err(|_| malformed())?;
        Ok(Self(SecretKey::from_bytes(bytes)))
    }

    /// Reads the key from a file.
    ///
    /// # Errors
    /// [`MasterKeyError::File`] when unreadable, [`MasterKeyError::Malformed`].
    pub fn from_file(path: &Path) -> Result<Self, MasterKeyError> {
        let text = std::fs::read_to_string(path).map_err(|e| MasterKeyError::File {
            path: path.to_owned(),
            reason: e.kind().to_string(),
        })?;
        Self::parse(&text, &format!("file {}", path.display()))
    }

    /// The key the environment provides: `LOGBOOK_MASTER_KEY`, or the file
    /// `LOGBOOK_MASTER_KEY_FILE` names; `None` when neither is set.
    ///
    /// # Errors
    /// As [`MasterKey::parse`] and [`MasterKey::from_file`]; both set is
    /// [`MasterKeyError::Ambiguous`].
    pub fn from_env() -> Result<Option<Self>, MasterKeyError> {
        let inline = std::env::var(MASTER_KEY_VAR).ok().filter(|v| !v.is_empty());
        let file = std::env::var_os(MASTER_KEY_FILE_VAR).filter(|v| !v.is_empty());
        match (inline, file) {
            (Some(_), Some(_)) => Err(MasterKeyError::Ambiguous),
            (Some(text), None) => Self::parse(&text, MASTER_KEY_VAR).map(Some),
            (None, Some(path)) => Self::from_file(Path::new(&path)).map(Some),
            (None, None) => Ok(None),
        }
    }

    /// The key as 64 hex digits (to write a new key file; keep it secret).
    #[must_use]
    pub fn to_hex(&self) -> String {
        self.0
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    pub(crate) fn key(&self) -> &SecretKey {
        &self.0
    }
}

/// The master key this process uses where none is given explicitly: the one
/// [`use_master_key`] set, else the environment's ([`MasterKey::from_env`],
/// read once). An unreadable key is kept as its one-line error.
static PROCESS_MASTER_KEY: std::sync::OnceLock<Result<Option<MasterKey>, String>> =
    std::sync::OnceLock::new();

/// Makes `key` the master key of this process (a front end's
/// `--master-key-file`), for every repository and projector opened on a
/// store afterwards; returns false when a key was already in use (set, or
/// read from the environment), which stays.
pub fn use_master_key(key: MasterKey) -> bool {
    PROCESS_MASTER_KEY.set(Ok(Some(key))).is_ok()
}

/// The master key of this process (see [`use_master_key`]).
///
/// # Errors
/// The one-line reason the environment's key could not be read.
pub fn process_master_key() -> Result<Option<MasterKey>, String> {
    PROCESS_MASTER_KEY
        .get_or_init(|| MasterKey::from_env().map_err(|e| e.to_string()))
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_reads_from_hex_and_base64_and_refuses_anything_else() {
        let key = MasterKey::generate();
        let hex = key.to_hex();
        assert_eq!(
            MasterKey::parse(&format!(" {hex}\n"), "x")
                .unwrap()
                .to_hex(),
            hex
        );
        let b64 = STANDARD.encode(key.key().as_bytes());
        assert_eq!(MasterKey::parse(&b64, "x").unwrap().to_hex(), hex);
        let err = MasterKey::parse("not a key", "LOGBOOK_MASTER_KEY").unwrap_err();
        assert!(err.to_string().contains("LOGBOOK_MASTER_KEY"), "{err}");
        assert!(MasterKey::parse(&hex[..62], "x").is_err());
    }

    #[test]
    fn a_missing_key_file_is_an_error_naming_it() {
        let err = MasterKey::from_file(Path::new("/nonexistent/master.key")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/master.key"), "{err}");
    }
}
