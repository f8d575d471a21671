//! Choosing storage at run time from a URL: `memory:`, `sqlite:PATH`,
//! `file:DIR`, `postgres://user@host/db?schema=NAME` (or `postgresql://`).
//! The application gets [`Stores`] (trait objects) back and never
//! names an adapter type. Each durable adapter is behind a cargo feature of
//! this crate (`sqlite`, `file`, `postgres`); a URL whose adapter was left out of the
//! build parses, and opening it says which feature to enable.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use logbook_ports::{StoreError, Stores};

/// The store used when none is given: a SQLite file in the working
/// directory.
pub const DEFAULT_STORE_URL: &str = "sqlite:logbook.db";

/// A parsed store URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// `memory:` — in this process only.
    Memory,
    /// `sqlite:PATH` — one SQLite database file.
    Sqlite(PathBuf),
    /// `file:DIR` — an append-only log in a directory.
    File(PathBuf),
    /// `postgres://…` or `postgresql://…` — a PostgreSQL database (the
    /// whole URL, `?schema=NAME` included), shared by every host.
    Postgres(String),
}

/// Why a store URL is not usable.
#[derive(Debug, thiserror::Error)]
pub enum StoreUrlError {
    /// Not of the form `scheme:rest`.
    #[error("invalid store URL {0:?}: expected memory:, sqlite:PATH, file:DIR or postgres://…")]
    Malformed(String),
    /// A scheme logbook does not know.
    #[error(
        "unknown store scheme {scheme:?} in {url:?}: expected memory:, sqlite:PATH, file:DIR or postgres://…"
    )]
    UnknownScheme {
        /// The scheme given.
        scheme: String,
        /// The whole URL.
        url: String,
    },
    /// `sqlite:` or `file:` without a path.
    #[error("store URL {0:?} names no path")]
    MissingPath(String),
    /// The URL names a store this build of logbook leaves out.
    #[error(
        "store {url:?} needs the {feature:?} feature of the logbook crate, which this build leaves out"
    )]
    NotBuiltIn {
        /// The whole URL.
        url: String,
        /// The cargo feature that brings the adapter in.
        feature: &'static str,
    },
    /// The store could not be opened.
    #[error("cannot open store {url}: {source}")]
    Open {
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: StoreError,
    },
}

impl FromStr for StoreUrl {
    type Err = StoreUrlError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let (scheme, rest) = url
            .split_once(':')
            .ok_or_else(|| StoreUrlError::Malformed(url.to_owned()))?;
        // `sqlite://path` is accepted as a courtesy to URL habits.
        let path = rest.strip_prefix("//").unwrap_or(rest);
        let needs_path = |make: fn(PathBuf) -> StoreUrl| {
            if path.is_empty() {
                Err(StoreUrlError::MissingPath(url.to_owned()))
            } else {
                Ok(make(PathBuf::from(path)))
            }
        };
        match scheme {
            "memory" if path.is_empty() => Ok(Self::Memory),
            "memory" => Err(StoreUrlError::Malformed(url.to_owned())),
            "sqlite" => needs_path(Self::Sqlite),
            "file" => needs_path(Self::File),
            "postgres" | "postgresql" if rest.len() > 2 && rest.starts_with("//") => {
                Ok(Self::Postgres(url.to_owned()))
            }
            "postgres" | "postgresql" => Err(StoreUrlError::Malformed(url.to_owned())),
            _ => Err(StoreUrlError::UnknownScheme {
                scheme: scheme.to_owned(),
                url: url.to_owned(),
            }),
        }
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory => f.write_str("memory:"),
            Self::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            Self::File(path) => write!(f, "file:{}", path.display()),
            Self::Postgres(url) => f.write_str(url),
        }
    }
}

impl StoreUrl {
    /// Opens the stores this URL names. Blocks while the store opens (a file
    /// store scans its log, and waits for another process's write lock up
    /// to [`FILE_LOCK_WAIT`]); call it before serving, or from a blocking
    /// thread.
    ///
    /// # Errors
    /// [`StoreUrlError::Open`] with the adapter's reason.
    pub fn open(&self) -> Result<Stores, StoreUrlError> {
        #[allow(unused_variables)]
        let open_error = |source| StoreUrlError::Open {
            url: self.to_string(),
            source,
        };
        #[allow(unused_variables)]
        let not_built_in = |feature| StoreUrlError::NotBuiltIn {
            url: self.to_string(),
            feature,
        };
        match self {
            Self::Memory => Ok(logbook_adapters_memory::stores()),
            #[cfg(feature = "sqlite")]
            Self::Sqlite(path) => {
                logbook_adapters_sqlite::SqliteStore::open(path, Default::default())
                    .map(|store| store.stores())
                    .map_err(open_error)
            }
            #[cfg(not(feature = "sqlite"))]
            Self::Sqlite(_) => Err(not_built_in("sqlite")),
            #[cfg(feature = "file")]
            Self::File(dir) => open_file_store(dir).map_err(open_error),
            #[cfg(not(feature = "file"))]
            Self::File(_) => Err(not_built_in("file")),
            #[cfg(feature = "postgres")]
            Self::Postgres(url) => open_postgres(url).map_err(open_error),
            #[cfg(not(feature = "postgres"))]
            Self::Postgres(_) => Err(not_built_in("postgres")),
        }
    }

