//! `logbook account ...`: the bank account of the seeds, one subcommand per
//! domain command. Commands that change state retry on version conflicts, so
//! concurrent `logbook` processes on one account all succeed.

use clap::{Args, Subcommand};
use logbook_domain::bank_account::{BankAccount, BankAccountCommand};
use logbook_domain::{Currency, Money};
use logbook_ports::Stores;

use super::aggregate::{self, Presented};

impl Presented for BankAccount {
    const NOUN: &'static str = "account";

    fn fields(&self) -> Vec<(&'static str, serde_json::Value)> {
        vec![
            ("owner", self.owner.clone().into()),
            ("balance", self.balance.to_string().into()),
            ("currency", self.currency.to_string().into()),
            ("active", self.is_active().into()),
        ]
    }
}

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
    Show(super::ShowArgs),
    /// Delete an account: it can no longer be used; its events stay in the log.
    Delete {
        /// Its id.
        id: String,
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
    let (id, command) = match command {
        AccountCommand::Delete { id } => {
            return aggregate::delete::<BankAccount>(stores, &id).await;
        }
        AccountCommand::Show(args) => {
            return aggregate::show::<BankAccount>(stores, &args).await;
        }
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
    aggregate::execute::<BankAccount>(stores, &id, command).await
}
