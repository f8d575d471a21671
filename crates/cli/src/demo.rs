//! `logbook demo`: the three seed scenarios end to end, on whatever store was
//! chosen. Every run uses fresh ids (printed), so running it again against
//! the same database adds a second set of streams beside the first.

use std::num::NonZeroU64;

use anyhow::{Context, bail};
use logbook::projection::{AccountSummaries, Projector, ShipsByPort};
use logbook::store_url::StoreUrl;
use logbook::{Repository, RepositoryError, RepositoryOptions};
use logbook_domain::bank_account::{BankAccount, BankAccountCommand as Account};
use logbook_domain::cargo_ship::{CargoShip, CargoShipCommand as Ship};
use logbook_domain::user_wallet::{UserWallet, UserWalletCommand as Wallet};
use logbook_domain::{Aggregate, Metadata, Money, RecordedEvent};
use logbook_ports::{EventFilter, GlobalPages, Stores};
use uuid::Uuid;

use super::output;

fn money(text: &str) -> Money {
    text.parse().expect("demo amounts are well-formed")
}

pub async fn run(stores: &Stores, url: &StoreUrl) -> anyhow::Result<()> {
    say!("logbook demo on {url}");
    wallet(stores).await.context("user wallet scenario")?;
    ship(stores).await.context("cargo ship scenario")?;
    bank_account(stores)
        .await
        .context("bank account scenario")?;
    Ok(())
}

async fn wallet(stores: &Stores) -> anyhow::Result<()> {
    say!("\n=== User wallet ===");
    let wallets = Repository::<UserWallet>::new(stores);
    let id = Uuid::now_v7().to_string();
    let created = wallets
        .execute(
            &id,
            &Wallet::Create {
                username: "test_user".into(),
                balance: money("100.00"),
            },
        )
        .await?;
    say!(
        "Created user {id} (test_user) with balance {}",
        created.state.balance
    );
    for delta in ["10.00", "250.00", "-50.00"] {
        let done = wallets
            .execute(
                &id,
                &Wallet::ChangeBalance {
                    balance_change: money(delta),
                },
            )
            .await?;
        say!(
            "Changed balance by {:>7} -> {:>7} (version {})",
            signed(money(delta)),
            done.state.balance,
            done.version
        );
    }
    match wallets
        .execute(
            &id,
            &Wallet::ChangeBalance {
                balance_change: money("-1000.00"),
            },
        )
        .await
    {
        Err(RepositoryError::Rejected(error)) => say!("Change of -1000.00 rejected: {error}"),
        Ok(_) => bail!("an overdraft was accepted"),
        Err(error) => return Err(error.into()),
    }
    let now = wallets.load(&id).await?;
    say!(
        "Balance: {} at version {} (the rejected change appended nothing)",
        now.state.balance,
        now.version
    );
    say!("Replay until now:");
    for event in wallets.history(&id).await? {
        say!("  {}", output::event_line(&event));
    }
    Ok(())
}

fn signed(amount: Money) -> String {
    if amount.is_negative() {
        amount.to_string()
    } else {
        format!("+{amount}")
    }
}

async fn ship(stores: &Stores) -> anyhow::Result<()> {
    say!("\n=== Cargo ship ===");
    let ships = Repository::<CargoShip>::new(stores);
    let id = Uuid::new_v4().to_string();
    ships
        .execute(
            &id,
            &Ship::Register {
                name: "Pacific Explorer".into(),
            },
        )
        .await?;
    say!("Registered ship with ID: {id}");
    let voyage = [
        (
            Ship::Dock {
                port: "Singapore".into(),
            },
            "Ship docked at Singapore",
        ),
        (
            Ship::LoadCargo {
                item: "electronics".into(),
                quantity: 500,
            },
            "Loaded 500 electronics",
        ),
        (Ship::Depart, "Ship departed from Singapore"),
        (
            Ship::Dock {
                port: "Hong Kong".into(),
            },
            "Ship docked at Hong Kong",
        ),
        (
            Ship::UnloadCargo {
                item: "electronics".into(),
                quantity: 200,
            },
            "Unloaded 200 electronics",
        ),
    ];
    for (command, said) in voyage {
        ships.execute(&id, &command).await?;
        say!("{said}");
    }
    let ship = ships.load(&id).await?.state;
    say!("\nCurrent ship state:");
    say!("Name: {}", ship.name);
    say!("Status: {}", ship.status_label());
    say!("Current port: {}", ship.current_port().unwrap_or("none"));
    let cargo: Vec<String> = ship
        .cargo
        .iter()
        .map(|(item, n)| format!("{item}: {n}"))
        .collect();
    say!("Cargo: {{{}}}", cargo.join(", "));
    say!("\nEvent log:");
    for (i, event) in ships.history(&id).await?.iter().enumerate() {
        say!(
            "{}. {} at {}: {}",
            i + 1,
            event.event_type,
            output::time(event.recorded_at),
            event.payload.as_str()
        );
    }

    say!("\nShips by port (projection):");
    let by_port = Projector::<ShipsByPort>::new(stores);
    by_port.catch_up().await?;
    let view = by_port.state().await?.model;
    let cargo = view.cargo_by_port();
    for (port, docked) in view.docked() {
        let totals: Vec<String> = cargo
            .get(port)
            .into_iter()
            .flatten()
            .map(|(item, n)| format!("{item}: {n}"))
            .collect();
        say!(
            "{port}: {} ship(s) docked, cargo on board {{{}}}",
            docked.len(),
            totals.join(", ")
        );
    }
    Ok(())
}

