//! The cart aggregate: items are added and removed until it is checked out.

use std::collections::BTreeMap;

use logbook_domain::{Aggregate, DomainEvent, Money};
use serde::{Deserialize, Serialize};

/// A shopping cart's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cart {
    /// Quantity and unit price by SKU.
    pub items: BTreeMap<String, Line>,
    /// True once checked out: nothing changes after.
    pub checked_out: bool,
}

/// One line of a cart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// How many.
    pub quantity: u32,
    /// Price of one.
    pub unit_price: Money,
}

impl Cart {
    /// What the cart costs.
    pub fn total(&self) -> Money {
        self.items.values().fold(Money::ZERO, |sum, line| {
            sum.saturating_add(Money::from_cents(
                line.unit_price
                    .cents()
                    .saturating_mul(i64::from(line.quantity)),
            ))
        })
    }
}

/// What can be asked of a cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "command")]
pub enum CartCommand {
    /// Put `quantity` of `sku` in the cart at `unit_price` each.
    AddItem {
        /// The product.
        sku: String,
        /// How many (positive).
        quantity: u32,
        /// Price of one.
        unit_price: Money,
    },
    /// Take every unit of `sku` out.
    RemoveItem {
        /// The product.
        sku: String,
    },
    /// Buy what is in the cart.
    CheckOut,
}

/// What happened to a cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CartEvent {
    /// Units of a product were added.
    ItemAdded {
        /// The product.
        sku: String,
        /// How many.
        quantity: u32,
        /// Price of one.
        unit_price: Money,
    },
    /// A product was taken out.
    ItemRemoved {
        /// The product.
        sku: String,
    },
    /// The cart was bought, for `total`.
    CheckedOut {
        /// What it cost.
        total: Money,
    },
}

impl DomainEvent for CartEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::ItemAdded { .. } => "ItemAdded",
            Self::ItemRemoved { .. } => "ItemRemoved",
            Self::CheckedOut { .. } => "CheckedOut",
        }
    }
}

/// Why a cart refuses a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CartError {
    /// The cart was checked out already.
    #[error("the cart is checked out already")]
    CheckedOut,
    /// A quantity of zero.
    #[error("quantity must be positive")]
    ZeroQuantity,
    /// A price below zero.
    #[error("unit price must not be negative")]
    NegativePrice,
    /// The SKU is not in the cart.
    #[error("{0:?} is not in the cart")]
    NotInCart(String),
    /// Checking out an empty cart.
    #[error("the cart is empty")]
    Empty,
}

impl Aggregate for Cart {
    const TYPE: &'static str = "Cart";
    type Command = CartCommand;
    type Event = CartEvent;
    type Error = CartError;

    fn handle(&self, command: &CartCommand) -> Result<Vec<CartEvent>, CartError> {
        if self.checked_out {
            return Err(CartError::CheckedOut);
        }
        match command {
            CartCommand::AddItem {
                sku,
                quantity,
                unit_price,
            } => {
                if *quantity == 0 {
                    return Err(CartError::ZeroQuantity);
                }
                if unit_price.is_negative() {
                    return Err(CartError::NegativePrice);
                }
                Ok(vec![CartEvent::ItemAdded {
                    sku: sku.clone(),
                    quantity: *quantity,
                    unit_price: *unit_price,
                }])
            }
            CartCommand::RemoveItem { sku } if !self.items.contains_key(sku) => {
                Err(CartError::NotInCart(sku.clone()))
            }
            CartCommand::RemoveItem { sku } => {
                Ok(vec![CartEvent::ItemRemoved { sku: sku.clone() }])
            }
            CartCommand::CheckOut if self.items.is_empty() => Err(CartError::Empty),
            CartCommand::CheckOut => Ok(vec![CartEvent::CheckedOut {
                total: self.total(),
            }]),
        }
    }

    fn apply(&mut self, event: &CartEvent) {
        match event {
            CartEvent::ItemAdded {
                sku,
                quantity,
                unit_price,
            } => {
                let line = self.items.entry(sku.clone()).or_default();
                line.quantity = line.quantity.saturating_add(*quantity);
                line.unit_price = *unit_price;
            }
            CartEvent::ItemRemoved { sku } => {
                self.items.remove(sku);
            }
            CartEvent::CheckedOut { .. } => self.checked_out = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checked_out_cart_refuses_everything() {
        // Given a checked-out cart.
        let mut cart = Cart::default();
        let add = CartCommand::AddItem {
            sku: "tea".into(),
            quantity: 2,
            unit_price: "3.50".parse().unwrap(),
        };
        cart.apply_all(&cart.handle(&add).unwrap());
        cart.apply_all(&cart.handle(&CartCommand::CheckOut).unwrap());
        // When anything is asked, then it is refused and nothing decided.
        assert_eq!(cart.handle(&add), Err(CartError::CheckedOut));
        assert_eq!(
            cart.handle(&CartCommand::CheckOut),
            Err(CartError::CheckedOut)
        );
    }

    #[test]
    fn an_empty_cart_cannot_be_checked_out() {
        assert_eq!(
            Cart::default().handle(&CartCommand::CheckOut),
            Err(CartError::Empty)
        );
    }
}
