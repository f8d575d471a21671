//! The user wallet of the first seed: created with a username and a balance;
//! the balance changes by signed amounts and never goes below zero.
//!
//! The seed's `change_balance` added every change twice (once itself, once in
//! `apply`); here only `apply` changes state, so a change counts once.
//!
//! Schema history: version 1 is the seed's shape (amounts as whole numbers,
//! an `id` field repeating the stream); version 2 stores amounts as decimal
//! strings ("100.00"). Version 1 payloads are upcast when read.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aggregate::Aggregate;
use crate::event::DomainEvent;
use crate::money::Money;
use crate::stream::StreamId;
use crate::subject::{PersonalField, SubjectId};
use crate::upcast::Upcasters;

/// A wallet's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserWallet {
    /// True once created.
    pub created: bool,
    /// The user's name.
    pub username: String,
    /// Current balance.
    pub balance: Money,
}

/// What can be asked of a wallet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "command")]
pub enum UserWalletCommand {
    /// Create the wallet.
    Create {
        /// The user's name.
        username: String,
        /// Opening balance (zero or more).
        #[serde(default)]
        balance: Money,
    },
    /// Add (positive) or take (negative) money.
    ChangeBalance {
        /// Signed change, not zero.
        balance_change: Money,
    },
}

/// What happened to a wallet. Field names follow the seed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserWalletEvent {
    /// The wallet was created.
    UserCreated {
        /// The user's name.
        username: String,
        /// Opening balance.
        balance: Money,
    },
    /// The balance changed.
    UserBalanceChanged {
        /// Signed change.
        balance_change: Money,
    },
}

impl DomainEvent for UserWalletEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::UserCreated { .. } => "UserCreated",
            Self::UserBalanceChanged { .. } => "UserBalanceChanged",
        }
    }

    fn schema_version(&self) -> u32 {
        2
    }

    /// The username is personal data of the subject `user-<wallet id>`.
    fn personal_fields(&self, stream: &StreamId) -> Vec<PersonalField> {
        match self {
            Self::UserCreated { .. } => wallet_subject(stream)
                .map(|subject| vec![PersonalField::new("username", subject)])
                .unwrap_or_default(),
            Self::UserBalanceChanged { .. } => Vec::new(),
        }
    }

    fn upcasters() -> Upcasters {
        Upcasters::new()
            .with("UserCreated", 1, |v| {
                amounts_as_decimal_strings(v, "balance")
            })
            .with("UserBalanceChanged", 1, |v| {
                amounts_as_decimal_strings(v, "balance_change")
            })
    }
}

/// The data subject of the wallet on `stream` (`UserWallet-<id>`):
/// `user-<id>`. `None` for a stream of another shape.
#[must_use]
pub fn wallet_subject(stream: &StreamId) -> Option<SubjectId> {
    let id = stream.as_str().strip_prefix("UserWallet-")?;
    SubjectId::new(format!("user-{id}")).ok()
}

/// Version 1 to 2: the amount in `field` from a JSON number of whole units
/// (or units with at most two decimals) to a decimal string; the seed's
/// redundant `id` is dropped.
fn amounts_as_decimal_strings(mut payload: Value, field: &str) -> Result<Value, String> {
    let object = payload.as_object_mut().ok_or("payload is not an object")?;
    object.remove("id");
    let amount = object
        .get(field)
        .ok_or_else(|| format!("missing field `{field}`"))?;
    let converted = match amount {
        Value::String(_) => amount.clone(),
        Value::Number(n) => {
            let text = if let Some(units) = n.as_i64() {
                format!("{units}.00")
            } else {
                let units = n.as_f64().ok_or("amount out of range")?;
                let cents = (units * 100.0).round();
                if (units * 100.0 - cents).abs() > 1e-6 {
                    return Err(format!("amount {n} has more than two decimals"));
                }
                // `as` would saturate silently; an amount this large is an error.
                if !(i64::MIN as f64..i64::MAX as f64).contains(&cents) {
                    return Err(format!("amount {n} is too large"));
                }
                Money::from_cents(cents as i64).to_string()
            };
            Value::String(text)
        }
        other => return Err(format!("`{field}` is {other}, not an amount")),
    };
    object.insert(field.to_owned(), converted);
    Ok(payload)
}

/// Why a wallet refuses a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserWalletError {
    /// `Create` on a wallet created before.
    #[error("user already exists")]
    AlreadyExists,
    /// `ChangeBalance` before `Create`.
    #[error("user does not exist")]
    NotCreated,
    /// An empty username.
    #[error("username must not be empty")]
    UsernameRequired,
    /// An opening balance below zero.
    #[error("initial balance must not be negative, got {0}")]
    NegativeInitialBalance(Money),
    /// A change of zero.
    #[error("balance change must not be zero")]
    ZeroChange,
    /// A change that would take the balance below zero.
    #[error("insufficient balance: balance is {balance}, change is {change}")]
    InsufficientBalance {
        /// Balance before the change.
        balance: Money,
        /// The refused change.
        change: Money,
    },
    /// A change that would overflow the balance.
    #[error("balance would overflow")]
    BalanceOverflow,
}

impl Aggregate for UserWallet {
    const TYPE: &'static str = "UserWallet";
    type Command = UserWalletCommand;
    type Event = UserWalletEvent;
    type Error = UserWalletError;