async fn bank_account(stores: &Stores) -> anyhow::Result<()> {
    say!("\n=== Bank account ===");
    let options = RepositoryOptions {
        snapshot_every: NonZeroU64::new(10),
        ..RepositoryOptions::default()
    };
    let accounts = Repository::<BankAccount>::with_options(stores, options);
    let id = format!("acc_{}", &Uuid::new_v4().simple().to_string()[..12]);
    let deposit = |amount: &str, description: &str| Account::Deposit {
        amount: money(amount),
        description: description.into(),
    };

    say!("1. Creating and operating on bank account {id}:");
    let opening = [
        Account::Open {
            owner: "user_123".into(),
            initial_balance: money("1000.00"),
            currency: "USD".parse()?,
        },
        deposit("500.00", "Salary deposit"),
        Account::Withdraw {
            amount: money("200.00"),
            description: "ATM withdrawal".into(),
        },
        deposit("100.00", "Transfer from savings"),
    ];
    let saved = accounts
        .execute_all(&id, &opening, &Metadata::default())
        .await?;
    say!("   Account created with initial operations");
    say!("   Current balance: {}", saved.state.balance);
    say!("   Version: {}", saved.version);

    say!("\n2. Loading account from events:");
    let loaded = accounts.load(&id).await?;
    say!("   Loaded balance: {}", loaded.state.balance);
    say!("   Version: {}", loaded.version);
    say!("   Owner: {}", loaded.state.owner);

    say!("\n3. Event history:");
    for event in accounts.history(&id).await? {
        say!("   {}. {}", event.version, event.event_type);
        say!("      Data: {}", event.payload.as_str());
        say!("      Time: {}", output::time(event.recorded_at));
    }

    say!("\n4. More operations and snapshot:");
    let small: Vec<Account> = (1..=8)
        .map(|i| deposit("10.00", &format!("Small deposit {i}")))
        .collect();
    let saved = accounts
        .execute_all(&id, &small, &Metadata::default())
        .await?;
    say!("   Performed 8 more operations");
    say!("   Final balance: {}", saved.state.balance);
    say!("   Version: {}", saved.version);
    match stores
        .snapshots
        .load(&Repository::<BankAccount>::stream_id(&id)?)
        .await?
    {
        Some(snapshot) => say!(
            "   Snapshot created at version {} (the save crossed version 10)",
            snapshot.version
        ),
        None => say!("   No snapshot was taken"),
    }

    say!("\n5. Time-travel query (reconstruct state at version 3):");
    let past = accounts.load_at_version(&id, 3).await?;
    say!("   Balance at version 3: {}", past.state.balance);
    say!("   Was active: {}", past.state.is_active());

    say!("\n6. Event type queries (this account's stream in the global log):");
    let stream = format!("{}-{id}", BankAccount::TYPE);
    let deposits = events_of(stores, &stream, "MoneyDeposited").await?;
    let withdrawals = events_of(stores, &stream, "MoneyWithdrawn").await?;
    say!("   Total deposits: {}", deposits.len());
    say!("   Total withdrawals: {}", withdrawals.len());
    say!("   Amount deposited: {}", total(&deposits)?);
    say!("   Amount withdrawn: {}", total(&withdrawals)?);

    say!("\n7. Projection (account summary, kept by a projector with a checkpoint):");
    let summaries = Projector::<AccountSummaries>::new(stores);
    let caught_up = summaries.catch_up().await?;
    let state = summaries.state().await?;
    let summary = state
        .model
        .accounts
        .get(&id)
        .context("the summary has this account")?;
    say!("   Total deposits: {}", summary.total_deposits);
    say!("   Total withdrawals: {}", summary.total_withdrawals);
    say!("   Transaction count: {}", summary.transaction_count);
    if let (Some(created), Some(last)) = (summary.created_at, summary.last_activity) {
        say!("   Created: {}", output::time(created));
        say!("   Last activity: {}", output::time(last));
    }
    say!(
        "   (applied {} events; checkpoint at global position {})",
        caught_up.applied,
        caught_up.checkpoint.unwrap_or(0)
    );
    Ok(())
}

async fn events_of(
    stores: &Stores,
    stream: &str,
    event_type: &str,
) -> anyhow::Result<Vec<RecordedEvent>> {
    // Exact stream: the prefix is the whole id and ids have a fixed length.
    let filter = EventFilter {
        event_types: vec![event_type.into()],
        stream_prefix: Some(stream.into()),
    };
    Ok(GlobalPages::new(&*stores.events, 1, &filter, 1_000)
        .collect()
        .await?)
}

fn amount_of(event: &RecordedEvent) -> anyhow::Result<Money> {
    #[derive(serde::Deserialize)]
    struct Amount {
        amount: Money,
    }
    Ok(event
        .payload
        .to_value::<Amount>()
        .with_context(|| format!("event at position {}", event.position))?
        .amount)
}

fn total(events: &[RecordedEvent]) -> anyhow::Result<Money> {
    events
        .iter()
        .try_fold(Money::ZERO, |sum, e| Ok(sum.saturating_add(amount_of(e)?)))
}
