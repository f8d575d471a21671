//! The SQLite adapter runs the whole conformance suite, each behaviour on a
//! fresh database file in its own temporary directory.

use async_trait::async_trait;
use logbook_adapters_sqlite::{SqliteOptions, SqliteStore};
use logbook_ports::Stores;
use logbook_ports::conformance::{self, Fixture};

/// One temporary directory holding one database file; `open` opens that
/// same file every time, so reopening sees what was written.
struct SqliteFixture {
    dir: tempfile::TempDir,
}

impl SqliteFixture {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }
}

#[async_trait]
impl Fixture for SqliteFixture {
    async fn open(&self) -> Stores {
        let path = self.dir.path().join("logbook.db");
        tokio::task::spawn_blocking(move || SqliteStore::open(path, SqliteOptions::default()))
            .await
            .expect("the open task ran")
            .expect("the database opens")
            .stores()
    }
    fn opens_side_by_side(&self) -> bool {
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_stores_pass_the_conformance_suite() {
    conformance::run_all(SqliteFixture::new).await;
}
