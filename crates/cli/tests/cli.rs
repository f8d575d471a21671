//! The `logbook` binary as a user runs it: real processes, real stores.

use std::process::Command;

mod support;

use support::*;

#[test]
fn the_demo_prints_the_seed_figures_on_every_store() {
    let dir = tempfile::tempdir().unwrap();
    let stores = durable_stores(dir.path());
    for store in std::iter::once("memory:".to_owned()).chain(stores) {
        // Given a fresh store, when the demo runs on it
        let out = ok(logbook(&store, &["demo"]));
        // Then it prints the seed's figures, the same on every store
        assert_demo_figures(&store, &out);
    }
}

fn assert_demo_figures(store: &str, out: &str) {
    for expected in [
        "Balance: 310.00 at version 4",
        "Change of -1000.00 rejected: insufficient balance",
        "Current port: Hong Kong",
        "Cargo: {electronics: 300}",
        "6. CargoUnloaded",
        "Current balance: 1400.00",
        "Final balance: 1480.00",
        "Version: 12",
        "Snapshot created at version 12",
        "Balance at version 3: 1300.00",
        "Total deposits: 10",
        "Amount deposited: 680.00",
        "Amount withdrawn: 200.00",
        "Transaction count: 11",
    ] {
        assert!(
            out.contains(expected),
            "{store}: demo output lacks {expected:?}:\n{out}"
        );
    }
}

#[test]
fn an_account_is_opened_used_inspected_and_closed_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    for store in durable_stores(dir.path()) {
        let store = store.as_str();
        ok(logbook(
            store,
            &[
                "account",
                "open",
                "acc_001",
                "--owner",
                "alice",
                "--initial",
                "1000.00",
                "--currency",
                "eur",
            ],
        ));
        ok(logbook(
            store,
            &[
                "account",
                "deposit",
                "acc_001",
                "500",
                "--description",
                "Salary",
            ],
        ));
        ok(logbook(
            store,
            &["account", "withdraw", "acc_001", "200.00"],
        ));
        let shown = ok(logbook(store, &["account", "show", "acc_001"]));
        for line in [
            "owner:    alice",
            "balance:  1300.00",
            "currency: EUR",
            "active:   true",
            "version:  3",
        ] {
            assert!(shown.contains(line), "show lacks {line:?}:\n{shown}");
        }
        let json: serde_json::Value = serde_json::from_str(&ok(logbook(
            store,
            &["account", "show", "acc_001", "--json"],
        )))
        .unwrap();
        assert_eq!(json["balance"], "1300.00");
        assert_eq!(json["version"], 3);
        let past: serde_json::Value = serde_json::from_str(&ok(logbook(
            store,
            &["account", "show", "acc_001", "--at-version", "2", "--json"],
        )))
        .unwrap();
        assert_eq!(past["balance"], "1500.00");

        let history = ok(logbook(store, &["events", "BankAccount-acc_001"]));
        assert!(
            history.contains("AccountOpened") && history.contains("MoneyWithdrawn"),
            "{history}"
        );
        let events: serde_json::Value = serde_json::from_str(&ok(logbook(
            store,
            &["events", "BankAccount-acc_001", "--json"],
        )))
        .unwrap();
        assert_eq!(events.as_array().unwrap().len(), 3);
        assert_eq!(events[1]["payload"]["description"], "Salary");

        refused(
            logbook(store, &["account", "close", "acc_001"]),
            "balance must be zero",
        );
        ok(logbook(store, &["account", "withdraw", "acc_001", "1300"]));
        ok(logbook(store, &["account", "close", "acc_001"]));
        refused(
            logbook(store, &["account", "deposit", "acc_001", "1"]),
            "not active",
        );
    }
}

