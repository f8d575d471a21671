//! Appends on a nearly full file system: preallocation shrinks to what
//! fits, so the store fills the space with events and the append that
//! does not fit fails alone, with one clear line, losing nothing that was
//! acknowledged.
//!
//! The file system is a 2 MiB tmpfs when this test may mount one (as root
//! with the right to mount, as in CI); otherwise a simulated write limit:
//! the process's file-size limit (`prlimit --fsize`, with `SIGXFSZ`
//! ignored so that the write fails instead of killing the process). Either
//! way the appending runs in a child process (this test binary again, with
//! [`CHILD_DIR`] naming the store).

use std::path::{Path, PathBuf};
use std::process::Command;

use logbook_adapters_file::{FileOptions, FileStore};
use logbook_ports::conformance::event;
use logbook_ports::{EventStore, ExpectedVersion, StoreError, StreamId};

/// Set in the child's environment: the store it fills.
const CHILD_DIR: &str = "LOGBOOK_FILE_TEST_FULL_DIR";
/// The room there is: the tmpfs's size, or the file-size limit.
const ROOM: u64 = 2 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_process_fills_the_store_when_asked() {
    let Some(dir) = std::env::var_os(CHILD_DIR).map(PathBuf::from) else {
        return; // run by the parent only
    };
    // Given a store on a file system with 2 MiB of room
    let store = FileStore::open(&dir, FileOptions::new()).unwrap();
    let events = store.events();
    let stream = StreamId::new("Filler-1").unwrap();

    // When events are appended one by one until one fails
    let mut acknowledged = 0u64;
    let failure = loop {
        match events
            .append(&stream, ExpectedVersion::Any, vec![filler(acknowledged)])
            .await
        {
            Ok(_) => acknowledged += 1,
            Err(error) => break error,
        }
        assert!(acknowledged < 1_000_000, "the room never ran out");
    };

    // Then the log filled most of the room first: preallocation never
    // stood in the way of an event that fits
    let segment = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "seg"))
        .unwrap();
    let used = std::fs::metadata(&segment).unwrap().len();
    println!("{acknowledged} events acknowledged in {used} bytes; then: {failure}");
    assert!(
        used > ROOM * 3 / 4,
        "only {used} bytes of {ROOM} were used before an append failed: {failure}"
    );

    // And the append that did not fit failed with one clear line naming
    // the segment, without the operating system's codes
    let message = failure.to_string();
    assert!(matches!(failure, StoreError::Io { .. }), "{failure:?}");
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(message.contains("no room for the"), "{message}");
    assert!(
        message.contains(&segment.display().to_string()),
        "{message}"
    );
    assert!(!message.contains("os error"), "{message}");
    drop(events);
    drop(store);

    // And every acknowledged event is still there
    let reopened = FileStore::open_read_only(&dir).unwrap();
    assert_eq!(
        reopened.events().head_position().await.unwrap(),
        Some(acknowledged)
    );
    // (No marker file: the disk is full.)
    println!("{SCENARIO_DONE}");
}

/// Printed by the child once it has run the whole scenario.
const SCENARIO_DONE: &str = "full-disk scenario done";

/// An event of about 1 KiB (so the room fills in a couple of thousand
/// appends).
fn filler(n: u64) -> logbook_domain::NewEvent {
    let mut new = event("Filled", n);
    new.payload =
        logbook_ports::conformance::payload(serde_json::json!({"n": n, "filler": "x".repeat(900)}));
    new
}

/// A tmpfs mounted at a directory, unmounted on drop.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn mount_small_tmpfs(at: &Path) -> Option<Mounted> {
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={ROOM}"), "tmpfs"])
        .arg(at)
        .stderr(std::process::Stdio::null())
        .status()
        .ok()?;
    status.success().then(|| Mounted(at.to_path_buf()))
}

#[test]
fn appends_on_a_nearly_full_file_system_fill_it_and_fail_alone() {
    if std::env::var_os(CHILD_DIR).is_some() {
        return; // in the child: only `child_process_fills_the_store_when_asked` runs
    }
    let dir = tempfile::tempdir().unwrap();
    let room = dir.path().join("room");
    std::fs::create_dir(&room).unwrap();
    let mounted = mount_small_tmpfs(&room);
    let store = room.join("store");
    let test_binary = std::env::current_exe().unwrap();
    let child_args = [
        "child_process_fills_the_store_when_asked",
        "--exact",
        "--test-threads=1",
        "--nocapture",
    ];
    let mut child = if mounted.is_some() {
        println!("on a {ROOM}-byte tmpfs");
        let mut child = Command::new(&test_binary);
        child.args(child_args);
        child
    } else {
        println!("no tmpfs could be mounted: with a {ROOM}-byte file-size limit");
        let mut child = Command::new("sh");
        child
            .arg("-c")
            .arg(format!(
                "trap '' XFSZ; exec prlimit --fsize={ROOM} -- \"$0\" \"$@\""
            ))
            .arg(&test_binary)
            .args(child_args);
        child
    };
    let output = child.env(CHILD_DIR, &store).output().unwrap();
    println!("{}", String::from_utf8_lossy(&output.stdout));
    assert!(
        output.status.success(),
        "the child failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).contains(SCENARIO_DONE),
        "the child did not run the scenario"
    );
    drop(mounted);
}
