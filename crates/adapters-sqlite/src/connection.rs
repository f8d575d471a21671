//! Opening the writer's and the readers' connections with the settings every
//! connection of a store shares.

use std::path::Path;
use std::time::{Duration, Instant};

use logbook_ports::StoreError;
use rusqlite::{Connection, OpenFlags};

use crate::error::store_error;
use crate::options::SqliteOptions;
use crate::schema;

/// Prepared statements kept per connection: every statement the adapter
/// runs, with room to spare (the type filter builds a few shapes).
const STATEMENT_CACHE: usize = 64;

/// Memory-mapped I/O for reads, so a long scan of the log does not copy
/// every page through SQLite's cache: 1 GiB of address space (a store of
/// a million events is about 450 MiB), not of memory.
const MMAP_SIZE: i64 = 1 << 30;

/// Each reader's page cache, in KiB (negative for SQLite): 16 MiB, so a
/// stream read again (an aggregate loaded again) finds its index and table
/// pages cached, including those still in the write-ahead log, which the
/// memory map does not cover.
const READER_CACHE_KIB: i64 = -16384;

/// Pages of write-ahead log after which a commit checkpoints it into the
/// database (SQLite's default is 1,000): about 32 MiB at 4 KiB pages.
const WAL_AUTOCHECKPOINT: &str = "8192";

/// The writer's page cache, in KiB (negative for SQLite): 32 MiB, so the
/// index pages an append searches stay cached in a large store.
const WRITER_CACHE_KIB: &str = "-32768";

