//! `logbook stream retention` and `logbook scavenge` as an operator runs
//! them: real processes on every durable store.

mod support;

use support::*;

fn versions_of(store: &str, stream: &str) -> Vec<u64> {
    let json: serde_json::Value =
        serde_json::from_str(&ok(logbook(store, &["events", stream, "--json"]))).unwrap();
    json.as_array()
        .unwrap()
        .iter()
        .map(|e| e["version"].as_u64().unwrap())
        .collect()
}

#[test]
fn an_operator_limits_a_stream_reads_only_what_is_kept_and_scavenges_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    for store in durable_stores(dir.path()) {
        let store = store.as_str();
        // Given an account stream of 5 events.
        ok(logbook(
            store,
            &[
                "account",
                "open",
                "acc_001",
                "--owner",
                "ann",
                "--initial",
                "10",
            ],
        ));
        for _ in 0..4 {
            ok(logbook(store, &["account", "deposit", "acc_001", "1"]));
        }
        let stream = "BankAccount-acc_001";
        // With no limit given, the policy is shown: none yet.
        let shown = ok(logbook(store, &["stream", "retention", stream]));
        assert!(shown.contains("no limit"), "{shown}");
        // Bad input is one line and changes nothing.
        for (bad, says) in [
            (vec!["--max-count", "0"], "max count must be at least 1"),
            (vec!["--max-age", "30 days"], "is not a duration"),
            (vec!["--truncate-before", "x"], "is not a whole number"),
        ] {
            let mut args = vec!["stream", "retention", stream];
            args.extend(bad);
            let err = refused(logbook(store, &args), says);
            assert_eq!(err.trim().lines().count(), 1, "{err}");
        }
        assert!(ok(logbook(store, &["stream", "retention", stream])).contains("no limit"));
        // When the operator keeps the latest 2 versions.
        let set = ok(logbook(
            store,
            &[
                "stream",
                "retention",
                stream,
                "--max-count",
                "2",
                "--max-age",
                "30d",
            ],
        ));
        assert!(set.contains("max age 30d, max count 2"), "{set}");
        // Then reads see versions 4 and 5 only, before and after a scavenge.
        assert_eq!(versions_of(store, stream), [4, 5]);
        let scavenged = ok(logbook(store, &["scavenge"]));
        assert!(
            scavenged.contains("scavenged 3 events") && scavenged.contains("from 1 stream"),
            "{scavenged}"
        );
        assert_eq!(versions_of(store, stream), [4, 5]);
        let again: serde_json::Value =
            serde_json::from_str(&ok(logbook(store, &["scavenge", "--json"]))).unwrap();
        assert_eq!(again["events"], 0);
        // And the store still verifies, holes and all.
        let verified = ok(logbook(store, &["verify"]));
        assert!(verified.contains("verified"), "{verified}");
        // And clearing keeps what was hidden hidden, as JSON shows.
        let cleared: serde_json::Value = serde_json::from_str(&ok(logbook(
            store,
            &["stream", "retention", stream, "--clear", "--json"],
        )))
        .unwrap();
        assert_eq!(cleared["max_count"], serde_json::Value::Null);
        assert_eq!(cleared["hidden_below_version"], 4);
        assert_eq!(versions_of(store, stream), [4, 5]);
    }
}
