//! The SQLite adapter of logbook: event, snapshot and checkpoint stores on
//! one SQLite file, the durable embedded default.
//!
//! **Architecture invariant:** depends on `logbook-ports` and
//! `logbook-domain` only among logbook's crates; never on another adapter or
//! on the application.
