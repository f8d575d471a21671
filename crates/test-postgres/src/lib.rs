//! Throwaway PostgreSQL servers for logbook's tests, benchmarks and
//! `cargo xtask ci`: `initdb` into a temporary folder (as the unprivileged
//! `postgres` user when run as root), a server listening on a Unix socket in
//! that folder only, stopped and removed when dropped.
//!
//! Tests call [`database`]: it answers the server named by
//! `LOGBOOK_TEST_POSTGRES_URL` when that is set (`cargo xtask ci` starts one
//! server for the whole run and sets it), and otherwise starts a server of
//! the test's own. Each test then works in a schema of its own
//! ([`unique_schema`]), so tests never see each other's data.
//!
//! **Architecture invariant:** a development tool only: a dev-dependency of
//! tests and benchmarks, and a dependency of xtask; never a dependency of
//! an adapter or of the application. It depends on std and thiserror only.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The environment variable naming a server for the tests to use instead of
/// starting their own.
pub const URL_VARIABLE: &str = "LOGBOOK_TEST_POSTGRES_URL";

/// The environment variable naming the folder of the PostgreSQL server
/// binaries (`initdb`, `pg_ctl`), when they are not found otherwise.
pub const BIN_VARIABLE: &str = "LOGBOOK_POSTGRES_BIN";

/// What to do when no PostgreSQL binaries are found, in one line.
pub const INSTALL_HINT: &str = "PostgreSQL server binaries (initdb, pg_ctl) not found: install them (Debian: `apt-get install -y postgresql`), set LOGBOOK_POSTGRES_BIN to their folder, or set LOGBOOK_TEST_POSTGRES_URL to a server";

/// The port number in the socket's name (the server listens on no TCP port).
const PORT: u16 = 5432;

