//! `logbook ship ...`: the cargo ship of the seeds.

use clap::Subcommand;
use logbook_domain::cargo_ship::{CargoShip, CargoShipCommand};
use logbook_ports::Stores;
use uuid::Uuid;

use super::aggregate::{self, Presented};

impl Presented for CargoShip {
    const NOUN: &'static str = "ship";

    fn fields(&self) -> Vec<(&'static str, serde_json::Value)> {
        let cargo: serde_json::Map<String, serde_json::Value> = self
            .cargo
            .iter()
            .map(|(item, n)| (item.clone(), (*n).into()))
            .collect();
        vec![
            ("name", self.name.clone().into()),
            // The state's own vocabulary (`at_sea`), as `exec` and `show`
            // print it, so every `--json` agrees.
            (
                "status",
                serde_json::to_value(&self.status)
                    .ok()
                    .and_then(|status| status.get("status").cloned())
                    .unwrap_or_default(),
            ),
            (
                "port",
                self.current_port()
                    .map_or(serde_json::Value::Null, Into::into),
            ),
            ("cargo", cargo.into()),
        ]
    }
}

/// Subcommands of `logbook ship`.
#[derive(Debug, Subcommand)]
pub enum ShipCommand {
    /// Register a new ship; prints its id.
    Register {
        /// The ship's name.
        name: String,
    },
    /// Dock at a port.
    Dock {
        /// Ship id.
        id: String,
        /// The port.
        port: String,
    },
    /// Leave the current port.
    Depart {
        /// Ship id.
        id: String,
    },
    /// Load cargo at the current port.
    Load {
        /// Ship id.
        id: String,
        /// What.
        item: String,
        /// How many.
        quantity: u64,
    },
    /// Unload cargo at the current port.
    Unload {
        /// Ship id.
        id: String,
        /// What.
        item: String,
        /// How many.
        quantity: u64,
    },
    /// Show a ship's state, now or at a past version.
    Show(super::ShowArgs),
    /// Delete a ship: it can no longer be used; its events stay in the log.
    Delete {
        /// Its id.
        id: String,
    },
}

pub async fn run(stores: &Stores, command: ShipCommand) -> anyhow::Result<()> {
    let (id, command) = match command {
        ShipCommand::Delete { id } => return aggregate::delete::<CargoShip>(stores, &id).await,
        ShipCommand::Show(args) => {
            return aggregate::show::<CargoShip>(stores, &args).await;
        }
        ShipCommand::Register { name } => {
            let id = Uuid::new_v4().to_string();
            return aggregate::create::<CargoShip>(
                stores,
                &id,
                CargoShipCommand::Register { name },
            )
            .await;
        }
        ShipCommand::Dock { id, port } => (id, CargoShipCommand::Dock { port }),
        ShipCommand::Depart { id } => (id, CargoShipCommand::Depart),
        ShipCommand::Load { id, item, quantity } => {
            (id, CargoShipCommand::LoadCargo { item, quantity })
        }
        ShipCommand::Unload { id, item, quantity } => {
            (id, CargoShipCommand::UnloadCargo { item, quantity })
        }
    };
    aggregate::execute::<CargoShip>(stores, &id, command).await
}
