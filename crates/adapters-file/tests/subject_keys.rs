//! Subject keys in a real store directory: a shred erases the wrapped bytes
//! from every file of the store, a read-only open reads the keys the
//! writing process stores, and two processes creating one subject's key at
//! once end with one key (the second waits for the directory lock, then
//! reads the first one's key).
//!
//! The second processes are this test binary run again, with [`CHILD_DIR`]
//! naming the store, asked to run only
//! [`child_process_creates_keys_when_asked`].

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use logbook_adapters_file::{FileOptions, FileStore};
use logbook_ports::conformance::event;
use logbook_ports::{ExpectedVersion, StoreError, StreamId, SubjectId, SubjectKey, WrappedKey};

/// Set in a child's environment: the store it creates keys in.
const CHILD_DIR: &str = "LOGBOOK_FILE_TEST_KEYS_DIR";
/// Set in a child's environment: what tells its candidates apart.
const CHILD_NAME: &str = "LOGBOOK_FILE_TEST_KEYS_NAME";
/// Subjects both processes race on.
const SUBJECTS: usize = 25;

fn subject(id: &str) -> SubjectId {
    SubjectId::new(id).unwrap()
}

/// Every file under `dir`.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Whether `needle` occurs in any file of the store in `dir`.
fn found_in_files(dir: &Path, needle: &[u8]) -> bool {
    files_under(dir).iter().any(|file| {
        std::fs::read(file)
            .unwrap()
            .windows(needle.len())
            .any(|window| window == needle)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shredded_key_is_in_no_file_of_the_store() {
    // Given two subjects with keys, and events around them
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path(), FileOptions::new()).unwrap();
    let stores = store.stores();
    let alice = b"ALICE-WRAPPED-KEY-7f3a9c1e5b2d8f40".to_vec();
    let bob = b"BOB-WRAPPED-KEY-0c4e8a2f6b1d9e73".to_vec();
    for i in 0..20 {
        stores
            .events
            .append(
                &StreamId::new(format!("Account-{i}")).unwrap(),
                ExpectedVersion::Any,
                vec![event("Opened", i)],
            )
            .await
            .unwrap();
    }
    let keys = stores.subject_keys.clone();
    keys.get_or_create(&subject("user-alice"), WrappedKey::new(alice.clone()))
        .await
        .unwrap();
    keys.get_or_create(&subject("user-bob"), WrappedKey::new(bob.clone()))
        .await
        .unwrap();
    assert!(
        found_in_files(dir.path(), &alice),
        "the key is written before"
    );
    // ... which a read-only open, beside the writer, reads
    let reader = FileStore::open_read_only(dir.path()).unwrap().stores();
    assert!(matches!(
        reader.subject_keys.get(&subject("user-alice")).await.unwrap(),
        Some(SubjectKey::Active { wrapped, .. }) if wrapped.as_bytes() == alice
    ));
    // When alice is shredded
    let tombstone = keys.shred(&subject("user-alice")).await.unwrap();
    // Then her wrapped key is in no file of the store, bob's still is, and
    // the reader sees the tombstone
    assert!(
        !found_in_files(dir.path(), &alice),
        "alice's wrapped key is still in {:?}",
        files_under(dir.path())
    );
    assert!(
        found_in_files(dir.path(), &bob),
        "the search finds a live key"
    );
    assert_eq!(
        reader
            .subject_keys
            .get(&subject("user-alice"))
            .await
            .unwrap(),
        Some(tombstone.clone())
    );
    drop((keys, stores, store, reader));
    let keys = FileStore::open(dir.path(), FileOptions::new())
        .unwrap()
        .stores()
        .subject_keys;
    assert_eq!(
        keys.get(&subject("user-alice")).await.unwrap(),
        Some(tombstone)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_keys_file_is_reported_with_where() {
    // Given a store with a key, whose keys file is then damaged
    let dir = tempfile::tempdir().unwrap();
    {
        let keys = FileStore::open(dir.path(), FileOptions::new())
            .unwrap()
            .stores()
            .subject_keys;
        keys.get_or_create(&subject("user-alice"), WrappedKey::new(b"k".to_vec()))
            .await
            .unwrap();
    }
    let path = dir.path().join("subject-keys");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    // When it is opened, then opening fails naming the file
    match FileStore::open(dir.path(), FileOptions::new()) {
        Err(StoreError::Corrupt { location, .. }) => {
            assert!(location.contains("subject-keys"), "{location}");
        }
        other => panic!("expected corruption, got {:?}", other.map(|_| ())),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn describe(key: &SubjectKey) -> String {
    match key {
        SubjectKey::Active { wrapped, .. } => hex(wrapped.as_bytes()),
        SubjectKey::Shredded { .. } => "shredded".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_process_creates_keys_when_asked() {
    let (Some(dir), Some(name)) = (std::env::var_os(CHILD_DIR), std::env::var(CHILD_NAME).ok())
    else {
        // Run directly (not as a child): the parent test below is the test.
        return;
    };
    let dir = PathBuf::from(dir);
    let start = dir.join("start-line");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !start.exists() {
        assert!(Instant::now() < deadline, "never told to start");
        std::thread::sleep(Duration::from_millis(2));
    }
    // The store has one writer: wait for the lock the other process holds
    // (tell the parent, once, that it is waiting)
    let mut waited = false;
    let store = loop {
        match FileStore::open(&dir, FileOptions::new()) {
            Ok(store) => break store,
            Err(StoreError::Locked { .. }) => {
                assert!(Instant::now() < deadline, "the lock was never released");
                if !waited {
                    std::fs::write(dir.join(format!("waiting-{name}")), b"").unwrap();
                }
                waited = true;
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(other) => panic!("{name}: {other}"),
        }
    };
    let keys = store.stores().subject_keys;
    for i in 0..SUBJECTS {
        let candidate = WrappedKey::new(format!("{name}-candidate-{i}").into_bytes());
        let got = keys
            .get_or_create(&subject(&format!("user-{i}")), candidate)
            .await
            .unwrap();
        println!("KEY user-{i} {}", describe(&got));
    }
    println!("WAITED {waited}");
}

fn spawn_child(dir: &Path, name: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process_creates_keys_when_asked",
            "--nocapture",
        ])
        .env(CHILD_DIR, dir)
        .env(CHILD_NAME, name)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// The keys a child printed, and whether it waited for the lock.
fn printed(output: &std::process::Output) -> (Vec<String>, bool) {
    assert!(output.status.success(), "a child failed: {output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let keys = stdout
        .lines()
        .filter_map(|line| line.strip_prefix("KEY ").map(str::to_owned))
        .collect();
    (keys, stdout.contains("WAITED true"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_creating_one_subjects_key_end_with_one_key() {
    // Given a store held open for writing here, and two processes that
    // both want to write it
    let dir = tempfile::tempdir().unwrap();
    let holder = FileStore::open(dir.path(), FileOptions::new()).unwrap();
    let first = spawn_child(dir.path(), "first");
    let second = spawn_child(dir.path(), "second");
    std::fs::write(dir.path().join("start-line"), b"go").unwrap();
    // When both are waiting for the lock, and it is released, so that they
    // create the same new subjects' keys as soon as each gets it
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(dir.path().join("waiting-first").exists() && dir.path().join("waiting-second").exists())
    {
        assert!(Instant::now() < deadline, "the children never waited");
        std::thread::sleep(Duration::from_millis(2));
    }
    drop(holder);
    let (first, first_waited) = printed(&first.wait_with_output().unwrap());
    let (second, second_waited) = printed(&second.wait_with_output().unwrap());
    // Then both waited for the lock (none wrote beside another writer),
    // both got the same key for every subject, and it is the stored one
    assert!(first_waited && second_waited);
    assert_eq!(first.len(), SUBJECTS);
    assert_eq!(first, second);
    let keys = FileStore::open(dir.path(), FileOptions::new())
        .unwrap()
        .stores()
        .subject_keys;
    for line in &first {
        let (id, key) = line.split_once(' ').unwrap();
        let stored = keys.get(&subject(id)).await.unwrap().unwrap();
        assert_eq!(describe(&stored), key);
    }
    assert_eq!(keys.list(None, SUBJECTS + 1).await.unwrap().len(), SUBJECTS);
}
