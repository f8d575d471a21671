//! The file adapter of logbook: an append-only log of framed, checksummed
//! records in segment files, crash-safe.
//!
//! Open a directory with [`FileStore::open`] and take its
//! [`FileStore::stores`]. Appends go to one writer thread that groups
//! concurrent appenders into one write and (under [`Durability::Always`])
//! one fsync; reads go through an in-memory index built on open, so a
//! stream read never scans the log. Open reads the summary of each sealed
//! segment's index sidecar (written when the segment was sealed,
//! checksummed, bound to the segment's length and last record) instead of
//! the segment, loads a sealed segment's records only when first needed,
//! and scans the open segment and any segment whose sidecar is missing or
//! does not bind (and then writes it again). A crash mid-write leaves a torn tail
//! that the next open cuts off ([`FileStore::recovery_report`] says what
//! was cut); damage anywhere else makes open fail with the file and offset.
//! [`verify()`] checks a store without opening it for writing.
//! docs/file-format.md describes every byte.
//!
//! Unix only (positioned reads and writes).
//!
//! **Architecture invariant:** depends on `logbook-ports` and
//! `logbook-domain` only among logbook's crates; never on another adapter or
//! on the application.

mod blocking;
mod checkpoints;
mod cold;
mod durable;
mod event_store;
pub mod format;
mod ids;
mod index;
mod lock;
mod options;
mod projections;
pub mod record;
mod recovery;
mod retention;
mod segment;
mod sidecar;
mod snapshots;
mod store;
mod subject_keys;
mod verify;
mod writer;

pub use checkpoints::FileCheckpointStore;
pub use event_store::FileEventStore;
pub use options::{Durability, FileOptions, MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE};
pub use projections::FileProjectionStore;
pub use recovery::{Corruption, TornTail};
pub use snapshots::FileSnapshotStore;
pub use store::{FileStore, RecoveryReport};
pub use subject_keys::FileSubjectKeyStore;
pub use verify::{VerifyReport, verify};
