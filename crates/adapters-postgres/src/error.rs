//! PostgreSQL errors mapped to [`StoreError`] at the adapter's edge, with
//! the server's own message (the client's `Display` alone says only
//! "db error").

use std::error::Error as _;

use logbook_ports::StoreError;

use crate::config::PostgresUrl;

/// The backend's name in [`StoreError::Backend`].
pub(crate) const BACKEND: &str = "postgres";

/// A client error in one line: the server's message and SQLSTATE for a
/// database error, the client's message and its causes otherwise.
pub(crate) fn describe(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        );
    }
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(source) = cause {
        let more = source.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = source.source();
    }
    text
}

/// A client error while `doing` something with the store at `url`.
pub(crate) fn store_error(
    url: &PostgresUrl,
    doing: &str,
    error: &tokio_postgres::Error,
) -> StoreError {
    StoreError::backend(BACKEND, format!("{doing} ({url})"), describe(error))
}

/// A pool error (no connection could be had) while `doing` something.
pub(crate) fn pool_error(
    url: &PostgresUrl,
    doing: &str,
    error: &deadpool_postgres::PoolError,
) -> StoreError {
    let reason = match error {
        deadpool_postgres::PoolError::Backend(e) => describe(e),
        other => other.to_string(),
    };
    StoreError::backend(BACKEND, format!("{doing} ({url})"), reason)
}

/// A row that does not decode.
pub(crate) fn corrupt(
    url: &PostgresUrl,
    table: &str,
    row: &str,
    detail: impl Into<String>,
) -> StoreError {
    StoreError::Corrupt {
        location: format!("{url}, table {table}, {row}"),
        detail: detail.into(),
    }
}
