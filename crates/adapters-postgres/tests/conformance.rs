//! The PostgreSQL adapter runs the whole conformance suite, each behaviour
//! in a fresh schema of one server (`LOGBOOK_TEST_POSTGRES_URL`, or one this
//! test starts).

use async_trait::async_trait;
use logbook_adapters_postgres::{PostgresOptions, PostgresStore};
use logbook_ports::Stores;
use logbook_ports::conformance::{self, Fixture};

/// One schema; `open` connects to that same schema every time, so
/// reopening sees what was written.
struct PostgresFixture {
    url: String,
}

#[async_trait]
impl Fixture for PostgresFixture {
    async fn open(&self) -> Stores {
        PostgresStore::connect(&self.url, PostgresOptions::default())
            .await
            .expect("the store opens")
            .stores()
    }
    fn opens_side_by_side(&self) -> bool {
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_stores_pass_the_conformance_suite() {
    let database = logbook_test_postgres::database();
    conformance::run_all(|| PostgresFixture {
        url: database.fresh_schema_url("conformance"),
    })
    .await;
}
