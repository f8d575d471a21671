//! The file adapter runs the whole conformance suite: each behaviour gets a
//! fresh directory, and "reopening" really closes the store (writer
//! stopped, lock released) and opens the directory again.

use async_trait::async_trait;
use logbook_adapters_file::{Durability, FileOptions, FileStore};
use logbook_ports::Stores;
use logbook_ports::conformance::{self, Fixture};
use tempfile::TempDir;

struct FileFixture {
    dir: TempDir,
    options: FileOptions,
}

#[async_trait]
impl Fixture for FileFixture {
    async fn open(&self) -> Stores {
        FileStore::open(self.dir.path(), self.options.clone())
            .expect("the store opens")
            .stores()
    }
}

fn fixture(options: FileOptions) -> FileFixture {
    FileFixture {
        dir: tempfile::tempdir().expect("a temporary directory"),
        options,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn file_stores_pass_the_conformance_suite() {
    conformance::run_all(|| fixture(FileOptions::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn file_stores_with_tiny_segments_and_no_fsync_pass_the_conformance_suite() {
    // Segments of 4 KiB roll every few events, so every behaviour also
    // crosses segment boundaries (and the 1 MiB payload gets a segment of
    // its own).
    conformance::run_all(|| {
        fixture(
            FileOptions::new()
                .durability(Durability::Never)
                .segment_size(4096),
        )
    })
    .await;
}
