//! The file adapter of logbook: an append-only log of framed, checksummed
//! records in segment files, crash-safe.
//!
//! **Architecture invariant:** depends on `logbook-ports` and
//! `logbook-domain` only among logbook's crates; never on another adapter or
//! on the application.
