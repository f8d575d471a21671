//! The schema and its migrations, versioned in the table `logbook_schema`.
//!
//! Migration `n` (counting from 1) takes a schema at version `n - 1` to
//! `n`. They run on open, in one transaction that first takes an advisory
//! lock of the schema's name, so two processes opening a fresh database at
//! once migrate it once (the second waits, then finds it done). A schema at
//! a higher version than [`SCHEMA_VERSION`] was written by a newer logbook:
//! opening it fails before anything is changed.
//!
//! The schema is documented, statement by statement, in `docs/postgres.md`.

use logbook_domain::Position;
use logbook_ports::StoreError;
use tokio_postgres::Client;

use crate::config::PostgresUrl;
use crate::error::store_error;

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Version 1: the head, events, snapshots and checkpoints.
const V1: &str = "
CREATE TABLE head (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    position bigint  NOT NULL                -- the last global position taken
);
INSERT INTO head (position) VALUES (0);

CREATE TABLE events (
    position       bigint      PRIMARY KEY,  -- global position: 1, 2, 3, ... without gaps
    stream         text        NOT NULL,
    version        bigint      NOT NULL,     -- 1 for the stream's first event, contiguous
    event_id       uuid        NOT NULL UNIQUE,
    event_type     text        NOT NULL,
    schema_version bigint      NOT NULL,
    payload        json        NOT NULL,     -- JSON text, byte for byte as appended
    metadata       json,                     -- NULL when empty
    recorded_at    timestamptz NOT NULL,
    UNIQUE (stream, version)
);
CREATE INDEX events_by_type ON events (event_type, position);

CREATE TABLE snapshots (
    stream         text        PRIMARY KEY,
    version        bigint      NOT NULL,
    schema_version bigint      NOT NULL,
    state          json        NOT NULL,
    taken_at       timestamptz NOT NULL
);

CREATE TABLE checkpoints (
    projection text   PRIMARY KEY,
    position   bigint NOT NULL
);
";

/// Version 2: read models' documents, saved with compare-and-swap on their
/// generation.
const V2: &str = "
CREATE TABLE projections (
    name       text        PRIMARY KEY,  -- the read model's name, e.g. account-summary
    generation bigint      NOT NULL,     -- saves so far: 1 after the first, +1 each save
    checkpoint bigint,                   -- position of the last event applied or skipped; NULL: none yet
    model      json        NOT NULL,
    parked     json        NOT NULL,     -- JSON array of parked events
    saved_at   timestamptz NOT NULL
);
";

/// Version 3: data subjects' keys, wrapped by the application's master key,
/// and the tombstones of shredded subjects (no key, a time). `COLLATE "C"`
/// orders subjects by their bytes, as the port lists them.
const V3: &str = "
CREATE TABLE subject_keys (
    subject     text COLLATE \"C\" PRIMARY KEY,  -- the data subject, e.g. user-alice
    wrapped     bytea,                -- the sealed data key; NULL once shredded
    created_at  timestamptz,          -- NULL once shredded
    shredded_at timestamptz,          -- NULL while the key lives
    CHECK ((wrapped IS NULL) = (shredded_at IS NOT NULL))
);
";

/// Version 4: stream retention policies (`logbook_ports::retention`), one
/// row per stream that was given one.
const V4: &str = "
CREATE TABLE stream_retention (
    stream text PRIMARY KEY,
    state  text NOT NULL   -- JSON: the policy and the floors earlier policies left
);
";

/// Every migration, in order: index `i` takes version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[V1, V2, V3, V4];

/// Tables logbook creates; found without `logbook_schema`, they are
/// someone else's.
const OWN_TABLES: &[&str] = &[
    "head",
    "events",
    "snapshots",
    "checkpoints",
    "projections",
    "stream_retention",
    "subject_keys",
];

/// Brings the schema to [`SCHEMA_VERSION`].
///
/// # Errors
/// [`StoreError::IncompatibleFormat`] for a newer schema,
/// [`StoreError::Corrupt`] for tables logbook did not create, and backend
/// failures.
pub(crate) async fn migrate(client: &mut Client, url: &PostgresUrl) -> Result<(), StoreError> {
    let error = |e: tokio_postgres::Error| store_error(url, "migrating the schema", &e);
    let schema = url.schema();
    let tx = client.transaction().await.map_err(error)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('logbook migration'), hashtext($1))",
        &[&schema],
    )
    .await
    .map_err(error)?;
    // The name is a plain identifier (checked when the URL was parsed).
    tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
        .await
        .map_err(error)?;
    let has_version_table: bool = tx
        .query_one(
            "SELECT to_regclass(format('%I.logbook_schema', $1::text)) IS NOT NULL",
            &[&schema],
        )
        .await
        .map_err(error)?
        .get(0);
    let found: u32 = if has_version_table {
        let version: i32 = tx
            .query_one(&format!("SELECT version FROM {schema}.logbook_schema"), &[])
            .await
            .map_err(error)?
            .get(0);
        u32::try_from(version).unwrap_or(u32::MAX)
    } else {
        let foreign: Option<String> = tx
            .query_opt(
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = $1 AND table_name = ANY($2) LIMIT 1",
                &[&schema, &OWN_TABLES],
            )
            .await
            .map_err(error)?
            .map(|row| row.get(0));
        if let Some(table) = foreign {
            return Err(StoreError::Corrupt {
                location: url.to_string(),
                detail: format!(
                    "schema {schema} already holds a table {table:?} and no logbook schema version: \
                     it is not logbook's (name another with ?schema=)"
                ),
            });
        }
        tx.batch_execute(&format!(
            "CREATE TABLE {schema}.logbook_schema (version integer NOT NULL); \
             INSERT INTO {schema}.logbook_schema VALUES (0)"
        ))
        .await
        .map_err(error)?;
        0
    };
    if found > SCHEMA_VERSION {
        return Err(StoreError::IncompatibleFormat {
            location: url.to_string(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found < SCHEMA_VERSION {
        tx.batch_execute(&format!("SET LOCAL search_path = {schema}"))
            .await
            .map_err(error)?;
        for migration in &MIGRATIONS[found as usize..] {
            tx.batch_execute(migration).await.map_err(error)?;
        }
        tx.execute(
            &format!("UPDATE {schema}.logbook_schema SET version = $1"),
            &[&(SCHEMA_VERSION as i32)],
        )
        .await
        .map_err(error)?;
    }
    tx.commit().await.map_err(error)
}

/// The last global position taken (0 for an empty store).
///
/// # Errors
/// Backend failures.
pub(crate) async fn head(client: &Client, url: &PostgresUrl) -> Result<Position, StoreError> {
    let position: i64 = client
        .query_one("SELECT position FROM head", &[])
        .await
        .map_err(|e| store_error(url, "reading the head position", &e))?
        .get(0);
    Ok(u64::try_from(position).unwrap_or(0))
}
