//! The command line under pressure and misuse: many processes contending for
//! one account, bad input of every kind, closed pipes, output that is not a
//! terminal.

mod support;

use support::*;

#[test]
fn twelve_processes_depositing_sixty_times_each_into_one_account_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    for store in durable_stores(dir.path()) {
        // Given one account.
        ok(logbook(&store, &["account", "open", "acc", "--owner", "o"]));
        // When 12 processes at a time deposit 60 times each.
        let workers: Vec<_> = (0..12)
            .map(|_| {
                let store = store.clone();
                std::thread::spawn(move || {
                    (0..60)
                        .filter(|_| {
                            let out = logbook(&store, &["account", "deposit", "acc", "1.00"]);
                            if !out.status.success() {
                                eprintln!("{}", stderr(&out));
                            }
                            out.status.success()
                        })
                        .count()
                })
            })
            .collect();
        let succeeded: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
        // Then every one of the 720 succeeds, and the balance says so.
        assert_eq!(succeeded, 720, "{store}");
        let shown: serde_json::Value =
            serde_json::from_str(&ok(logbook(&store, &["account", "show", "acc", "--json"])))
                .unwrap();
        assert_eq!(shown["balance"], "720.00", "{store}");
        assert_eq!(shown["version"], 721, "{store}");
    }
}

