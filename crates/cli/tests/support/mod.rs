//! What the command-line tests share: running the `logbook` binary on a
//! store and checking how it ended.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

pub fn logbook(store: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_logbook"))
        .arg("--store")
        .arg(store)
        .args(args)
        .env_remove("LOGBOOK_STORE")
        .env("RUST_LOG", "warn")
        .output()
        .expect("the logbook binary runs")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[track_caller]
pub fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}\n{}",
        stderr(&output),
        stdout(&output)
    );
    stdout(&output)
}

/// Asserts a clean refusal: non-zero exit, one line on stderr containing
/// `needle`, no panic.
#[track_caller]
pub fn refused(output: Output, needle: &str) -> String {
    let err = stderr(&output);
    assert!(
        !output.status.success(),
        "expected a failure, got success: {}",
        stdout(&output)
    );
    assert!(!err.contains("panicked"), "panicked: {err}");
    assert!(err.contains(needle), "stderr lacks {needle:?}: {err}");
    err
}

/// Every store a command must work on across processes: a SQLite file and
/// a file log in `dir`, and a fresh schema of a PostgreSQL server
/// (`LOGBOOK_TEST_POSTGRES_URL`, or one started for the test, stopped when
/// the loop over the stores ends).
pub fn durable_stores(dir: &Path) -> DurableStores {
    let postgres = logbook_test_postgres::database();
    DurableStores {
        urls: vec![
            sqlite_url(dir),
            file_url(dir),
            postgres.fresh_schema_url("cli"),
        ]
        .into_iter(),
        _postgres: postgres,
    }
}

/// The store URLs of a test, and the PostgreSQL server they name.
pub struct DurableStores {
    urls: std::vec::IntoIter<String>,
    _postgres: logbook_test_postgres::TestDatabase,
}

impl Iterator for DurableStores {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        self.urls.next()
    }
}

pub fn sqlite_url(dir: &Path) -> String {
    format!("sqlite:{}", dir.join("logbook.db").display())
}

pub fn file_url(dir: &Path) -> String {
    format!("file:{}", dir.join("log").display())
}
