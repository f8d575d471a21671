//! The schema and its migrations, keyed on `PRAGMA user_version`.
//!
//! Migration `n` (counting from 1) takes a database at `user_version = n - 1`
//! to `user_version = n`. They run on open, in one `BEGIN IMMEDIATE`
//! transaction, so two processes opening a fresh file at once migrate it
//! once. A database at a higher version than [`SCHEMA_VERSION`] was written
//! by a newer logbook: opening it fails before anything is changed.
//!
//! The schema is documented, statement by statement, in `docs/sqlite.md`.

use std::path::Path;

use logbook_ports::StoreError;
use rusqlite::{Connection, OptionalExtension};

use crate::error::store_error;

/// `PRAGMA application_id` of a logbook database ("LOGB").
pub const APPLICATION_ID: i32 = 0x4C4F_4742;

/// The newest schema version this build knows (`PRAGMA user_version`).
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Version 1: events, streams, snapshots, checkpoints and a readable view.
const V1: &str = "
CREATE TABLE events (
    position       INTEGER PRIMARY KEY,   -- the global position, 1, 2, 3, ... without gaps
    stream         TEXT    NOT NULL,
    version        INTEGER NOT NULL,      -- 1 for the stream's first event, contiguous
    event_id       TEXT    NOT NULL,      -- UUID, lower-case hyphenated
    event_type     TEXT    NOT NULL,
    schema_version INTEGER NOT NULL,
    payload        TEXT    NOT NULL,      -- JSON, byte for byte as appended
    metadata       TEXT,                  -- JSON, NULL when empty
    recorded_at    INTEGER NOT NULL       -- microseconds since 1970-01-01T00:00:00Z
);
CREATE UNIQUE INDEX events_by_stream ON events (stream, version);
CREATE UNIQUE INDEX events_by_id ON events (event_id);
CREATE INDEX events_by_type ON events (event_type);

CREATE TABLE streams (
    stream  TEXT    PRIMARY KEY,
    version INTEGER NOT NULL              -- the version of the stream's last event
) WITHOUT ROWID;

CREATE TABLE snapshots (
    stream         TEXT    PRIMARY KEY,
    version        INTEGER NOT NULL,
    schema_version INTEGER NOT NULL,
    state          TEXT    NOT NULL,      -- JSON
    taken_at       INTEGER NOT NULL       -- microseconds since 1970-01-01T00:00:00Z
) WITHOUT ROWID;

CREATE TABLE checkpoints (
    projection TEXT    PRIMARY KEY,
    position   INTEGER NOT NULL
) WITHOUT ROWID;

CREATE VIEW event_log AS
SELECT position, stream, version, event_type, schema_version, event_id,
       strftime('%Y-%m-%dT%H:%M:%S',
                (recorded_at - ((recorded_at % 1000000) + 1000000) % 1000000) / 1000000,
                'unixepoch')
         || printf('.%06dZ', ((recorded_at % 1000000) + 1000000) % 1000000) AS recorded_at,
       payload, metadata
FROM events;
";

/// Version 2: read models' documents, in a table of their own. Earlier
/// versions kept them as snapshots of `$projection-<name>`; those rows are
/// left alone and no longer read: read models are derived data, and the
/// first run after the upgrade folds them again from the log.
const V2: &str = "
CREATE TABLE projections (
    name       TEXT    PRIMARY KEY,   -- the read model's name, e.g. account-summary
    generation INTEGER NOT NULL,      -- saves so far: 1 after the first, +1 each save
    checkpoint INTEGER,               -- position of the last event applied or skipped; NULL: none yet
    model      TEXT    NOT NULL,      -- JSON
    parked     TEXT    NOT NULL,      -- JSON array of parked events
    saved_at   INTEGER NOT NULL       -- microseconds since 1970-01-01T00:00:00Z
);
";

/// Version 3: data subjects' keys, wrapped by the application's master key,
/// and the tombstones of shredded subjects (no key, a time).
const V3: &str = "
CREATE TABLE subject_keys (
    subject     TEXT    PRIMARY KEY,  -- the data subject, e.g. user-alice
    wrapped     BLOB,                 -- the sealed data key; NULL once shredded
    created_at  INTEGER,              -- microseconds since 1970-01-01T00:00:00Z; NULL once shredded
    shredded_at INTEGER,              -- microseconds since 1970-01-01T00:00:00Z; NULL while the key lives
    CHECK ((wrapped IS NULL) = (shredded_at IS NOT NULL))
) WITHOUT ROWID;
";

/// Version 4: stream retention policies (`logbook_ports::retention`), one
/// row per stream that was given one.
const V4: &str = "
CREATE TABLE stream_retention (
    stream TEXT PRIMARY KEY,
    state  TEXT NOT NULL              -- JSON: the policy and the floors earlier policies left
) WITHOUT ROWID;
";

/// Every migration, in order: index `i` takes version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[V1, V2, V3, V4];

/// Refuses a database this build must not touch: one written by a newer
/// logbook, or a SQLite database that is not logbook's. Reads only.
///
/// # Errors
/// [`StoreError::IncompatibleFormat`] for a newer schema,
/// [`StoreError::Corrupt`] for a file that is not a logbook database.
pub(crate) fn check_compatible(conn: &Connection, path: &Path) -> Result<u32, StoreError> {
    let error = |e| store_error(path, "reading the schema version", e);
    let found: u32 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(error)?;
    let application_id: i32 = conn
        .pragma_query_value(None, "application_id", |row| row.get(0))
        .map_err(error)?;
    if application_id != 0 && application_id != APPLICATION_ID {
        return Err(not_logbook(
            path,
            format!("its application_id is {application_id:#x}, not logbook's"),
        ));
    }
    if found > SCHEMA_VERSION {
        return Err(StoreError::IncompatibleFormat {
            location: path.display().to_string(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found == 0 {
        let other_table: Option<String> = conn
            .query_row(
                "SELECT name FROM sqlite_schema WHERE name NOT LIKE 'sqlite%' LIMIT 1",
                [],
                |row| row.get(0),
            )
            .optional()
            .map_err(error)?;
        if let Some(table) = other_table {
            return Err(not_logbook(
                path,
                format!("it already holds {table:?} and no logbook schema version"),
            ));
        }
    }
    Ok(found)
}

fn not_logbook(path: &Path, why: String) -> StoreError {
    StoreError::Corrupt {
        location: path.display().to_string(),
        detail: format!("a SQLite database that logbook did not create: {why}"),
    }
}

/// Brings the schema to [`SCHEMA_VERSION`], in one immediate transaction.
///
/// # Errors
/// As [`check_compatible`] (checked again inside the transaction, in case
/// another process migrated meanwhile), and backend failures.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let error = |e| store_error(path, "migrating the schema", e);
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(error)?;
    let found = check_compatible(&tx, path)?;
    if found < SCHEMA_VERSION {
        for migration in &MIGRATIONS[found as usize..] {
            tx.execute_batch(migration).map_err(error)?;
        }
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(error)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(error)?;
    }
    tx.commit().map_err(error)
}
