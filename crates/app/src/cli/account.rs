//! `logbook account ...`: the bank account of the seeds, one command per
//! domain command. Commands that change state retry on version conflicts, so
//! concurrent `logbook` processes on one account all succeed.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use logbook::Repository;
use logbook_domain::bank_account::{BankAccount, BankAccountCommand};
use logbook_domain::{Currency, Money};
use logbook_ports::Stores;

/// Subcommands of `logbook account`.
#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Open an account.
    Open {
        /// Account id, e.g. acc_001.
        id: String,
        /// The owner.
        #[arg(long)]
        owner: String,
        /// Opening balance, e.g. 1000.00.
        #[arg(long, default_value = "0")]
        initial: Money,
        /// Currency code.
        #[arg(long, default_value = "USD")]
        currency: Currency,
    },
    /// Deposit money.
    Deposit(Movement),
    /// Withdraw money.
    Withdraw(Movement),
    /// Close an account whose balance is zero.
    Close {
        /// Account id.
        id: String,
    },
    /// Show an account's state, now or at a past version.
    Show {
        /// Account id.
        id: String,
        /// State just after this version.
        #[arg(long, value_name = "N")]
        at_version: Option<u64>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// A deposit or withdrawal.
#[derive(Debug, Args)]
pub struct Movement {
    /// Account id.
    id: String,
    /// Amount, e.g. 500.00.
    amount: Money,
    /// Free text for the statement.
    #[arg(long, default_value = "")]
    description: String,
}

pub async fn run(stores: &Stores, command: AccountCommand) -> anyhow::Result<()> {
    let accounts = Repository::<BankAccount>::new(stores);
    let (id, command) = match command {
        AccountCommand::Show {
            id,
            at_version,
            json,
        } => return show(&accounts, &id, at_version, json).await,
        AccountCommand::Open {
            id,
            owner,
            initial,
            currency,
        } => (
            id,
            BankAccountCommand::Open {
                owner,
                initial_balance: initial,
                currency,
            },
        ),
        AccountCommand::Deposit(Movement {
            id,
            amount,
            description,
        }) => (
            id,
            BankAccountCommand::Deposit {
                amount,
                description,
            },
        ),
        AccountCommand::Withdraw(Movement {
            id,
            amount,
            description,
        }) => (
            id,
            BankAccountCommand::Withdraw {
                amount,
                description,
            },
        ),
        AccountCommand::Close { id } => (id, BankAccountCommand::Close),
    };
    let done = accounts
        .execute(&id, &command)
        .await
        .with_context(|| format!("account {id}"))?;
    let account = &done.state;
    println!(
        "account {id}: balance {} {}, {}, version {}",
        account.balance,
        account.currency,
        if account.is_active() {
            "active"
        } else {
            "closed"
        },
        done.version
    );
    Ok(())
}

async fn show(
    accounts: &Repository<BankAccount>,
    id: &str,
    at_version: Option<u64>,
    json: bool,
) -> anyhow::Result<()> {
    let loaded = match at_version {
        Some(version) => accounts.load_at_version(id, version).await,
        None => accounts.load(id).await,
    }
    .with_context(|| format!("account {id}"))?;
    if loaded.version == 0 {
        bail!("account {id} does not exist");
    }
    let account = &loaded.state;
    if json {
        let value = serde_json::json!({
            "id": id,
            "owner": account.owner,
            "balance": account.balance,
            "currency": account.currency,
            "active": account.is_active(),
            "version": loaded.version,
        });
        println!("{value}");
    } else {
        println!("account:  {id}");
        println!("owner:    {}", account.owner);
        println!("balance:  {}", account.balance);
        println!("currency: {}", account.currency);
        println!("active:   {}", account.is_active());
        println!("version:  {}", loaded.version);
    }
    Ok(())
}