/// Why a throwaway server could not be started or controlled.
#[derive(Debug, thiserror::Error)]
pub enum TestServerError {
    /// No `initdb` and `pg_ctl` were found.
    #[error("{INSTALL_HINT}")]
    BinariesNotFound,
    /// A command could not be run at all.
    #[error("cannot run {command}: {source}")]
    Spawn {
        /// The command.
        command: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A command ran and failed.
    #[error("{command} failed ({status}): {output}")]
    Failed {
        /// The command.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed (and the server log, when relevant).
        output: String,
    },
    /// A file-system step failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// A PostgreSQL server of this process, in a temporary folder. Dropping it
/// stops the server and removes the folder.
#[derive(Debug)]
pub struct TestServer {
    root: PathBuf,
    bin: PathBuf,
    /// Run the server's commands as this user (when running as root).
    user: Option<String>,
    stopped: bool,
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> TestServerError {
    let context = context.into();
    move |source| TestServerError::Io { context, source }
}

/// The folder holding `initdb` and `pg_ctl`: `LOGBOOK_POSTGRES_BIN`, then
/// `pg_config --bindir`, then the `PATH`, then the newest
/// `/usr/lib/postgresql/<version>/bin`.
///
/// # Errors
/// [`TestServerError::BinariesNotFound`] when none of them has both.
pub fn find_binaries() -> Result<PathBuf, TestServerError> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os(BIN_VARIABLE).map(PathBuf::from) {
        return if has_both(&dir) {
            Ok(dir)
        } else {
            Err(TestServerError::BinariesNotFound)
        };
    }
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output()
        && output.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if has_both(&dir) {
            return Ok(dir);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if has_both(&dir) {
                return Ok(dir);
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_both(dir))
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, dir)| dir)
        .ok_or(TestServerError::BinariesNotFound)
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn run(command: &mut Command) -> Result<Output, TestServerError> {
    let name = format!("{command:?}");
    let output = command.output().map_err(|source| TestServerError::Spawn {
        command: name.clone(),
        source,
    })?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(TestServerError::Failed {
            command: name,
            status: output.status.to_string(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        })
    }
}

fn id_of(user: &str, flag: &str) -> Result<u32, TestServerError> {
    let output = run(Command::new("id").arg(flag).arg(user))?;
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .map_err(|_| TestServerError::Failed {
            command: format!("id {flag} {user}"),
            status: "0".into(),
            output: "not a number".into(),
        })
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl TestServer {
    /// Initialises and starts a server with test settings: no fsync (a
    /// crash of the machine is not what the tests are about; a server
    /// restart still recovers from the WAL).
    ///
    /// # Errors
    /// [`TestServerError::BinariesNotFound`] without PostgreSQL binaries;
    /// the failing step otherwise, with its output.
    pub fn start() -> Result<Self, TestServerError> {
        Self::start_with(false)
    }

    /// As [`TestServer::start`]; `durable` keeps PostgreSQL's default fsync
    /// settings (for benchmarks that must pay for durable commits).
    ///
    /// # Errors
    /// As [`TestServer::start`].
    pub fn start_with(durable: bool) -> Result<Self, TestServerError> {
        let bin = find_binaries()?;
        let user = running_as_root().then(|| "postgres".to_owned());
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        // Short: a Unix socket path must stay under about 100 bytes.
        let root = PathBuf::from(format!(
            "/tmp/logbook-pg-{}-{}-{nanos:x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&root).map_err(io(format!("creating {}", root.display())))?;
        let mut server = Self {
            root,
            bin,
            user,
            stopped: true,
        };
        if let Some(user) = &server.user {
            let (uid, gid) = (id_of(user, "-u")?, id_of(user, "-g")?);
            std::os::unix::fs::chown(&server.root, Some(uid), Some(gid))
                .map_err(io(format!("handing {} to {user}", server.root.display())))?;
        }
        let data = server.data();
        server.command("initdb", |c| {
            c.arg("-D")
                .arg(&data)
                .args(["-U", "postgres", "-A", "trust", "-E", "UTF8"])
                .args(["--locale=C", "--no-sync", "--no-instructions"]);
        })?;
        let mut settings = format!(
            "listen_addresses = ''\nunix_socket_directories = '{}'\nport = {PORT}\n\
             max_connections = 300\nshared_buffers = 128MB\n",
            server.root.display()
        );
        if !durable {
            settings.push_str("fsync = off\nfull_page_writes = off\n");
        }
        let conf = data.join("postgresql.conf");
        let mut text =
            std::fs::read_to_string(&conf).map_err(io(format!("reading {}", conf.display())))?;
        text.push_str(&settings);
        std::fs::write(&conf, text).map_err(io(format!("writing {}", conf.display())))?;
        server.pg_ctl("start")?;
        server.stopped = false;
        Ok(server)
    }

    fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    /// Runs one of the server's binaries, as the server's user.
    fn command(
        &self,
        program: &str,
        args: impl FnOnce(&mut Command),
    ) -> Result<Output, TestServerError> {
        let path = self.bin.join(program);
        let mut command = match &self.user {
            Some(user) => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={user}"))
                    .arg(format!("--regid={user}"))
                    .arg("--init-groups")
                    .arg("--")
                    .arg(&path);
                c
            }
            None => Command::new(&path),
        };
        command.current_dir(&self.root);
        args(&mut command);
        run(&mut command)
    }

    fn pg_ctl(&self, action: &str) -> Result<(), TestServerError> {
        let data = self.data();
        let log = self.root.join("server.log");
        let result = self.command("pg_ctl", |c| {
            c.arg("-D").arg(&data).arg("-l").arg(&log);
            c.args(["-w", "-t", "60", "-m", "fast", action]);
        });
        result.map(drop).map_err(|error| match error {
            TestServerError::Failed {
                command,
                status,
                output,
            } => TestServerError::Failed {
                command,
                status,
                output: format!(
                    "{output}\nserver log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                ),
            },
            other => other,
        })
    }

    /// The URL of the server's `postgres` database, as user `postgres`.
    pub fn url(&self) -> String {
        let host: String = self
            .root
            .display()
            .to_string()
            .replace('%', "%25")
            .replace('/', "%2F");
        format!("postgres://postgres@{host}:{PORT}/postgres")
    }

    /// Restarts the server (`pg_ctl restart -m fast`): every connection is
    /// closed, transactions in flight are rolled back.
    ///
    /// # Errors
    /// When `pg_ctl` fails, with its output and the server log.
    pub fn restart(&self) -> Result<(), TestServerError> {
        self.pg_ctl("restart")
    }

    /// Stops the server (`pg_ctl stop -m fast`); [`TestServer::start_again`]
    /// starts it again.
    ///
    /// # Errors
    /// When `pg_ctl` fails.
    pub fn stop(&mut self) -> Result<(), TestServerError> {
        if !self.stopped {
            self.pg_ctl("stop")?;
            self.stopped = true;
        }
        Ok(())
    }

    /// Starts a stopped server again, on the same data.
    ///
    /// # Errors
    /// When `pg_ctl` fails.
    pub fn start_again(&mut self) -> Result<(), TestServerError> {
        if self.stopped {
            self.pg_ctl("start")?;
            self.stopped = false;
        }
        Ok(())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if !self.stopped {
            let data = self.data();
            let _ = self.command("pg_ctl", |c| {
                c.arg("-D")
                    .arg(&data)
                    .args(["-w", "-m", "immediate", "stop"]);
            });
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The database a test runs against: the server named by
/// `LOGBOOK_TEST_POSTGRES_URL`, or one the test started (stopped when this
/// is dropped).
#[derive(Debug)]
pub enum TestDatabase {
    /// A server someone else runs.
    External(String),
    /// A server of this test.
    Owned(TestServer),
}

impl TestDatabase {
    /// The server's URL, without a schema.
    pub fn url(&self) -> String {
        match self {
            Self::External(url) => url.clone(),
            Self::Owned(server) => server.url(),
        }
    }

    /// A URL for a schema of its own (`?schema=`), fresh for each call.
    pub fn fresh_schema_url(&self, prefix: &str) -> String {
        with_schema(&self.url(), &unique_schema(prefix))
    }
}

/// The database for a test (see [`TestDatabase`]).
///
/// # Panics
/// When `LOGBOOK_TEST_POSTGRES_URL` is unset and no server can be started,
/// with [`INSTALL_HINT`] or the failing step: a test never skips silently.
pub fn database() -> TestDatabase {
    match std::env::var(URL_VARIABLE) {
        Ok(url) if !url.is_empty() => TestDatabase::External(url),
        _ => match TestServer::start() {
            Ok(server) => TestDatabase::Owned(server),
            Err(error) => panic!("cannot start a PostgreSQL server for the test: {error}"),
        },
    }
}

/// A schema name no other test uses: `prefix`, the process id and a
/// counter (lower-case letters, digits and `_` only).
pub fn unique_schema(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}_{}_{}_{nanos:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// `url` with `?schema=NAME` (or `&schema=NAME`) added.
pub fn with_schema(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}schema={schema}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schema_is_added_to_a_url_with_or_without_a_query() {
        assert_eq!(
            with_schema("postgres://h/db", "s"),
            "postgres://h/db?schema=s"
        );
        assert_eq!(
            with_schema("postgres://h/db?sslmode=disable", "s"),
            "postgres://h/db?sslmode=disable&schema=s"
        );
    }

    #[test]
    fn unique_schemas_differ_and_are_plain_identifiers() {
        let (a, b) = (unique_schema("t"), unique_schema("t"));
        assert_ne!(a, b);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        );
    }

    #[test]
    fn a_server_starts_restarts_and_is_removed_when_dropped() {
        // Given a started server
        let server = TestServer::start().expect("a throwaway server starts");
        let socket = server.root.join(format!(".s.PGSQL.{PORT}"));
        let root = server.root.clone();
        // Then it listens on its socket, also after a restart
        assert!(socket.exists(), "no socket at {}", socket.display());
        server.restart().expect("the server restarts");
        assert!(socket.exists(), "no socket after the restart");
        // When it is dropped, its folder is gone
        drop(server);
        assert!(!root.exists(), "{} is left behind", root.display());
    }
}