#[test]
fn a_refused_command_exits_non_zero_with_one_line_and_appends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for store in durable_stores(dir.path()) {
        let store = store.as_str();
        ok(logbook(
            store,
            &[
                "account",
                "open",
                "acc_001",
                "--owner",
                "bob",
                "--initial",
                "10",
            ],
        ));
        let err = refused(
            logbook(store, &["account", "withdraw", "acc_001", "10.01"]),
            "insufficient funds",
        );
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        refused(
            logbook(store, &["account", "open", "acc_001", "--owner", "bob"]),
            "already exists",
        );
        refused(
            logbook(store, &["account", "deposit", "acc_001", "0"]),
            "amount must be positive",
        );
        refused(
            logbook(store, &["account", "deposit", "nobody", "5"]),
            "account nobody: account does not exist; open it first",
        );
        refused(
            logbook(store, &["account", "show", "nobody"]),
            "does not exist",
        );
        refused(
            logbook(store, &["events", "BankAccount-nobody"]),
            "has no events",
        );
        let json: serde_json::Value = serde_json::from_str(&ok(logbook(
            store,
            &["account", "show", "acc_001", "--json"],
        )))
        .unwrap();
        assert_eq!(json["version"], 1, "nothing was appended by the refusals");
    }
}

#[test]
fn bad_input_is_a_clear_error_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    for store in durable_stores(dir.path()) {
        let store = store.as_str();
        refused(
            logbook(store, &["account", "deposit", "acc_001", "12.345"]),
            "invalid amount",
        );
        refused(
            logbook(store, &["account", "deposit", "acc_001", "ten"]),
            "invalid amount",
        );
        refused(
            logbook(
                store,
                &[
                    "account",
                    "open",
                    "acc_001",
                    "--owner",
                    "x",
                    "--currency",
                    "dollars",
                ],
            ),
            "invalid currency",
        );
        refused(
            logbook(store, &["account", "show", "acc_001", "--at-version", "-1"]),
            "'-1'",
        );
        refused(
            logbook("mysql://nowhere", &["account", "show", "a"]),
            "unknown store scheme",
        );
        refused(
            logbook("postgres://nowhere.invalid/db", &["account", "show", "a"]),
            "cannot open store postgres://nowhere.invalid/db",
        );
        refused(
            logbook(
                "postgres://localhost/db?schema=No-Such",
                &["account", "show", "a"],
            ),
            "is not usable",
        );
        refused(
            logbook("sqlite:", &["account", "show", "a"]),
            "names no path",
        );
        refused(
            logbook(store, &["events", ""]),
            "stream id must not be empty",
        );
        refused(
            logbook(store, &["account", "show", &"x".repeat(300)]),
            "at most 256",
        );
    }
}

/// Two processes (on PostgreSQL: two pools, two writers, as two hosts would
/// have) deposit into one account at once; nothing is lost.
#[test]
fn two_processes_depositing_into_one_account_both_succeed() {
    let dir = tempfile::tempdir().unwrap();
    for store in durable_stores(dir.path()) {
        let store = store.as_str();
        ok(logbook(
            store,
            &["account", "open", "acc_001", "--owner", "carol"],
        ));
        let spawn = || {
            let store = store.to_owned();
            std::thread::spawn(move || {
                for _ in 0..15 {
                    ok(logbook(&store, &["account", "deposit", "acc_001", "1.00"]));
                }
            })
        };
        let (a, b) = (spawn(), spawn());
        a.join().unwrap();
        b.join().unwrap();
        let json: serde_json::Value = serde_json::from_str(&ok(logbook(
            store,
            &["account", "show", "acc_001", "--json"],
        )))
        .unwrap();
        assert_eq!(json["balance"], "30.00", "{store}");
        assert_eq!(json["version"], 31, "{store}");
        // And the global log holds exactly the 31 events, at positions 1-31
        let log = ok(logbook(store, &["log", "--json"]));
        let positions: Vec<u64> = log
            .lines()
            .map(|line| {
                let event: serde_json::Value = serde_json::from_str(line).unwrap();
                event["position"].as_u64().unwrap()
            })
            .collect();
        assert_eq!(positions, (1..=31).collect::<Vec<u64>>(), "{store}");
    }
}

