//! `logbook subject ...` and personal fields from the command line, across
//! processes, on every durable store: the worked example of
//! docs/personal-data.md.

mod support;

use std::path::Path;

use support::{durable_stores, logbook, ok, refused};

const ALICE: &str = "Alice Liddell-4e1b";
const BOB: &str = "Bob Marley-0a9f";

/// Files under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if std::fs::read(&path)
                .unwrap()
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
            {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

#[test]
fn a_shredded_users_name_is_gone_from_every_command_and_file_while_others_stay() {
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("master.key");
    let other_file = keys.path().join("other.key");
    std::fs::write(
        &key_file,
        ok(logbook("memory:", &["subject", "new-master-key"])),
    )
    .unwrap();
    std::fs::write(
        &other_file,
        ok(logbook("memory:", &["subject", "new-master-key"])),
    )
    .unwrap();
    let key = key_file.to_str().unwrap();
    for (n, store) in durable_stores(keys.path()).enumerate() {
        let dir = tempfile::tempdir().unwrap();
        // Each store in a folder of its own (the keys' folder holds the key files).
        let store = match n {
            0 => support::sqlite_url(dir.path()),
            1 => support::file_url(dir.path()),
            _ => store,
        };
        let store = store.as_str();
        let with_key = |args: &[&str]| {
            let mut all = vec!["--master-key-file", key];
            all.extend_from_slice(args);
            logbook(store, &all)
        };
        // Given two users, their names encrypted in the log
        let alice = ok(with_key(&["user", "create", ALICE, "--balance", "100.00"]));
        let alice = alice.trim();
        let bob = ok(with_key(&["user", "create", BOB]));
        let bob = bob.trim();
        let log = ok(with_key(&["log"]));
        assert!(
            log.contains("\"$encrypted\"") && !log.contains(ALICE),
            "{store}: {log}"
        );
        let directory = ok(with_key(&["projection", "show", "user-directory"]));
        assert!(directory.contains(ALICE), "{store}: {directory}");

        // When alice's subject is shredded
        let subject = format!("user-{alice}");
        let said = ok(with_key(&["subject", "shred", &subject]));
        assert!(said.contains("shredded"), "{said}");

        // Then she reads as the placeholder, her balance kept; bob is intact
        let shown = ok(with_key(&["user", "show", alice]));
        assert!(
            shown.contains("[shredded]") && shown.contains("100.00"),
            "{shown}"
        );
        assert!(ok(with_key(&["user", "show", bob])).contains(BOB));
        let directory = ok(with_key(&["projection", "show", "user-directory"]));
        assert!(
            !directory.contains(ALICE) && directory.contains(BOB),
            "{directory}"
        );
        ok(with_key(&["projection", "verify", "user-directory"]));
        ok(logbook(store, &["verify"]));
        let export = ok(logbook(store, &["export"]));
        assert!(!export.contains(ALICE) && export.contains("SubjectShredded"));
        if n < 2 {
            assert_eq!(
                files_containing(dir.path(), ALICE),
                Vec::<String>::new(),
                "{store}"
            );
        }
        // And shredding again changes nothing
        let again = ok(with_key(&["subject", "shred", &subject]));
        assert!(again.contains("already"), "{again}");

        // And a missing or wrong master key is a one-line error, never garbage
        let err = refused(
            logbook(store, &["user", "show", bob]),
            "no master key is configured",
        );
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        refused(
            logbook(
                store,
                &[
                    "--master-key-file",
                    other_file.to_str().unwrap(),
                    "user",
                    "show",
                    bob,
                ],
            ),
            "does not open the key of subject",
        );
        refused(
            logbook(store, &["user", "create", "Carol"]),
            "no master key is configured",
        );
    }
}
