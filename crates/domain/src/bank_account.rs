//! The bank account of the seeds: open with an owner, an initial balance and
//! a currency; deposit; withdraw; close once the balance is zero.

use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregate;
use crate::event::DomainEvent;
use crate::money::{Currency, Money};

/// A bank account's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankAccount {
    /// Where the account is in its life.
    pub status: AccountStatus,
    /// Who owns it (empty before it is opened).
    pub owner: String,
    /// Current balance.
    pub balance: Money,
    /// Currency of every amount.
    pub currency: Currency,
}

/// Life cycle of an account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    /// No `AccountOpened` yet.
    #[default]
    NotOpened,
    /// Open for deposits and withdrawals.
    Active,
    /// Closed for good.
    Closed,
}

/// What can be asked of an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "command")]
pub enum BankAccountCommand {
    /// Open the account.
    Open {
        /// The owner's id or name.
        owner: String,
        /// Opening balance (zero or more).
        #[serde(default)]
        initial_balance: Money,
        /// Currency code.
        #[serde(default)]
        currency: Currency,
    },
    /// Put money in.
    Deposit {
        /// How much (positive).
        amount: Money,
        /// Free text for the statement.
        #[serde(default)]
        description: String,
    },
    /// Take money out.
    Withdraw {
        /// How much (positive, at most the balance).
        amount: Money,
        /// Free text for the statement.
        #[serde(default)]
        description: String,
    },
    /// Close the account (balance must be zero).
    Close,
}

/// What happened to an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BankAccountEvent {
    /// The account was opened.
    AccountOpened {
        /// The owner's id or name.
        owner: String,
        /// Opening balance.
        initial_balance: Money,
        /// Currency code.
        currency: Currency,
    },
    /// Money was deposited.
    MoneyDeposited {
        /// Amount deposited.
        amount: Money,
        /// Free text.
        #[serde(default)]
        description: String,
    },
    /// Money was withdrawn.
    MoneyWithdrawn {
        /// Amount withdrawn.
        amount: Money,
        /// Free text.
        #[serde(default)]
        description: String,
    },
    /// The account was closed.
    AccountClosed {},
}

impl DomainEvent for BankAccountEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::AccountOpened { .. } => "AccountOpened",
            Self::MoneyDeposited { .. } => "MoneyDeposited",
            Self::MoneyWithdrawn { .. } => "MoneyWithdrawn",
            Self::AccountClosed {} => "AccountClosed",
        }
    }
}

/// Why an account refuses a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BankAccountError {
    /// `Open` on an account that was opened before.
    #[error("account already exists")]
    AlreadyExists,
    /// Any command but `Open` on an account never opened.
    #[error("account does not exist; open it first")]
    NotOpened,
    /// Any command but `Open` on a closed account.
    #[error("account is not active: it was closed")]
    NotActive,
    /// A deposit or withdrawal of zero or less.
    #[error("amount must be positive, got {0}")]
    AmountMustBePositive(Money),
    /// An opening balance below zero.
    #[error("initial balance must not be negative, got {0}")]
    NegativeInitialBalance(Money),
    /// An empty owner.
    #[error("owner must not be empty")]
    OwnerRequired,
    /// A withdrawal larger than the balance.
    #[error("insufficient funds: balance is {balance}, requested {requested}")]
    InsufficientFunds {
        /// Balance before the withdrawal.
        balance: Money,
        /// Amount asked for.
        requested: Money,
    },
    /// A deposit that would overflow the balance.
    #[error("balance would overflow")]
    BalanceOverflow,
    /// `Close` with money left.
    #[error("balance must be zero to close, it is {0}")]
    BalanceNotZero(Money),
}

impl BankAccount {
    fn require_active(&self) -> Result<(), BankAccountError> {
        match self.status {
            AccountStatus::Active => Ok(()),
            AccountStatus::NotOpened => Err(BankAccountError::NotOpened),
            AccountStatus::Closed => Err(BankAccountError::NotActive),
        }
    }

    /// True once opened and until closed.
    pub fn is_active(&self) -> bool {
        self.status == AccountStatus::Active
    }
}

impl Aggregate for BankAccount {
    const TYPE: &'static str = "BankAccount";
    type Command = BankAccountCommand;
    type Event = BankAccountEvent;
    type Error = BankAccountError;

    fn handle(
        &self,
        command: &BankAccountCommand,
    ) -> Result<Vec<BankAccountEvent>, BankAccountError> {
        use BankAccountCommand as C;
        use BankAccountError as E;
        let event = match command {
            C::Open {
                owner,
                initial_balance,
                currency,
            } => {
                if self.status != AccountStatus::NotOpened {
                    return Err(E::AlreadyExists);
                }
                if owner.trim().is_empty() {
                    return Err(E::OwnerRequired);
                }
                if initial_balance.is_negative() {
                    return Err(E::NegativeInitialBalance(*initial_balance));
                }
                BankAccountEvent::AccountOpened {
                    owner: owner.clone(),
                    initial_balance: *initial_balance,
                    currency: *currency,
                }
            }
            C::Deposit {
                amount,
                description,
            } => {
                self.require_active()?;
                if !amount.is_positive() {
                    return Err(E::AmountMustBePositive(*amount));
                }
                self.balance
                    .checked_add(*amount)
                    .ok_or(E::BalanceOverflow)?;
                BankAccountEvent::MoneyDeposited {
                    amount: *amount,
                    description: description.clone(),
                }
            }
            C::Withdraw {
                amount,
                description,
            } => {
                self.require_active()?;
                if !amount.is_positive() {
                    return Err(E::AmountMustBePositive(*amount));
                }
                if *amount > self.balance {
                    return Err(E::InsufficientFunds {
                        balance: self.balance,
                        requested: *amount,
                    });
                }
                BankAccountEvent::MoneyWithdrawn {
                    amount: *amount,
                    description: description.clone(),
                }
            }
            C::Close => {
                self.require_active()?;
                if self.balance != Money::ZERO {
                    return Err(E::BalanceNotZero(self.balance));
                }
                BankAccountEvent::AccountClosed {}
            }
        };
        Ok(vec![event])
    }

