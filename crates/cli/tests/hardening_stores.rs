//! The `logbook` binary against damaged and read-only stores: `verify` runs
//! SQLite's own integrity check and exits 1 on a page overwritten in an
//! index or table, a later deposit is refused, and `verify` works on a
//! store in a directory it may not write.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::process::{Command, Output};

fn command(store: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_logbook"));
    command
        .arg("--store")
        .arg(store)
        .args(args)
        .env_remove("LOGBOOK_STORE")
        .env("RUST_LOG", "warn");
    command
}

fn logbook(store: &str, args: &[&str]) -> Output {
    command(store, args)
        .output()
        .expect("the logbook binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[track_caller]
fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}\n{}",
        stderr(&output),
        stdout(&output)
    );
    stdout(&output)
}

/// Asserts a clean refusal: exit status `code`, no panic, stderr holding
/// `needle`.
#[track_caller]
fn refused(output: Output, code: i32, needle: &str) -> String {
    let err = stderr(&output);
    assert_eq!(
        output.status.code(),
        Some(code),
        "{err}\n{}",
        stdout(&output)
    );
    assert!(!err.contains("panicked"), "panicked: {err}");
    assert!(err.contains(needle), "stderr lacks {needle:?}: {err}");
    err
}

/// A SQLite varint at `at`: its value and length.
fn varint(bytes: &[u8], at: usize) -> (u64, usize) {
    let mut value = 0u64;
    for i in 0..9 {
        let byte = bytes[at + i];
        if i == 8 {
            return ((value << 8) | u64::from(byte), 9);
        }
        value = (value << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            return (value, i + 1);
        }
    }
    unreachable!()
}

/// The page size and the root page of table or index `name`, read from the
/// schema table on page 1 of the database file (as the SQLite file format
/// lays it out; the schema of a logbook database fits on that one page).
fn root_page_of(db: &[u8], name: &str) -> (usize, usize) {
    let page_size = match u16::from_be_bytes([db[16], db[17]]) {
        1 => 65_536,
        size => usize::from(size),
    };
    assert_eq!(db[100], 0x0D, "the schema table is not one leaf page");
    let cells = usize::from(u16::from_be_bytes([db[103], db[104]]));
    for cell in 0..cells {
        let pointer = 108 + 2 * cell;
        let mut at = usize::from(u16::from_be_bytes([db[pointer], db[pointer + 1]]));
        let (_, n) = varint(db, at); // payload length
        at += n;
        let (_, n) = varint(db, at); // rowid
        at += n;
        let (header_len, _) = varint(db, at);
        let mut header_at = at;
        let body_start = at + header_len as usize;
        let (_, n) = varint(db, header_at);
        header_at += n;
        let mut serial_types = Vec::new();
        while header_at < body_start {
            let (serial, n) = varint(db, header_at);
            serial_types.push(serial);
            header_at += n;
        }
        // Columns: type, name, tbl_name, rootpage, sql.
        let mut body = body_start;
        let mut columns = Vec::new();
        for serial in serial_types {
            let len = match serial {
                0 | 8 | 9 => 0,
                1..=4 => serial as usize,
                5 => 6,
                6 | 7 => 8,
                n => ((n - 12) / 2) as usize,
            };
            columns.push((serial, &db[body..body + len]));
            body += len;
        }
        if columns[1].1 == name.as_bytes() {
            let (serial, bytes) = columns[3];
            let root = match serial {
                8 => 0,
                9 => 1,
                _ => bytes.iter().fold(0usize, |v, b| (v << 8) | usize::from(*b)),
            };
            return (page_size, root);
        }
    }
    panic!("no {name} in the schema");
}

/// Overwrites the root page of `name` (the whole index or table in a
/// database this small) with a pattern that is no valid page.
fn overwrite_page_of(path: &Path, name: &str) {
    let db = std::fs::read(path).unwrap();
    let (page_size, root) = root_page_of(&db, name);
    let mut file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.seek(SeekFrom::Start(((root - 1) * page_size) as u64))
        .unwrap();
    let garbage: Vec<u8> = (0..page_size).map(|i| (i * 7 + 0xA5) as u8).collect();
    file.write_all(&garbage).unwrap();
    file.sync_all().unwrap();
}

