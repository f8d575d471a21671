//! Fixed amounts of work for an instruction counter, untimed: cold loads
//! of one account of 10,000 events (the `load_10k_events` stream of
//! `command_cost`), or rounds of the many-small-aggregates commands (1,000
//! fresh accounts, each opened and given nine deposits, one `execute` per
//! command). Run it under callgrind with two counts and subtract, so the
//! setup cancels out and what is left is whole rounds, on every thread:
//!
//! ```text
//! valgrind --tool=callgrind <instruction_counts binary> memory 2
//! valgrind --tool=callgrind <instruction_counts binary> memory 7
//! # (Ir(7) - Ir(2)) / 5 rounds / 10,000 = instructions per event (or command)
//! ```
//!
//! The work is `memory` or `sqlite` (cold loads from that store; SQLite in
//! a file in a temporary directory), `memory-log` or `sqlite-log` (the same
//! 10,000 events read as the global log, in pages of 1,000, as a
//! projection's catch-up reads), or `commands` (on the memory store).
//! Without arguments (as `cargo bench` runs it) it does one memory load.

use logbook::{Repository, RepositoryOptions, StoreUrl};
use logbook_domain::bank_account::BankAccount;

mod support;
use support::account_with_history;

fn main() {
    // `cargo bench` passes `--bench`; only the other arguments count.
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with("--"));
    let backend = args.next().unwrap_or_else(|| "memory".to_owned());
    let loads: usize = args
        .next()
        .map_or(1, |n| n.parse().expect("a count of loads"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    if backend == "commands" {
        many_small_aggregates(&rt, loads);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (store, log) = match backend.strip_suffix("-log") {
        Some(store) => (store, true),
        None => (backend.as_str(), false),
    };
    let url = match store {
        "memory" => StoreUrl::Memory,
        "sqlite" => StoreUrl::Sqlite(dir.path().join("load.db")),
        other => panic!("unknown work {other}: memory, sqlite (-log) or commands"),
    };
    let stores = url.open().unwrap();
    account_with_history(&rt, &stores, "acc", 10_000);
    if log {
        for _ in 0..loads {
            let all = logbook_ports::EventFilter::all();
            let mut pages = logbook_ports::GlobalPages::new(&*stores.events, 1, &all, 1_000);
            let mut read = 0;
            while let Some(page) = rt.block_on(pages.next_page()).unwrap() {
                read += page.len();
            }
            assert_eq!(read, 10_000);
        }
        return;
    }
    let reader = Repository::<BankAccount>::without_snapshots(
        stores.events.clone(),
        RepositoryOptions {
            snapshot_every: None,
            cache_capacity: 0,
            ..RepositoryOptions::default()
        },
    );
    for _ in 0..loads {
        let loaded = rt.block_on(reader.load("acc")).unwrap();
        assert_eq!(loaded.version, 10_000);
    }
}

/// `rounds` times, 1,000 fresh accounts opened and given nine deposits, one
/// command at a time (10,000 commands a round), on one memory store.
fn many_small_aggregates(rt: &tokio::runtime::Runtime, rounds: usize) {
    let stores = logbook_adapters_memory::stores();
    let accounts = Repository::<BankAccount>::new(&stores);
    let open = support::open();
    let deposit = support::deposit();
    rt.block_on(async {
        for round in 0..rounds {
            for account in 0..1_000 {
                let id = format!("acc-{round}-{account}");
                accounts.execute(&id, &open).await.unwrap();
                for _ in 0..9 {
                    accounts.execute(&id, &deposit).await.unwrap();
                }
            }
        }
    });
}
