//! Store URLs: `postgres://user@host:port/db?schema=NAME` (or
//! `postgresql://`), the client configuration they give, and connecting.

use std::fmt;
use std::str::FromStr;

use logbook_ports::StoreError;
use tokio_postgres::{Client, NoTls};

use crate::PostgresOptions;
use crate::error::{BACKEND, describe};

/// The schema used when the URL names none.
pub const DEFAULT_SCHEMA: &str = "public";

/// Longest schema name accepted (PostgreSQL's identifiers have 63 bytes;
/// the notification channel adds a prefix).
const MAX_SCHEMA_LEN: usize = 48;

/// Why a PostgreSQL store URL is not usable.
#[derive(Debug, thiserror::Error)]
pub enum PostgresUrlError {
    /// Not a `postgres://` or `postgresql://` URL.
    #[error("{0:?} is not a postgres:// or postgresql:// URL")]
    NotPostgres(String),
    /// The schema name is not a plain identifier.
    #[error(
        "schema {0:?} is not usable: use 1 to {MAX_SCHEMA_LEN} lower-case letters, digits and _, starting with a letter or _"
    )]
    BadSchema(String),
    /// The client refused the rest of the URL.
    #[error("invalid PostgreSQL URL {url:?}: {reason}")]
    Invalid {
        /// The URL, without its password.
        url: String,
        /// What the client said.
        reason: String,
    },
}

/// A parsed store URL: the client configuration and the schema.
#[derive(Clone)]
pub struct PostgresUrl {
    config: tokio_postgres::Config,
    schema: String,
    shown: String,
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

/// `url` without the password of its user part.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user, host)) => {
            let user = user.split_once(':').map_or(user, |(name, _)| name);
            format!("{scheme}://{user}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

fn valid_schema(schema: &str) -> bool {
    let mut chars = schema.chars();
    !schema.is_empty()
        && schema.len() <= MAX_SCHEMA_LEN
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl FromStr for PostgresUrl {
    type Err = PostgresUrlError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(PostgresUrlError::NotPostgres(without_password(url)));
        }
        // `schema` is logbook's; the client must not see it.
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut schema = DEFAULT_SCHEMA.to_owned();
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.strip_prefix("schema=") {
                Some(name) => schema = name.to_owned(),
                None => kept.push(pair),
            }
        }
        if !valid_schema(&schema) {
            return Err(PostgresUrlError::BadSchema(schema));
        }
        let client_url = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        let config = client_url.parse::<tokio_postgres::Config>().map_err(|e| {
            PostgresUrlError::Invalid {
                url: without_password(url),
                reason: e.to_string(),
            }
        })?;
        Ok(Self {
            config,
            schema,
            shown: without_password(url),
        })
    }
}

impl PostgresUrl {
    /// The schema the store lives in.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The channel commits are announced on (one per schema).
    pub(crate) fn channel(&self) -> String {
        format!("logbook_commits_{}", self.schema)
    }

    /// The client configuration of every connection: the URL's, with the
    /// schema as `search_path`, the statement timeout, UTC, custom plans
    /// for prepared statements and an application name.
    ///
    /// `plan_cache_mode=force_custom_plan`: after five executions
    /// PostgreSQL may switch a prepared statement to a generic plan, made
    /// without the parameters' values; for the writer's lookups (arrays of
    /// names and ids) and the global-log page (`position >= $1 ... LIMIT
    /// $2`) that plan scans the whole events table, so appends and reads
    /// got slower as the log grew. Each execution is planned for its own
    /// values instead (docs/benchmarks.md has the measurement).
    pub(crate) fn client_config(&self, options: &PostgresOptions) -> tokio_postgres::Config {
        let mut config = self.config.clone();
        let mut settings = config.get_options().unwrap_or("").to_owned();
        settings.push_str(&format!(
            " -c search_path={} -c statement_timeout={} -c TimeZone=UTC \
             -c plan_cache_mode=force_custom_plan",
            self.schema,
            options.statement_timeout.as_millis().max(1)
        ));
        config.options(settings.trim());
        if config.get_application_name().is_none() {
            config.application_name("logbook");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(10));
        }
        config
    }
}

/// One connection, its driver spawned on the current runtime.
///
/// # Errors
/// [`StoreError::Backend`] when the server cannot be reached or refuses.
pub(crate) async fn connect(
    config: &tokio_postgres::Config,
    url: &PostgresUrl,
) -> Result<Client, StoreError> {
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| StoreError::backend(BACKEND, format!("connecting to {url}"), describe(&e)))?;
    tokio::spawn(async move {
        // Ends when the client is dropped or the server goes away; the
        // client's next request then reports the closed connection.
        let _ = connection.await;
    });
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_is_taken_from_the_url_and_hidden_from_the_client() {
        let url: PostgresUrl =
            "postgres://app:secret@db:5433/ledger?schema=books&connect_timeout=3"
                .parse()
                .unwrap();
        assert_eq!(url.schema(), "books");
        assert_eq!(url.config.get_dbname(), Some("ledger"));
        assert_eq!(
            url.config.get_connect_timeout(),
            Some(&std::time::Duration::from_secs(3))
        );
        assert!(!url.to_string().contains("secret"), "{url}");
        let url: PostgresUrl = "postgresql://db/ledger".parse().unwrap();
        assert_eq!(url.schema(), DEFAULT_SCHEMA);
    }

    #[test]
    fn bad_urls_and_schemas_are_refused_with_a_reason() {
        for (url, want) in [
            ("mysql://db/x", "is not a postgres://"),
            ("postgres://db/x?schema=Bad-Name", "is not usable"),
            ("postgres://db/x?schema=", "is not usable"),
            ("postgres://db/x?nonsense=1", "invalid PostgreSQL URL"),
        ] {
            let err = url.parse::<PostgresUrl>().unwrap_err().to_string();
            assert!(err.contains(want), "{url}: {err}");
        }
    }

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            without_password("postgres://u:p@h/d?schema=s"),
            "postgres://u@h/d?schema=s"
        );
        assert_eq!(without_password("postgres://h/d"), "postgres://h/d");
    }
}