#[test]
fn ships_and_users_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    for store in durable_stores(dir.path()) {
        let store = store.as_str();
        let ship = ok(logbook(store, &["ship", "register", "Pacific Explorer"]))
            .trim()
            .to_owned();
        assert!(
            uuid::Uuid::parse_str(&ship).is_ok(),
            "register prints the id alone: {ship:?}"
        );
        ok(logbook(store, &["ship", "dock", &ship, "Singapore"]));
        ok(logbook(
            store,
            &["ship", "load", &ship, "electronics", "500"],
        ));
        refused(
            logbook(store, &["ship", "dock", &ship, "Hong Kong"]),
            "already docked at Singapore",
        );
        ok(logbook(store, &["ship", "depart", &ship]));
        refused(
            logbook(store, &["ship", "unload", &ship, "electronics", "1"]),
            "not docked",
        );
        ok(logbook(store, &["ship", "dock", &ship, "Hong Kong"]));
        refused(
            logbook(store, &["ship", "unload", &ship, "electronics", "501"]),
            "not enough electronics",
        );
        ok(logbook(
            store,
            &["ship", "unload", &ship, "electronics", "200"],
        ));
        let json: serde_json::Value =
            serde_json::from_str(&ok(logbook(store, &["ship", "show", &ship, "--json"]))).unwrap();
        assert_eq!(
            (json["status"].as_str(), json["port"].as_str()),
            (Some("docked"), Some("Hong Kong"))
        );
        assert_eq!(json["cargo"]["electronics"], 300);
        assert_eq!(json["version"], 6);

        let user = ok(logbook(
            store,
            &["user", "create", "test_user", "--balance", "100"],
        ))
        .trim()
        .to_owned();
        for delta in ["10", "250.00", "-50.00"] {
            ok(logbook(store, &["user", "change-balance", &user, delta]));
        }
        refused(
            logbook(store, &["user", "change-balance", &user, "-1000"]),
            "insufficient balance",
        );
        let json: serde_json::Value =
            serde_json::from_str(&ok(logbook(store, &["user", "show", &user, "--json"]))).unwrap();
        assert_eq!(
            (json["balance"].as_str(), json["version"].as_u64()),
            (Some("310.00"), Some(4))
        );
        let replay: serde_json::Value =
            serde_json::from_str(&ok(logbook(store, &["user", "replay", &user, "--json"])))
                .unwrap();
        let types: Vec<&str> = replay
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event_type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            [
                "UserCreated",
                "UserBalanceChanged",
                "UserBalanceChanged",
                "UserBalanceChanged"
            ]
        );
        let long_ago = ok(logbook(
            store,
            &["user", "replay", &user, "--until", "2000-01-01T00:00:00Z"],
        ));
        assert!(
            long_ago.trim().is_empty(),
            "nothing had happened in 2000: {long_ago}"
        );
        refused(
            logbook(store, &["user", "replay", &user, "--until", "yesterday"]),
            "--until",
        );
    }
}