#[test]
fn verify_finds_an_overwritten_index_page_and_a_later_deposit_is_refused() {
    for name in ["events_by_id", "events_by_stream", "streams"] {
        // Given a SQLite store with an account, closed, one of whose index
        // or table pages is then overwritten
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("logbook.db");
        let store = format!("sqlite:{}", db.display());
        ok(logbook(
            &store,
            &["account", "open", "acc_001", "--owner", "ann"],
        ));
        ok(logbook(&store, &["account", "deposit", "acc_001", "10.00"]));
        ok(logbook(&store, &["verify"]));
        overwrite_page_of(&db, name);

        // When it is verified, then SQLite's integrity check reports the
        // damage, naming the file, with exit status 1
        let err = refused(logbook(&store, &["verify"]), 1, "corrupt");
        assert!(err.contains(&db.display().to_string()), "{name}: {err}");
        assert!(err.contains("integrity_check"), "{name}: {err}");

        // When a deposit follows, then it is refused as malformed and the
        // database is not written
        let before = std::fs::read(&db).unwrap();
        let err = refused(
            logbook(&store, &["account", "deposit", "acc_001", "5.00"]),
            1,
            "malformed",
        );
        assert!(err.contains(&db.display().to_string()), "{name}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{name}: {err}");
        assert!(
            std::fs::read(&db).unwrap() == before,
            "{name}: the database file changed"
        );
    }
}

/// Runs `logbook` as a user that may not write `dir` (as `nobody` when the
/// tests run as root, whom permissions do not stop).
fn as_reader(store: &str, args: &[&str]) -> Output {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false);
    if !is_root {
        return logbook(store, args);
    }
    // A copy of the binary `nobody` may run: the checkout may sit below a
    // directory only its owner may search (a clone into `mktemp -d`).
    let bin_dir = tempfile::tempdir().unwrap();
    set_mode(bin_dir.path(), 0o755);
    let bin = bin_dir.path().join("logbook");
    std::fs::copy(env!("CARGO_BIN_EXE_logbook"), &bin).unwrap();
    set_mode(&bin, 0o755);
    Command::new("runuser")
        .args(["-u", "nobody", "--"])
        .arg(&bin)
        .arg("--store")
        .arg(store)
        .args(args)
        .env_remove("LOGBOOK_STORE")
        .env("RUST_LOG", "warn")
        .output()
        .expect("runuser runs (tests as root need it to drop write permission)")
}

