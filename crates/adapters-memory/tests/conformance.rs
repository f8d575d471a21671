//! The memory adapter runs the whole conformance suite.

use async_trait::async_trait;
use logbook_ports::Stores;
use logbook_ports::conformance::{self, Fixture};

/// The same in-memory stores every time it is opened: "reopening" a memory
/// store is getting the same instance back.
struct MemoryFixture(Stores);

#[async_trait]
impl Fixture for MemoryFixture {
    async fn open(&self) -> Stores {
        self.0.clone()
    }
    fn opens_side_by_side(&self) -> bool {
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_stores_pass_the_conformance_suite() {
    conformance::run_all(|| MemoryFixture(logbook_adapters_memory::stores())).await;
}
