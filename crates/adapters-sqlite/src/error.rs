//! Mapping rusqlite's errors into [`StoreError`] at the adapter's edge,
//! always naming the database file.

use std::io;
use std::path::{Path, PathBuf};

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
            format!("cannot open SQLite database {}", path.display()),
            io::Error::other(why_cannot_open(path)),
        ),
        ErrorCode::ReadOnly | ErrorCode::PermissionDenied => StoreError::io(
            context,
            io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "the database or its directory {} is read-only for this user",
                    parent_of(path).display()
                ),
            ),
        ),
        ErrorCode::DiskFull => StoreError::io(
            context,
            io::Error::new(io::ErrorKind::StorageFull, "the disk is full"),
        ),
        ErrorCode::SystemIoFailure => StoreError::io(context, io::Error::other(io_failure(&error))),
        _ => StoreError::backend(BACKEND, context, error),
    }
}

/// Refuses a path that is there but is no regular file (`/dev/null`, a
/// directory), before SQLite tries it and reports a disk I/O error.
///
/// # Errors
/// [`StoreError::Io`] of kind `InvalidInput` naming the path and what it is.
pub(crate) fn refuse_special_file(path: &Path) -> Result<(), StoreError> {
    match logbook_ports::paths::not_a_regular_file(path) {
        None => Ok(()),
        Some(kind) => Err(StoreError::io(
            format!("cannot open SQLite database {}", path.display()),
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("it is {kind}, not a database file"),
            ),
        )),
    }
}

/// What a disk I/O error (`SQLITE_IOERR`) was, from its extended code.
fn io_failure(error: &rusqlite::Error) -> String {
    let extended = match error {
        rusqlite::Error::SqliteFailure(failure, _) => failure.extended_code,
        _ => 0,
    };
    let what = match extended {
        rusqlite::ffi::SQLITE_IOERR_READ | rusqlite::ffi::SQLITE_IOERR_SHORT_READ => {
            "reading it failed"
        }
        rusqlite::ffi::SQLITE_IOERR_WRITE => "writing it failed",
        rusqlite::ffi::SQLITE_IOERR_FSYNC | rusqlite::ffi::SQLITE_IOERR_DIR_FSYNC => {
            "the file system could not sync it to disk"
        }
        rusqlite::ffi::SQLITE_IOERR_TRUNCATE => "truncating it failed",
        rusqlite::ffi::SQLITE_IOERR_LOCK
        | rusqlite::ffi::SQLITE_IOERR_RDLOCK
        | rusqlite::ffi::SQLITE_IOERR_UNLOCK => "the file system refused to lock it",
        rusqlite::ffi::SQLITE_IOERR_SHMOPEN
        | rusqlite::ffi::SQLITE_IOERR_SHMSIZE
        | rusqlite::ffi::SQLITE_IOERR_SHMMAP => {
            "its shared-memory file (-shm) could not be opened or mapped"
        }
        _ => "the operating system reported an I/O error",
    };
    format!("disk I/O error: {what}")
}

fn parent_of(path: &Path) -> PathBuf {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf)
}

/// The likely reason SQLite could not open `path`, from what the file
/// system shows.
fn why_cannot_open(path: &Path) -> String {
    if let Some(problem) = logbook_ports::paths::unreachable_parent(path) {
        problem
    } else if let Some(kind) = logbook_ports::paths::not_a_regular_file(path) {
        format!("it is {kind}")
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
