//! A fixed amount of loading work for an instruction counter: one account
//! of 10,000 events (the `load_10k_events` stream of `command_cost`), then
//! the given number of cold loads of it (no snapshot, no cache), untimed.
//! Run it under callgrind with two counts and subtract, so the setup
//! cancels out and what is left is whole loads, on every thread:
//!
//! ```text
//! valgrind --tool=callgrind <load_instructions binary> memory 2
//! valgrind --tool=callgrind <load_instructions binary> memory 7
//! # (Ir(7) - Ir(2)) / 5 loads / 10,000 events = instructions per event
//! ```
//!
//! The backend is `memory` or `sqlite` (a file in a temporary directory).
//! Without arguments (as `cargo bench` runs it) it does one memory load.

use logbook::{Repository, RepositoryOptions, StoreUrl};
use logbook_domain::bank_account::{BankAccount, BankAccountCommand};
use logbook_domain::{Currency, Metadata, Money};

fn main() {
    // `cargo bench` passes `--bench`; only the other arguments count.
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with("--"));
    let backend = args.next().unwrap_or_else(|| "memory".to_owned());
    let loads: usize = args
        .next()
        .map_or(1, |n| n.parse().expect("a count of loads"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = match backend.as_str() {
        "memory" => StoreUrl::Memory,
        "sqlite" => StoreUrl::Sqlite(dir.path().join("load.db")),
        other => panic!("unknown backend {other}: memory or sqlite"),
    };
    let stores = url.open().unwrap();
    let writer = Repository::<BankAccount>::with_options(
        &stores,
        RepositoryOptions {
            snapshot_every: None,
            ..RepositoryOptions::default()
        },
    );
    rt.block_on(async {
        let open = BankAccountCommand::Open {
            owner: "bench".into(),
            initial_balance: Money::ZERO,
            currency: Currency::default(),
        };
        writer.execute("acc", &open).await.unwrap();
        let deposit = BankAccountCommand::Deposit {
            amount: Money::from_cents(100),
            description: "bench".into(),
        };
        let batch: Vec<_> = (0..999).map(|_| deposit.clone()).collect();
        let mut written = 1;
        while written < 10_000 {
            let n = (10_000 - written).min(999);
            writer
                .execute_all("acc", &batch[..n], &Metadata::default())
                .await
                .unwrap();
            written += n;
        }
    });
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