#[test]
fn the_global_log_projections_and_time_travel_by_time() {
    let dir = tempfile::tempdir().unwrap();
    for store in durable_stores(dir.path()) {
        let store = store.as_str();
        ok(logbook(
            store,
            &["account", "open", "a1", "--owner", "x", "--initial", "100"],
        ));
        let ship = ok(logbook(store, &["ship", "register", "Explorer"]))
            .trim()
            .to_owned();
        ok(logbook(store, &["ship", "dock", &ship, "Rotterdam"]));
        let middle = chrono::Utc::now().to_rfc3339();
        std::thread::sleep(std::time::Duration::from_millis(20));
        ok(logbook(store, &["account", "deposit", "a1", "50"]));

        let log = ok(logbook(store, &["log"]));
        assert_eq!(log.lines().count(), 4, "{log}");
        let deposits = ok(logbook(
            store,
            &["log", "--type", "MoneyDeposited", "--json"],
        ));
        let event: serde_json::Value = serde_json::from_str(deposits.trim()).unwrap();
        assert_eq!(event["position"], 4);
        let ships = ok(logbook(
            store,
            &[
                "log",
                "--category",
                "CargoShip",
                "--from",
                "2",
                "--limit",
                "1",
            ],
        ));
        assert!(
            ships.contains("ShipRegistered") && ships.lines().count() == 1,
            "{ships}"
        );

        let then: serde_json::Value = serde_json::from_str(&ok(logbook(
            store,
            &["account", "show", "a1", "--at", &middle, "--json"],
        )))
        .unwrap();
        assert_eq!(then["balance"], "100.00");
        refused(
            logbook(
                store,
                &["account", "show", "a1", "--at", "2000-01-01T00:00:00Z"],
            ),
            "did not exist yet",
        );

        let summary: serde_json::Value = serde_json::from_str(&ok(logbook(
            store,
            &["projection", "show", "account-summary"],
        )))
        .unwrap();
        assert_eq!(summary["accounts"]["a1"]["total_deposits"], "50.00");
        let by_port: serde_json::Value = serde_json::from_str(&ok(logbook(
            store,
            &["projection", "show", "ships-by-port"],
        )))
        .unwrap();
        assert_eq!(by_port["ships"][&ship]["port"], "Rotterdam");
        let list = ok(logbook(store, &["projection", "list"]));
        assert!(
            list.contains("account-summary") && list.contains("ships-by-port"),
            "{list}"
        );
        ok(logbook(
            store,
            &["projection", "rebuild", "account-summary"],
        ));
        ok(logbook(store, &["projection", "verify", "account-summary"]));
        let status = ok(logbook(store, &["projection", "status", "account-summary"]));
        assert!(status.contains("lag:        0"), "{status}");
        assert!(
            ok(logbook(store, &["projection", "parked", "account-summary"]))
                .contains("no parked events")
        );
        refused(
            logbook(store, &["projection", "show", "nope"]),
            "unknown projection \"nope\"",
        );
    }
}

#[test]
fn follow_prints_events_as_another_process_appends_them() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let store = &sqlite_url(dir.path());
    ok(logbook(store, &["account", "open", "a1", "--owner", "x"]));
    let mut follower = Command::new(env!("CARGO_BIN_EXE_logbook"))
        .args(["--store", store, "follow", "--from", "2"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follower.stdout.take().unwrap()).lines();
    // Let the follower reach the live part (it starts after the opening
    // event either way), then deposit from another process.
    std::thread::sleep(std::time::Duration::from_millis(300));
    ok(logbook(store, &["account", "deposit", "a1", "12.34"]));
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(lines.next());
    });
    let line = receiver.recv_timeout(std::time::Duration::from_secs(20));
    follower.kill().unwrap();
    follower.wait().unwrap();
    let line = line.expect("follow printed the deposit").unwrap().unwrap();
    assert!(
        line.contains("MoneyDeposited") && line.contains("12.34"),
        "{line}"
    );
}

#[test]
fn commands_by_name_with_json_arguments() {
    let dir = tempfile::tempdir().unwrap();
    for store in durable_stores(dir.path()) {
        let store = store.as_str();
        let out = ok(logbook(
            store,
            &[
                "exec",
                "CargoShip",
                "s1",
                "register_ship",
                r#"{"name": "Pacific Explorer"}"#,
            ],
        ));
        let done: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(
            (done["version"].as_u64(), done["events"][0].as_str()),
            (Some(1), Some("ShipRegistered"))
        );
        ok(logbook(
            store,
            &[
                "exec",
                "cargo-ship",
                "s1",
                "dock_ship",
                r#"{"port": "Singapore"}"#,
            ],
        ));
        ok(logbook(
            store,
            &[
                "exec",
                "CargoShip",
                "s1",
                "load_cargo",
                r#"{"item": "electronics", "quantity": 500}"#,
            ],
        ));
        let err = refused(
            logbook(store, &["exec", "CargoShip", "s1", "fly"]),
            "unknown command \"fly\"",
        );
        assert!(
            err.contains("dock") && err.contains("unload_cargo"),
            "lists the valid commands: {err}"
        );
        refused(
            logbook(
                store,
                &[
                    "exec",
                    "CargoShip",
                    "s1",
                    "unload_cargo",
                    r#"{"item": "electronics"}"#,
                ],
            ),
            "field `quantity`: required, but missing",
        );
        refused(
            logbook(
                store,
                &[
                    "exec",
                    "CargoShip",
                    "s1",
                    "unload_cargo",
                    r#"{"item": "electronics", "quantity": "many"}"#,
                ],
            ),
            "field `quantity`: expected u64, found string \"many\"",
        );
        refused(
            logbook(
                store,
                &["exec", "CargoShip", "s1", "unload_cargo", "{not json"],
            ),
            "arguments are not JSON",
        );
        refused(
            logbook(store, &["exec", "Spaceship", "s1", "launch"]),
            "unknown aggregate",
        );
        refused(
            logbook(
                store,
                &[
                    "exec",
                    "CargoShip",
                    "s1",
                    "unload_cargo",
                    r#"{"item": "electronics", "quantity": 501}"#,
                ],
            ),
            "not enough electronics",
        );
        let ship: serde_json::Value =
            serde_json::from_str(&ok(logbook(store, &["ship", "show", "s1", "--json"]))).unwrap();
        assert_eq!(
            (
                ship["cargo"]["electronics"].as_u64(),
                ship["version"].as_u64()
            ),
            (Some(500), Some(3))
        );
    }
}