    fn handle(&self, command: &UserWalletCommand) -> Result<Vec<UserWalletEvent>, UserWalletError> {
        use UserWalletError as E;
        let event = match command {
            UserWalletCommand::Create { username, balance } => {
                if self.created {
                    return Err(E::AlreadyExists);
                }
                if username.trim().is_empty() {
                    return Err(E::UsernameRequired);
                }
                if balance.is_negative() {
                    return Err(E::NegativeInitialBalance(*balance));
                }
                UserWalletEvent::UserCreated {
                    username: username.clone(),
                    balance: *balance,
                }
            }
            UserWalletCommand::ChangeBalance { balance_change } => {
                if !self.created {
                    return Err(E::NotCreated);
                }
                if *balance_change == Money::ZERO {
                    return Err(E::ZeroChange);
                }
                let after = self
                    .balance
                    .checked_add(*balance_change)
                    .ok_or(E::BalanceOverflow)?;
                if after.is_negative() {
                    return Err(E::InsufficientBalance {
                        balance: self.balance,
                        change: *balance_change,
                    });
                }
                UserWalletEvent::UserBalanceChanged {
                    balance_change: *balance_change,
                }
            }
        };
        Ok(vec![event])
    }

    fn apply(&mut self, event: &UserWalletEvent) {
        match event {
            UserWalletEvent::UserCreated { username, balance } => {
                self.created = true;
                self.username.clone_from(username);
                self.balance = *balance;
            }
            UserWalletEvent::UserBalanceChanged { balance_change } => {
                self.balance = self.balance.saturating_add(*balance_change);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use UserWalletCommand as C;
    use UserWalletError as E;

    fn money(text: &str) -> Money {
        text.parse().unwrap()
    }

    fn change(delta: &str) -> C {
        C::ChangeBalance {
            balance_change: money(delta),
        }
    }

    fn run(wallet: &mut UserWallet, command: C) -> Result<(), E> {
        let events = wallet.handle(&command)?;
        wallet.apply_all(&events);
        Ok(())
    }

    fn created(balance: &str) -> UserWallet {
        let mut wallet = UserWallet::default();
        run(
            &mut wallet,
            C::Create {
                username: "test_user".into(),
                balance: money(balance),
            },
        )
        .unwrap();
        wallet
    }

    #[test]
    fn each_change_counts_once_unlike_the_seed() {
        let mut wallet = created("100");
        for delta in ["10", "250", "-50"] {
            run(&mut wallet, change(delta)).unwrap();
        }
        assert_eq!(wallet.balance, money("310.00"));
    }

    #[test]
    fn an_overdraft_is_refused_and_decides_no_event() {
        let wallet = created("10");
        assert_eq!(
            wallet.handle(&change("-10.01")),
            Err(E::InsufficientBalance {
                balance: money("10"),
                change: money("-10.01")
            })
        );
        assert!(wallet.handle(&change("-10")).is_ok());
    }

    #[test]
    fn creating_twice_blank_or_negative_is_refused() {
        assert_eq!(
            created("0").handle(&C::Create {
                username: "x".into(),
                balance: Money::ZERO
            }),
            Err(E::AlreadyExists)
        );
        let fresh = UserWallet::default();
        assert_eq!(
            fresh.handle(&C::Create {
                username: "".into(),
                balance: Money::ZERO
            }),
            Err(E::UsernameRequired)
        );
        assert_eq!(
            fresh.handle(&C::Create {
                username: "x".into(),
                balance: money("-1")
            }),
            Err(E::NegativeInitialBalance(money("-1")))
        );
    }

    #[test]
    fn changing_a_missing_wallet_or_by_zero_is_refused() {
        assert_eq!(
            UserWallet::default().handle(&change("1")),
            Err(E::NotCreated)
        );
        assert_eq!(created("1").handle(&change("0")), Err(E::ZeroChange));
    }

    #[test]
    fn seed_shaped_version_1_payloads_upcast_to_version_2() {
        let upcasters = UserWalletEvent::upcasters();
        let (created, v) = upcasters
            .upcast(
                "UserCreated",
                1,
                serde_json::json!({"id": 1, "username": "test_user", "balance": 100}),
            )
            .unwrap();
        assert_eq!(v, 2);
        assert_eq!(
            created,
            serde_json::json!({"username": "test_user", "balance": "100.00"})
        );
        let (changed, _) = upcasters
            .upcast(
                "UserBalanceChanged",
                1,
                serde_json::json!({"id": 1, "balance_change": -50}),
            )
            .unwrap();
        assert_eq!(changed, serde_json::json!({"balance_change": "-50.00"}));
        let (fractional, _) = upcasters
            .upcast(
                "UserBalanceChanged",
                1,
                serde_json::json!({"balance_change": 2.5}),
            )
            .unwrap();
        assert_eq!(fractional, serde_json::json!({"balance_change": "2.50"}));
        assert!(
            upcasters
                .upcast(
                    "UserBalanceChanged",
                    1,
                    serde_json::json!({"balance_change": 0.001})
                )
                .is_err()
        );
        assert!(
            upcasters
                .upcast("UserBalanceChanged", 1, serde_json::json!({"id": 1}))
                .is_err()
        );
    }

    #[test]
    fn a_change_that_would_overflow_is_refused() {
        let wallet = created(&Money::from_cents(i64::MAX).to_string());
        assert_eq!(wallet.handle(&change("0.01")), Err(E::BalanceOverflow));
    }
}
