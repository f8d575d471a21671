//! Stores to run app-level tests on: every adapter, each at a fresh location.

#![allow(dead_code)]

use logbook::StoreUrl;
use logbook_ports::Stores;
use tempfile::TempDir;

/// A fresh store of each kind, with the directory that holds it (dropped
/// with it).
pub fn every_store() -> Vec<(String, Stores, TempDir)> {
    let mut stores = Vec::new();
    for kind in ["memory", "sqlite", "file"] {
        let dir = tempfile::tempdir().expect("a temp dir");
        let url = match kind {
            "memory" => StoreUrl::Memory,
            "sqlite" => StoreUrl::Sqlite(dir.path().join("logbook.db")),
            _ => StoreUrl::File(dir.path().join("log")),
        };
        match url.open() {
            Ok(opened) => stores.push((url.to_string(), opened, dir)),
            Err(error) => panic!("cannot open {url}: {error}"),
        }
    }
    stores
}
