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
