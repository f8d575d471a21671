//! The seeds' read models, as ordinary projections.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use logbook_domain::bank_account::{BankAccount, BankAccountEvent};
use logbook_domain::cargo_ship::{CargoShip, CargoShipEvent};
use logbook_domain::{Aggregate, DomainEvent, Money, RecordedEvent, Version};
use logbook_ports::EventFilter;
use serde::{Deserialize, Serialize};

use logbook_domain::SHREDDED_PLACEHOLDER;
use logbook_domain::user_wallet::{UserWallet, UserWalletEvent, wallet_subject};

use super::ReadModel;
use crate::Repository;
use crate::codec::Decoder;
use crate::personal::PersonalDataEvent;

fn decoded<E: DomainEvent>(event: &RecordedEvent) -> Result<E, String> {
    Decoder::<E>::new().decode(event).map_err(|e| e.to_string())
}

/// The id part of `Type-id`.
fn aggregate_id<A: Aggregate>(event: &RecordedEvent) -> String {
    let stream = event.stream.as_str();
    stream
        .strip_prefix(A::TYPE)
        .and_then(|rest| rest.strip_prefix('-'))
        .unwrap_or(stream)
        .to_owned()
}

/// True for a stream's tombstone: the aggregate was deleted.
fn is_deletion(event: &RecordedEvent) -> bool {
    logbook_ports::append::is_tombstone(&event.event_type)
}

/// The row of `event`'s aggregate in `rows`, with the decoded event; `None`
/// when the event deleted the aggregate (and its row).
fn row_for<'a, A: Aggregate, T: Default>(
    rows: &'a mut BTreeMap<String, T>,
    event: &RecordedEvent,
) -> Result<Option<(&'a mut T, A::Event)>, String> {
    let id = aggregate_id::<A>(event);
    if is_deletion(event) {
        rows.remove(&id);
        return Ok(None);
    }
    let decoded = decoded::<A::Event>(event)?;
    Ok(Some((rows.entry(id).or_default(), decoded)))
}

fn category<A: Aggregate>() -> EventFilter {
    EventFilter::stream_prefix(format!("{}-", A::TYPE))
}

/// One account's activity, as the seed's `account_summary_projection`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSummary {
    /// Sum of deposits.
    pub total_deposits: Money,
    /// Sum of withdrawals.
    pub total_withdrawals: Money,
    /// Deposits plus withdrawals.
    pub transaction_count: u64,
    /// When the account was opened.
    pub created_at: Option<DateTime<Utc>>,
    /// When anything last happened to it.
    pub last_activity: Option<DateTime<Utc>>,
}

/// `account-summary`: an [`AccountSummary`] per account id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSummaries {
    /// By account id.
    pub accounts: BTreeMap<String, AccountSummary>,
}

impl ReadModel for AccountSummaries {
    const NAME: &'static str = "account-summary";

    fn filter() -> EventFilter {
        category::<BankAccount>()
    }

    fn apply(&mut self, event: &RecordedEvent) -> Result<(), String> {
        let Some((summary, decoded)) = row_for::<BankAccount, _>(&mut self.accounts, event)? else {
            return Ok(());
        };
        match decoded {
            BankAccountEvent::AccountOpened { .. } => summary.created_at = Some(event.recorded_at),
            BankAccountEvent::MoneyDeposited { amount, .. } => {
                summary.total_deposits = summary.total_deposits.saturating_add(amount);
                summary.transaction_count += 1;
            }
            BankAccountEvent::MoneyWithdrawn { amount, .. } => {
                summary.total_withdrawals = summary.total_withdrawals.saturating_add(amount);
                summary.transaction_count += 1;
            }
            BankAccountEvent::AccountClosed {} => {}
        }
        summary.last_activity = Some(event.recorded_at);
        Ok(())
    }
}

/// One account's balance and the stream version it reflects.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountBalance {
    /// Current balance.
    pub balance: Money,
    /// Version of the last event applied: the seed's guard, so an event
    /// delivered twice is not counted twice.
    pub event_version: Version,
}

/// `account-balances`: the seeds' `AccountBalanceProjection`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountBalances {
    /// By account id.
    pub accounts: BTreeMap<String, AccountBalance>,
}

impl ReadModel for AccountBalances {
    const NAME: &'static str = "account-balances";

    fn filter() -> EventFilter {
        category::<BankAccount>()
    }

