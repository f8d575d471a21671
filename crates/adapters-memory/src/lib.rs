//! The in-memory adapter of logbook: the reference implementation of every
//! port ([`MemoryEventStore`], [`MemorySnapshotStore`],
//! [`MemoryProjectionStore`], [`MemoryCheckpointStore`],
//! [`MemorySubjectKeyStore`], [`MemoryEventBus`]),
//! the fastest, for tests and for embedding where durability is not wanted.
//!
//! Events are held compactly: payload and metadata bytes in an append-only
//! arena, stream and type names interned, one small fixed-size entry per
//! event, and a per-stream index so reading a stream never visits another
//! stream's events.
//!
//! **Architecture invariant:** depends on `logbook-ports` and
//! `logbook-domain` only among logbook's crates; never on another adapter or
//! on the application; it starts no runtime and no thread.

mod arena;
mod bus;
mod checkpoints;
mod event_store;
mod projections;
mod snapshots;
mod subject_keys;

use std::sync::Arc;

pub use bus::MemoryEventBus;
pub use checkpoints::MemoryCheckpointStore;
pub use event_store::MemoryEventStore;
use logbook_ports::Stores;
pub use projections::MemoryProjectionStore;
pub use snapshots::MemorySnapshotStore;
pub use subject_keys::MemorySubjectKeyStore;

/// A fresh, empty set of in-memory stores.
pub fn stores() -> Stores {
    Stores {
        events: Arc::new(MemoryEventStore::new()),
        snapshots: Arc::new(MemorySnapshotStore::new()),
        projections: Arc::new(MemoryProjectionStore::new()),
        checkpoints: Arc::new(MemoryCheckpointStore::new()),
        subject_keys: Arc::new(MemorySubjectKeyStore::new()),
    }
}