    fn apply(&mut self, event: &BankAccountEvent) {
        match event {
            BankAccountEvent::AccountOpened {
                owner,
                initial_balance,
                currency,
            } => {
                self.status = AccountStatus::Active;
                self.owner.clone_from(owner);
                self.balance = *initial_balance;
                self.currency = *currency;
            }
            BankAccountEvent::MoneyDeposited { amount, .. } => {
                self.balance = self.balance.saturating_add(*amount);
            }
            BankAccountEvent::MoneyWithdrawn { amount, .. } => {
                self.balance = self.balance.saturating_sub(*amount);
            }
            BankAccountEvent::AccountClosed {} => self.status = AccountStatus::Closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use BankAccountCommand as C;
    use BankAccountError as E;

    fn money(text: &str) -> Money {
        text.parse().unwrap()
    }

    fn given(events: &[BankAccountEvent]) -> BankAccount {
        let mut account = BankAccount::default();
        account.apply_all(events);
        account
    }

    fn opened(balance: &str) -> BankAccount {
        given(&[BankAccountEvent::AccountOpened {
            owner: "user_123".into(),
            initial_balance: money(balance),
            currency: Currency::default(),
        }])
    }

    fn deposit(amount: &str) -> C {
        C::Deposit {
            amount: money(amount),
            description: String::new(),
        }
    }

    fn withdraw(amount: &str) -> C {
        C::Withdraw {
            amount: money(amount),
            description: String::new(),
        }
    }

    fn open() -> C {
        C::Open {
            owner: "user_123".into(),
            initial_balance: money("1000"),
            currency: Currency::default(),
        }
    }

    #[test]
    fn the_seed_scenario_folds_to_1400() {
        let mut account = BankAccount::default();
        for command in [open(), deposit("500"), withdraw("200"), deposit("100")] {
            let events = account.handle(&command).unwrap();
            account.apply_all(&events);
        }
        assert_eq!(account.balance, money("1400.00"));
        assert!(account.is_active());
        assert_eq!(account.owner, "user_123");
    }

    #[test]
    fn opening_twice_is_rejected() {
        assert_eq!(opened("0").handle(&open()), Err(E::AlreadyExists));
        let closed = given(&[
            BankAccountEvent::AccountOpened {
                owner: "o".into(),
                initial_balance: Money::ZERO,
                currency: Currency::default(),
            },
            BankAccountEvent::AccountClosed {},
        ]);
        assert_eq!(closed.handle(&open()), Err(E::AlreadyExists));
    }

    #[test]
    fn opening_needs_an_owner_and_a_non_negative_balance() {
        let account = BankAccount::default();
        let blank_owner = C::Open {
            owner: "  ".into(),
            initial_balance: Money::ZERO,
            currency: Currency::default(),
        };
        assert_eq!(account.handle(&blank_owner), Err(E::OwnerRequired));
        let negative = C::Open {
            owner: "o".into(),
            initial_balance: money("-1"),
            currency: Currency::default(),
        };
        assert_eq!(
            account.handle(&negative),
            Err(E::NegativeInitialBalance(money("-1")))
        );
    }

    #[test]
    fn an_account_not_opened_accepts_nothing_but_open() {
        let account = BankAccount::default();
        for command in [deposit("1"), withdraw("1"), C::Close] {
            assert_eq!(account.handle(&command), Err(E::NotOpened));
        }
    }

    #[test]
    fn a_closed_account_accepts_nothing() {
        let mut account = opened("0");
        account.apply(&BankAccountEvent::AccountClosed {});
        for command in [deposit("1"), withdraw("1"), C::Close] {
            assert_eq!(account.handle(&command), Err(E::NotActive));
        }
    }

    #[test]
    fn amounts_must_be_positive() {
        let account = opened("10");
        for command in [deposit("0"), deposit("-5"), withdraw("0"), withdraw("-5")] {
            assert!(matches!(
                account.handle(&command),
                Err(E::AmountMustBePositive(_))
            ));
        }
    }

    #[test]
    fn withdrawing_more_than_the_balance_is_insufficient_funds() {
        assert_eq!(
            opened("10.00").handle(&withdraw("10.01")),
            Err(E::InsufficientFunds {
                balance: money("10.00"),
                requested: money("10.01"),
            })
        );
        assert!(opened("10.00").handle(&withdraw("10.00")).is_ok());
    }

    #[test]
    fn a_deposit_that_would_overflow_is_refused() {
        let account = opened(&Money::from_cents(i64::MAX).to_string());
        assert_eq!(account.handle(&deposit("0.01")), Err(E::BalanceOverflow));
    }

    #[test]
    fn closing_needs_a_zero_balance() {
        assert_eq!(
            opened("0.01").handle(&C::Close),
            Err(E::BalanceNotZero(money("0.01")))
        );
        assert_eq!(
            opened("0").handle(&C::Close),
            Ok(vec![BankAccountEvent::AccountClosed {}])
        );
    }

    #[test]
    fn event_type_names_match_the_serialized_variant() {
        let event = BankAccountEvent::AccountClosed {};
        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(json, r#"{"AccountClosed":{}}"#);
        assert_eq!(event.event_type(), "AccountClosed");
    }
}