    fn apply(&mut self, event: &RecordedEvent) -> Result<(), String> {
        let Some((row, decoded)) = row_for::<BankAccount, _>(&mut self.accounts, event)? else {
            return Ok(());
        };
        if event.version <= row.event_version {
            return Ok(());
        }
        match decoded {
            BankAccountEvent::AccountOpened {
                initial_balance, ..
            } => row.balance = initial_balance,
            BankAccountEvent::MoneyDeposited { amount, .. } => {
                row.balance = row.balance.saturating_add(amount)
            }
            BankAccountEvent::MoneyWithdrawn { amount, .. } => {
                row.balance = row.balance.saturating_sub(amount)
            }
            BankAccountEvent::AccountClosed {} => {}
        }
        row.event_version = event.version;
        Ok(())
    }
}

/// Where one ship is and what it carries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipPosition {
    /// The ship's name.
    pub name: String,
    /// The port it is docked at, if any.
    pub port: Option<String>,
    /// Cargo on board by item.
    pub cargo: BTreeMap<String, u64>,
}

/// `ships-by-port`: which ships are docked where, and the cargo on board per
/// port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipsByPort {
    /// By ship id.
    pub ships: BTreeMap<String, ShipPosition>,
}

impl ShipsByPort {
    /// Port name to the ids of the ships docked there.
    pub fn docked(&self) -> BTreeMap<&str, Vec<&str>> {
        let mut ports: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (id, ship) in &self.ships {
            if let Some(port) = &ship.port {
                ports.entry(port).or_default().push(id);
            }
        }
        ports
    }

    /// Port name to the cargo on board of the ships docked there, by item.
    pub fn cargo_by_port(&self) -> BTreeMap<&str, BTreeMap<&str, u64>> {
        let mut ports: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
        for ship in self.ships.values() {
            if let Some(port) = &ship.port {
                let totals = ports.entry(port).or_default();
                for (item, n) in &ship.cargo {
                    let total = totals.entry(item).or_default();
                    *total = total.saturating_add(*n);
                }
            }
        }
        ports
    }
}

impl ReadModel for ShipsByPort {
    const NAME: &'static str = "ships-by-port";

    fn filter() -> EventFilter {
        category::<CargoShip>()
    }

    fn apply(&mut self, event: &RecordedEvent) -> Result<(), String> {
        let Some((ship, decoded)) = row_for::<CargoShip, _>(&mut self.ships, event)? else {
            return Ok(());
        };
        match decoded {
            CargoShipEvent::ShipRegistered { name } => ship.name = name,
            CargoShipEvent::ShipDocked { port } => ship.port = Some(port),
            CargoShipEvent::ShipDeparted { .. } => ship.port = None,
            CargoShipEvent::CargoLoaded { item, quantity, .. } => {
                let n = ship.cargo.entry(item).or_default();
                *n = n.saturating_add(quantity);
            }
            CargoShipEvent::CargoUnloaded { item, quantity, .. } => {
                if let Some(n) = ship.cargo.get_mut(&item) {
                    *n = n.saturating_sub(quantity);
                    if *n == 0 {
                        ship.cargo.remove(&item);
                    }
                }
            }
        }
        Ok(())
    }
}

/// One wallet in the [`UserDirectory`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserEntry {
    /// The username (personal data): `"[shredded]"` once its subject is.
    pub username: String,
    /// The wallet's balance.
    pub balance: Money,
}

/// `user-directory`: a [`UserEntry`] per wallet id. It holds personal data
/// (the usernames), so it reacts to `SubjectShredded`: the shredded
/// subject's username becomes the placeholder, as a rebuild would read it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDirectory {
    /// By wallet id.
    pub users: BTreeMap<String, UserEntry>,
}

impl ReadModel for UserDirectory {
    const NAME: &'static str = "user-directory";

    fn filter() -> EventFilter {
        EventFilter::event_types([
            "UserCreated",
            "UserBalanceChanged",
            logbook_ports::append::STREAM_DELETED,
            "SubjectShredded",
        ])
    }

    fn apply(&mut self, event: &RecordedEvent) -> Result<(), String> {
        if event.event_type.as_ref() == "SubjectShredded" {
            let PersonalDataEvent::SubjectShredded { subject } = decoded(event)?;
            for (id, entry) in &mut self.users {
                let stream = Repository::<UserWallet>::stream_id(id).map_err(|e| e.to_string())?;
                if wallet_subject(&stream).as_ref() == Some(&subject) {
                    SHREDDED_PLACEHOLDER.clone_into(&mut entry.username);
                }
            }
            return Ok(());
        }
        if !event.stream.as_str().starts_with("UserWallet-") {
            return Ok(());
        }
        let Some((entry, decoded)) = row_for::<UserWallet, _>(&mut self.users, event)? else {
            return Ok(());
        };
        match decoded {
            UserWalletEvent::UserCreated { username, balance } => {
                entry.username = username;
                entry.balance = balance;
            }
            UserWalletEvent::UserBalanceChanged { balance_change } => {
                entry.balance = entry.balance.saturating_add(balance_change);
            }
        }
        Ok(())
    }
}
