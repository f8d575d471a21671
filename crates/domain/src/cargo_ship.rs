//! The cargo ship of the seeds: register, dock at a port, depart, load and
//! unload cargo while docked.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregate;
use crate::event::DomainEvent;

/// A ship's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CargoShip {
    /// The ship's name (empty before registration).
    pub name: String,
    /// Where the ship is.
    pub status: ShipStatus,
    /// Quantity on board per item; items at zero are removed.
    pub cargo: BTreeMap<String, u64>,
}

/// Where a ship is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "port")]
pub enum ShipStatus {
    /// No `ShipRegistered` yet.
    #[default]
    NotRegistered,
    /// Registered, never docked.
    Registered,
    /// Docked at a port.
    Docked(String),
    /// Departed, not docked anywhere.
    AtSea,
}

impl CargoShip {
    /// The port the ship is docked at, if any.
    pub fn current_port(&self) -> Option<&str> {
        match &self.status {
            ShipStatus::Docked(port) => Some(port),
            _ => None,
        }
    }

    /// "registered", "docked", "at sea" (the seed's wording).
    pub fn status_label(&self) -> &'static str {
        match self.status {
            ShipStatus::NotRegistered => "not registered",
            ShipStatus::Registered => "registered",
            ShipStatus::Docked(_) => "docked",
            ShipStatus::AtSea => "at sea",
        }
    }

    fn docked_port(&self) -> Result<&str, CargoShipError> {
        match &self.status {
            ShipStatus::NotRegistered => Err(CargoShipError::NotRegistered),
            ShipStatus::Docked(port) => Ok(port),
            _ => Err(CargoShipError::NotDocked),
        }
    }
}

/// What can be asked of a ship. By name (serde, `command` tag), the seed's
/// processor names (`dock_ship`, ...) are accepted too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "command")]
pub enum CargoShipCommand {
    /// Register the ship under a name.
    #[serde(alias = "register_ship")]
    Register {
        /// The ship's name.
        name: String,
    },
    /// Dock at a port.
    #[serde(alias = "dock_ship")]
    Dock {
        /// The port.
        port: String,
    },
    /// Leave the current port.
    #[serde(alias = "depart_ship")]
    Depart,
    /// Load cargo at the current port.
    LoadCargo {
        /// What.
        item: String,
        /// How many (positive).
        quantity: u64,
    },
    /// Unload cargo at the current port.
    UnloadCargo {
        /// What.
        item: String,
        /// How many (positive, at most what is on board).
        quantity: u64,
    },
}

/// What happened to a ship. Field names follow the seed's event data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CargoShipEvent {
    /// The ship was registered.
    ShipRegistered {
        /// The ship's name.
        name: String,
    },
    /// The ship docked at a port.
    ShipDocked {
        /// The port.
        port: String,
    },
    /// The ship left a port.
    ShipDeparted {
        /// The port it left.
        departed_from: String,
    },
    /// Cargo was loaded.
    CargoLoaded {
        /// What.
        item: String,
        /// How many.
        quantity: u64,
        /// Where.
        port: String,
    },
    /// Cargo was unloaded.
    CargoUnloaded {
        /// What.
        item: String,
        /// How many.
        quantity: u64,
        /// Where.
        port: String,
    },
}

impl DomainEvent for CargoShipEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::ShipRegistered { .. } => "ShipRegistered",
            Self::ShipDocked { .. } => "ShipDocked",
            Self::ShipDeparted { .. } => "ShipDeparted",
            Self::CargoLoaded { .. } => "CargoLoaded",
            Self::CargoUnloaded { .. } => "CargoUnloaded",
        }
    }
}

/// Why a ship refuses a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CargoShipError {
    /// `Register` on a ship registered before.
    #[error("ship is already registered")]
    AlreadyRegistered,
    /// Any command but `Register` on an unregistered ship.
    #[error("ship is not registered")]
    NotRegistered,
    /// An empty ship name, port or item.
    #[error("{0} must not be empty")]
    Blank(&'static str),
    /// `Dock` while docked.
    #[error("ship is already docked at {0}")]
    AlreadyDocked(String),
    /// `Depart`, `LoadCargo` or `UnloadCargo` while not docked.
    #[error("ship is not docked at any port")]
    NotDocked,
    /// A zero quantity.
    #[error("quantity must be positive")]
    QuantityMustBePositive,
    /// Unloading an item that is not on board.
    #[error("no {0} on the ship")]
    NoSuchItem(String),
    /// Unloading more than is on board.
    #[error("not enough {item} on the ship: {on_board} on board, {requested} requested")]
    NotEnough {
        /// The item.
        item: String,
        /// Quantity on board.
        on_board: u64,
        /// Quantity asked for.
        requested: u64,
    },
    /// Loading past what a counter can hold.
    #[error("too much {0} on the ship")]
    QuantityOverflow(String),
}

