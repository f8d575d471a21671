//! logbook, the library: the [`Repository`] that loads aggregates, executes
//! commands with optimistic concurrency and takes snapshots; the [`codec`]
//! between typed domain events and stored envelopes; [`projection`]s,
//! [`Subscription`]s and the [`dispatch`]er; aggregates and read models by
//! name ([`registry`], [`projection::ProjectionRegistry`]) for front ends;
//! export and import ([`transfer`]); store checks ([`verify`]); and store
//! selection by URL ([`store_url`]). Front ends (the `logbook` command line
//! in `logbook-cli`, the HTTP server) are built on it.
//!
//! This is the only library crate that knows every adapter, each behind a
//! cargo feature (`sqlite`, `file`; both on by default; the memory store is
//! always in). Domain code never changes when the store does: pick one with
//! a URL (`memory:`, `sqlite:PATH`, `file:DIR`) and get `Arc<dyn
//! EventStore>` back.
//!
//! **Architecture invariant:** this crate never depends on a front end or on
//! command-line or logging-setup crates (clap, anyhow, indicatif,
//! tracing-subscriber); it reaches the domain through the ports, and names
//! adapters only where it constructs or checks them ([`store_url`],
//! [`verify::verify_store`]).

pub mod catalog;
pub mod codec;
pub mod dispatch;
pub mod personal;
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
