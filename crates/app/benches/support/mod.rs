//! Set-up the repository benchmarks share.

use logbook::{Repository, RepositoryOptions};
use logbook_domain::bank_account::{BankAccount, BankAccountCommand};
use logbook_domain::{Currency, Metadata, Money};
use logbook_ports::Stores;
use tokio::runtime::Runtime;

/// A deposit of 1.00.
pub fn deposit() -> BankAccountCommand {
    BankAccountCommand::Deposit {
        amount: Money::from_cents(100),
        description: "bench".into(),
    }
}

/// Opening an empty USD account for "bench".
pub fn open() -> BankAccountCommand {
    BankAccountCommand::Open {
        owner: "bench".into(),
        initial_balance: Money::ZERO,
        currency: Currency::default(),
    }
}

/// An account with `events` events, written in batches.
pub fn account_with_history(rt: &Runtime, stores: &Stores, id: &str, events: u64) {
    let accounts = Repository::<BankAccount>::with_options(
        stores,
        RepositoryOptions {
            snapshot_every: None,
            ..RepositoryOptions::default()
        },
    );
    rt.block_on(async {
        accounts.execute(id, &open()).await.unwrap();
        let batch: Vec<_> = (0..999).map(|_| deposit()).collect();
        let mut written = 1;
        while written < events {
            let n = (events - written).min(999) as usize;
            accounts
                .execute_all(id, &batch[..n], &Metadata::default())
                .await
                .unwrap();
            written += n as u64;
        }
    });
}