fn non_blank(value: &str, what: &'static str) -> Result<(), CargoShipError> {
    if value.trim().is_empty() {
        Err(CargoShipError::Blank(what))
    } else {
        Ok(())
    }
}

impl Aggregate for CargoShip {
    const TYPE: &'static str = "CargoShip";
    type Command = CargoShipCommand;
    type Event = CargoShipEvent;
    type Error = CargoShipError;

    fn handle(&self, command: &CargoShipCommand) -> Result<Vec<CargoShipEvent>, CargoShipError> {
        use CargoShipCommand as C;
        use CargoShipError as E;
        if !matches!(command, C::Register { .. }) && self.status == ShipStatus::NotRegistered {
            return Err(E::NotRegistered);
        }
        let event = match command {
            C::Register { name } => {
                if self.status != ShipStatus::NotRegistered {
                    return Err(E::AlreadyRegistered);
                }
                non_blank(name, "ship name")?;
                CargoShipEvent::ShipRegistered { name: name.clone() }
            }
            C::Dock { port } => {
                if let ShipStatus::Docked(current) = &self.status {
                    return Err(E::AlreadyDocked(current.clone()));
                }
                non_blank(port, "port")?;
                CargoShipEvent::ShipDocked { port: port.clone() }
            }
            C::Depart => CargoShipEvent::ShipDeparted {
                departed_from: self.docked_port()?.to_owned(),
            },
            C::LoadCargo { item, quantity } => {
                let port = self.docked_port()?;
                non_blank(item, "item")?;
                if *quantity == 0 {
                    return Err(E::QuantityMustBePositive);
                }
                let on_board = self.cargo.get(item).copied().unwrap_or(0);
                on_board
                    .checked_add(*quantity)
                    .ok_or_else(|| E::QuantityOverflow(item.clone()))?;
                CargoShipEvent::CargoLoaded {
                    item: item.clone(),
                    quantity: *quantity,
                    port: port.to_owned(),
                }
            }
            C::UnloadCargo { item, quantity } => {
                let port = self.docked_port()?;
                if *quantity == 0 {
                    return Err(E::QuantityMustBePositive);
                }
                let on_board = *self
                    .cargo
                    .get(item)
                    .ok_or_else(|| E::NoSuchItem(item.clone()))?;
                if on_board < *quantity {
                    return Err(E::NotEnough {
                        item: item.clone(),
                        on_board,
                        requested: *quantity,
                    });
                }
                CargoShipEvent::CargoUnloaded {
                    item: item.clone(),
                    quantity: *quantity,
                    port: port.to_owned(),
                }
            }
        };
        Ok(vec![event])
    }