#[test]
fn export_and_import_move_a_store_keeping_ids_versions_and_payload_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = sqlite_url(dir.path());
    let file = file_url(dir.path());
    ok(logbook(
        &sqlite,
        &["account", "open", "a1", "--owner", "Zoë", "--initial", "10"],
    ));
    ok(logbook(
        &sqlite,
        &[
            "account",
            "deposit",
            "a1",
            "5",
            "--description",
            "“quoted” ünicode",
        ],
    ));
    let ship = ok(logbook(&sqlite, &["ship", "register", "Explorer"]))
        .trim()
        .to_owned();
    // Streams interleaved so that their names sort differently from their
    // positions, and a deleted one: the import must keep the log's order.
    let user = ok(logbook(&sqlite, &["user", "create", "u", "--balance", "1"]))
        .trim()
        .to_owned();
    ok(logbook(&sqlite, &["account", "withdraw", "a1", "1"]));
    ok(logbook(&sqlite, &["user", "delete", &user]));
    ok(logbook(&sqlite, &["ship", "dock", &ship, "Rotterdam"]));
    let exported = dir.path().join("export.jsonl");
    ok(logbook(
        &sqlite,
        &["export", "--output", exported.to_str().unwrap()],
    ));
    // Into a file store and back into a second SQLite database.
    ok(logbook(
        &file,
        &["import", "--input", exported.to_str().unwrap()],
    ));
    let again = ok(logbook(&file, &["import", exported.to_str().unwrap()]));
    assert!(
        again.contains("imported 0 events") && again.contains("7 were already present"),
        "{again}"
    );
    let second = format!("sqlite:{}", dir.path().join("second.db").display());
    let from_file = ok(logbook(&file, &["export"]));
    let mut child = Command::new(env!("CARGO_BIN_EXE_logbook"))
        .args(["--store", &second, "import"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(from_file.as_bytes())
        .unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    let round_trip = ok(logbook(&second, &["export"]));
    let original = std::fs::read_to_string(&exported).unwrap();
    // Every field of every event, positions included; a tombstone is the
    // target's own (its id and time are new).
    let parsed = |text: &str| -> Vec<serde_json::Value> {
        text.lines()
            .map(|l| {
                let mut event = serde_json::from_str::<serde_json::Value>(l).unwrap();
                if event["event_type"] == "$StreamDeleted" {
                    event["id"] = serde_json::Value::Null;
                    event["recorded_at"] = serde_json::Value::Null;
                }
                event
            })
            .collect()
    };
    assert_eq!(
        parsed(&round_trip),
        parsed(&original),
        "every field, positions included, survives sqlite -> file -> sqlite"
    );
    refused(logbook(&second, &["user", "show", &user]), "is deleted");
    assert!(
        round_trip.contains(r#""description":"“quoted” ünicode""#),
        "payload bytes unchanged: {round_trip}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(logbook(&second, &["ship", "show", &ship, "--json"]))).unwrap();
    assert_eq!(json["name"], "Explorer");
}

#[test]
fn a_bad_import_says_where_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = &sqlite_url(dir.path());
    let bad = dir.path().join("bad.jsonl");
    ok(logbook(store, &["account", "open", "a1", "--owner", "x"]));
    let good_line = ok(logbook(store, &["export"]));
    std::fs::write(&bad, format!("{good_line}{{not json}}\n")).unwrap();
    let other = format!("sqlite:{}", dir.path().join("other.db").display());
    refused(
        logbook(&other, &["import", bad.to_str().unwrap()]),
        "line 2",
    );
    refused(
        logbook(&other, &["account", "show", "a1"]),
        "does not exist",
    );
    // A clash with different events already in the target.
    ok(logbook(
        &other,
        &["account", "open", "a1", "--owner", "someone else"],
    ));
    std::fs::write(&bad, &good_line).unwrap();
    refused(
        logbook(&other, &["import", bad.to_str().unwrap()]),
        "already has different events",
    );
    refused(
        logbook(
            &other,
            &["import", dir.path().join("missing.jsonl").to_str().unwrap()],
        ),
        "cannot read",
    );
}

#[test]
fn the_seeds_ship_file_replays_to_the_same_ship_and_exports_back() {
    let dir = tempfile::tempdir().unwrap();
    for store in durable_stores(dir.path()) {
        let store = store.as_str();
        let fixture = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/ship_events.json"
        );
        ok(logbook(
            store,
            &["import", "--format", "seed-json", fixture],
        ));
        let ship: serde_json::Value = serde_json::from_str(&ok(logbook(
            store,
            &[
                "ship",
                "show",
                "4ea11601-df83-486a-adb5-e2c58809dfd8",
                "--json",
            ],
        )))
        .unwrap();
        assert_eq!(ship["name"], "Pacific Explorer", "{store}");
        assert_eq!(
            (ship["status"].as_str(), ship["port"].as_str()),
            (Some("docked"), Some("Hong Kong")),
            "{store}"
        );
        assert_eq!(ship["cargo"]["electronics"], 300, "{store}");
        let history = ok(logbook(
            store,
            &["events", "CargoShip-4ea11601-df83-486a-adb5-e2c58809dfd8"],
        ));
        assert!(
            history.contains("2025-05-07T16:19:38.512175Z"),
            "seed timestamps kept: {history}"
        );
        let exported: serde_json::Value =
            serde_json::from_str(&ok(logbook(store, &["export", "--format", "seed-json"])))
                .unwrap();
        let original: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
        assert_eq!(
            exported, original,
            "{store}: the export is the seed's file again"
        );
    }
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"[{"event_id": "0d6f1a52-3c1e-4f0a-9b7e-6a1f2c3d4e01", "timestamp": "2025-05-07T16:19:38", "event_type": "ShipSank", "entity_id": "x", "data": {}}]"#).unwrap();
    let other = format!("sqlite:{}", dir.path().join("other.db").display());
    refused(
        logbook(
            &other,
            &["import", "--format", "seed-json", bad.to_str().unwrap()],
        ),
        "entry 1",
    );
}

#[test]
fn deleting_an_aggregate_keeps_its_events_and_refuses_further_use() {
    let dir = tempfile::tempdir().unwrap();
    for store in durable_stores(dir.path()) {
        let store = store.as_str();
        ok(logbook(
            store,
            &["account", "open", "a1", "--owner", "x", "--initial", "5"],
        ));
        let user = ok(logbook(store, &["user", "create", "u", "--balance", "1"]))
            .trim()
            .to_owned();
        let ship = ok(logbook(store, &["ship", "register", "S"]))
            .trim()
            .to_owned();
        ok(logbook(store, &["account", "delete", "a1"]));
        ok(logbook(store, &["user", "delete", &user]));
        ok(logbook(store, &["ship", "delete", &ship]));
        refused(
            logbook(store, &["account", "deposit", "a1", "1"]),
            "is deleted",
        );
        refused(logbook(store, &["account", "show", "a1"]), "is deleted");
        refused(logbook(store, &["account", "delete", "a1"]), "is deleted");
        refused(logbook(store, &["user", "show", &user]), "is deleted");
        refused(
            logbook(store, &["account", "delete", "never"]),
            "does not exist",
        );
        let seed = logbook(store, &["export", "--format", "seed-json"]);
        assert!(
            stderr(&seed).contains("1 deleted ships left out"),
            "{}",
            stderr(&seed)
        );
        assert_eq!(stdout(&seed).trim(), "[]");
        let log = ok(logbook(store, &["log"]));
        assert_eq!(log.matches("$StreamDeleted").count(), 3, "{log}");
        assert!(
            log.contains("AccountOpened"),
            "the events stay for audit: {log}"
        );
        let summary: serde_json::Value = serde_json::from_str(&ok(logbook(
            store,
            &["projection", "show", "account-summary"],
        )))
        .unwrap();
        assert!(
            summary["accounts"].get("a1").is_none(),
            "projections see the deletion: {summary}"
        );
    }
}

#[test]
fn verify_reports_a_healthy_store_and_names_the_offset_of_damage() {
    let dir = tempfile::tempdir().unwrap();
    let store = &file_url(dir.path());
    ok(logbook(
        store,
        &["account", "open", "a1", "--owner", "x", "--initial", "10"],
    ));
    ok(logbook(store, &["account", "deposit", "a1", "5"]));
    ok(logbook(store, &["account", "deposit", "a1", "6"]));
    let report = ok(logbook(store, &["verify"]));
    assert!(
        report.contains("3 events in 1 streams, 1 segments"),
        "{report}"
    );
    assert!(report.contains("verified"), "{report}");
    let sqlite = sqlite_url(dir.path());
    ok(logbook(&sqlite, &["account", "open", "a1", "--owner", "x"]));
    assert!(ok(logbook(&sqlite, &["verify"])).contains("events:          1"));
    // Damage a byte in the middle of the first record's payload.
    let segment = std::fs::read_dir(dir.path().join("log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "seg"))
        .unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    let at = bytes
        .windows(4)
        .position(|w| w == b"user")
        .unwrap_or(bytes.len() / 3);
    bytes[at] ^= 0x55;
    std::fs::write(&segment, &bytes).unwrap();
    let err = refused(logbook(store, &["verify"]), "corrupt");
    assert!(err.contains("offset"), "names where: {err}");
    refused(logbook(store, &["account", "show", "a1"]), "offset");
    refused(
        logbook(
            &format!("file:{}", dir.path().join("nothing").display()),
            &["verify"],
        ),
        "no file store",
    );
}

#[test]
fn commands_run_on_the_memory_store_within_one_process() {
    // Each invocation is its own process, so a memory store starts empty:
    // what holds is that every command runs there and refuses sensibly.
    let ship = ok(logbook(
        "memory:",
        &["ship", "register", "Pacific Explorer"],
    ));
    assert!(uuid::Uuid::parse_str(ship.trim()).is_ok(), "{ship}");
    assert!(
        uuid::Uuid::parse_str(
            ok(logbook(
                "memory:",
                &["user", "create", "u", "--balance", "1"]
            ))
            .trim()
        )
        .is_ok()
    );
    ok(logbook(
        "memory:",
        &["account", "open", "a1", "--owner", "x"],
    ));
    ok(logbook(
        "memory:",
        &["exec", "CargoShip", "s1", "register", r#"{"name": "X"}"#],
    ));
    refused(
        logbook("memory:", &["ship", "dock", "s1", "Singapore"]),
        "not registered",
    );
    refused(
        logbook("memory:", &["user", "delete", "u1"]),
        "does not exist",
    );
    assert!(ok(logbook("memory:", &["log"])).is_empty());
    assert!(ok(logbook("memory:", &["verify"])).contains("events:          0"));
    ok(logbook("memory:", &["projection", "list"]));
}