#[test]
fn verify_reads_a_store_in_a_directory_it_may_not_write() {
    for scheme in ["sqlite", "file"] {
        // Given a store with an account, in a directory and files made
        // read-only (and readable by every user)
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("store");
        std::fs::create_dir(&home).unwrap();
        let store = match scheme {
            "sqlite" => format!("sqlite:{}", home.join("logbook.db").display()),
            _ => format!("file:{}", home.display()),
        };
        ok(logbook(
            &store,
            &["account", "open", "acc_001", "--owner", "ann"],
        ));
        ok(logbook(&store, &["account", "deposit", "acc_001", "10.00"]));
        make_read_only(&home);
        set_mode(dir.path(), 0o755);
        let listing = listing(&home);

        // When it is verified by a user who may not write there
        let out = as_reader(&store, &["verify"]);

        // Then it is verified, and nothing beside it was created or changed
        let shown = ok(out);
        assert!(shown.contains("verified"), "{scheme}: {shown}");
        assert!(shown.contains("events:          2"), "{scheme}: {shown}");
        assert_eq!(listing, self::listing(&home), "{scheme}");
        make_writable(&home);
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn walk(path: &Path, each: &mut dyn FnMut(&Path, bool)) {
    for entry in std::fs::read_dir(path).unwrap() {
        let entry = entry.unwrap().path();
        if entry.is_dir() {
            walk(&entry, each);
            each(&entry, true);
        } else {
            each(&entry, false);
        }
    }
}

fn make_read_only(home: &Path) {
    walk(home, &mut |path, is_dir| {
        set_mode(path, if is_dir { 0o555 } else { 0o444 })
    });
    set_mode(home, 0o555);
}

fn make_writable(home: &Path) {
    set_mode(home, 0o755);
    walk(home, &mut |path, is_dir| {
        set_mode(path, if is_dir { 0o755 } else { 0o644 })
    });
}

/// Every file under `home` with its size and modification time.
fn listing(home: &Path) -> Vec<(String, u64, std::time::SystemTime)> {
    let mut files = Vec::new();
    walk(home, &mut |path, _| {
        let meta = std::fs::metadata(path).unwrap();
        files.push((
            path.display().to_string(),
            meta.len(),
            meta.modified().unwrap(),
        ));
    });
    files.sort();
    files
}

/// Asserts a refusal in one line on stderr that holds every one of
/// `needles` and none of the internals an operating system or SQLite
/// would otherwise show.
#[track_caller]
fn refused_in_one_clear_line(output: Output, needles: &[&str]) {
    let err = stderr(&output);
    assert!(!output.status.success(), "succeeded: {}", stdout(&output));
    assert!(!err.contains("panicked"), "panicked: {err}");
    assert_eq!(err.trim().lines().count(), 1, "not one line: {err}");
    for needle in needles {
        assert!(err.contains(needle), "stderr lacks {needle:?}: {err}");
    }
    for internal in ["Error code", "os error", "No such file or directory"] {
        assert!(!err.contains(internal), "stderr shows {internal:?}: {err}");
    }
}

#[test]
fn a_store_path_that_cannot_hold_a_store_is_refused_in_one_clear_line() {
    // Given paths where no store can be: a directory of a special file
    // system, a character device
    // When a command opens a store there
    // Then it fails with one line naming the path and what is wrong
    refused_in_one_clear_line(
        logbook("file:/proc", &["account", "show", "acc_001"]),
        &["/proc", "does not accept new files or directories"],
    );
    refused_in_one_clear_line(
        logbook("file:/proc/self/store", &["account", "show", "acc_001"]),
        &["/proc/self", "does not accept new files or directories"],
    );
    refused_in_one_clear_line(
        logbook("sqlite:/dev/null", &["account", "show", "acc_001"]),
        &["/dev/null", "it is a character device, not a database file"],
    );
    refused_in_one_clear_line(
        logbook("file:/dev/null", &["account", "show", "acc_001"]),
        &["/dev/null", "it is a character device, not a directory"],
    );
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing").join("logbook.db");
    refused_in_one_clear_line(
        logbook(
            &format!("sqlite:{}", missing.display()),
            &["account", "show", "acc_001"],
        ),
        &[
            &missing.display().to_string(),
            &format!(
                "directory {} does not exist",
                dir.path().join("missing").display()
            ),
        ],
    );
}

#[test]
fn a_store_below_a_directory_the_user_may_not_search_is_refused_naming_it() {
    // Given a directory this user may not search (no execute permission)
    let dir = tempfile::tempdir().unwrap();
    set_mode(dir.path(), 0o755);
    let closed = dir.path().join("closed");
    std::fs::create_dir(&closed).unwrap();
    set_mode(&closed, 0o600);
    let wanted = format!(
        "directory {} cannot be searched by this user",
        closed.display()
    );
    for store in [
        format!("sqlite:{}", closed.join("sub").join("logbook.db").display()),
        format!("file:{}", closed.join("store").display()),
    ] {
        // When a command opens a store below it
        let out = as_reader(&store, &["account", "show", "acc_001"]);

        // Then it fails with one line naming that directory
        refused_in_one_clear_line(out, &[&wanted]);
    }
    set_mode(&closed, 0o755);
}

#[test]
fn a_byte_flipped_in_the_last_event_of_a_file_store_is_reported_and_never_cut() {
    // Given a file store whose last event was acknowledged, closed
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("store");
    let store = format!("file:{}", home.display());
    ok(logbook(
        &store,
        &["account", "open", "acc_001", "--owner", "ann"],
    ));
    ok(logbook(&store, &["account", "deposit", "acc_001", "10.00"]));
    let segment = std::fs::read_dir(&home)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "seg"))
        .unwrap();

    // When a byte of that last event's record is flipped
    let mut bytes = std::fs::read(&segment).unwrap();
    let at = bytes.len() - 10;
    bytes[at] ^= 0x01;
    std::fs::write(&segment, &bytes).unwrap();

    // Then verify reports corruption naming the segment, with exit status 1
    let err = refused(logbook(&store, &["verify"]), 1, "corrupt");
    assert!(err.contains(&segment.display().to_string()), "{err}");
    assert!(err.contains("offset"), "{err}");

    // And a later command of any kind refuses the store, cutting nothing
    let err = refused(
        logbook(&store, &["account", "show", "acc_001"]),
        1,
        "corrupt",
    );
    assert!(err.contains(&segment.display().to_string()), "{err}");
    assert_eq!(
        std::fs::read(&segment).unwrap(),
        bytes,
        "the segment changed"
    );
}
