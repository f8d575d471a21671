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
    schema::migrate(conn, path)
}

/// Opens a read connection to a database the writer has opened.
///
/// # Errors
/// As opening, mapped by [`store_error`].
pub(crate) fn open_reader(path: &Path, options: &SqliteOptions) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = open(path, flags, options)?;
    let set = |name: &str, value: &dyn rusqlite::ToSql| {
        conn.pragma_update(None, name, value)
            .map_err(|e| store_error(path, &format!("setting PRAGMA {name}"), e))
    };
    set("query_only", &true)?;
    set("mmap_size", &MMAP_SIZE)?;
    set("cache_size", &READER_CACHE_KIB)?;
    Ok(conn)
}
