//! Why a store's path cannot be opened or created, in words a user can act
//! on: the one rule every durable adapter uses at its edge, so that an
//! operating-system error never reaches the user as "Error code 14" or
//! "No such file or directory" about a directory that exists.

use std::io;
use std::path::{Path, PathBuf};

/// What stands in the way of reaching `path`'s parent directory, if
/// anything: a directory on the way that this user may not search, one
/// that does not exist, or a file where a directory should be.
pub fn unreachable_parent(path: &Path) -> Option<String> {
    let parent = parent_of(path);
    let mut ancestors: Vec<&Path> = parent.ancestors().collect();
    ancestors.reverse();
    let mut previous: Option<&Path> = None;
    for ancestor in ancestors {
        match std::fs::metadata(ancestor) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Some(format!("{} is not a directory", ancestor.display())),
            Err(error) if error.kind() == io::ErrorKind::PermissionDenied => {
                let blocked = previous.unwrap_or(ancestor);
                return Some(format!(
                    "directory {} cannot be searched by this user (it lacks execute permission)",
                    blocked.display()
                ));
            }
            Err(_) => return Some(format!("directory {} does not exist", ancestor.display())),
        }
        previous = Some(ancestor);
    }
    None
}

/// `error`, met while opening or creating `path`, as one line naming the
/// path and what is wrong, without the operating system's error codes.
pub fn describe_io_error(path: &Path, error: &io::Error) -> String {
    if let Some(problem) = unreachable_parent(path) {
        return problem;
    }
    let parent = parent_of(path);
    match error.kind() {
        io::ErrorKind::PermissionDenied => format!(
            "permission denied: {} or its directory {} is not writable by this user",
            path.display(),
            parent.display()
        ),
        // The parent exists (checked above), yet creating in it says
        // "not found": a file system that takes no new entries (/proc, /sys).
        io::ErrorKind::NotFound => format!(
            "{} does not accept new files or directories (a special file system?)",
            parent.display()
        ),
        io::ErrorKind::ReadOnlyFilesystem => {
            format!("{} is on a read-only file system", path.display())
        }
        io::ErrorKind::StorageFull => format!("the disk holding {} is full", path.display()),
        io::ErrorKind::NotADirectory => format!("{} is not a directory", path.display()),
        io::ErrorKind::IsADirectory => format!("{} is a directory", path.display()),
        _ => {
            let text = error.to_string();
            let text = text.split(" (os error").next().unwrap_or(&text).to_owned();
            format!("{}: {}", path.display(), text.to_lowercase())
        }
    }
}

/// `error`, met while creating directory `dir` and the missing directories
/// above it, as [`describe_io_error`] words it about the first directory
/// that had to be created.
pub fn describe_create_error(dir: &Path, error: &io::Error) -> String {
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let first_missing = absolute
        .ancestors()
        .take_while(|a| matches!(std::fs::symlink_metadata(a), Err(e) if e.kind() == io::ErrorKind::NotFound))
        .last()
        .unwrap_or(&absolute);
    describe_io_error(first_missing, error)
}

/// `error` with its message replaced by [`describe_io_error`], keeping its
/// kind.
pub fn explained(path: &Path, error: &io::Error) -> io::Error {
    io::Error::new(error.kind(), describe_io_error(path, error))
}

/// What kind of thing `path` is when it is neither missing nor a regular
/// file (a directory, a character device such as `/dev/null`, a socket);
/// `None` for a regular file or nothing at all.
pub fn not_a_regular_file(path: &Path) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    let meta = std::fs::metadata(path).ok()?;
    let kind = meta.file_type();
    if kind.is_file() {
        None
    } else if kind.is_dir() {
        Some("a directory")
    } else if kind.is_char_device() {
        Some("a character device")
    } else if kind.is_block_device() {
        Some("a block device")
    } else if kind.is_fifo() {
        Some("a named pipe")
    } else if kind.is_socket() {
        Some("a socket")
    } else {
        Some("not a regular file")
    }
}

fn parent_of(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    absolute
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_directory_on_the_way_is_named() {
        let dir = std::env::temp_dir().join("logbook-paths-test-missing");
        let problem = unreachable_parent(&dir.join("sub").join("x.db")).unwrap();
        assert!(problem.contains("does not exist"), "{problem}");
        assert!(problem.contains("logbook-paths-test-missing"), "{problem}");
    }

    #[test]
    fn a_file_system_that_takes_no_new_entries_is_said_so() {
        let error = io::Error::from(io::ErrorKind::NotFound);
        let line = describe_io_error(Path::new("/proc/snapshots"), &error);
        assert_eq!(
            line,
            "/proc does not accept new files or directories (a special file system?)"
        );
    }

    #[test]
    fn creating_below_a_special_file_system_names_its_directory() {
        let error = io::Error::from(io::ErrorKind::NotFound);
        let line = describe_create_error(Path::new("/proc/self/store/snapshots"), &error);
        assert!(line.starts_with("/proc/self does not accept"), "{line}");
    }

    #[test]
    fn dev_null_is_a_character_device() {
        assert_eq!(
            not_a_regular_file(Path::new("/dev/null")),
            Some("a character device")
        );
        assert_eq!(not_a_regular_file(Path::new("/nonexistent/x")), None);
    }
}
