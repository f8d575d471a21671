//! `logbook user ...`: the user wallet of the first seed, with its
//! `replay(id, to_)` as `logbook user replay`.

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::Subcommand;
use logbook::Repository;
use logbook_domain::Money;
use logbook_domain::user_wallet::{UserWallet, UserWalletCommand};
use logbook_ports::Stores;
use uuid::Uuid;

use super::aggregate::{self, Presented};
use super::output;

impl Presented for UserWallet {
    const NOUN: &'static str = "user";

    fn fields(&self) -> Vec<(&'static str, serde_json::Value)> {
        vec![
            ("username", self.username.clone().into()),
            ("balance", self.balance.to_string().into()),
        ]
    }
}

/// Subcommands of `logbook user`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user with a wallet; prints its id.
    Create {
        /// The user's name.
        username: String,
        /// Opening balance, e.g. 100.00.
        #[arg(long, default_value = "0")]
        balance: Money,
    },
    /// Add to (positive) or take from (negative) the balance.
    ChangeBalance {
        /// User id.
        id: String,
        /// Signed change, e.g. 10.00 or -50.00.
        #[arg(allow_negative_numbers = true)]
        delta: Money,
    },
    /// Show a user's state, now or at a past version.
    Show(super::ShowArgs),
    /// Delete a user: it can no longer be used; its events stay in the log.
    Delete {
        /// Its id.
        id: String,
    },
    /// The user's events up to a time (default: now), with type, id and time.
    Replay {
        /// User id.
        id: String,
        /// Only events recorded at or before this time (RFC 3339, e.g. 2026-11-23T10:00:00Z).
        #[arg(long, value_name = "TIME", value_parser = crate::output::parse_time)]
        until: Option<DateTime<Utc>>,
    },
}

pub async fn run(stores: &Stores, command: UserCommand) -> anyhow::Result<()> {
    let (id, command) = match command {
        UserCommand::Delete { id } => return aggregate::delete::<UserWallet>(stores, &id).await,
        UserCommand::Show(args) => {
            return aggregate::show::<UserWallet>(stores, &args).await;
        }
        UserCommand::Replay { id, until } => {
            return replay(stores, &id, until, output::json()).await;
        }
        UserCommand::Create { username, balance } => {
            let id = Uuid::now_v7().to_string();
            return aggregate::create::<UserWallet>(
                stores,
                &id,
                UserWalletCommand::Create { username, balance },
            )
            .await;
        }
        UserCommand::ChangeBalance { id, delta } => (
            id,
            UserWalletCommand::ChangeBalance {
                balance_change: delta,
            },
        ),
    };
    aggregate::execute::<UserWallet>(stores, &id, command).await
}

async fn replay(
    stores: &Stores,
    id: &str,
    until: Option<DateTime<Utc>>,
    json: bool,
) -> anyhow::Result<()> {
    let repository = Repository::<UserWallet>::new(stores);
    let events = repository
        .history_until(id, until.unwrap_or_else(Utc::now))
        .await
        .with_context(|| format!("user {}", id.escape_debug()))?;
    if events.is_empty() && repository.history(id).await?.is_empty() {
        bail!("user {id} does not exist");
    }
    if json {
        let lines: Vec<serde_json::Value> = events
            .iter()
            .map(|e| {
                serde_json::json!({
                    "event": e.payload,
                    "event_type": e.event_type,
                    "event_id": e.id,
                    "version": e.version,
                    "created_at": output::time(e.recorded_at),
                })
            })
            .collect();
        say!("{}", serde_json::to_string_pretty(&lines)?);
    } else {
        for e in &events {
            say!(
                "{}  {:<18} {}  {}",
                output::time(e.recorded_at),
                e.event_type,
                e.id,
                e.payload.as_str()
            );
        }
    }
    Ok(())
}