    fn apply(&mut self, event: &CargoShipEvent) {
        match event {
            CargoShipEvent::ShipRegistered { name } => {
                self.name.clone_from(name);
                self.status = ShipStatus::Registered;
            }
            CargoShipEvent::ShipDocked { port } => self.status = ShipStatus::Docked(port.clone()),
            CargoShipEvent::ShipDeparted { .. } => self.status = ShipStatus::AtSea,
            CargoShipEvent::CargoLoaded { item, quantity, .. } => {
                let on_board = self.cargo.entry(item.clone()).or_insert(0);
                *on_board = on_board.saturating_add(*quantity);
            }
            CargoShipEvent::CargoUnloaded { item, quantity, .. } => {
                if let Some(on_board) = self.cargo.get_mut(item) {
                    *on_board = on_board.saturating_sub(*quantity);
                    if *on_board == 0 {
                        self.cargo.remove(item);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CargoShipCommand as C;
    use CargoShipError as E;

    fn run(ship: &mut CargoShip, command: C) -> Result<Vec<CargoShipEvent>, E> {
        let events = ship.handle(&command)?;
        ship.apply_all(&events);
        Ok(events)
    }

    fn registered() -> CargoShip {
        let mut ship = CargoShip::default();
        run(
            &mut ship,
            C::Register {
                name: "Pacific Explorer".into(),
            },
        )
        .unwrap();
        ship
    }

    fn docked_at(port: &str) -> CargoShip {
        let mut ship = registered();
        run(&mut ship, C::Dock { port: port.into() }).unwrap();
        ship
    }

    fn load(item: &str, quantity: u64) -> C {
        C::LoadCargo {
            item: item.into(),
            quantity,
        }
    }

    fn unload(item: &str, quantity: u64) -> C {
        C::UnloadCargo {
            item: item.into(),
            quantity,
        }
    }

    #[test]
    fn the_seed_voyage_ends_docked_at_hong_kong_with_300_electronics() {
        let mut ship = docked_at("Singapore");
        run(&mut ship, load("electronics", 500)).unwrap();
        run(&mut ship, C::Depart).unwrap();
        run(
            &mut ship,
            C::Dock {
                port: "Hong Kong".into(),
            },
        )
        .unwrap();
        run(&mut ship, unload("electronics", 200)).unwrap();
        assert_eq!(ship.current_port(), Some("Hong Kong"));
        assert_eq!(ship.status_label(), "docked");
        assert_eq!(ship.cargo.get("electronics"), Some(&300));
    }

    #[test]
    fn registering_twice_or_without_a_name_is_rejected() {
        assert_eq!(
            registered().handle(&C::Register {
                name: "Other".into()
            }),
            Err(E::AlreadyRegistered)
        );
        assert_eq!(
            CargoShip::default().handle(&C::Register { name: " ".into() }),
            Err(E::Blank("ship name"))
        );
    }

    #[test]
    fn an_unregistered_ship_accepts_only_register() {
        let ship = CargoShip::default();
        for command in [
            C::Dock { port: "X".into() },
            C::Depart,
            load("a", 1),
            unload("a", 1),
        ] {
            assert_eq!(ship.handle(&command), Err(E::NotRegistered));
        }
    }

    #[test]
    fn docking_while_docked_is_rejected() {
        assert_eq!(
            docked_at("Singapore").handle(&C::Dock {
                port: "Hong Kong".into()
            }),
            Err(E::AlreadyDocked("Singapore".into()))
        );
        assert_eq!(
            registered().handle(&C::Dock { port: "".into() }),
            Err(E::Blank("port"))
        );
    }

    #[test]
    fn departing_loading_and_unloading_need_a_port() {
        let mut at_sea = docked_at("Singapore");
        run(&mut at_sea, C::Depart).unwrap();
        for ship in [registered(), at_sea] {
            for command in [C::Depart, load("a", 1), unload("a", 1)] {
                assert_eq!(ship.handle(&command), Err(E::NotDocked));
            }
        }
    }

    #[test]
    fn quantities_must_be_positive() {
        let ship = docked_at("Singapore");
        assert_eq!(ship.handle(&load("a", 0)), Err(E::QuantityMustBePositive));
        assert_eq!(ship.handle(&unload("a", 0)), Err(E::QuantityMustBePositive));
    }

    #[test]
    fn unloading_needs_the_item_on_board_in_that_quantity() {
        let mut ship = docked_at("Singapore");
        assert_eq!(
            ship.handle(&unload("tea", 1)),
            Err(E::NoSuchItem("tea".into()))
        );
        run(&mut ship, load("tea", 5)).unwrap();
        assert_eq!(
            ship.handle(&unload("tea", 6)),
            Err(E::NotEnough {
                item: "tea".into(),
                on_board: 5,
                requested: 6
            })
        );
        run(&mut ship, unload("tea", 5)).unwrap();
        assert!(
            ship.cargo.is_empty(),
            "an item unloaded to zero leaves the manifest"
        );
    }

    #[test]
    fn loading_past_the_counter_is_refused() {
        let mut ship = docked_at("Singapore");
        run(&mut ship, load("tea", u64::MAX)).unwrap();
        assert_eq!(
            ship.handle(&load("tea", 1)),
            Err(E::QuantityOverflow("tea".into()))
        );
    }
}