#[test]
fn every_id_a_user_types_follows_one_rule() {
    let dir = tempfile::tempdir().unwrap();
    for store in durable_stores(dir.path()) {
        // Empty ids and ids with invisible or bidirectional characters are
        // refused on every path, and nothing is written.
        refused(
            logbook(&store, &["account", "open", "", "--owner", "o"]),
            "id must not be empty",
        );
        refused(
            logbook(
                &store,
                &["exec", "CargoShip", "", "register_ship", r#"{"name": "x"}"#],
            ),
            "CargoShip id must not be empty",
        );
        let err = refused(
            logbook(&store, &["account", "open", "ab\u{202E}cd", "--owner", "o"]),
            "invisible character U+202E",
        );
        assert!(!err.contains('\u{202E}'), "the message escapes it: {err}");
        refused(
            logbook(&store, &["user", "change-balance", "u\u{200B}1", "5"]),
            "invisible character U+200B",
        );
        refused(logbook(&store, &["events", ""]), "must not be empty");
        assert_eq!(
            ok(logbook(&store, &["log"])),
            "",
            "{store}: nothing written"
        );
    }
}

#[test]
fn past_versions_times_and_arguments_are_checked_not_guessed() {
    let dir = tempfile::tempdir().unwrap();
    for store in durable_stores(dir.path()) {
        ok(logbook(&store, &["account", "open", "a1", "--owner", "o"]));
        // A version past the end names the stream's version.
        refused(
            logbook(&store, &["account", "show", "a1", "--at-version", "99999"]),
            "has no version 99999; its stream is at version 1",
        );
        refused(
            logbook(&store, &["show", "BankAccount", "a1", "--at-version", "2"]),
            "its stream is at version 1",
        );
        // A time without an offset is refused with an example.
        let out = logbook(
            &store,
            &["account", "show", "a1", "--at", "2026-11-23T10:00:00"],
        );
        assert_eq!(out.status.code(), Some(2));
        assert!(
            stderr(&out).contains("RFC 3339 time with an offset, e.g. "),
            "{}",
            stderr(&out)
        );
        // Unknown arguments are refused by name; the deposit is not applied.
        refused(
            logbook(
                &store,
                &[
                    "exec",
                    "BankAccount",
                    "a1",
                    "deposit",
                    r#"{"amount": "5.00", "bogus": 1}"#,
                ],
            ),
            "field `bogus`: unknown field; expected one of",
        );
        // A deposit to an account that was never opened says so.
        refused(
            logbook(&store, &["account", "deposit", "nobody", "5"]),
            "account does not exist",
        );
        let shown: serde_json::Value =
            serde_json::from_str(&ok(logbook(&store, &["account", "show", "a1", "--json"])))
                .unwrap();
        assert_eq!(
            (shown["balance"].as_str(), shown["version"].as_u64()),
            (Some("0.00"), Some(1))
        );
    }
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_url(dir.path());
    ok(logbook(&store, &["account", "open", "a1", "--owner", "o"]));
    for args in [
        &["log"][..],
        &["projection", "list"],
        &["verify"],
        &["demo"],
        &["export"],
    ] {
        // Given a reader that is gone before the first line is written.
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_logbook"))
            .arg("--store")
            .arg(&store)
            .args(args)
            .env_remove("LOGBOOK_STORE")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        // Then the command stops without a panic or an error line.
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(!err.contains("error"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
}

#[test]
fn warnings_carry_no_colour_when_stderr_is_not_a_terminal() {
    // Given a file store whose snapshot was damaged (a warning, not an error:
    // the state is replayed from events instead).
    let dir = tempfile::tempdir().unwrap();
    let store = file_url(dir.path());
    ok(logbook(&store, &["account", "open", "a1", "--owner", "o"]));
    for _ in 0..99 {
        ok(logbook(&store, &["account", "deposit", "a1", "1"]));
    }
    let snapshot = dir
        .path()
        .join("log")
        .join("snapshots")
        .join("BankAccount-a1");
    let mut bytes = std::fs::read(&snapshot).expect("a snapshot was taken at version 100");
    let last = bytes.len() - 2;
    bytes[last] ^= 0xFF;
    std::fs::write(&snapshot, bytes).unwrap();
    for colour in [None, Some("1")] {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_logbook"));
        command
            .args(["--store", &store, "account", "show", "a1"])
            .env_remove("LOGBOOK_STORE")
            .env_remove("RUST_LOG");
        if let Some(value) = colour {
            command.env("NO_COLOR", value);
        }
        let out = command.output().unwrap();
        // Then the warning is plain text, and the state is right.
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("WARN"), "a warning is printed: {err}");
        assert!(!err.contains('\u{1b}'), "no escape codes: {err:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("99.00"));
    }
}

#[test]
fn an_import_checks_known_events_against_their_decoders_first() {
    let dir = tempfile::tempdir().unwrap();
    let source = sqlite_url(dir.path());
    ok(logbook(&source, &["account", "open", "a1", "--owner", "o"]));
    ok(logbook(&source, &["account", "deposit", "a1", "5.00"]));
    let export = dir.path().join("events.jsonl");
    ok(logbook(
        &source,
        &["export", "--output", export.to_str().unwrap()],
    ));
    let text = std::fs::read_to_string(&export).unwrap();
    // Given an export whose deposit no reader can decode, and an event of a
    // stream no registered aggregate claims.
    let foreign = r#"{"id":"0190f5a0-0000-7000-8000-000000000001","stream":"Cart-c9","version":1,"position":3,"event_type":"ItemAdded","schema_version":1,"payload":{"sku":"x"},"metadata":{},"recorded_at":"2026-12-01T00:00:00Z"}"#;
    let damaged = dir.path().join("damaged.jsonl");
    std::fs::write(
        &damaged,
        format!(
            "{}\n{foreign}\n",
            text.replace(r#""amount":"5.00""#, r#""amount":"abc""#)
        ),
    )
    .unwrap();
    for target in [
        file_url(dir.path()),
        format!("sqlite:{}", dir.path().join("t.db").display()),
    ] {
        // When it is imported, then it is refused naming line, type and field,
        // and nothing is written.
        refused(
            logbook(&target, &["import", damaged.to_str().unwrap()]),
            "line 2: MoneyDeposited in BankAccount-a1 does not decode (field `amount`)",
        );
        assert_eq!(ok(logbook(&target, &["log"])), "", "{target}");
        // And a sound export imports, keeping the foreign event and saying so.
        let sound = dir.path().join("sound.jsonl");
        std::fs::write(&sound, format!("{text}{foreign}\n")).unwrap();
        let out = logbook(&target, &["import", sound.to_str().unwrap()]);
        assert!(stderr(&out).contains("1 events of streams no registered aggregate claims"));
        assert!(ok(out).contains("imported 3 events"));
    }
}

#[test]
fn every_command_that_prints_speaks_json_in_one_vocabulary() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_url(dir.path());
    let json = |args: &[&str]| -> serde_json::Value {
        let mut with_flag = args.to_vec();
        with_flag.push("--json");
        let out = ok(logbook(&store, &with_flag));
        let line = out.trim();
        assert_eq!(line.lines().count(), 1, "{args:?}: one line of JSON: {out}");
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
    };
    // State-changing commands print the state `show --json` prints.
    let opened = json(&[
        "account",
        "open",
        "a1",
        "--owner",
        "o",
        "--initial",
        "10.00",
    ]);
    assert_eq!(
        (opened["account"].as_str(), opened["version"].as_u64()),
        (Some("a1"), Some(1))
    );
    assert_eq!(json(&["account", "deposit", "a1", "5"])["balance"], "15.00");
    assert_eq!(
        json(&["account", "show", "a1"]),
        json(&["account", "show", "a1"])
    );
    let ship = json(&["ship", "register", "Pacific Explorer"]);
    let id = ship["ship"].as_str().unwrap().to_owned();
    json(&["ship", "dock", &id, "Singapore"]);
    let departed = json(&["ship", "depart", &id]);
    // One vocabulary: the ship's status reads as the state's own.
    let exec = json(&["exec", "CargoShip", &id, "dock", r#"{"port": "Hong Kong"}"#]);
    assert_eq!(departed["status"], "at_sea");
    assert_eq!(exec["state"]["status"]["status"], "docked");
    assert_eq!(json(&["ship", "show", &id])["status"], "docked");
    // Read models, the store check and transfers too.
    let list = json(&["projection", "list"]);
    assert!(list.as_array().is_some_and(|l| l.len() == 4), "{list}");
    assert_eq!(
        json(&["projection", "status", "account-summary"])["name"],
        "account-summary"
    );
    assert_eq!(
        json(&["projection", "verify", "account-balances"])["matches"],
        true
    );
    assert_eq!(
        json(&["projection", "rebuild", "ships-by-port"])["name"],
        "ships-by-port"
    );
    assert!(json(&["projection", "parked", "ships-by-port"]).is_array());
    assert_eq!(json(&["verify"])["verified"], true);
    let export = dir.path().join("e.jsonl");
    assert_eq!(
        json(&["export", "--output", export.to_str().unwrap()])["exported"],
        6
    );
    let other = file_url(dir.path());
    let out = ok(logbook(
        &other,
        &["import", export.to_str().unwrap(), "--json"],
    ));
    let imported: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(imported["imported"], 6);
    assert_eq!(json(&["user", "create", "u"])["username"], "u");
}

#[test]
fn progress_is_shown_off_a_terminal_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_url(dir.path());
    ok(logbook(&store, &["account", "open", "a1", "--owner", "o"]));
    let export = dir.path().join("e.jsonl");
    let path = export.to_str().unwrap();
    // Piped, not asked: only the summary.
    let quiet = logbook(&store, &["export", "--output", path]);
    assert_eq!(stderr(&quiet).trim(), "exported 1 events");
    // Asked: plain lines with the count and a whole rate.
    let asked = logbook(&store, &["--progress", "export", "--output", path]);
    let err = stderr(&asked);
    assert!(err.contains("export: 1 of 1 events, "), "{err}");
    assert!(
        err.lines().all(|l| !l.contains('.') || !l.contains("/s")),
        "whole rates: {err}"
    );
    let verify = logbook(&store, &["verify", "--progress"]);
    assert!(
        stderr(&verify).contains("verify: 1 of 1 events"),
        "{}",
        stderr(&verify)
    );
}