    /// Opens the stores this URL names for reading only: a file store
    /// without its write lock (nothing is repaired, a torn tail is left as
    /// found); a SQLite database read-only, without migrating it or taking
    /// its write lock (it works while another process holds the lock, and on
    /// read-only media). Writes through the stores fail. `memory:` opens as
    /// [`StoreUrl::open`] does.
    ///
    /// # Errors
    /// [`StoreUrlError::Open`] with the adapter's reason.
    pub fn open_read_only(&self) -> Result<Stores, StoreUrlError> {
        match self {
            #[cfg(feature = "file")]
            Self::File(dir) => logbook_adapters_file::FileStore::open_read_only(dir)
                .map(|store| store.stores())
                .map_err(|source| StoreUrlError::Open {
                    url: self.to_string(),
                    source,
                }),
            #[cfg(feature = "sqlite")]
            Self::Sqlite(path) => {
                logbook_adapters_sqlite::SqliteStore::open_read_only(path, Default::default())
                    .map(|store| store.stores())
                    .map_err(|source| StoreUrlError::Open {
                        url: self.to_string(),
                        source,
                    })
            }
            _ => self.open(),
        }
    }
}

#[cfg(feature = "file")]
/// How long opening a file store waits for another process to release it.
pub const FILE_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

#[cfg(feature = "file")]
/// Opens a file store, waiting up to [`FILE_LOCK_WAIT`] while another
/// process holds its write lock: short-lived commands (two `logbook`
/// invocations at once) then take turns instead of failing.
fn open_file_store(dir: &std::path::Path) -> Result<Stores, StoreError> {
    let started = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(5);
    loop {
        match logbook_adapters_file::FileStore::open(dir, Default::default()) {
            Ok(store) => return Ok(store.stores()),
            Err(StoreError::Locked { .. }) if started.elapsed() < FILE_LOCK_WAIT => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(100));
            }
            Err(error) => return Err(error),
        }
    }
}

#[cfg(feature = "postgres")]
/// Connects to a PostgreSQL store from synchronous code running on a
/// multi-threaded tokio runtime (the store's connections live on that
/// runtime): the calling worker blocks while the store connects and
/// migrates, and other tasks move to other workers meanwhile.
fn open_postgres(url: &str) -> Result<Stores, StoreError> {
    let unusable =
        |why: &str| StoreError::backend("postgres", format!("opening {url}"), why.to_owned());
    let handle = tokio::runtime::Handle::try_current()
        .map_err(|_| unusable("a PostgreSQL store must be opened on a running tokio runtime"))?;
    if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
        return Err(unusable(
            "a PostgreSQL store must be opened on a multi-threaded tokio runtime",
        ));
    }
    let connect = logbook_adapters_postgres::PostgresStore::connect(url, Default::default());
    tokio::task::block_in_place(|| handle.block_on(connect)).map(|store| store.stores())
}

/// Parses `url` and opens the stores it names.
///
/// # Errors
/// [`StoreUrlError`] for a malformed URL or a store that cannot be opened.
pub fn open_stores(url: &str) -> Result<Stores, StoreUrlError> {
    url.parse::<StoreUrl>()?.open()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_scheme() {
        assert_eq!("memory:".parse::<StoreUrl>().unwrap(), StoreUrl::Memory);
        assert_eq!(
            "sqlite:logbook.db".parse::<StoreUrl>().unwrap(),
            StoreUrl::Sqlite("logbook.db".into())
        );
        assert_eq!(
            "sqlite:///tmp/x.db".parse::<StoreUrl>().unwrap(),
            StoreUrl::Sqlite("/tmp/x.db".into())
        );
        assert_eq!(
            "file:data".parse::<StoreUrl>().unwrap(),
            StoreUrl::File("data".into())
        );
        for url in ["postgres://u@h/db?schema=s", "postgresql://h/db"] {
            assert_eq!(
                url.parse::<StoreUrl>().unwrap(),
                StoreUrl::Postgres(url.into())
            );
        }
    }

    #[test]
    fn rejects_malformed_urls_with_a_reason() {
        for (url, want) in [
            ("logbook.db", "expected memory:"),
            ("mysql://x", "unknown store scheme \"mysql\""),
            ("postgres:x", "invalid store URL"),
            ("sqlite:", "names no path"),
            ("file:", "names no path"),
            ("memory:x", "invalid store URL"),
        ] {
            let err = url.parse::<StoreUrl>().unwrap_err().to_string();
            assert!(err.contains(want), "{url}: {err}");
        }
    }
}
