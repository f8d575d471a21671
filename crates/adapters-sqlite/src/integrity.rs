//! [`integrity_check`]: SQLite's own check of a database file, every table
//! and index page, run read-only so it works beside a writer.

use std::fmt;
use std::path::{Path, PathBuf};

use logbook_ports::StoreError;

use crate::connection::open_read_only_unchecked;
use crate::error::store_error;
use crate::options::SqliteOptions;

/// Most problems an integrity check collects before it stops.
const MAX_PROBLEMS: u32 = 100;

/// How thorough [`integrity_check`] is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum IntegrityCheck {
    /// `PRAGMA integrity_check`: every page, and every index checked
    /// against its table (reads the whole file and more).
    #[default]
    Full,
    /// `PRAGMA quick_check`: every page's structure, without matching
    /// indexes against their tables; much faster on a large database.
    Quick,
}

impl IntegrityCheck {
    fn pragma(self) -> &'static str {
        match self {
            Self::Full => "integrity_check",
            Self::Quick => "quick_check",
        }
    }
}

/// What SQLite's integrity check found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IntegrityReport {
    /// The database file.
    pub path: PathBuf,
    /// The check that ran.
    pub check: IntegrityCheck,
    /// Each problem SQLite reported, as it words it (at most 100); empty
    /// when the database is sound.
    pub problems: Vec<String>,
}

impl IntegrityReport {
    /// True when SQLite found nothing wrong.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl fmt::Display for IntegrityReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pragma = self.check.pragma();
        match self.problems.as_slice() {
            [] => write!(f, "SQLite {pragma} of {}: ok", self.path.display()),
            [first, rest @ ..] => {
                write!(
                    f,
                    "SQLite {pragma} of {} found {} problem{}: {first}",
                    self.path.display(),
                    self.problems.len(),
                    if rest.is_empty() { "" } else { "s" }
                )?;
                for problem in rest {
                    write!(f, "; {problem}")?;
                }
                Ok(())
            }
        }
    }
}

/// Runs SQLite's integrity check on the database at `path`, opened
/// read-only (it takes no write lock and changes nothing, so it runs while
/// another process writes). Blocks for as long as the check reads.
///
/// # Errors
/// - [`StoreError::Io`] when there is no file at `path` or it cannot be
///   read;
/// - [`StoreError::Corrupt`] when the file is not a SQLite database at all
///   (damage the check meets while it runs is not an error: it is in the
///   report's problems).
pub fn integrity_check(
    path: impl AsRef<Path>,
    check: IntegrityCheck,
) -> Result<IntegrityReport, StoreError> {
    let path = path.as_ref();
    let (conn, _) = open_read_only_unchecked(path, &SqliteOptions::default())?;
    let sql = format!("PRAGMA {}({MAX_PROBLEMS})", check.pragma());
    let run = || -> Result<Vec<String>, rusqlite::Error> {
        let mut statement = conn.prepare(&sql)?;
        let lines = statement
            .query_map([], |row| row.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(lines)
    };
    let problems = match run() {
        Ok(lines) if lines.len() == 1 && lines[0] == "ok" => Vec::new(),
        Ok(lines) => lines,
        // Damage the check itself stumbles on is its finding, not a
        // failure to check.
        Err(error) => match store_error(path, &format!("running PRAGMA {}", check.pragma()), error)
        {
            StoreError::Corrupt { detail, .. } => vec![detail],
            other => return Err(other),
        },
    };
    Ok(IntegrityReport {
        path: path.to_path_buf(),
        check,
        problems,
    })
}
