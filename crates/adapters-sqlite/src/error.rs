//! Mapping rusqlite's errors into [`StoreError`] at the adapter's edge,
//! always naming the database file.

use std::io;
use std::path::Path;

use logbook_ports::StoreError;
use rusqlite::ErrorCode;

/// The backend name carried by [`StoreError::Backend`].
pub(crate) const BACKEND: &str = "sqlite";

/// `error`, met while doing `doing` (e.g. "appending to stream A-1") on the
/// database at `path`, as a [`StoreError`].
pub(crate) fn store_error(path: &Path, doing: &str, error: rusqlite::Error) -> StoreError {
    let context = format!("{doing} (SQLite database {})", path.display());
    let Some(code) = error.sqlite_error_code() else {
        return StoreError::backend(BACKEND, context, error);
    };
    match code {
        ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => StoreError::Locked {
            path: path.to_path_buf(),
        },
        ErrorCode::NotADatabase => StoreError::Corrupt {
            location: path.display().to_string(),
            detail: format!("not a SQLite database ({error})"),
        },
        ErrorCode::DatabaseCorrupt => StoreError::Corrupt {
            location: path.display().to_string(),
            detail: format!("SQLite reports the database is malformed ({error})"),
        },
        ErrorCode::CannotOpen => StoreError::io(
            format!(
                "cannot open SQLite database {}: {}",
                path.display(),
                why_cannot_open(path)
            ),
            io::Error::other(error),
        ),
        ErrorCode::ReadOnly | ErrorCode::PermissionDenied => StoreError::io(
            format!("{context}: the database or its directory is read-only"),
            io::Error::new(io::ErrorKind::PermissionDenied, error),
        ),
        ErrorCode::DiskFull => StoreError::io(
            format!("{context}: the disk is full"),
            io::Error::new(io::ErrorKind::StorageFull, error),
        ),
        ErrorCode::SystemIoFailure => StoreError::io(context, io::Error::other(error)),
        _ => StoreError::backend(BACKEND, context, error),
    }
}

/// The likely reason SQLite could not open `path`, from what the file
/// system shows.
fn why_cannot_open(path: &Path) -> String {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.is_dir() {
        format!("directory {} does not exist", parent.display())
    } else if path.is_dir() {
        "it is a directory".to_owned()
    } else {
        format!(
            "the file and its directory must be writable (SQLite creates {0}-wal and \
             {0}-shm beside it)",
            path.display()
        )
    }
}

/// A failure shared by every job of one group commit (the transaction could
/// not begin or commit): kept as text so that each job gets its own error.
#[derive(Debug, Clone)]
pub(crate) enum GroupFailure {
    /// Another connection held the write lock past the busy timeout.
    Locked,
    /// SQLite found the database malformed.
    Corrupt {
        /// The file.
        location: String,
        /// What SQLite reported.
        detail: String,
    },
    /// Anything else, as displayed.
    Other(String),
}

impl GroupFailure {
    pub(crate) fn from_error(error: &StoreError) -> Self {
        match error {
            StoreError::Locked { .. } => Self::Locked,
            StoreError::Corrupt { location, detail } => Self::Corrupt {
                location: location.clone(),
                detail: detail.clone(),
            },
            other => Self::Other(other.to_string()),
        }
    }

    /// True when SQLite found the database malformed.
    pub(crate) fn is_corrupt(&self) -> bool {
        matches!(self, Self::Corrupt { .. })
    }

    pub(crate) fn to_store_error(&self, path: &Path) -> StoreError {
        match self {
            Self::Locked => StoreError::Locked {
                path: path.to_path_buf(),
            },
            Self::Corrupt { location, detail } => StoreError::Corrupt {
                location: location.clone(),
                detail: format!("{detail}; writes to it are refused"),
            },
            Self::Other(message) => StoreError::backend(
                BACKEND,
                format!(
                    "committing a group of writes to SQLite database {}",
                    path.display()
                ),
                message.clone(),
            ),
        }
    }
}

/// A row that could not be decoded, at `row` of `table`.
pub(crate) fn corrupt(
    path: &Path,
    table: &str,
    row: &str,
    detail: impl Into<String>,
) -> StoreError {
    StoreError::Corrupt {
        location: format!("SQLite database {}, table {table}, {row}", path.display()),
        detail: detail.into(),
    }
}
