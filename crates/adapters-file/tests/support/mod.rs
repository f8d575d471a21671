//! What several of the file store's test files share.

use std::path::Path;

use tempfile::TempDir;

/// A copy of the store directory `from` (its files, not subfolders) in a
/// new temporary directory, so one pristine log can be damaged many ways.
pub fn copy_dir(from: &Path) -> TempDir {
    let to = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.path().join(entry.file_name())).unwrap();
        }
    }
    to
}