fn open(path: &Path, flags: OpenFlags, options: &SqliteOptions) -> Result<Connection, StoreError> {
    let conn =
        Connection::open_with_flags(path, flags).map_err(|e| store_error(path, "opening", e))?;
    conn.busy_timeout(options.busy_timeout)
        .map_err(|e| store_error(path, "setting the busy timeout", e))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// Opens (creating it if needed) the database for writing: checks that it
/// is a logbook database this build may touch, switches it to WAL, sets
/// durability and foreign keys, and migrates the schema.
///
/// # Errors
/// [`StoreError::IncompatibleFormat`] for a newer schema,
/// [`StoreError::Corrupt`] for a file that is not a (logbook) SQLite
/// database, [`StoreError::Io`] for a location that cannot be written,
/// [`StoreError::Locked`] when another process holds the write lock past the
/// busy timeout.
pub(crate) fn open_writer(path: &Path, options: &SqliteOptions) -> Result<Connection, StoreError> {
    crate::error::refuse_special_file(path)?;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = open(path, flags, options)?;
    // Another process opening the same fresh file at the same moment can
    // make the switch to WAL or the migration report SQLITE_BUSY at once,
    // without waiting (SQLite does not wait where waiting could deadlock):
    // retry the whole preparation until the busy timeout has passed.
    let deadline = Instant::now() + options.busy_timeout;
    loop {
        match prepare_writer(&mut conn, path, options) {
            Err(StoreError::Locked { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(error) => return Err(error),
            Ok(()) => return Ok(conn),
        }
    }
}

fn prepare_writer(
    conn: &mut Connection,
    path: &Path,
    options: &SqliteOptions,
) -> Result<(), StoreError> {
    // Read-only checks first: a database from a newer logbook, or not from
    // logbook at all, is refused before WAL mode rewrites its header.
    // One read transaction, so that the version and the tables are read
    // from one state of the file, even while another process migrates it.
    {
        let read = conn
            .transaction()
            .map_err(|e| store_error(path, "reading the schema version", e))?;
        schema::check_compatible(&read, path)?;
        read.commit()
            .map_err(|e| store_error(path, "reading the schema version", e))?;
    }
    // Only on a database with no table yet (a new one; on another it could
    // not take effect and must not write), and before WAL mode: the pages a scavenge frees can then be handed back
    // to the file system (`PRAGMA incremental_vacuum`). On an older
    // database it changes nothing; see docs/sqlite.md.
    let error = |e| store_error(path, "setting PRAGMA auto_vacuum", e);
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
        .map_err(error)?;
    if tables == 0 {
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
            .map_err(error)?;
    }
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(|e| store_error(path, "switching to WAL mode", e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::backend(
            crate::error::BACKEND,
            format!("switching SQLite database {} to WAL mode", path.display()),
            format!("the journal mode stayed {mode:?}"),
        ));
    }
    let pragma = |name: &str, value: &str| {
        conn.pragma_update(None, name, value)
            .map_err(|e| store_error(path, &format!("setting PRAGMA {name}"), e))
    };
    pragma("synchronous", options.synchronous.pragma_value())?;
    // Checkpoint less often: a page the log keeps rewriting (the end of the
    // table, the streams row, a hot index leaf) is copied back to the
    // database once per checkpoint, so fewer checkpoints copy fewer pages.
    pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT)?;
    pragma("cache_size", WRITER_CACHE_KIB)?;
    pragma("foreign_keys", "ON")?;
    // Zero what a write frees or moves, everywhere, so a shredded subject's
    // key leaves no stale copy in free space (SECURITY: see subject_keys).
    pragma("secure_delete", "ON")?;
    schema::migrate(conn, path)
}

/// How read connections open the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadMode {
    /// Beside this store's own writer: opened read-write (so the WAL
    /// files can be created), queries only.
    BesideWriter,
    /// `SQLITE_OPEN_READ_ONLY`: never takes the write lock, never migrates;
    /// needs the `-wal` and `-shm` files to exist or the directory to be
    /// writable.
    ReadOnly,
    /// Read-only media: `immutable=1`, so SQLite reads the database file
    /// alone, takes no lock and needs no `-shm`. Chosen only when there is
    /// no write-ahead log holding commits beside the file.
    Immutable,
}

/// Opens a read connection to the database: beside this store's writer,
/// or for a store opened read-only (see [`ReadMode`]).
///
/// # Errors
/// As opening, mapped by [`store_error`].
pub(crate) fn open_reader(
    path: &Path,
    options: &SqliteOptions,
    mode: ReadMode,
) -> Result<Connection, StoreError> {
    let conn = match mode {
        ReadMode::BesideWriter => open(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            options,
        )?,
        ReadMode::ReadOnly => open(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            options,
        )?,
        ReadMode::Immutable => {
            let uri = immutable_uri(path);
            let conn = Connection::open_with_flags(
                &uri,
                OpenFlags::SQLITE_OPEN_READ_ONLY
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX
                    | OpenFlags::SQLITE_OPEN_URI,
            )
            .map_err(|e| store_error(path, "opening", e))?;
            conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
            conn
        }
    };
    let set = |name: &str, value: &dyn rusqlite::ToSql| {
        conn.pragma_update(None, name, value)
            .map_err(|e| store_error(path, &format!("setting PRAGMA {name}"), e))
    };
    if mode == ReadMode::BesideWriter {
        set("query_only", &true)?;
    }
    set("mmap_size", &MMAP_SIZE)?;
    set("cache_size", &READER_CACHE_KIB)?;
    Ok(conn)
}

/// `file:` URI of `path` with `immutable=1`, its path percent-encoded
/// where a URI needs it.
fn immutable_uri(path: &Path) -> String {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut uri = String::from("file:");
    for byte in absolute.as_os_str().as_encoded_bytes() {
        match byte {
            b'?' | b'#' | b'%' | b'\\' | b' ' | 0..=0x1f | 0x7f.. => {
                uri.push_str(&format!("%{byte:02X}"));
            }
            _ => uri.push(char::from(*byte)),
        }
    }
    uri.push_str("?immutable=1");
    uri
}

/// Opens the first read connection of a store opened read-only and checks
/// that this build may read it as it is, without migrating it. Falls back
/// to [`ReadMode::Immutable`] when SQLite cannot open the write-ahead log's
/// files (read-only media, a directory owned by another user) and no
/// write-ahead log holds commits that the database file lacks.
///
/// # Errors
/// [`StoreError::Io`] of kind `NotFound` when there is no file at `path`;
/// [`StoreError::IncompatibleFormat`] for a newer schema;
/// [`StoreError::Corrupt`] for a file that is not a logbook database;
/// [`StoreError::Backend`] for a database at an older schema version (it
/// must be opened for writing once to migrate it); [`StoreError::Io`] when
/// the file cannot be read.
pub(crate) fn open_read_only(
    path: &Path,
    options: &SqliteOptions,
) -> Result<(Connection, ReadMode), StoreError> {
    let (conn, mode) = open_read_only_unchecked(path, options)?;
    check_current(&conn, path)?;
    Ok((conn, mode))
}

/// Opens `path` read-only as [`open_read_only`] does, falling back to
/// [`ReadMode::Immutable`] the same way, but without checking the schema
/// (for SQLite's own integrity check).
///
/// # Errors
/// As opening, mapped by [`store_error`].
pub(crate) fn open_read_only_unchecked(
    path: &Path,
    options: &SqliteOptions,
) -> Result<(Connection, ReadMode), StoreError> {
    if !path.exists() {
        return Err(StoreError::io(
            format!("opening SQLite database {} for reading", path.display()),
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        ));
    }
    crate::error::refuse_special_file(path)?;
    // Opening is lazy: the first read is what opens the write-ahead log.
    let first = open_reader(path, options, ReadMode::ReadOnly).and_then(|conn| {
        conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))
            .map_err(|e| store_error(path, "reading the schema", e))
            .map(|()| conn)
    });
    match first {
        Ok(conn) => Ok((conn, ReadMode::ReadOnly)),
        Err(error) if cannot_open_wal(&error) && !wal_holds_commits(path) => {
            let conn = open_reader(path, options, ReadMode::Immutable)?;
            Ok((conn, ReadMode::Immutable))
        }
        Err(error) => Err(error),
    }
}

/// True when `error` is SQLite failing to open or create the write-ahead
/// log's files beside the database.
fn cannot_open_wal(error: &StoreError) -> bool {
    matches!(
        error,
        StoreError::Io { source, .. }
            if source.kind() == std::io::ErrorKind::PermissionDenied
                || source.kind() == std::io::ErrorKind::Other
    )
}

/// True when a non-empty `-wal` file lies beside `path` (or it cannot be
/// told): it may hold commits the database file does not have yet, which
/// an immutable read would miss.
fn wal_holds_commits(path: &Path) -> bool {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    match std::fs::metadata(Path::new(&wal)) {
        Ok(meta) => meta.len() > 0,
        Err(error) => error.kind() != std::io::ErrorKind::NotFound,
    }
}

/// Refuses a database a read-only open cannot serve: not logbook's, from
/// a newer logbook, or at an older schema version (migrating writes).
fn check_current(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let found = schema::check_compatible(conn, path)?;
    if found < schema::SCHEMA_VERSION {
        let detail = if found == 0 {
            "it holds no logbook schema yet".to_owned()
        } else {
            format!(
                "its schema version is {found} and this logbook reads version {}; \
                 open it once for writing (any command that writes) to migrate it",
                schema::SCHEMA_VERSION
            )
        };
        return Err(StoreError::backend(
            crate::error::BACKEND,
            format!("opening SQLite database {} for reading", path.display()),
            detail,
        ));
    }
    Ok(())
}
