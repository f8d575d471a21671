//! logbook, the application side: the [`Repository`] that loads aggregates,
//! executes commands with optimistic concurrency and takes snapshots; the
//! [`codec`] between typed domain events and stored envelopes; store
//! selection by URL ([`store_url`]); and the `logbook` command-line tool
//! built on them.
//!
//! This is the only crate that knows every adapter. Domain code never
//! changes when the store does: pick one with a URL (`memory:`,
//! `sqlite:PATH`, `file:DIR`) and get `Arc<dyn EventStore>` back.
//!
//! **Architecture invariant:** nothing in the workspace depends on this
//! crate; it depends on the domain through the ports, and on adapters only
//! to construct them in [`store_url`].

pub mod catalog;
pub mod codec;
pub mod dispatch;
pub mod projection;
pub mod registry;
pub mod repository;
pub mod store_url;
pub mod subscription;
pub mod transfer;
pub mod verify;

pub use catalog::{StreamCatalog, StreamPage, StreamQuery, StreamSummary};
pub use codec::CodecError;
pub use logbook_domain as domain;
pub use logbook_ports as ports;
pub use repository::{Executed, Loaded, Repository, RepositoryError, RepositoryOptions};
pub use store_url::{StoreUrl, StoreUrlError, open_stores};
pub use subscription::Subscription;

/// The README's Rust examples, compiled as doc tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeExamples;
